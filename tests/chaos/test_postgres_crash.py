"""Postgres crashes (an immediate stop: no shutdown checkpoint, and commits whose WAL was not
yet written are lost) under a load of synchronous and asynchronous invocations.

The promises are the README's (When something fails): each accepted invocation ends in
exactly one terminal state, and none runs twice (Stratus does better here than Lambda's
at-least-once events). With the workers' commits waiting for the WAL
(STRATUS_WORKER_RELAXED_COMMITS=false), nothing a worker or the web side was told is
committed can be lost, so they hold: every accepted event ends once, having run once; every
synchronous caller's answer is what the record says; a synchronous record that the crash
took back (its commit does not wait for the WAL, by design) never ran, and its caller was
told of an error.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tests.chaos.stack import Driver, PostgresServer, Record, Stack

LOAD_SECONDS = 7
CRASH_AFTER_SECONDS = 2.5
DOWN_SECONDS = 1
# Each run sleeps this long, so that at the crash some claims, runs and finishes are under
# way on every worker thread.
RUN_SECONDS = 0.2
# How long every record has, after the load, to end.
SETTLE_SECONDS = 30
TERMINAL = ("succeeded", "failed")


@dataclass
class CrashOutcome:
    """What the load was told and what the records and the runs say after the crash."""

    events: list[str]
    answers: dict[str, dict[str, Any]]
    refused: int
    records: dict[str, Record]
    runs: dict[str, int]
    starts: Counter[str]
    accepted_after_restart: int
    # Writes the workers had to try again: the crash hit them at work.
    worker_writes_interrupted: int

    @property
    def records_lost_with_the_crash(self) -> list[str]:
        """Synchronous invocations whose record the crash took back before they ran, whose
        callers were told of an error."""
        return [
            request_id
            for request_id, answer in self.answers.items()
            if "error" in answer and request_id not in self.records and not self.runs[request_id]
        ]

    def anomalies(self) -> dict[str, list[str]]:
        """Broken promises, by kind: each with the request ids (and what was seen)."""
        found: dict[str, list[str]] = {}

        def note(kind: str, request_id: str, detail: object = "") -> None:
            found.setdefault(kind, []).append(f"{request_id} {detail}".strip())

        for request_id in self.events:
            record = self.records.get(request_id)
            if record is None:
                note("accepted event without a record", request_id)
            elif record.status != "succeeded":
                note("event not succeeded", request_id, record)
        for request_id, answer in self.answers.items():
            record = self.records.get(request_id)
            if "status" not in answer:
                if request_id not in self.records_lost_with_the_crash:
                    note("caller got no answer", request_id, (answer, record))
            elif record is None:
                note("answered, but no record", request_id, answer)
            elif (record.status, record.error_type) != (answer["status"], answer["error_type"]):
                note("answer and record disagree", request_id, (answer, record))
        for request_id, record in self.records.items():
            if record.status not in TERMINAL:
                note("record not terminal", request_id, record)
            elif record.status == "succeeded" and self.runs[request_id] == 0:
                note("succeeded without running", request_id)
        for request_id, count in self.runs.items():
            if count > 1:
                note("ran more than once", request_id, count)
        for request_id, count in self.starts.items():
            if count > 1:
                note("run recorded more than once", request_id, count)
        return found

    def summary(self) -> str:
        return (
            f"{len(self.events)} events and {len(self.answers)} synchronous invocations "
            f"accepted, {self.refused} refused, {len(self.records_lost_with_the_crash)} "
            "synchronous records lost with the crash"
        )


def crash_under_load(
    stack: Stack, driver: Driver, postgres: PostgresServer, *, name: str, relaxed_commits: bool
) -> CrashOutcome:
    """Crash Postgres in the middle of a mixed load on two workers; restart it; let every
    record end (or SETTLE_SECONDS pass)."""
    driver("setup", name)
    event = stack.event(sleep=RUN_SECONDS)
    relaxed = "true" if relaxed_commits else "false"
    with (
        stack.scheduler(),
        stack.worker("one", concurrency=4, STRATUS_WORKER_RELAXED_COMMITS=relaxed),
        stack.worker("two", concurrency=4, STRATUS_WORKER_RELAXED_COMMITS=relaxed),
    ):
        load = driver("mixed_load", name, LOAD_SECONDS, event, SETTLE_SECONDS)
        time.sleep(CRASH_AFTER_SECONDS)
        postgres.stop(mode="immediate")
        time.sleep(DOWN_SECONDS)
        postgres.start()
        restarted_at = datetime.now(tz=UTC)
        told = driver("wait", load, LOAD_SECONDS + SETTLE_SECONDS + 10)
        records = _settle(stack, name, told["events"], timeout=SETTLE_SECONDS)
    known = {*told["events"], *told["answers"], *records}
    return CrashOutcome(
        events=told["events"],
        answers=told["answers"],
        refused=told["refused"],
        records=records,
        runs={request_id: stack.runs(request_id) for request_id in known},
        starts=stack.start_lines(name),
        accepted_after_restart=stack.accepted_since(name, restarted_at),
        worker_writes_interrupted=sum(
            (stack.workdir / f"worker-{worker}.log").read_text().count("database unreachable")
            for worker in ("one", "two")
        ),
    )


def _settle(stack: Stack, name: str, events: list[str], *, timeout: float) -> dict[str, Record]:
    """The function's records once all are terminal (and every event has one), or as they
    are when `timeout` runs out."""
    deadline = time.monotonic() + timeout
    while True:
        records = stack.records(name)
        settled = set(events) <= set(records) and all(
            record.status in TERMINAL for record in records.values()
        )
        if settled or time.monotonic() > deadline:
            return records
        time.sleep(0.2)


def test_a_postgres_crash_under_load_breaks_no_promise_with_strict_worker_commits(
    stack: Stack, driver: Driver, chaos_postgres: PostgresServer
):
    outcome = crash_under_load(
        stack, driver, chaos_postgres, name="pg-crash", relaxed_commits=False
    )

    assert outcome.anomalies() == {}
    # Accepted before and after the crash, in both kinds.
    assert len(outcome.events) > 20 and len(outcome.answers) > 20
    assert outcome.accepted_after_restart > 5, "the web side did not recover"
    assert outcome.worker_writes_interrupted > 0, "the crash came while the workers were idle"
    print(outcome.summary())
