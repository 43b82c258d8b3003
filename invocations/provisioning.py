"""Provisioned concurrency on the worker: every worker process keeps, in its own pool, the
initialised execution environments the provisioned concurrency configurations ask for, and
reports back how many are ready (Status READY once all of them are).

A reconciler thread per worker process reads the configurations every
STRATUS_PROVISIONED_RECONCILE_SECONDS and hands each version its count
(`EnvironmentPool.set_provisioned`); a version no configuration names any more gets 0.
An alias's count goes to the version it points at, or is split by weight between the two
versions of a weighted alias.
"""

from __future__ import annotations

import logging
import math
import threading
from dataclasses import dataclass, field
from typing import Any

from celery.signals import worker_ready, worker_shutdown
from django.conf import settings
from django.db import close_old_connections, connection

from functions.models import (
    FunctionAlias,
    FunctionVersion,
    ProvisionedConcurrencyConfig,
    ProvisionedConcurrencyStatus,
)
from invocations.environments import get_pool
from invocations.executor import ExecutionResult
from invocations.function_snapshot import FunctionSnapshot

logger = logging.getLogger(__name__)


@dataclass
class _Target:
    """One version's provisioned environments, summed over the configurations naming it."""

    snapshot: FunctionSnapshot
    count: int = 0
    shares: dict[int, int] = field(default_factory=dict)  # config id -> its part of count


# pool key -> provisioned environments this worker was asked to keep (read by invocations).
_applied: dict[str, int] = {}
_applied_snapshots: dict[str, FunctionSnapshot] = {}
_applied_lock = threading.Lock()


def invocation_provisioning(snapshot: FunctionSnapshot, result: ExecutionResult) -> dict[str, Any]:
    """The provisioned-concurrency facts of a finished invocation, for its metrics."""
    served = result.provisioned
    with _applied_lock:
        allocated = _applied.get(snapshot.pool_key, 0)
    if not allocated and not served:
        return {}
    return {"provisioned": served, "provisioned_allocated": allocated}


def split_by_weight(count: int, weights: list[tuple[str, float]]) -> dict[str, int]:
    """An alias's count split between its versions: the additional version gets its
    weight's share rounded down, the primary the rest."""
    if len(weights) == 1:
        return {weights[0][0]: count}
    (primary, _), (additional, weight) = weights
    extra = math.floor(count * weight)
    return {primary: count - extra, additional: extra}


def _targets() -> dict[str, _Target]:
    from invocations.services import _snapshot

    targets: dict[str, _Target] = {}
    configs = ProvisionedConcurrencyConfig.objects.select_related("function")
    for config in configs:
        function = config.function
        if config.qualifier.isdigit():
            counts = {config.qualifier: config.requested}
        else:
            alias = FunctionAlias.objects.filter(function=function, name=config.qualifier).first()
            if alias is None:
                continue
            weights = [(alias.function_version, 1.0 - alias.additional_weight)]
            if alias.is_weighted:
                weights.append((alias.additional_version, alias.additional_weight))
            counts = split_by_weight(config.requested, weights)
        for number, count in counts.items():
            if not number.isdigit():
                continue
            version = FunctionVersion.objects.filter(function=function, version=number).first()
            if version is None:
                continue
            snapshot = _snapshot(function, version, invoked_as=config.qualifier)
            target = targets.setdefault(snapshot.pool_key, _Target(snapshot))
            target.count += count
            target.shares[config.pk] = target.shares.get(config.pk, 0) + count
    return targets


def reconcile_once() -> dict[str, int]:
    """Bring this worker's provisioned environments in line with the configurations and
    write their status back; returns pool key -> requested count."""
    targets = _targets()
    with _applied_lock:
        stale = {key: s for key, s in _applied_snapshots.items() if key not in targets}
    if not targets and not stale:
        return {}
    pool = get_pool()
    failures: dict[str, str] = {}
    for key, target in targets.items():
        try:
            pool.set_provisioned(target.snapshot, target.count)
        except Exception as exc:
            logger.warning("could not provision %s: %s", key, exc)
            failures[key] = str(exc) or exc.__class__.__name__
    for key, snapshot in stale.items():
        try:
            pool.set_provisioned(snapshot, 0)
        except Exception:
            logger.exception("could not release provisioned environments of %s", key)
    with _applied_lock:
        _applied.clear()
        _applied_snapshots.clear()
        for key, target in targets.items():
            if key not in failures:
                _applied[key] = target.count
                _applied_snapshots[key] = target.snapshot
    _write_status(targets, pool.provisioned_status(), failures)
    return {key: target.count for key, target in targets.items()}


def _write_status(
    targets: dict[str, _Target],
    pool_status: dict[str, tuple[int, int]],
    failures: dict[str, str],
) -> None:
    ready: dict[int, int] = {}
    failed: dict[int, str] = {}
    for key, target in targets.items():
        ready_here = pool_status.get(key, (0, 0))[0]
        for config_id, share in target.shares.items():
            # Environments of a version named by two configurations count for each in turn.
            ready[config_id] = ready.get(config_id, 0) + min(share, ready_here)
            ready_here = max(0, ready_here - share)
            if key in failures:
                failed[config_id] = failures[key]
    for config in ProvisionedConcurrencyConfig.objects.filter(pk__in=ready.keys()):
        allocated = min(config.requested, ready.get(config.pk, 0))
        if config.pk in failed:
            status, reason = ProvisionedConcurrencyStatus.FAILED, failed[config.pk]
        elif allocated >= config.requested:
            status, reason = ProvisionedConcurrencyStatus.READY, ""
        else:
            status, reason = ProvisionedConcurrencyStatus.IN_PROGRESS, ""
        changes = {
            "allocated": allocated,
            "available": allocated,
            "status": status,
            "status_reason": reason[:512],
        }
        if any(getattr(config, name) != value for name, value in changes.items()):
            # Only the reconciler's columns: a concurrent Put keeps its requested count.
            ProvisionedConcurrencyConfig.objects.filter(
                pk=config.pk, requested=config.requested
            ).update(**changes)


class Reconciler:
    def __init__(self, interval: float) -> None:
        self.interval = max(0.2, interval)
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name="provisioned-reconciler", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                close_old_connections()
                reconcile_once()
            except Exception:
                logger.exception("reconciling provisioned concurrency failed")
            finally:
                connection.close()


_reconciler: Reconciler | None = None
_reconciler_lock = threading.Lock()


def ensure_reconciler() -> None:
    """Start this process's reconciler once (worker start, or the embedded mode)."""
    global _reconciler
    with _reconciler_lock:
        if _reconciler is None:
            _reconciler = Reconciler(settings.STRATUS_PROVISIONED_RECONCILE_SECONDS)
            _reconciler.start()


def ensure_embedded_reconciler() -> None:
    """In the embedded mode the web process runs the invocations, so it keeps the
    provisioned environments too."""
    if settings.EMBEDDED_WORKER:
        ensure_reconciler()


@worker_ready.connect
def _start_with_worker(**_: object) -> None:
    ensure_reconciler()


@worker_shutdown.connect
def _stop_with_worker(**_: object) -> None:
    with _reconciler_lock:
        if _reconciler is not None:
            _reconciler.stop()
