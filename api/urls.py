"""The Lambda REST API, mounted at the site root as Lambda's endpoint is (paths start with
the operation's API version), the code download links it hands out, and the console's
Access keys page."""

from __future__ import annotations

from django.urls import path, re_path

from api.views import (
    access_keys,
    aliases,
    code,
    concurrency,
    event_invoke_config,
    functions,
    invoke,
    provisioned,
    tags,
    versions,
)
from api.views.base import Operation, endpoint
from api.views.functions import ZIP_REQUEST_MAX_BYTES
from api.views.invoke import INVOKE_MAX_BYTES

app_name = "api"

_FUNCTION = "<str:function_name>"

api_patterns = [
    path(
        "2015-03-31/functions",
        endpoint(
            GET=Operation("ListFunctions", functions.list_functions),
            POST=Operation(
                "CreateFunction", functions.create_function, max_body=ZIP_REQUEST_MAX_BYTES
            ),
        ),
    ),
    path(
        f"2015-03-31/functions/{_FUNCTION}",
        endpoint(
            GET=Operation("GetFunction", functions.get_function),
            DELETE=Operation("DeleteFunction", functions.delete_function),
        ),
    ),
    path(
        f"2015-03-31/functions/{_FUNCTION}/configuration",
        endpoint(
            GET=Operation("GetFunctionConfiguration", functions.get_function_configuration),
            PUT=Operation("UpdateFunctionConfiguration", functions.update_function_configuration),
        ),
    ),
    path(
        f"2015-03-31/functions/{_FUNCTION}/code",
        endpoint(
            PUT=Operation(
                "UpdateFunctionCode",
                functions.update_function_code,
                max_body=ZIP_REQUEST_MAX_BYTES,
            )
        ),
    ),
    path(
        f"2015-03-31/functions/{_FUNCTION}/versions",
        endpoint(
            GET=Operation("ListVersionsByFunction", versions.list_versions_by_function),
            POST=Operation("PublishVersion", versions.publish_version),
        ),
    ),
    path(
        f"2015-03-31/functions/{_FUNCTION}/aliases",
        endpoint(
            GET=Operation("ListAliases", aliases.list_aliases),
            POST=Operation("CreateAlias", aliases.create_alias),
        ),
    ),
    path(
        f"2015-03-31/functions/{_FUNCTION}/aliases/<str:name>",
        endpoint(
            GET=Operation("GetAlias", aliases.get_alias),
            PUT=Operation("UpdateAlias", aliases.update_alias),
            DELETE=Operation("DeleteAlias", aliases.delete_alias),
        ),
    ),
    path(
        f"2015-03-31/functions/{_FUNCTION}/invocations",
        endpoint(
            POST=Operation(
                "Invoke", invoke.invoke, max_body=INVOKE_MAX_BYTES, limit_label="InvokeFunction"
            )
        ),
    ),
    path(
        f"2017-10-31/functions/{_FUNCTION}/concurrency",
        endpoint(
            PUT=Operation("PutFunctionConcurrency", concurrency.put_function_concurrency),
            DELETE=Operation("DeleteFunctionConcurrency", concurrency.delete_function_concurrency),
        ),
    ),
    path(
        f"2019-09-30/functions/{_FUNCTION}/concurrency",
        endpoint(GET=Operation("GetFunctionConcurrency", concurrency.get_function_concurrency)),
    ),
    path(
        f"2019-09-30/functions/{_FUNCTION}/provisioned-concurrency",
        endpoint(
            GET=Operation("GetProvisionedConcurrencyConfig", provisioned.provisioned_concurrency),
            PUT=Operation(
                "PutProvisionedConcurrencyConfig", provisioned.put_provisioned_concurrency_config
            ),
            DELETE=Operation(
                "DeleteProvisionedConcurrencyConfig",
                provisioned.delete_provisioned_concurrency_config,
            ),
        ),
    ),
    path(
        f"2019-09-25/functions/{_FUNCTION}/event-invoke-config",
        endpoint(
            PUT=Operation(
                "PutFunctionEventInvokeConfig",
                event_invoke_config.put_function_event_invoke_config,
            ),
            POST=Operation(
                "UpdateFunctionEventInvokeConfig",
                event_invoke_config.update_function_event_invoke_config,
            ),
            GET=Operation(
                "GetFunctionEventInvokeConfig",
                event_invoke_config.get_function_event_invoke_config,
            ),
            DELETE=Operation(
                "DeleteFunctionEventInvokeConfig",
                event_invoke_config.delete_function_event_invoke_config,
            ),
        ),
    ),
    path(
        f"2019-09-25/functions/{_FUNCTION}/event-invoke-config/list",
        endpoint(
            GET=Operation(
                "ListFunctionEventInvokeConfigs",
                event_invoke_config.list_function_event_invoke_configs,
            )
        ),
    ),
    path(
        "2016-08-19/account-settings",
        endpoint(GET=Operation("GetAccountSettings", concurrency.get_account_settings)),
    ),
    path(
        "2017-03-31/tags/<str:resource>",
        endpoint(
            GET=Operation("ListTags", tags.list_tags),
            POST=Operation("TagResource", tags.tag_resource),
            DELETE=Operation("UntagResource", tags.untag_resource),
        ),
    ),
    # Every other path under an API version: an operation Stratus does not implement, or
    # none at all. Both get an AWS-shaped error.
    re_path(r"^\d{4}-\d{2}-\d{2}(?:/.*)?$", endpoint()),
]

console_patterns = [
    path("account/access-keys/", access_keys.access_key_list, name="access_keys"),
    path("account/access-keys/create/", access_keys.access_key_new, name="access_key_create"),
    path(
        "account/access-keys/<str:access_key_id>/deactivate/",
        access_keys.access_key_deactivate_view,
        name="access_key_deactivate",
    ),
    path(
        "account/access-keys/<str:access_key_id>/activate/",
        access_keys.access_key_activate_view,
        name="access_key_activate",
    ),
    path(
        "account/access-keys/<str:access_key_id>/delete/",
        access_keys.access_key_delete_view,
        name="access_key_delete",
    ),
]

urlpatterns = [
    *api_patterns,
    path("code-packages/<str:token>", code.code_package, name="code_package"),
    *console_patterns,
]
