"""One function's writes, one at a time.

A write locks the function's row for its whole transaction, so concurrent updates of one
function queue up: each sees the revision the previous one left (last writer wins), and a
caller that names an older RevisionId gets PreconditionFailedException."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import DatabaseError, transaction

from api.errors import PreconditionFailedException, ResourceConflictException
from api.names import FunctionRef
from functions.models import Function

logger = logging.getLogger(__name__)

REVISION_MISMATCH = (
    "The Revision Id provided does not match the latest Revision Id. Call the "
    "GetFunction/GetAlias API to retrieve the latest Revision Id"
)


def update_in_progress(ref: FunctionRef) -> ResourceConflictException:
    return ResourceConflictException(
        "The operation cannot be performed at this time. An update is in progress for "
        f"resource: {ref.arn}"
    )


@contextmanager
def function_locked(
    function: Function, ref: FunctionRef, revision_id: str | None
) -> Iterator[Function]:
    """The function's row, locked until the block ends, at the revision the caller named."""
    try:
        with transaction.atomic():
            locked = Function.objects.select_for_update().select_related("role").get(pk=function.pk)
            if revision_id is not None and revision_id != str(locked.revision_id):
                raise PreconditionFailedException(REVISION_MISMATCH)
            yield locked
    except Function.DoesNotExist as exc:
        raise ref.not_found() from exc
    except DatabaseError as exc:
        # A concurrent write that touched the same rows (a deadlock, or a package another
        # function was just given and this update removed) undoes this one entirely.
        logger.warning("update of %s rolled back: %s", ref.arn, exc)
        raise update_in_progress(ref) from exc
