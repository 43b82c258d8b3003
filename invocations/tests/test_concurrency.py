"""Admission leases, in Redis (shared by every process) and in-process (embedded mode):
exact under contention, released when done, ended by their deadline, idempotent for a
second delivery of the same request."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator

import pytest
from django.conf import settings

from functions.models import Function
from invocations.concurrency import (
    RETRY_AFTER_SECONDS,
    LeaseStore,
    Limits,
    LocalLeases,
    RedisLeases,
    Throttled,
    ThrottleReason,
    key_prefix,
)
from invocations.models import Invocation
from invocations.services import invocation_submit
from invocations.tests.concurrency_helpers import forget_all_leases
from invocations.tests.helpers import make_function
from invocations.throttling import backoff_seconds
from monitoring.models import MetricDatapoint

OWNER = 987_654


@pytest.fixture(params=["redis", "local"])
def leases(request: pytest.FixtureRequest) -> Iterator[LeaseStore]:
    if request.param == "redis":
        forget_all_leases()
        yield RedisLeases(str(settings.STRATUS_CONCURRENCY_REDIS_URL))
        forget_all_leases()
    else:
        yield LocalLeases()


def limits(function_id: int, *, reserved: int | None = None, pool: int = 1000) -> Limits:
    return Limits(function_id=function_id, owner_id=OWNER, reserved=reserved, unreserved_pool=pool)


def test_a_reservation_admits_exactly_that_many_at_once(leases: LeaseStore):
    admitted: list[int] = []
    refused: list[str] = []
    start = threading.Barrier(40)

    def admit() -> None:
        start.wait()
        try:
            lease = leases.admit(limits(1, reserved=7), request_id=str(uuid.uuid4()), ttl=60)
            admitted.append(lease.function_in_flight)
        except Throttled as exc:
            refused.append(exc.reason)

    threads = [threading.Thread(target=admit) for _ in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(admitted) == [1, 2, 3, 4, 5, 6, 7]
    assert refused == [ThrottleReason.RESERVED] * 33
    assert leases.count(function_id=1, owner_id=OWNER) == (7, 0)


def test_the_unreserved_pool_is_shared_by_the_accounts_functions(leases: LeaseStore):
    leases.admit(limits(1, pool=2), request_id="a", ttl=60)
    second = leases.admit(limits(2, pool=2), request_id="b", ttl=60)

    with pytest.raises(Throttled) as caught:
        leases.admit(limits(3, pool=2), request_id="c", ttl=60)

    assert caught.value.reason == ThrottleReason.ACCOUNT
    assert caught.value.message == "Rate Exceeded."
    assert caught.value.retry_after == RETRY_AFTER_SECONDS
    assert second.unreserved_in_flight == 2
    # A function with its own reservation does not draw on the pool.
    reserved = leases.admit(limits(4, reserved=1, pool=2), request_id="d", ttl=60)
    assert reserved.unreserved_in_flight is None


def test_reserved_zero_admits_nothing(leases: LeaseStore):
    with pytest.raises(Throttled) as caught:
        leases.admit(limits(1, reserved=0), request_id="a", ttl=60)

    assert caught.value.reason == ThrottleReason.RESERVED


def test_a_released_or_expired_lease_frees_its_slot(leases: LeaseStore):
    leases.admit(limits(1, reserved=1), request_id="a", ttl=60)
    leases.release(request_id="a", function_id=1, owner_id=OWNER)
    leases.admit(limits(1, reserved=1), request_id="b", ttl=1)
    with pytest.raises(Throttled):
        leases.admit(limits(1, reserved=1), request_id="c", ttl=60)

    time.sleep(1.1)

    assert leases.admit(limits(1, reserved=1), request_id="c", ttl=60).new


def test_a_second_delivery_keeps_the_lease_it_has(leases: LeaseStore):
    first = leases.admit(limits(1, reserved=1), request_id="a", ttl=60)
    again = leases.admit(limits(1, reserved=1), request_id="a", ttl=60)

    assert first.new and not again.new
    assert leases.count(function_id=1, owner_id=OWNER) == (1, 0)


def test_throttled_events_back_off_from_one_second_to_five_minutes():
    assert [backoff_seconds(n) for n in (1, 2, 3, 4)] == [1, 2, 4, 8]
    assert backoff_seconds(20) == 300


def test_lease_keys_in_redis_vanish_after_their_last_lease():
    import redis

    forget_all_leases()
    leases = RedisLeases(str(settings.STRATUS_CONCURRENCY_REDIS_URL))
    leases.admit(limits(1), request_id="a", ttl=5)
    leases.admit(limits(1), request_id="b", ttl=30)
    client = redis.Redis.from_url(str(settings.STRATUS_CONCURRENCY_REDIS_URL))

    ttls = [client.ttl(key) for key in client.scan_iter(match=f"{key_prefix()}:*")]

    # The function's, the unreserved pool's and the account's leases.
    assert len(ttls) == 3 and all(29 <= ttl <= 31 for ttl in ttls)
    forget_all_leases()


@pytest.mark.django_db
def test_a_throttled_synchronous_submit_leaves_only_a_throttle(user):
    forget_all_leases()
    function = make_function(
        user, "def lambda_handler(event, context):\n    return 1\n", name="held"
    )
    Function.objects.filter(pk=function.pk).update(reserved_concurrency=0)
    function.refresh_from_db()

    with pytest.raises(Throttled) as caught:
        invocation_submit(function=function, payload="{}")

    assert caught.value.reason == ThrottleReason.RESERVED
    assert not Invocation.objects.exists()
    throttles = MetricDatapoint.objects.get(
        metric_name="Throttles", dimension_name="FunctionName", dimension_value="held"
    )
    assert throttles.sum == 1
