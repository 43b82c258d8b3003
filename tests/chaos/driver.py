"""The web side of the chaos tests: a Django process on the private stack that creates
functions and accepts invocations through the service layer, as the console and the API do.

It reads one JSON command a line on stdin and answers each with one JSON line on stdout
({"result": ...} or {"error": ...}). Synchronous invocations and load run on threads of
their own: `invoke` and `load` answer at once with a handle, `wait` answers with what the
handle's thread ended with.
"""

from __future__ import annotations

import functools
import json
import sys
import textwrap
import threading
import time
import traceback
import uuid
from collections.abc import Callable

import django

django.setup()

from django.contrib.auth.models import User  # noqa: E402
from django.db import connection  # noqa: E402

from functions.models import Function  # noqa: E402
from functions.services import function_create  # noqa: E402
from invocations.errors import InvocationWaitTimeout  # noqa: E402
from invocations.models import Invocation, InvocationType  # noqa: E402
from invocations.services import (  # noqa: E402
    _publish,
    invocation_submit,
    invocation_wait,
    job_from_database,
)

# Records each run in the folder the event names (one file per request id, a line per run),
# sleeps `first_sleep` seconds on its first run only and `sleep` seconds on every run.
# In a container, which sees no folder of the host, `hold_until` (a Unix time) stands in: each
# run adds a line to a file named after the request in its environment's /tmp (a scratch
# volume the host can look into), and runs until then.
HANDLER = """
    import os
    import time

    def lambda_handler(event, context):
        hold_until = event.get("hold_until")
        if hold_until:
            with open(os.path.join("/tmp", "running-" + context.aws_request_id), "a") as runs:
                runs.write("run\\n")
            time.sleep(max(0.0, hold_until - time.time()))
        runs_dir = event.get("runs_dir")
        first = True
        if runs_dir:
            path = os.path.join(runs_dir, context.aws_request_id)
            first = not os.path.exists(path)
            with open(path, "a") as runs:
                runs.write("run\\n")
        if first:
            time.sleep(event.get("first_sleep", 0))
        time.sleep(event.get("sleep", 0))
        return {"ok": True}
"""

LOAD_INTERVAL_SECONDS = 0.05


class Background:
    """A command running on its own thread; `wait` gives what it returned."""

    def __init__(self, work: Callable[[], object]) -> None:
        self.result: object = None
        self._thread = threading.Thread(target=self._run, args=(work,), daemon=True)
        self._thread.start()

    def _run(self, work: Callable[[], object]) -> None:
        try:
            self.result = work()
        except Exception as exc:
            self.result = {"error": repr(exc)}
        finally:
            connection.close()

    def wait(self, timeout: float) -> object:
        self._thread.join(timeout)
        if self._thread.is_alive():
            return {"timeout": f"still running after {timeout} s"}
        return self.result


_background: dict[str, Background] = {}


def setup(name: str) -> str:
    owner, _ = User.objects.get_or_create(username="chaos")
    if not Function.objects.filter(name=name).exists():
        function_create(
            owner=owner,
            name=name,
            role=None,
            files={"lambda_function.py": textwrap.dedent(HANDLER)},
            timeout=120,
        )
    return name


def submit(name: str, count: int, event: str) -> list[str]:
    """Accept `count` asynchronous invocations."""
    function = Function.objects.get(name=name)
    return [
        str(
            invocation_submit(
                function=function, payload=event, invocation_type=InvocationType.EVENT
            ).request_id
        )
        for _ in range(count)
    ]


def invoke(name: str, event: str) -> str:
    """Accept a synchronous invocation and wait for it on a thread: `wait` with the request
    id gives the outcome the caller saw."""
    invocation = invocation_submit(function=Function.objects.get(name=name), payload=event)
    request_id = str(invocation.request_id)
    _background[request_id] = Background(functools.partial(_answer, invocation))
    return request_id


def _answer(invocation: Invocation) -> dict[str, object]:
    """What a synchronous caller waiting for the invocation is told."""
    started = time.monotonic()
    try:
        finished = invocation_wait(invocation=invocation)
    except InvocationWaitTimeout as exc:
        return {"timeout": str(exc)}
    return {
        "status": finished.status,
        "error_type": finished.error_type,
        "error_message": finished.error_message,
        "waited": round(time.monotonic() - started, 2),
    }


def load(name: str, seconds: float) -> str:
    """Accept asynchronous invocations one after another for `seconds`, on a thread; `wait`
    gives the ones accepted and how many were refused (the database was down)."""

    def run() -> dict[str, object]:
        accepted: list[str] = []
        refused = 0
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                invocation = invocation_submit(
                    function=Function.objects.get(name=name),
                    payload="{}",
                    invocation_type=InvocationType.EVENT,
                )
            except Exception:
                refused += 1
                connection.close()
            else:
                accepted.append(str(invocation.request_id))
            time.sleep(LOAD_INTERVAL_SECONDS)
        return {"accepted": accepted, "refused": refused}

    handle = f"load-{uuid.uuid4()}"
    _background[handle] = Background(run)
    return handle


def mixed_load(name: str, seconds: float, event: str, answers_within: float) -> str:
    """Accept asynchronous and synchronous invocations in turn for `seconds`, on a thread;
    each synchronous caller waits for its answer on a thread of its own, up to
    `answers_within` seconds after the load ends. `wait` gives the events accepted, what
    each synchronous caller was told (an exception it got: {"error": ...}), and how many
    submissions were refused (the database was down)."""

    def run() -> dict[str, object]:
        events: list[str] = []
        callers: dict[str, Background] = {}
        refused = 0
        synchronous = False
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                function = Function.objects.get(name=name)
                if synchronous:
                    invocation = invocation_submit(function=function, payload=event)
                    callers[str(invocation.request_id)] = Background(
                        functools.partial(_answer, invocation)
                    )
                else:
                    invocation = invocation_submit(
                        function=function, payload=event, invocation_type=InvocationType.EVENT
                    )
                    events.append(str(invocation.request_id))
            except Exception:
                refused += 1
                connection.close()
            synchronous = not synchronous
            time.sleep(LOAD_INTERVAL_SECONDS)
        answers_by = time.monotonic() + answers_within
        answers = {
            request_id: caller.wait(max(0.0, answers_by - time.monotonic()))
            for request_id, caller in callers.items()
        }
        return {"events": events, "answers": answers, "refused": refused}

    handle = f"mixed-load-{uuid.uuid4()}"
    _background[handle] = Background(run)
    return handle


def wait(handle: str, timeout: float) -> object:
    return _background.pop(handle).wait(timeout)


def publish(request_id: str) -> str:
    """Publish an accepted invocation's task again, as the first time: a duplicate delivery."""
    invocation = Invocation.objects.get(pk=request_id)
    job = job_from_database(request_id)
    caller_waits = invocation.invocation_type == InvocationType.REQUEST_RESPONSE
    _publish(uuid.UUID(request_id), job, caller_waits=caller_waits)
    return request_id


COMMANDS: dict[str, Callable[..., object]] = {
    "setup": setup,
    "submit": submit,
    "invoke": invoke,
    "load": load,
    "mixed_load": mixed_load,
    "wait": wait,
    "publish": publish,
}


def serve() -> None:
    print(json.dumps({"result": "ready"}), flush=True)
    for line in sys.stdin:
        command = json.loads(line)
        try:
            answer = {"result": COMMANDS[command["command"]](*command["args"])}
        except Exception:
            answer = {"error": traceback.format_exc()}
            connection.close()
        print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    serve()
