"""The load: clients invoking through the Lambda API with SigV4-signed requests on
keep-alive connections, one thread each, and the Celery floor at the same concurrency."""

from __future__ import annotations

import http.client
import io
import random
import threading
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotoCredentials

from bench.api_invoke import REGION, api_client
from bench.scenario import HELLO, PAYLOAD

SYNC = "RequestResponse"
EVENT = "Event"
_BODY = PAYLOAD.encode()
_THROTTLED = b"TooManyRequestsException"


@dataclass(frozen=True)
class Credentials:
    access_key_id: str
    secret_access_key: str


@dataclass(frozen=True)
class Target:
    port: int
    function_name: str

    @property
    def invoke_path(self) -> str:
        return f"/2015-03-31/functions/{self.function_name}/invocations"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass(frozen=True)
class Sample:
    kind: str
    status: int
    ms: float
    request_id: str
    throttled: bool
    error: str = ""


@dataclass
class PhaseOutcome:
    duration: float
    samples: list[Sample] = field(default_factory=list)

    def of_kind(self, kind: str) -> list[Sample]:
        return [s for s in self.samples if s.kind == kind]

    def accepted_ids(self) -> set[str]:
        """Request ids the API accepted: answered (200) or queued (202)."""
        return {s.request_id for s in self.samples if s.status in (200, 202) and s.request_id}


class Signer:
    """botocore's own SigV4 signer, as a boto3 client signs its requests."""

    def __init__(self, target: Target, credentials: Credentials) -> None:
        self._url = target.base_url + target.invoke_path
        self._auth = SigV4Auth(
            BotoCredentials(credentials.access_key_id, credentials.secret_access_key),
            "lambda",
            REGION,
        )

    def headers(self, invocation_type: str) -> dict[str, str]:
        request = AWSRequest(
            method="POST",
            url=self._url,
            data=_BODY,
            headers={"X-Amz-Invocation-Type": invocation_type, "Content-Type": "application/json"},
        )
        self._auth.add_auth(request)
        return dict(request.headers.items())


def signing_cost_us(target: Target, credentials: Credentials, n: int = 2000) -> float:
    signer = Signer(target, credentials)
    start = time.perf_counter()
    for _ in range(n):
        signer.headers(SYNC)
    return (time.perf_counter() - start) / n * 1e6


def create_function(
    target: Target, credentials: Credentials, *, account_id: str, memory_mb: int
) -> None:
    """The function under load, created through the API, and invoked once (warm)."""
    client = api_client(target.port, credentials.access_key_id, credentials.secret_access_key)
    package = io.BytesIO()
    with zipfile.ZipFile(package, "w") as archive:
        archive.writestr("lambda_function.py", HELLO)
    client.create_function(
        FunctionName=target.function_name,
        Runtime="python3.11",
        Handler="lambda_function.lambda_handler",
        Role=f"arn:aws:iam::{account_id}:role/bench-load",
        Code={"ZipFile": package.getvalue()},
        MemorySize=memory_mb,
    )
    response = client.invoke(FunctionName=target.function_name, Payload=PAYLOAD)
    if response["StatusCode"] != 200 or "FunctionError" in response:
        raise RuntimeError(f"the first invocation failed: {response['Payload'].read()!r}")


class _Client:
    def __init__(self, target: Target, credentials: Credentials, seed: int) -> None:
        self._target = target
        self._signer = Signer(target, credentials)
        self._random = random.Random(seed)
        self._connection: http.client.HTTPConnection | None = None

    def invoke(self, event_share: float) -> Sample:
        kind = EVENT if self._random.random() < event_share else SYNC
        headers = self._signer.headers(kind)
        start = time.perf_counter()
        try:
            if self._connection is None:
                self._connection = http.client.HTTPConnection("127.0.0.1", self._target.port)
            self._connection.request("POST", self._target.invoke_path, _BODY, headers)
            response = self._connection.getresponse()
            body = response.read()
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            return Sample(kind, 0, (time.perf_counter() - start) * 1000, "", False, repr(exc))
        elapsed = (time.perf_counter() - start) * 1000
        request_id = response.getheader("x-amzn-RequestId") or ""
        function_error = response.getheader("X-Amz-Function-Error")
        throttled = response.status == 429 or (bool(function_error) and _THROTTLED in body)
        error = ""
        if not throttled and (response.status not in (200, 202) or function_error):
            error = f"HTTP {response.status}: {body[:200]!r}"
        return Sample(kind, response.status, elapsed, request_id, throttled, error)

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


def _run_threads(count: int, body: Callable[[int], None]) -> None:
    threads = [threading.Thread(target=body, args=(i,), daemon=True) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def run_phase(
    target: Target, credentials: Credentials, clients: int, duration: float, event_share: float
) -> PhaseOutcome:
    """`clients` clients invoking back to back for `duration` seconds."""
    results: list[list[Sample]] = [[] for _ in range(clients)]
    start = time.monotonic()
    deadline = start + duration

    def client_loop(index: int) -> None:
        client = _Client(target, credentials, seed=index)
        try:
            while time.monotonic() < deadline:
                results[index].append(client.invoke(event_share))
        finally:
            client.close()

    _run_threads(clients, client_loop)
    outcome = PhaseOutcome(duration=time.monotonic() - start)
    for samples in results:
        outcome.samples.extend(samples)
    return outcome


def run_floor(clients: int, duration: float) -> PhaseOutcome:
    """`clients` threads each doing a bare Celery no-op round trip, back to back."""
    from console.celery import app as celery_app

    results: list[list[Sample]] = [[] for _ in range(clients)]
    start = time.monotonic()
    deadline = start + duration

    def client_loop(index: int) -> None:
        while time.monotonic() < deadline:
            began = time.perf_counter()
            error = ""
            try:
                result = celery_app.send_task("stratus.ping")
                result.get(timeout=10)
                # As a synchronous invoke does with its result.
                result.forget()
            except Exception as exc:  # noqa: BLE001 - counted as an error of the floor
                error = repr(exc)
            elapsed = (time.perf_counter() - began) * 1000
            results[index].append(Sample(SYNC, 200 if not error else 0, elapsed, "", False, error))

    _run_threads(clients, client_loop)
    outcome = PhaseOutcome(duration=time.monotonic() - start)
    for samples in results:
        outcome.samples.extend(samples)
    return outcome
