from __future__ import annotations

import uuid
from urllib.parse import urlencode

from django.http import HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from django_htmx.http import push_url

from functions.selectors import account_resources, function_get_for_user
from functions.views.detail import page_qualifier
from functions.views.http import AuthenticatedHttpRequest
from monitoring.charts import TIME_RANGES, InvalidTimeRange, time_range_for_key
from monitoring.selectors import (
    LATEST,
    account_metrics_chart_data,
    function_metrics_chart_data,
    invocation_get_for_user,
    invocation_recent_for_function,
    log_messages_for_invocation,
)
from monitoring.tabs import monitor_tab_context, time_range_from_request


@require_GET
@never_cache
def monitor_tab(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    """The Monitor tab alone, for htmx sub-tab switches; the address bar keeps showing the
    function page."""
    function = function_get_for_user(user=request.user, pk=pk)
    context = monitor_tab_context(request, function)
    response = render(
        request,
        "monitoring/tab_monitor.html",
        {"function": function, "tab": "monitor", **context},
    )
    page_path = request.htmx.current_url_abs_path
    if page_path:
        query = f"tab=monitor&view={context['monitor_view']}&range={context['monitor_range'].key}"
        if context["monitor_qualifier"] != LATEST:
            query += f"&{urlencode({'qualifier': context['monitor_qualifier']})}"
        push_url(response, f"{page_path.split('?', 1)[0]}?{query}")
    return response


@require_GET
@never_cache
def metrics(request: AuthenticatedHttpRequest, pk: int) -> JsonResponse:
    function = function_get_for_user(user=request.user, pk=pk)
    try:
        time_range = time_range_for_key(request.GET.get("range"))
    except InvalidTimeRange as exc:
        return JsonResponse({"message": exc.message}, status=400)
    qualifier = page_qualifier(request, function).name
    return JsonResponse(
        function_metrics_chart_data(function=function, time_range=time_range, qualifier=qualifier)
    )


@require_GET
@never_cache
def recent_invocations(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    function = function_get_for_user(user=request.user, pk=pk)
    try:
        time_range = time_range_for_key(request.GET.get("range"))
    except InvalidTimeRange as exc:
        return HttpResponse(exc.message, status=400, content_type="text/plain; charset=utf-8")
    qualifier = page_qualifier(request, function).name
    invocations = invocation_recent_for_function(
        function=function, since=timezone.now() - time_range.span, qualifier=qualifier
    )
    return render(
        request,
        "monitoring/recent_invocations.html",
        {
            "function": function,
            "monitor_range": time_range,
            "monitor_invocations": invocations,
            "monitor_log_group": function.log_group_name,
            "monitor_qualifier": qualifier,
        },
    )


@require_GET
@never_cache
def invocation_logs(request: AuthenticatedHttpRequest, request_id: uuid.UUID) -> HttpResponse:
    invocation = invocation_get_for_user(user=request.user, request_id=request_id)
    messages = log_messages_for_invocation(request_id=invocation.request_id)
    return render(
        request,
        "monitoring/invocation_logs.html",
        {
            "invocation": invocation,
            "log_text": "\n".join(message.rstrip("\n") for message in messages),
        },
    )


@require_GET
@never_cache
def dashboard(request: AuthenticatedHttpRequest) -> HttpResponse:
    """The account's resources and account-level metrics, as Lambda's console Dashboard."""
    time_range = time_range_from_request(request)
    return render(
        request,
        "monitoring/dashboard.html",
        {
            "resources": account_resources(owner_id=request.user.pk),
            "monitor_range": time_range,
            "monitor_ranges": list(TIME_RANGES.values()),
            "account_metrics": account_metrics_chart_data(
                owner_id=request.user.pk, time_range=time_range
            ),
        },
    )


@require_GET
@never_cache
def account_metrics(request: AuthenticatedHttpRequest) -> JsonResponse:
    try:
        time_range = time_range_for_key(request.GET.get("range"))
    except InvalidTimeRange as exc:
        return JsonResponse({"message": exc.message}, status=400)
    return JsonResponse(account_metrics_chart_data(owner_id=request.user.pk, time_range=time_range))
