"""Members of a JSON request body, read with the types botocore's model gives them."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from api.errors import InvalidParameterValueException, InvalidRequestContentException


def _member_path(name: str) -> str:
    return name[:1].lower() + name[1:]


class Params:
    def __init__(self, data: dict[str, Any], *, prefix: str = "") -> None:
        self._data = data
        self._prefix = prefix

    @classmethod
    def from_body(cls, body: bytes) -> Params:
        if not body.strip():
            return cls({})
        try:
            data = json.loads(body)
        except (UnicodeDecodeError, ValueError) as exc:
            raise InvalidRequestContentException(
                f"Could not parse request body into json: {exc}"
            ) from exc
        if not isinstance(data, dict):
            raise InvalidRequestContentException(
                "Could not parse request body into json: the body must be a JSON object."
            )
        return cls(data)

    def __contains__(self, name: str) -> bool:
        return self._data.get(name) is not None

    def names(self) -> set[str]:
        return {name for name, value in self._data.items() if value is not None}

    def _path(self, name: str) -> str:
        return f"{self._prefix}{_member_path(name)}"

    def _wrong_type(self, name: str, kind: str) -> InvalidRequestContentException:
        return InvalidRequestContentException(
            f"Could not parse request body into json: '{self._path(name)}' must be {kind}."
        )

    def required(self, name: str) -> None:
        if name not in self:
            raise InvalidParameterValueException(
                f"1 validation error detected: Value null at '{self._path(name)}' failed to "
                "satisfy constraint: Member must not be null"
            )

    def string(self, name: str) -> str | None:
        value = self._data.get(name)
        if value is not None and not isinstance(value, str):
            raise self._wrong_type(name, "a string")
        return value

    def integer(self, name: str) -> int | None:
        value = self._data.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise self._wrong_type(name, "an integer")
        return value

    def boolean(self, name: str) -> bool | None:
        value = self._data.get(name)
        if value is not None and not isinstance(value, bool):
            raise self._wrong_type(name, "a boolean")
        return value

    def structure(self, name: str) -> Params | None:
        value = self._data.get(name)
        if value is None:
            return None
        if not isinstance(value, dict):
            raise self._wrong_type(name, "an object")
        return Params(value, prefix=f"{self._path(name)}.")

    def string_map(self, name: str) -> dict[str, str] | None:
        value = self._data.get(name)
        if value is None:
            return None
        if not isinstance(value, dict) or not all(isinstance(item, str) for item in value.values()):
            raise self._wrong_type(name, "an object of strings")
        return dict(value)

    def string_list(self, name: str) -> list[str] | None:
        value = self._data.get(name)
        if value is None:
            return None
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise self._wrong_type(name, "a list of strings")
        return list(value)

    def raw(self, name: str) -> Any:
        return self._data.get(name)

    def blob(self, name: str) -> bytes | None:
        """A base64-encoded member (botocore encodes blobs in JSON bodies)."""
        value = self.string(name)
        if value is None:
            return None
        try:
            return base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise InvalidRequestContentException(
                f"Could not parse request body into json: '{self._path(name)}' is not valid base64."
            ) from exc


def name_marker(name: str) -> str:
    """A list operation's NextMarker for a page that ended at `name`."""
    return base64.urlsafe_b64encode(json.dumps({"after": name}).encode()).decode()


def name_after_marker(marker: str) -> str:
    """The name a Marker made by name_marker says to list after."""
    try:
        after = json.loads(base64.urlsafe_b64decode(marker.encode()))["after"]
    except (binascii.Error, ValueError, TypeError, KeyError) as exc:
        raise InvalidParameterValueException(f"Invalid Marker: {marker}") from exc
    if not isinstance(after, str):
        raise InvalidParameterValueException(f"Invalid Marker: {marker}")
    return after
