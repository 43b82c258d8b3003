"""The account-level counts a lease reports at admission, in Redis and in-process: all of the
account's functions in flight, and its unreserved pool's, each exact under contention."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator

import pytest
from django.conf import settings

from invocations.concurrency import (
    Lease,
    LeaseStore,
    Limits,
    LocalLeases,
    RedisLeases,
    Throttled,
)
from invocations.tests.concurrency_helpers import forget_all_leases

OWNER = 876_543
OTHER_OWNER = 876_544


@pytest.fixture(params=["redis", "local"])
def leases(request: pytest.FixtureRequest) -> Iterator[LeaseStore]:
    if request.param == "redis":
        forget_all_leases()
        yield RedisLeases(str(settings.STRATUS_CONCURRENCY_REDIS_URL))
        forget_all_leases()
    else:
        yield LocalLeases()


def limits(
    function_id: int, *, reserved: int | None = None, pool: int = 1000, owner: int = OWNER
) -> Limits:
    return Limits(function_id=function_id, owner_id=owner, reserved=reserved, unreserved_pool=pool)


def counts(lease: Lease) -> tuple[int, int | None, int]:
    return lease.function_in_flight, lease.unreserved_in_flight, lease.account_in_flight


def test_the_account_count_takes_in_every_function_and_the_pool_only_unreserved_ones(
    leases: LeaseStore,
):
    first = leases.admit(limits(1), request_id="a", ttl=60)
    reserved = leases.admit(limits(2, reserved=3), request_id="b", ttl=60)
    second_of_reserved = leases.admit(limits(2, reserved=3), request_id="c", ttl=60)
    other_unreserved = leases.admit(limits(3), request_id="d", ttl=60)

    assert counts(first) == (1, 1, 1)
    assert counts(reserved) == (1, None, 2)
    assert counts(second_of_reserved) == (2, None, 3)
    assert counts(other_unreserved) == (1, 2, 4)


def test_accounts_are_counted_apart(leases: LeaseStore):
    leases.admit(limits(1), request_id="a", ttl=60)
    leases.admit(limits(2, reserved=1), request_id="b", ttl=60)

    elsewhere = leases.admit(limits(7, owner=OTHER_OWNER), request_id="c", ttl=60)

    assert counts(elsewhere) == (1, 1, 1)


def test_a_throttled_request_is_not_counted(leases: LeaseStore):
    leases.admit(limits(1, pool=1), request_id="a", ttl=60)
    with pytest.raises(Throttled):
        leases.admit(limits(2, pool=1), request_id="b", ttl=60)
    with pytest.raises(Throttled):
        leases.admit(limits(3, reserved=0), request_id="c", ttl=60)

    reserved = leases.admit(limits(4, reserved=1, pool=1), request_id="d", ttl=60)

    assert counts(reserved) == (1, None, 2)


def test_a_released_lease_leaves_the_account_count(leases: LeaseStore):
    leases.admit(limits(1), request_id="a", ttl=60)
    leases.admit(limits(2, reserved=2), request_id="b", ttl=60)
    leases.release(request_id="a", function_id=1, owner_id=OWNER)
    leases.release(request_id="b", function_id=2, owner_id=OWNER)

    again = leases.admit(limits(2, reserved=2), request_id="c", ttl=60)

    assert counts(again) == (1, None, 1)


def test_a_second_delivery_reports_the_counts_without_adding_to_them(leases: LeaseStore):
    leases.admit(limits(1), request_id="a", ttl=60)
    leases.admit(limits(2), request_id="b", ttl=60)

    again = leases.admit(limits(1), request_id="a", ttl=60)

    assert not again.new
    assert counts(again) == (1, 2, 2)


def test_the_account_count_is_exact_under_contention(leases: LeaseStore):
    """40 requests at once over three functions, one of them reserving 5: the admitted
    ones see the account's counts 1..N, each once, and the pool's 1..M likewise."""
    function_of = [(1, None), (2, None), (3, 5)] * 13 + [(1, None)]
    admitted: list[Lease] = []
    refused: list[Throttled] = []
    start = threading.Barrier(len(function_of))
    lock = threading.Lock()

    def admit(function_id: int, reserved: int | None) -> None:
        start.wait()
        try:
            lease = leases.admit(
                limits(function_id, reserved=reserved, pool=20),
                request_id=str(uuid.uuid4()),
                ttl=60,
            )
        except Throttled as exc:
            with lock:
                refused.append(exc)
            return
        with lock:
            admitted.append(lease)

    threads = [threading.Thread(target=admit, args=spec) for spec in function_of]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    unreserved = [lease for lease in admitted if lease.unreserved_in_flight is not None]
    assert len(unreserved) == 20 and len(admitted) == 25 and len(refused) == 15
    assert sorted(lease.account_in_flight for lease in admitted) == list(range(1, 26))
    assert sorted(lease.unreserved_in_flight or 0 for lease in unreserved) == list(range(1, 21))
