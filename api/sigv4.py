"""Verifying AWS Signature Version 4 the way botocore's SigV4Auth signs.

Verification rebuilds the canonical request from what arrived: the method, the path as it
was sent (encoded once more, as botocore does for every service but S3), the query pairs
sorted, the signed headers with trimmed values, and the payload hash. The string to sign
and the signing key follow from the credential scope, and the signatures are compared in
constant time.

The module knows nothing of Django or the database: `parse_authorization` reads the
header, the caller looks up the secret for its access key, and `verify` checks the rest.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from urllib.parse import quote, unquote

from api.errors import (
    SIGNATURE_MISMATCH,
    IncompleteSignatureException,
    InvalidSignatureException,
    MissingAuthenticationTokenException,
)

ALGORITHM = "AWS4-HMAC-SHA256"
TERMINATOR = "aws4_request"
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
TIMESTAMP_FORMAT = "%Y%m%dT%H%M%SZ"
MAX_CLOCK_SKEW = timedelta(minutes=15)
_QUERY_SAFE = "-_.~"


@dataclass(frozen=True)
class SignedRequest:
    """What the verifier needs of an HTTP request."""

    method: str
    # The path as the client sent it (still percent-encoded), when the server keeps it.
    raw_path: str | None
    # The path as the server decoded it; re-encoded as botocore encodes path parameters
    # when the raw path is not available.
    decoded_path: str
    query_string: str
    header: Callable[[str], str | None]
    body: bytes


@dataclass(frozen=True)
class Authorization:
    header: str
    access_key_id: str
    date: str
    region: str
    service: str
    terminator: str
    signed_headers: tuple[str, ...]
    signature: str
    amz_date: str

    @property
    def scope(self) -> str:
        return f"{self.date}/{self.region}/{self.service}/{self.terminator}"


def parse_authorization(request: SignedRequest) -> Authorization:
    """The Authorization header's parts; raises when the request is unsigned or a part is
    missing."""
    header = (request.header("Authorization") or "").strip()
    if not header:
        raise MissingAuthenticationTokenException("Missing Authentication Token")
    algorithm, _, rest = header.partition(" ")
    amz_date = (request.header("X-Amz-Date") or "").strip()
    if algorithm.startswith("AWS4-") and algorithm != ALGORITHM:
        raise IncompleteSignatureException(f"Unsupported AWS 'algorithm': '{algorithm}'.")
    params: dict[str, str] = {}
    if algorithm == ALGORITHM:
        for part in rest.split(","):
            part = part.strip()
            if not part:
                continue
            name, equals, value = part.partition("=")
            if not equals:
                raise IncompleteSignatureException(
                    f"'{part}' not a valid key=value pair (missing equal-sign) in "
                    f"Authorization header: '{header}'."
                )
            params[name.strip()] = value.strip()
    problems = [
        f"Authorization header requires '{name}' parameter."
        for name in ("Credential", "Signature", "SignedHeaders")
        if not params.get(name)
    ]
    if not amz_date:
        problems.append(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."
        )
    if problems:
        raise IncompleteSignatureException(" ".join([*problems, f"Authorization={header}"]))
    credential = params["Credential"]
    parts = credential.split("/")
    if len(parts) != 5:
        raise IncompleteSignatureException(
            "Credential must have exactly 5 slash-delimited elements, e.g. "
            f"keyid/date/region/service/term, got '{credential}'"
        )
    access_key_id, date, region, service, terminator = parts
    signed_headers = tuple(params["SignedHeaders"].lower().split(";"))
    for required in ("host", "x-amz-date"):
        if required not in signed_headers:
            raise IncompleteSignatureException(
                f"'{required}' must be a 'SignedHeader' in the AWS Authorization."
            )
    return Authorization(
        header=header,
        access_key_id=access_key_id,
        date=date,
        region=region,
        service=service,
        terminator=terminator,
        signed_headers=signed_headers,
        signature=params["Signature"].lower(),
        amz_date=amz_date,
    )


def verify(
    request: SignedRequest,
    authorization: Authorization,
    *,
    secret_key: str,
    region: str,
    service: str,
    now: datetime,
) -> None:
    """Check the scope, the time and the signature; raise InvalidSignatureException."""
    _check_scope(authorization, region=region, service=service)
    _check_time(authorization, now=now)
    payload_hash = _payload_hash(request)
    key = signing_key(secret_key, authorization.date, authorization.region, service)
    candidates = {
        string_to_sign(authorization, canonical)
        for canonical in canonical_requests(request, authorization.signed_headers, payload_hash)
    }
    matched = False
    for candidate in candidates:
        expected = hmac.new(key, candidate.encode(), hashlib.sha256).hexdigest()
        # Every candidate is compared, so the time taken does not depend on which matched.
        matched |= hmac.compare_digest(expected, authorization.signature)
    if not matched:
        raise InvalidSignatureException(SIGNATURE_MISMATCH)


def _check_scope(authorization: Authorization, *, region: str, service: str) -> None:
    if authorization.date != authorization.amz_date[:8]:
        raise InvalidSignatureException(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date "
            f"from HTTP: '{authorization.date}' != '{authorization.amz_date[:8]}', from "
            f"'{authorization.amz_date}'."
        )
    if authorization.region != region:
        raise InvalidSignatureException(
            f"Credential should be scoped to a valid region, not '{authorization.region}'. "
        )
    if authorization.service != service:
        raise InvalidSignatureException(
            f"Credential should be scoped to correct service: '{service}'. "
        )
    if authorization.terminator != TERMINATOR:
        raise InvalidSignatureException(
            f"Credential should be scoped with a valid terminator: '{TERMINATOR}', not "
            f"'{authorization.terminator}'. "
        )


def _check_time(authorization: Authorization, *, now: datetime) -> None:
    try:
        signed_at = datetime.strptime(authorization.amz_date, TIMESTAMP_FORMAT).replace(tzinfo=UTC)
    except ValueError as exc:
        raise IncompleteSignatureException(
            f"Date must be in ISO-8601 'basic format'. Got '{authorization.amz_date}'."
        ) from exc
    now = now.astimezone(UTC)
    if signed_at < now - MAX_CLOCK_SKEW:
        raise InvalidSignatureException(
            f"Signature expired: {authorization.amz_date} is now earlier than "
            f"{_timestamp(now - MAX_CLOCK_SKEW)} ({_timestamp(now)} - 15 min.)"
        )
    if signed_at > now + MAX_CLOCK_SKEW:
        raise InvalidSignatureException(
            f"Signature not yet current: {authorization.amz_date} is still later than "
            f"{_timestamp(now + MAX_CLOCK_SKEW)} ({_timestamp(now)} + 15 min.)"
        )


def _timestamp(moment: datetime) -> str:
    return moment.strftime(TIMESTAMP_FORMAT)


def _payload_hash(request: SignedRequest) -> str:
    computed = hashlib.sha256(request.body).hexdigest()
    declared = (request.header("X-Amz-Content-SHA256") or "").strip()
    if not declared:
        return computed
    if declared != UNSIGNED_PAYLOAD and declared.lower() != computed:
        raise InvalidSignatureException(
            "The provided 'x-amz-content-sha256' header does not match what was computed."
        )
    return declared


# A key signs every request of its day: derive it once, as the SDKs do on their side.
@lru_cache(maxsize=1024)
def signing_key(secret_key: str, date: str, region: str, service: str) -> bytes:
    key = _hmac(f"AWS4{secret_key}".encode(), date)
    for part in (region, service, TERMINATOR):
        key = _hmac(key, part)
    return key


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode(), hashlib.sha256).digest()


def string_to_sign(authorization: Authorization, canonical_request: str) -> str:
    digest = hashlib.sha256(canonical_request.encode()).hexdigest()
    return "\n".join([ALGORITHM, authorization.amz_date, authorization.scope, digest])


def canonical_requests(
    request: SignedRequest, signed_headers: Iterable[str], payload_hash: str
) -> list[str]:
    """Every canonical request the client may have signed: one per way its path and query
    string may have been encoded on the wire (usually there is only one)."""
    names = sorted(set(signed_headers))
    headers = "".join(f"{name}:{_header_value(request, name)}\n" for name in names)
    tail = f"{headers}\n{';'.join(names)}\n{payload_hash}"
    return [
        f"{request.method.upper()}\n{path}\n{query}\n{tail}"
        for path in dict.fromkeys(_canonical_paths(request))
        for query in dict.fromkeys(_canonical_queries(request.query_string))
    ]


def _header_value(request: SignedRequest, name: str) -> str:
    return " ".join((request.header(name) or "").split())


def _canonical_paths(request: SignedRequest) -> list[str]:
    wire_paths = []
    if request.raw_path:
        wire_paths.append(request.raw_path)
    wire_paths.append(
        "/".join(quote(segment, safe=_QUERY_SAFE) for segment in request.decoded_path.split("/"))
    )
    return [quote(_remove_dot_segments(path), safe="/~") for path in wire_paths]


def _remove_dot_segments(path: str) -> str:
    """RFC 3986 dot-segment removal, dropping empty segments too, as botocore does."""
    if not path:
        return "/"
    output: list[str] = []
    for segment in path.split("/"):
        if segment == "..":
            if output:
                output.pop()
        elif segment and segment != ".":
            output.append(segment)
    first = "/" if path.startswith("/") else ""
    last = "/" if path.endswith("/") and output else ""
    return first + "/".join(output) + last


def _canonical_queries(query_string: str) -> list[str]:
    """The query pairs sorted as sent (what botocore signs for a URL), and sorted after
    encoding them canonically (what other clients sign)."""
    if not query_string:
        return [""]
    raw_pairs = []
    for pair in query_string.split("&"):
        key, _, value = pair.partition("=")
        raw_pairs.append((key, value))
    as_sent = "&".join(f"{key}={value}" for key, value in sorted(raw_pairs))
    encoded = sorted(
        (_encode_query_part(key), _encode_query_part(value)) for key, value in raw_pairs
    )
    return [as_sent, "&".join(f"{key}={value}" for key, value in encoded)]


def _encode_query_part(value: str) -> str:
    return quote(unquote(value.replace("+", " ")), safe=_QUERY_SAFE)
