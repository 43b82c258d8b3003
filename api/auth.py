"""Who is calling: the signed request's access key, verified, and its user and account."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.http import HttpRequest
from django.utils import timezone

from api import sigv4
from api.crypto import SecretUnreadable
from api.errors import INVALID_SECURITY_TOKEN, UnrecognizedClientException
from api.models import AccessKey
from api.selectors import signing_key_for
from api.services import access_key_record_use, access_key_secret
from console.selectors import account_for_user
from functions.models import Function

SERVICE = "lambda"


@dataclass(frozen=True)
class Caller:
    user_id: int
    account_id: str
    access_key: AccessKey
    # The user's function named in the request's path, read with the key (None when the
    # user has no function of that name), so the operation need not read it again.
    function_name: str | None = None
    function: Function | None = None

    @cached_property
    def user(self) -> AbstractBaseUser:
        """The user the key belongs to, read when an operation needs more than the id."""
        return get_user_model().objects.get(pk=self.user_id)


def signed_request(request: HttpRequest, body: bytes) -> sigv4.SignedRequest:
    raw_uri = request.META.get("RAW_URI") or request.META.get("REQUEST_URI")
    raw_path = str(raw_uri).split("?", 1)[0] if raw_uri else None
    return sigv4.SignedRequest(
        method=request.method or "GET",
        raw_path=raw_path,
        decoded_path=request.path_info,
        query_string=str(request.META.get("QUERY_STRING", "")),
        header=request.headers.get,
        body=body,
    )


def authenticate(request: HttpRequest, body: bytes, *, function_name: str | None = None) -> Caller:
    """The verified caller, or the AWS-shaped 403 error that says why not. `function_name`
    is a function the request names, to be read along with the key."""
    signed = signed_request(request, body)
    authorization = sigv4.parse_authorization(signed)
    found = signing_key_for(access_key_id=authorization.access_key_id, function_name=function_name)
    if found is None or not found.access_key.is_active or not found.user_is_active:
        raise UnrecognizedClientException(INVALID_SECURITY_TOKEN)
    access_key = found.access_key
    try:
        secret = access_key_secret(access_key=access_key)
    except SecretUnreadable as exc:
        raise UnrecognizedClientException(INVALID_SECURITY_TOKEN) from exc
    now = timezone.now()
    sigv4.verify(
        signed,
        authorization,
        secret_key=secret,
        region=settings.STRATUS_REGION,
        service=SERVICE,
        now=now,
    )
    access_key_record_use(
        access_key=access_key, region=authorization.region, service=SERVICE, now=now
    )
    account_id = (
        found.account_id or account_for_user(get_user_model()(pk=access_key.user_id)).account_id
    )
    return Caller(
        user_id=access_key.user_id,
        account_id=account_id,
        access_key=access_key,
        function_name=function_name,
        function=found.function,
    )
