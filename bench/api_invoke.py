"""Warm invoke latency through the Lambda API (boto3, HTTP, SigV4) beside the same
invocation made through the service layer, in the same run.

    .venv/bin/python -m bench.api_invoke [--invocations N]

Uses DATABASE_URL / CELERY_BROKER_URL (default: the local Postgres and Redis), starts a
real Celery worker and a gunicorn web process on loopback as `python -m bench` does, and
takes the kinds of call in turn so all see the same warm execution environment and the
same machine load. The difference of the medians is what the HTTP and SigV4 layer adds
(target: under 2 ms); a DryRun invoke measures that layer with nothing to run.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/stratus_bench")
os.environ.setdefault("CELERY_BROKER_URL", "redis://127.0.0.1:6379/14")

REGION = "us-east-1"


def api_client(port: int, access_key_id: str, secret_access_key: str) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(
        "lambda",
        endpoint_url=f"http://127.0.0.1:{port}",
        region_name=REGION,
        aws_access_key_id=access_key_id,
        aws_secret_access_key=secret_access_key,
        config=Config(retries={"max_attempts": 1, "mode": "standard"}),
    )


def _api_call(client: Any, function_name: str, payload: str, invocation_type: str) -> float:
    start = time.perf_counter()
    response = client.invoke(
        FunctionName=function_name, Payload=payload, InvocationType=invocation_type
    )
    response["Payload"].read()
    elapsed = (time.perf_counter() - start) * 1000
    expected = 204 if invocation_type == "DryRun" else 200
    if response["StatusCode"] != expected or "FunctionError" in response:
        raise RuntimeError(f"API invoke failed: {response}")
    return elapsed


def _service_call(function: Any, payload: str) -> float:
    from invocations.services import invocation_submit, invocation_wait

    start = time.perf_counter()
    invocation = invocation_wait(invocation=invocation_submit(function=function, payload=payload))
    elapsed = (time.perf_counter() - start) * 1000
    if invocation.status != "succeeded":
        raise RuntimeError(f"service invocation failed: {invocation.response}")
    return elapsed


def measure(
    port: int, function: Any, access_key_id: str, secret_access_key: str, n: int
) -> dict[str, list[float]]:
    """Samples in milliseconds, n of each kind after a warm-up, the kinds taken in turn:
    "service" (submit + wait in Python), "api" (boto3 invoke) and "dry_run" (boto3 invoke
    with InvocationType=DryRun: the HTTP and SigV4 layer with nothing to run)."""
    from bench.scenario import PAYLOAD, WARM_UP

    client = api_client(port, access_key_id, secret_access_key)
    samples: dict[str, list[float]] = {"service": [], "api": [], "dry_run": []}
    for i in range(n + WARM_UP):
        measured = {
            "service": _service_call(function, PAYLOAD),
            "api": _api_call(client, function.name, PAYLOAD, "RequestResponse"),
            "dry_run": _api_call(client, function.name, PAYLOAD, "DryRun"),
        }
        if i >= WARM_UP:
            for kind, elapsed in measured.items():
                samples[kind].append(elapsed)
    return samples


def cpu_per_dry_run_ms(
    web_pid: int, client: Any, function_name: str, n: int
) -> tuple[float, float]:
    """CPU the web process and this client (boto3) spend on one DryRun invoke, the HTTP and
    SigV4 layer with nothing to run, from n calls in a row: unlike latency, barely moved
    by other load on the machine."""
    from bench.load_checks import process_cpu_seconds, process_tree
    from bench.scenario import PAYLOAD

    def cpu() -> tuple[float, float]:
        web = sum(process_cpu_seconds(pid) for pid in process_tree(web_pid))
        return web, time.process_time()

    web_before, client_before = cpu()
    for _ in range(n):
        _api_call(client, function_name, PAYLOAD, "DryRun")
    web_after, client_after = cpu()
    return (web_after - web_before) * 1000 / n, (client_after - client_before) * 1000 / n


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.api_invoke")
    parser.add_argument("--invocations", type=int, default=500)
    args = parser.parse_args(argv)

    import django

    django.setup()
    from api.models import AccessKey
    from api.services import access_key_create
    from bench import scenario, stack
    from bench.stats import percentile, summary

    scenario.prepare_database()
    function, user, _ = scenario.bench_function()
    AccessKey.objects.filter(user=user).delete()
    key = access_key_create(user=user)
    port = stack.free_port()
    with (
        stack.running(stack.worker_command(), "api-worker.log"),
        stack.running(stack.web_command(port), "api-web.log") as web,
    ):
        scenario.wait_for_worker()
        stack.wait_for_http(f"http://127.0.0.1:{port}/accounts/login/")
        samples = measure(
            port, function, key.access_key.access_key_id, key.secret_access_key, args.invocations
        )
        client = api_client(port, key.access_key.access_key_id, key.secret_access_key)
        web_cpu_ms, client_cpu_ms = cpu_per_dry_run_ms(
            web.pid, client, function.name, args.invocations
        )

    n = args.invocations
    print(f"Stratus warm invoke through the Lambda API ({n} each, in turn, after warm-up)")
    print(summary("service: submit + wait (no HTTP)", samples["service"]))
    print(summary("api: boto3 invoke (HTTP + SigV4)", samples["api"]))
    print(summary("api: boto3 invoke, DryRun (layer alone)", samples["dry_run"]))
    added = percentile(samples["api"], 0.5) - percentile(samples["service"], 0.5)
    print(f"HTTP + SigV4 layer adds {added:.2f} ms at p50 (target < 2 ms)")
    print(
        f"CPU per DryRun invoke: web process {web_cpu_ms:.2f} ms, "
        f"client (boto3) {client_cpu_ms:.2f} ms"
    )
    return 0


if __name__ == "__main__":
    started = time.monotonic()
    code = main()
    print(f"benchmark took {time.monotonic() - started:.1f} s", file=sys.stderr)
    sys.exit(code)
