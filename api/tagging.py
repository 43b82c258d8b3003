"""Function tags: Lambda's rules for them, and adding and removing them."""

from __future__ import annotations

import re

from api.errors import InvalidParameterValueException
from api.locks import function_locked
from api.names import FunctionRef
from functions.models import Function

MAX_TAGS = 50
MAX_TAG_KEY_LENGTH = 128
MAX_TAG_VALUE_LENGTH = 256
# Letters, numbers, spaces and _ . : / = + - @, as Lambda allows in tags.
_TAG_TEXT_RE = re.compile(r"^[\w\s.:/=+\-@]*$")


def validate_tags(tags: dict[str, str]) -> None:
    """Lambda's tag rules: at most 50, keys 1-128 characters and not starting with "aws:",
    values up to 256."""
    if len(tags) > MAX_TAGS:
        raise InvalidParameterValueException(
            f"Number of tags exceeds resource tag limit of {MAX_TAGS}."
        )
    for key, value in tags.items():
        if not 1 <= len(key) <= MAX_TAG_KEY_LENGTH or not _TAG_TEXT_RE.match(key):
            raise InvalidParameterValueException(
                f"Tag key '{key}' must be 1 to {MAX_TAG_KEY_LENGTH} characters of letters, "
                "numbers, spaces and _ . : / = + - @."
            )
        if key.lower().startswith("aws:"):
            raise InvalidParameterValueException(
                f"Tag key '{key}' uses the reserved prefix 'aws:'."
            )
        if len(value) > MAX_TAG_VALUE_LENGTH or not _TAG_TEXT_RE.match(value):
            raise InvalidParameterValueException(
                f"The value of tag '{key}' must be up to {MAX_TAG_VALUE_LENGTH} characters of "
                "letters, numbers, spaces and _ . : / = + - @."
            )


def function_tags_add(*, function: Function, ref: FunctionRef, tags: dict[str, str]) -> None:
    with function_locked(function, ref, None) as locked:
        merged = {**locked.tags, **tags}
        validate_tags(merged)
        Function.objects.filter(pk=locked.pk).update(tags=merged)


def function_tags_remove(*, function: Function, ref: FunctionRef, keys: list[str]) -> None:
    with function_locked(function, ref, None) as locked:
        remaining = {key: value for key, value in locked.tags.items() if key not in set(keys)}
        Function.objects.filter(pk=locked.pk).update(tags=remaining)
