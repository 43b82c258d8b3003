"""The Lambda Runtime API, served by the worker to one execution environment.

Each environment gets its own listening socket, so a request's socket says which
environment it came from. The runtime inside (awslambdaric, or any custom `bootstrap`)
long-polls /next, and posts /response or /error; the worker's invoking thread waits on
`ready_fileno()` with select().
"""

from __future__ import annotations

import contextlib
import errno
import json
import random
import selectors
import socket
import threading
import time
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

API_PREFIX = "/2018-06-01/runtime"
#: Stratus's own endpoint, not Lambda's: a pre-warmed generic environment (stem cell)
#: long-polls it for the function it is to become.
ASSIGNMENT_PATH = "/2018-06-01/stratus/assignment"
MAX_RESPONSE_BYTES = 6 * 1024 * 1024
# How long a connection waits for the worker to say which address may use this endpoint.
ADMISSION_TIMEOUT_SECONDS = 10.0
_BIND_ATTEMPTS = 64
_READ_CHUNK = 256 * 1024
_MAX_HEADER_LINE = 65536
_MAX_HEADERS = 100


@dataclass(frozen=True)
class RuntimeEvent:
    request_id: str
    payload: bytes
    timeout_ms: int
    invoked_function_arn: str
    trace_id: str
    client_context: str = ""


@dataclass
class RuntimeOutcome:
    """What the runtime posted for one request (or during init)."""

    kind: str  # "response" | "error" | "init_error" | "too_large"
    body: bytes
    error_type: str = ""
    posted_at: float = 0.0

    def error_document(self) -> dict[str, Any]:
        try:
            document = json.loads(self.body or b"{}")
        except ValueError:
            document = {"errorMessage": self.body.decode("utf-8", "replace")}
        if not isinstance(document, dict):
            document = {"errorMessage": str(document)}
        if self.error_type and not document.get("errorType"):
            document["errorType"] = self.error_type
        return document


class RuntimeApiServer:
    """The Runtime API endpoint of one execution environment."""

    def __init__(self, host: str) -> None:
        self._lock = threading.Lock()
        self._event_ready = threading.Condition(self._lock)
        self._pending: RuntimeEvent | None = None
        self._current: RuntimeEvent | None = None
        self._outcome: RuntimeOutcome | None = None
        self._closed = False
        # A new environment's first event waits until the worker has read the runtime's
        # init output, so that output and the invocation's own never interleave.
        self._gate_open = False
        self._admission_decided = threading.Event()
        self._admitted_address: str | None = None
        self.first_poll_at: float | None = None
        self.delivered_at: float | None = None
        self._assignment: bytes | None = None
        self.assignment_polled_at: float | None = None
        self._notify_reader, self._notify_writer = socket.socketpair()
        self._notify_reader.setblocking(False)
        self._server = _bind_in_range(host, port_range(), self)
        self._stop_reader, self._stop_writer = socket.socketpair()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def ready_fileno(self) -> int:
        """Readable once the runtime has posted an outcome (or polled for the first time)."""
        return self._notify_reader.fileno()

    def clear_ready(self) -> None:
        with contextlib.suppress(BlockingIOError):
            while self._notify_reader.recv(4096):
                pass

    def submit(self, event: RuntimeEvent) -> None:
        with self._lock:
            self._pending = event
            self._current = None
            self._outcome = None
            self.delivered_at = None
            self._event_ready.notify_all()

    def admit_only(self, address: str | None) -> None:
        """Serve only requests from `address` (None: from anyone who can connect).

        Other environments' runtimes can reach this port too; without this, one function
        could take another's events.
        """
        self._admitted_address = address
        self._admission_decided.set()

    def admits(self, address: str) -> bool:
        if not self._admission_decided.wait(ADMISSION_TIMEOUT_SECONDS):
            return False
        return self._admitted_address is None or address == self._admitted_address

    def assign(self, document: dict[str, Any]) -> None:
        """Answer the stem program's assignment poll (now, or when it comes)."""
        with self._lock:
            self._assignment = json.dumps(document).encode()
            self._event_ready.notify_all()

    @property
    def gate_open(self) -> bool:
        return self._gate_open

    def open_gate(self) -> None:
        with self._lock:
            self._gate_open = True
            self._event_ready.notify_all()

    def take_outcome(self) -> RuntimeOutcome | None:
        with self._lock:
            outcome, self._outcome = self._outcome, None
            return outcome

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._event_ready.notify_all()
        self._stop_writer.send(b"!")
        self._thread.join()
        self._server.server_close()
        for sock in (
            self._notify_reader,
            self._notify_writer,
            self._stop_reader,
            self._stop_writer,
        ):
            sock.close()

    def _serve(self) -> None:
        # serve_forever() notices a shutdown only at its next poll; this loop wakes at once.
        with selectors.DefaultSelector() as selector:
            selector.register(self._server, selectors.EVENT_READ)
            selector.register(self._stop_reader, selectors.EVENT_READ)
            while True:
                for key, _ in selector.select():
                    if key.fileobj is self._stop_reader:
                        return
                    # Readable: accept() will not block.
                    self._server.handle_request()

    # --- called from the HTTP handler threads ------------------------------------------

    def _wait_for_event(self) -> RuntimeEvent | None:
        with self._lock:
            if self.first_poll_at is None:
                self.first_poll_at = time.perf_counter()
                self._signal()
            while (self._pending is None or not self._gate_open) and not self._closed:
                self._event_ready.wait()
            if self._closed:
                return None
            event, self._pending = self._pending, None
            assert event is not None
            self._current = event
            self.delivered_at = time.perf_counter()
            return event

    def _wait_for_assignment(self) -> bytes | None:
        with self._lock:
            if self.assignment_polled_at is None:
                self.assignment_polled_at = time.perf_counter()
            while self._assignment is None and not self._closed:
                self._event_ready.wait()
            return None if self._closed else self._assignment

    def _post(self, request_id: str | None, outcome: RuntimeOutcome) -> bool:
        with self._lock:
            if request_id is not None and (
                self._current is None or self._current.request_id != request_id
            ):
                return False
            outcome.posted_at = time.perf_counter()
            self._outcome = outcome
            self._current = None
            self._signal()
            return True

    def _signal(self) -> None:
        with contextlib.suppress(OSError):
            self._notify_writer.send(b"!")


def port_range() -> tuple[int, int]:
    """STRATUS_RUNTIME_API_PORTS, e.g. "20000-29999"."""
    text = str(settings.STRATUS_RUNTIME_API_PORTS)
    low, _, high = text.partition("-")
    try:
        first, last = int(low), int(high or low)
    except ValueError as exc:
        raise ImproperlyConfigured(
            f"STRATUS_RUNTIME_API_PORTS must be like 20000-29999: {text!r}"
        ) from exc
    if not 1024 <= first <= last <= 65535:
        raise ImproperlyConfigured(f"STRATUS_RUNTIME_API_PORTS is out of range: {text!r}")
    return first, last


def _bind_in_range(host: str, ports: tuple[int, int], api: RuntimeApiServer) -> _Server:
    first, last = ports
    ports_in_range = range(first, last + 1)
    for port in random.sample(ports_in_range, min(_BIND_ATTEMPTS, len(ports_in_range))):
        try:
            return _Server((host, port), _Handler, api=api)
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise
    raise OSError(errno.EADDRINUSE, f"no free Runtime API port in {first}-{last} on {host}")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], handler: type[_Handler], *, api: RuntimeApiServer):
        self.api = api
        super().__init__(address, handler)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server
    # Set by handle_one_request (untyped in the stubs).
    raw_requestline: bytes
    # The request's header fields, by lower-case name.
    fields: dict[str, str]

    def setup(self) -> None:
        super().setup()
        # Without this, every response pays the 40 ms delayed-ACK stall.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def handle(self) -> None:
        if self.server.api.admits(self.client_address[0]):
            super().handle()

    def parse_request(self) -> bool:
        # http.server's own parser builds an email.message.Message per request, which costs
        # more CPU than the rest of an invocation's Runtime API traffic; runtimes send a
        # handful of plain headers.
        self.command = ""
        self.request_version = "HTTP/0.9"
        self.close_connection = True
        self.requestline = str(self.raw_requestline, "iso-8859-1").rstrip("\r\n")
        words = self.requestline.split()
        if len(words) != 3 or words[2] not in ("HTTP/1.0", "HTTP/1.1"):
            self.send_error(HTTPStatus.BAD_REQUEST, f"Bad request line {self.requestline!r}")
            return False
        self.command, self.path, self.request_version = words
        self.fields = {}
        while True:
            line = self.rfile.readline(_MAX_HEADER_LINE + 1)
            if line in (b"\r\n", b"\n", b""):
                break
            name, colon, value = line.decode("iso-8859-1").partition(":")
            if len(line) > _MAX_HEADER_LINE or len(self.fields) >= _MAX_HEADERS or not colon:
                self.send_error(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE)
                return False
            self.fields[name.strip().lower()] = value.strip()
        connection = self.fields.get("connection", "").lower()
        keep_alive = self.request_version == "HTTP/1.1" or connection == "keep-alive"
        self.close_connection = connection == "close" or not keep_alive
        if self.fields.get("expect", "").lower() == "100-continue":
            return self.handle_expect_100()
        return True

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        if self.path == ASSIGNMENT_PATH:
            assignment = self.server.api._wait_for_assignment()
            if assignment is None:
                self._reply(500, {"errorMessage": "environment shutting down"})
            else:
                self._send(200, assignment)
            return
        if self.path != f"{API_PREFIX}/invocation/next":
            self._reply(404, {"errorMessage": "not found", "errorType": "InvalidRequest"})
            return
        event = self.server.api._wait_for_event()
        if event is None:
            self._reply(500, {"errorMessage": "environment shutting down"})
            return
        headers = {
            "Lambda-Runtime-Aws-Request-Id": event.request_id,
            "Lambda-Runtime-Deadline-Ms": str(int(time.time() * 1000) + event.timeout_ms),
            "Lambda-Runtime-Invoked-Function-Arn": event.invoked_function_arn,
            "Lambda-Runtime-Trace-Id": event.trace_id,
        }
        if event.client_context:
            headers["Lambda-Runtime-Client-Context"] = event.client_context
        self._send(200, event.payload, headers)

    def do_POST(self) -> None:
        parts = self.path[len(API_PREFIX) :].strip("/").split("/")
        error_type = self.fields.get("lambda-runtime-function-error-type", "")
        if parts == ["init", "error"]:
            body = self._read_body(MAX_RESPONSE_BYTES)
            self.server.api._post(None, RuntimeOutcome("init_error", body or b"", error_type))
            self._reply(202, {"status": "OK"})
            return
        if len(parts) != 3 or parts[0] != "invocation" or parts[2] not in {"response", "error"}:
            self._reply(404, {"errorMessage": "not found", "errorType": "InvalidRequest"})
            return
        request_id, kind = parts[1], parts[2]
        body = self._read_body(MAX_RESPONSE_BYTES)
        if body is None:
            outcome = RuntimeOutcome("too_large", b"")
            self.server.api._post(request_id, outcome)
            self._reply(413, {"errorMessage": "response too large", "errorType": "RequestTooLarge"})
            return
        if not self.server.api._post(request_id, RuntimeOutcome(kind, body, error_type)):
            self._reply(
                400, {"errorMessage": "invalid request id", "errorType": "InvalidStateTransition"}
            )
            return
        self._reply(202, {"status": "OK"})

    def _read_body(self, limit: int) -> bytes | None:
        """The request body, or None (after draining it) when it is over `limit` bytes."""
        length = int(self.fields.get("content-length") or 0)
        if length <= limit:
            return self.rfile.read(length)
        remaining = length
        while remaining > 0:
            chunk = self.rfile.read(min(_READ_CHUNK, remaining))
            if not chunk:
                break
            remaining -= len(chunk)
        return None

    def _reply(self, status: int, document: dict[str, str]) -> None:
        self._send(status, json.dumps(document).encode())

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        # One write per response: header and body in the same segment.
        lines = [f"HTTP/1.1 {status} {self.responses.get(status, ('',))[0]}"]
        lines.append("Content-Type: application/json")
        lines.append(f"Content-Length: {len(body)}")
        for name, value in (headers or {}).items():
            lines.append(f"{name}: {value}")
        self.wfile.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        self.wfile.flush()
