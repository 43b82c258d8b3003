"""CreateFunction, GetFunction, GetFunctionConfiguration, ListFunctions,
UpdateFunctionCode, UpdateFunctionConfiguration and DeleteFunction."""

from __future__ import annotations

import base64
import binascii
import json

from django.http import HttpResponse

from api.code_location import code_location_url
from api.configuration import architecture, configuration_changes, reject_unsupported, unsupported
from api.errors import InvalidParameterValueException
from api.function_services import (
    function_code_replace,
    function_configuration_replace,
    function_create_from_api,
)
from api.names import (
    LATEST,
    parse_function_name,
    parse_role_arn,
    require_latest,
    validation_message,
)
from api.params import Params
from api.serializers import concurrency, function_configuration
from api.views.base import ApiCall, json_response, no_content
from functions import packaging
from functions.models import Function
from functions.services import function_delete

# Lambda's limit for a request carrying a base64-encoded 50 MB package.
ZIP_REQUEST_MAX_BYTES = 69_905_067
DEFAULT_MAX_ITEMS = 50
MAX_ITEMS_RANGE = (1, 10_000)


def _zip_file(code: Params) -> bytes:
    zip_bytes = code.blob("ZipFile")
    if zip_bytes is not None:
        return zip_bytes
    if "S3Bucket" in code or "S3Key" in code:
        raise unsupported("deployment packages in S3: send the package as ZipFile")
    if "ImageUri" in code:
        raise unsupported("container images")
    raise InvalidParameterValueException("Please provide a source for function code.")


def create_function(call: ApiCall) -> HttpResponse:
    params = call.params()
    for member in ("FunctionName", "Role", "Code"):
        params.required(member)
    ref = parse_function_name(
        params.string("FunctionName") or "", account_id=call.caller.account_id
    )
    if ref.qualifier:
        raise InvalidParameterValueException(
            f"The function name {ref.name}:{ref.qualifier} includes a qualifier; "
            "CreateFunction takes an unqualified name."
        )
    if params.string("PackageType") not in (None, "Zip"):
        raise unsupported("container image packages (PackageType Image)")
    code = params.structure("Code")
    assert code is not None
    zip_bytes = _zip_file(code)
    if "Runtime" not in params or "Handler" not in params:
        raise InvalidParameterValueException(
            "Runtime and Handler are mandatory parameters for functions created with "
            "deployment packages."
        )
    params.boolean("Publish")  # Accepted; until versions exist the answer is $LATEST.
    reject_unsupported(params, function_name=ref.name)
    function = function_create_from_api(
        owner=call.caller.user,
        account_id=call.caller.account_id,
        ref=ref,
        role=parse_role_arn(params.string("Role") or ""),
        zip_bytes=zip_bytes,
        tags=params.string_map("Tags") or {},
        architecture=architecture(params) or "x86_64",
        **configuration_changes(params),
    )
    return json_response(
        function_configuration(function, account_id=call.caller.account_id), status=201
    )


def get_function(call: ApiCall, function_name: str) -> HttpResponse:
    ref = call.function_ref(function_name)
    require_latest(ref)
    function = call.function(ref)
    body = {
        "Configuration": function_configuration(
            function, account_id=call.caller.account_id, qualifier=ref.qualifier
        ),
        "Code": {"RepositoryType": "S3", "Location": code_location_url(call.request, function)},
    }
    if function.tags and not ref.qualifier:
        body["Tags"] = dict(function.tags)
    if function.reserved_concurrency is not None:
        body["Concurrency"] = concurrency(function)
    return json_response(body)


def get_function_configuration(call: ApiCall, function_name: str) -> HttpResponse:
    ref = call.function_ref(function_name)
    require_latest(ref)
    function = call.function(ref)
    return json_response(
        function_configuration(function, account_id=call.caller.account_id, qualifier=ref.qualifier)
    )


def _max_items(value: str | None) -> int:
    if value is None:
        return DEFAULT_MAX_ITEMS
    low, high = MAX_ITEMS_RANGE
    try:
        number = int(value)
    except ValueError:
        number = 0
    if not low <= number <= high:
        raise InvalidParameterValueException(
            f"1 validation error detected: Value '{value}' at 'maxItems' failed to satisfy "
            f"constraint: Member must have value between {low} and {high}"
        )
    return number


def _encode_marker(name: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"after": name}).encode()).decode()


def _decode_marker(marker: str) -> str:
    try:
        claims = json.loads(base64.urlsafe_b64decode(marker.encode()))
        return str(claims["after"])
    except (binascii.Error, ValueError, TypeError, KeyError) as exc:
        raise InvalidParameterValueException(f"Invalid Marker: {marker}") from exc


def list_functions(call: ApiCall) -> HttpResponse:
    version = call.query("FunctionVersion")
    if version not in (None, "ALL"):
        raise InvalidParameterValueException(
            validation_message(version or "", "functionVersion", "ALL")
        )
    master_region = call.query("MasterRegion")
    if master_region is not None and version is None:
        raise InvalidParameterValueException(
            "MasterRegion must be used with FunctionVersion set to ALL."
        )
    max_items = _max_items(call.query("MaxItems"))
    functions = (
        Function.objects.filter(owner_id=call.caller.user_id)
        .select_related("role")
        .order_by("name")
    )
    marker = call.query("Marker")
    if marker:
        functions = functions.filter(name__gt=_decode_marker(marker))
    if master_region is not None:
        # Only Lambda@Edge replicas have a master region; Stratus has none.
        functions = functions.none()
    # FunctionVersion=ALL lists every version; $LATEST is the only one there is.
    page = list(functions[: max_items + 1])
    body: dict[str, object] = {
        "Functions": [
            function_configuration(function, account_id=call.caller.account_id, full=False)
            for function in page[:max_items]
        ]
    }
    if len(page) > max_items:
        body["NextMarker"] = _encode_marker(page[max_items - 1].name)
    return json_response(body)


def update_function_code(call: ApiCall, function_name: str) -> HttpResponse:
    params = call.params()
    ref = call.function_ref(function_name)
    require_latest(ref)
    function = call.function(ref)
    zip_bytes = _zip_file(params)
    requested_architecture = architecture(params)
    if requested_architecture not in (None, function.architecture):
        raise unsupported("changing a function's architecture")
    if params.string("SourceKMSKeyArn"):
        raise unsupported("customer managed KMS keys (SourceKMSKeyArn)")
    params.boolean("Publish")  # Accepted; until versions exist the answer is $LATEST.
    dry_run = bool(params.boolean("DryRun"))
    updated = function_code_replace(
        function=function,
        ref=ref,
        zip_bytes=zip_bytes,
        revision_id=params.string("RevisionId"),
        dry_run=dry_run,
    )
    if dry_run:
        package = packaging.digest(zip_bytes)
        configuration = function_configuration(
            updated,
            account_id=call.caller.account_id,
            code_sha256=package.code_sha256,
            code_size=package.size,
        )
    else:
        configuration = function_configuration(updated, account_id=call.caller.account_id)
    return json_response(configuration)


def update_function_configuration(call: ApiCall, function_name: str) -> HttpResponse:
    params = call.params()
    ref = call.function_ref(function_name)
    require_latest(ref)
    function = call.function(ref)
    reject_unsupported(params, function_name=function.name)
    role_arn = params.string("Role")
    updated = function_configuration_replace(
        function=function,
        ref=ref,
        changes=configuration_changes(params),
        role=parse_role_arn(role_arn) if role_arn is not None else None,
        revision_id=params.string("RevisionId"),
    )
    return json_response(function_configuration(updated, account_id=call.caller.account_id))


def delete_function(call: ApiCall, function_name: str) -> HttpResponse:
    ref = call.function_ref(function_name)
    if ref.qualifier == LATEST:
        raise InvalidParameterValueException(
            "$LATEST version cannot be deleted without deleting the function."
        )
    require_latest(ref)
    function_delete(function=call.function(ref))
    return no_content()
