"""The stem program of the Python runtime: a generic environment started ahead of demand.

It starts the interpreter and imports the runtime client (awslambdaric) with a neutral
environment, then long-polls its Runtime API endpoint for an assignment: the function's
handler and environment. The worker puts the function's code into the task root before it
answers. The program then turns into what `python -m awslambdaric HANDLER` would have been
from the start: the same os.environ (inherited by child processes), working directory,
sys.path and sys.argv, and awslambdaric's own entry point run as __main__, whose first
poll of /next ends the init phase.

Only modules that read no function-specific environment variables at import time are
imported before the assignment. awslambdaric.bootstrap reads AWS_LAMBDA_LOG_FORMAT and
AWS_LAMBDA_LOG_LEVEL when imported, so it (and awslambdaric.__main__, which imports it) is
first imported after the assignment; the JSON encoder the runtime client builds at import
reads AWS_EXECUTION_ENV, so it is built again.

What stays different: the process's initial environment, as /proc/self/environ shows it,
is the neutral one it was started with (a process's initial environment is fixed when it
is executed), and /proc/self/cmdline names this program.
"""

from __future__ import annotations

import http.client
import importlib
import json
import os
import runpy
import sys
import time
from typing import Any

ASSIGNMENT_PATH = "/2018-06-01/stratus/assignment"
RETRY_SECONDS = 0.05

# Safe before the assignment: none reads the function's environment when imported.
PRELOADED = (
    "awslambdaric",
    "awslambdaric.lambda_config",
    "awslambdaric.lambda_context",
    "awslambdaric.lambda_runtime_client",
    "awslambdaric.lambda_runtime_exception",
    "awslambdaric.lambda_runtime_log_utils",
    "awslambdaric.lambda_runtime_marshaller",
    "awslambdaric.lambda_literals",
    # What the runtime client imports lazily on its first request, and what loading a
    # handler module takes.
    "email.parser",
    "importlib.util",
    "decimal",
    "logging",
    "traceback",
)


def preload() -> None:
    for name in PRELOADED:
        importlib.import_module(name)


def wait_for_assignment(address: str) -> dict[str, Any]:
    """Long-poll the endpoint until the worker assigns a function to this environment."""
    while True:
        connection = http.client.HTTPConnection(address)
        try:
            connection.request("GET", ASSIGNMENT_PATH)
            response = connection.getresponse()
            body = response.read()
            if response.status == 200:
                assignment: dict[str, Any] = json.loads(body)
                return assignment
        except (OSError, http.client.HTTPException, ValueError):
            pass
        finally:
            connection.close()
        time.sleep(RETRY_SECONDS)


def specialise(assignment: dict[str, Any], runtime_path: list[str]) -> str:
    """Make this process the function's runtime process; return the handler."""
    environment: dict[str, str] = assignment["environment"]
    for name in assignment.get("replaces", ()):
        os.environ.pop(name, None)
    own_path = environment.get("PYTHONPATH", "")
    os.environ.update(environment)
    if runtime_path:
        # As the runtime's bootstrap script sets it before it starts Python.
        os.environ["PYTHONPATH"] = os.pathsep.join([*runtime_path, *filter(None, [own_path])])
    task_root = environment.get("LAMBDA_TASK_ROOT") or os.getcwd()
    os.chdir(task_root)
    if "PWD" in os.environ:
        os.environ["PWD"] = task_root
    time.tzset()
    # `python -m awslambdaric` puts the working directory first, then PYTHONPATH's entries.
    sys.path[0] = task_root
    position = 1 + len(runtime_path)
    for offset, entry in enumerate(e for e in own_path.split(os.pathsep) if e):
        sys.path.insert(position + offset, entry)
    importlib.invalidate_caches()
    client = importlib.import_module("awslambdaric.lambda_runtime_client")
    marshaller = importlib.import_module("awslambdaric.lambda_runtime_marshaller")
    client.BaseLambdaRuntimeClient.marshaller = marshaller.LambdaMarshaller()
    handler: str = assignment["handler"]
    return handler


def main() -> None:
    # `--runtime-path DIR`: what the runtime's bootstrap puts first in PYTHONPATH.
    arguments = sys.argv[1:]
    runtime_path = arguments[1:2] if arguments[:1] == ["--runtime-path"] else []
    preload()
    assignment = wait_for_assignment(os.environ["AWS_LAMBDA_RUNTIME_API"])
    handler = specialise(assignment, runtime_path)
    sys.argv = [sys.argv[0], handler]
    runpy.run_module("awslambdaric", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
