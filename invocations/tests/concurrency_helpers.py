"""Test helpers for the concurrency leases."""

from __future__ import annotations

from django.conf import settings

from invocations.concurrency import LocalLeases, RedisLeases, get_leases, key_prefix


def forget_all_leases() -> None:
    """Drop every lease of this database (its function ids are reused by the next run)."""
    store = get_leases()
    if isinstance(store, RedisLeases):
        import redis

        client = redis.Redis.from_url(str(settings.STRATUS_CONCURRENCY_REDIS_URL))
        keys = list(client.scan_iter(match=f"{key_prefix()}:*", count=500))
        if keys:
            client.delete(*keys)
    elif isinstance(store, LocalLeases):
        store.clear()
