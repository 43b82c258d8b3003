"""Admission: how many invocations of a function may be in flight at once.

A function with reserved concurrency may have that many in flight; every other function of
an account shares the account's unreserved pool (the account limit minus all of the
account's reservations). Each admitted invocation holds a lease, named by its request id,
until it finishes; the account keeps a set of all its leases too, for the account-level
ConcurrentExecutions metric. A lease also ends by itself at its deadline (the invocation's timeout
plus a margin), so the slot of an invocation whose worker died comes back without help.

With Redis (whenever Celery has a Redis broker) the leases are sorted sets, checked and
taken by one Lua script, so every web and worker process shares one exact count; without
it (the embedded mode, where one process does everything) they live in that process.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from typing import Any, Protocol

from django.conf import settings
from django.db.models import Sum

from functions.models import Function
from invocations.errors import InvocationRejected

# Lambda's message for every throttle; the Reason says which limit was hit.
THROTTLE_MESSAGE = "Rate Exceeded."
# A lease outlives its invocation's timeout by this much: the wait for an execution
# environment, the init phase and recording all come on top of the timeout.
LEASE_MARGIN_SECONDS = 90
# A slot is usually free again within a second or two; callers retry with backoff anyway.
RETRY_AFTER_SECONDS = 1
# The reservations of an account change rarely; each process reads their sum this often.
_RESERVED_SUM_TTL_SECONDS = 1.0


class ThrottleReason(StrEnum):
    ACCOUNT = "ConcurrentInvocationLimitExceeded"
    RESERVED = "ReservedFunctionConcurrentInvocationLimitExceeded"


class Throttled(InvocationRejected):
    """No concurrency was free: nothing was recorded or run."""

    code = "TooManyRequestsException"
    status = 429

    def __init__(self, reason: ThrottleReason, *, retry_after: int = RETRY_AFTER_SECONDS) -> None:
        super().__init__(THROTTLE_MESSAGE)
        self.reason = reason
        self.retry_after = retry_after


@dataclass(frozen=True)
class Limits:
    """What one function's admission is checked against: its reservation, or else the
    account's unreserved pool."""

    function_id: int
    owner_id: int
    reserved: int | None
    unreserved_pool: int


@dataclass(frozen=True)
class Lease:
    request_id: str
    function_id: int
    owner_id: int
    # In flight at admission, this one included: of the function, of the account's
    # unreserved pool (None for a function with reserved concurrency), and of all the
    # account's functions.
    function_in_flight: int
    unreserved_in_flight: int | None
    account_in_flight: int
    # False when the request already held its lease (a second delivery of its message).
    new: bool = True


def account_concurrency_limit() -> int:
    return int(settings.STRATUS_ACCOUNT_CONCURRENCY_LIMIT)


_reserved_sums: dict[int, tuple[float, int]] = {}
_reserved_sums_lock = threading.Lock()


def reserved_sum(owner_id: int, *, fresh: bool = False) -> int:
    """The concurrency the account's functions reserve in all."""
    now = time.monotonic()
    with _reserved_sums_lock:
        cached = _reserved_sums.get(owner_id)
    if cached is not None and not fresh and now - cached[0] < _RESERVED_SUM_TTL_SECONDS:
        return cached[1]
    total = (
        Function.objects.filter(owner_id=owner_id).aggregate(total=Sum("reserved_concurrency"))[
            "total"
        ]
        or 0
    )
    with _reserved_sums_lock:
        _reserved_sums[owner_id] = (now, total)
    return total


def forget_reserved_sum(owner_id: int) -> None:
    """The account's reservations changed: this process reads them again."""
    with _reserved_sums_lock:
        _reserved_sums.pop(owner_id, None)


def unreserved_pool(owner_id: int, *, fresh: bool = False) -> int:
    return max(0, account_concurrency_limit() - reserved_sum(owner_id, fresh=fresh))


def limits_for(*, function_id: int, owner_id: int, reserved: int | None) -> Limits:
    return Limits(
        function_id=function_id,
        owner_id=owner_id,
        reserved=reserved,
        unreserved_pool=unreserved_pool(owner_id) if reserved is None else 0,
    )


def limits_for_function(function: Function) -> Limits:
    return limits_for(
        function_id=function.pk, owner_id=function.owner_id, reserved=function.reserved_concurrency
    )


def current_limits(*, function_id: int, owner_id: int) -> Limits:
    """The limits as the database has them now (the worker's view of a queued event)."""
    reserved = (
        Function.objects.filter(pk=function_id)
        .values_list("reserved_concurrency", flat=True)
        .first()
    )
    return limits_for(function_id=function_id, owner_id=owner_id, reserved=reserved)


def admit(limits: Limits, *, request_id: str, timeout: int) -> Lease:
    """Take a slot for the invocation or raise Throttled."""
    return get_leases().admit(limits, request_id=request_id, ttl=timeout + LEASE_MARGIN_SECONDS)


def release(*, request_id: str, function_id: int, owner_id: int) -> None:
    get_leases().release(request_id=request_id, function_id=function_id, owner_id=owner_id)


def in_flight(*, function_id: int, owner_id: int) -> tuple[int, int]:
    """Invocations in flight now: of the function, and of its account's unreserved pool."""
    return get_leases().count(function_id=function_id, owner_id=owner_id)


class LeaseStore(Protocol):
    def admit(self, limits: Limits, *, request_id: str, ttl: int) -> Lease: ...

    def release(self, *, request_id: str, function_id: int, owner_id: int) -> None: ...

    def count(self, *, function_id: int, owner_id: int) -> tuple[int, int]: ...


def key_prefix() -> str:
    # Databases sharing one Redis (tests, several installations) keep apart.
    return f"stratus:concurrency:{settings.DATABASES['default']['NAME']}"


def _function_key(function_id: int) -> str:
    return f"{key_prefix()}:function:{function_id}"


def _pool_key(owner_id: int) -> str:
    return f"{key_prefix()}:unreserved:{owner_id}"


def _account_key(owner_id: int) -> str:
    return f"{key_prefix()}:account:{owner_id}"


def _lease_keys(function_id: int, owner_id: int) -> list[str]:
    return [_function_key(function_id), _pool_key(owner_id), _account_key(owner_id)]


# KEYS: the function's leases, the account pool's leases, all the account's leases.
# ARGV: request id, lease seconds, the function's limit (-1: none), the pool's limit (-1:
# the function is not in the pool). Returns {admitted, function count or which limit
# (1 function, 2 pool), pool count, new, account count}.
_ADMIT_SCRIPT = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
local function_limit = tonumber(ARGV[3])
local pool_limit = tonumber(ARGV[4])
local function counts(new)
  return {1, redis.call('ZCARD', KEYS[1]), redis.call('ZCARD', KEYS[2]), new,
          redis.call('ZCARD', KEYS[3])}
end
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  return counts(0)
end
if function_limit >= 0 and redis.call('ZCARD', KEYS[1]) >= function_limit then
  return {0, 1, 0, 0, 0}
end
if pool_limit >= 0 and redis.call('ZCARD', KEYS[2]) >= pool_limit then
  return {0, 2, 0, 0, 0}
end
local deadline = now + tonumber(ARGV[2])
local ttl = math.ceil(tonumber(ARGV[2])) + 1
local function keep_until_last_lease_ends(key)
  if redis.call('TTL', key) < ttl then
    redis.call('EXPIRE', key, ttl)
  end
end
redis.call('ZADD', KEYS[1], deadline, ARGV[1])
keep_until_last_lease_ends(KEYS[1])
if pool_limit >= 0 then
  redis.call('ZADD', KEYS[2], deadline, ARGV[1])
  keep_until_last_lease_ends(KEYS[2])
end
redis.call('ZADD', KEYS[3], deadline, ARGV[1])
keep_until_last_lease_ends(KEYS[3])
return counts(1)
"""

_COUNT_SCRIPT = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
return {redis.call('ZCARD', KEYS[1]), redis.call('ZCARD', KEYS[2])}
"""


def _limit_args(limits: Limits) -> tuple[int, int]:
    if limits.reserved is not None:
        return limits.reserved, -1
    return -1, limits.unreserved_pool


def _lease(limits: Limits, request_id: str, reply: list[int]) -> Lease:
    admitted, first, pool_count, new, account_count = (int(value) for value in reply)
    if not admitted:
        reason = ThrottleReason.RESERVED if first == 1 else ThrottleReason.ACCOUNT
        raise Throttled(reason)
    return Lease(
        request_id=request_id,
        function_id=limits.function_id,
        owner_id=limits.owner_id,
        function_in_flight=first,
        unreserved_in_flight=pool_count if limits.reserved is None else None,
        account_in_flight=account_count,
        new=bool(new),
    )


class RedisLeases:
    def __init__(self, url: str) -> None:
        import redis

        self._redis = redis.Redis.from_url(url)
        self._admit: Callable[..., Any] = self._redis.register_script(_ADMIT_SCRIPT)
        self._count: Callable[..., Any] = self._redis.register_script(_COUNT_SCRIPT)

    def admit(self, limits: Limits, *, request_id: str, ttl: int) -> Lease:
        function_limit, pool_limit = _limit_args(limits)
        reply = self._admit(
            keys=_lease_keys(limits.function_id, limits.owner_id),
            args=[request_id, ttl, function_limit, pool_limit],
        )
        return _lease(limits, request_id, reply)

    def release(self, *, request_id: str, function_id: int, owner_id: int) -> None:
        pipe = self._redis.pipeline(transaction=False)
        for key in _lease_keys(function_id, owner_id):
            pipe.zrem(key, request_id)
        pipe.execute()

    def count(self, *, function_id: int, owner_id: int) -> tuple[int, int]:
        reply = self._count(keys=[_function_key(function_id), _pool_key(owner_id)], args=[])
        return int(reply[0]), int(reply[1])


class LocalLeases:
    """The same leases in this process, for the embedded mode."""

    def __init__(self) -> None:
        self._sets: dict[str, dict[str, float]] = {}
        self._lock = threading.Lock()

    def _live(self, key: str, now: float) -> dict[str, float]:
        leases = self._sets.setdefault(key, {})
        for member in [m for m, deadline in leases.items() if deadline <= now]:
            del leases[member]
        return leases

    def admit(self, limits: Limits, *, request_id: str, ttl: int) -> Lease:
        function_limit, pool_limit = _limit_args(limits)
        now = time.monotonic()
        with self._lock:
            own = self._live(_function_key(limits.function_id), now)
            pool = self._live(_pool_key(limits.owner_id), now)
            account = self._live(_account_key(limits.owner_id), now)
            if request_id in own:
                reply = [1, len(own), len(pool), 0, len(account)]
            elif 0 <= function_limit <= len(own):
                reply = [0, 1, 0, 0, 0]
            elif 0 <= pool_limit <= len(pool):
                reply = [0, 2, 0, 0, 0]
            else:
                own[request_id] = now + ttl
                if pool_limit >= 0:
                    pool[request_id] = now + ttl
                account[request_id] = now + ttl
                reply = [1, len(own), len(pool), 1, len(account)]
        return _lease(limits, request_id, reply)

    def release(self, *, request_id: str, function_id: int, owner_id: int) -> None:
        with self._lock:
            for key in _lease_keys(function_id, owner_id):
                self._sets.get(key, {}).pop(request_id, None)

    def clear(self) -> None:
        with self._lock:
            self._sets.clear()

    def count(self, *, function_id: int, owner_id: int) -> tuple[int, int]:
        now = time.monotonic()
        with self._lock:
            own = self._live(_function_key(function_id), now)
            pool = self._live(_pool_key(owner_id), now)
            return len(own), len(pool)


@lru_cache(maxsize=1)
def _store(url: str) -> LeaseStore:
    return RedisLeases(url) if url else LocalLeases()


def get_leases() -> LeaseStore:
    return _store(str(settings.STRATUS_CONCURRENCY_REDIS_URL or ""))
