"""CreateFunction, GetFunction, GetFunctionConfiguration, ListFunctions,
UpdateFunctionCode, UpdateFunctionConfiguration and DeleteFunction."""

from __future__ import annotations

import base64
import binascii
import itertools
import json
from collections.abc import Iterator

from django.db.models import Prefetch
from django.http import HttpResponse

from api.code_location import code_location_url
from api.configuration import architecture, configuration_changes, reject_unsupported, unsupported
from api.errors import InvalidParameterValueException, ResourceConflictException
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
from api.serializers import concurrency, function_configuration, version_configuration
from api.views.base import ApiCall, json_response, no_content
from api.views.versions import is_alias, max_items, publish, published_version
from functions import packaging
from functions.models import Function, FunctionVersion
from functions.services import VersionInUse, function_delete, function_version_delete

# Lambda's limit for a request carrying a base64-encoded 50 MB package.
ZIP_REQUEST_MAX_BYTES = 69_905_067


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
    publish_requested = bool(params.boolean("Publish"))
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
    if publish_requested:
        version = publish(function, description=function.description)
        return json_response(
            version_configuration(version, account_id=call.caller.account_id), status=201
        )
    return json_response(
        function_configuration(function, account_id=call.caller.account_id), status=201
    )


def get_function(call: ApiCall, function_name: str) -> HttpResponse:
    ref = call.function_ref(function_name)
    function = call.function(ref)
    version = published_version(function, ref)
    if version is None:
        configuration = function_configuration(
            function, account_id=call.caller.account_id, qualifier=ref.qualifier
        )
        location = code_location_url(call.request, function)
    else:
        configuration = version_configuration(version, account_id=call.caller.account_id)
        location = code_location_url(call.request, function, code_id=version.code_id)
    if is_alias(ref):
        configuration["FunctionArn"] = ref.qualified_arn
    body = {
        "Configuration": configuration,
        "Code": {"RepositoryType": "S3", "Location": location},
    }
    if function.tags and not ref.qualifier:
        body["Tags"] = dict(function.tags)
    if function.reserved_concurrency is not None:
        body["Concurrency"] = concurrency(function)
    return json_response(body)


def get_function_configuration(call: ApiCall, function_name: str) -> HttpResponse:
    ref = call.function_ref(function_name)
    function = call.function(ref)
    version = published_version(function, ref)
    if version is not None:
        configuration = version_configuration(version, account_id=call.caller.account_id)
    else:
        configuration = function_configuration(
            function, account_id=call.caller.account_id, qualifier=ref.qualifier
        )
    if is_alias(ref):
        configuration["FunctionArn"] = ref.qualified_arn
    return json_response(configuration)


def _encode_marker(name: str, version: int | None = None) -> str:
    claims: dict[str, object] = {"after": name}
    if version is not None:
        claims["version"] = version
    return base64.urlsafe_b64encode(json.dumps(claims).encode()).decode()


def _decode_marker(marker: str) -> tuple[str, int | None]:
    """The last function listed and, when versions are listed, the last of its versions
    ($LATEST being 0); None means the function was listed in full."""
    try:
        claims = json.loads(base64.urlsafe_b64decode(marker.encode()))
        version = claims.get("version")
        return str(claims["after"]), None if version is None else int(version)
    except (binascii.Error, ValueError, TypeError, KeyError, AttributeError) as exc:
        raise InvalidParameterValueException(f"Invalid Marker: {marker}") from exc


def _listed_entries(
    functions: list[Function], *, all_versions: bool, after: tuple[str, int | None] | None
) -> Iterator[tuple[str, int | None, Function, FunctionVersion | None]]:
    """(name, position, function, version) for each configuration to list, in order:
    a function's $LATEST (position 0), then, with all_versions, its versions."""
    for function in functions:
        start = after[1] if after is not None and after[0] == function.name else None
        if not all_versions:
            yield function.name, None, function, None
            continue
        if start is None:
            yield function.name, 0, function, None
        for version in function.versions.all():
            if start is None or version.version > start:
                yield function.name, version.version, function, version


def list_functions(call: ApiCall) -> HttpResponse:
    version_filter = call.query("FunctionVersion")
    if version_filter not in (None, "ALL"):
        raise InvalidParameterValueException(
            validation_message(version_filter or "", "functionVersion", "ALL")
        )
    master_region = call.query("MasterRegion")
    if master_region is not None and version_filter is None:
        raise InvalidParameterValueException(
            "MasterRegion must be used with FunctionVersion set to ALL."
        )
    limit = max_items(call.query("MaxItems"))
    all_versions = version_filter == "ALL"
    functions = (
        Function.objects.filter(owner_id=call.caller.user_id)
        .select_related("role")
        .order_by("name")
    )
    if all_versions:
        functions = functions.prefetch_related(
            Prefetch(
                "versions",
                queryset=FunctionVersion.objects.select_related("role").order_by("version"),
            )
        )
    marker = call.query("Marker")
    after = _decode_marker(marker) if marker else None
    if after is not None:
        name, position = after
        if all_versions and position is not None:
            functions = functions.filter(name__gte=name)
        else:
            functions = functions.filter(name__gt=name)
    if master_region is not None:
        # Only Lambda@Edge replicas have a master region; Stratus has none.
        functions = functions.none()
    # Every function gives at least one entry, so this many functions fill the page.
    entries = list(
        itertools.islice(
            _listed_entries(list(functions[: limit + 1]), all_versions=all_versions, after=after),
            limit + 1,
        )
    )
    account_id = call.caller.account_id
    body: dict[str, object] = {
        "Functions": [
            function_configuration(function, account_id=account_id, full=False)
            if version is None
            else version_configuration(version, account_id=account_id, full=False)
            for _, _, function, version in entries[:limit]
        ]
    }
    if len(entries) > limit:
        name, position, _, _ = entries[limit - 1]
        body["NextMarker"] = _encode_marker(name, position)
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
    publish_requested = bool(params.boolean("Publish"))
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
    elif publish_requested:
        version = publish(updated, description="")
        configuration = version_configuration(version, account_id=call.caller.account_id)
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
    function = call.function(ref)
    if is_alias(ref):
        published_version(function, ref)
        raise InvalidParameterValueException("Deletion of aliases is not currently supported.")
    version = published_version(function, ref)
    if version is None:
        function_delete(function=function)
    else:
        try:
            function_version_delete(version=version)
        except VersionInUse as exc:
            raise ResourceConflictException(" ".join(exc.messages)) from exc
    return no_content()
