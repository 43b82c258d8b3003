"""A synchronous invocation whose record vanished before it ran (its insert, committed
without waiting for the WAL, was lost in a database crash) ends with a clear error."""

from __future__ import annotations

import pytest

from invocations.errors import InvocationLost
from invocations.models import Invocation
from invocations.services import _is_terminal_in_database, invocation_submit, invocation_wait
from invocations.tests.helpers import make_function

pytestmark = pytest.mark.django_db


def test_waiting_for_a_record_that_vanished_ends_with_a_service_error(user):
    function = make_function(user, "def lambda_handler(event, context):\n    return 1\n")
    invocation = invocation_submit(function=function, payload="{}")
    Invocation.objects.filter(pk=invocation.pk).delete()

    assert _is_terminal_in_database(invocation)
    with pytest.raises(InvocationLost) as lost:
        invocation_wait(invocation=invocation)

    assert lost.value.code == "ServiceException"
    assert str(invocation.request_id) in lost.value.message
    assert "lost" in lost.value.message
