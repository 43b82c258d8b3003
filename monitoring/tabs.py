"""The function page's Monitor tab: what its template needs, per sub-tab."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.utils import timezone

from functions.models import Function
from functions.views.detail import page_qualifier
from monitoring.charts import TIME_RANGES, InvalidTimeRange, TimeRange, time_range_for_key
from monitoring.selectors import function_metrics_chart_data, invocation_recent_for_function

MONITOR_VIEWS = ("metrics", "logs")
DEFAULT_MONITOR_VIEW = "metrics"


def monitor_view_from_request(request: HttpRequest) -> str:
    view = request.GET.get("view", DEFAULT_MONITOR_VIEW)
    return view if view in MONITOR_VIEWS else DEFAULT_MONITOR_VIEW


def time_range_from_request(request: HttpRequest) -> TimeRange:
    """The page falls back to the default range; the data endpoints answer 400 instead."""
    try:
        return time_range_for_key(request.GET.get("range"))
    except InvalidTimeRange:
        return time_range_for_key(None)


def monitor_tab_context(request: HttpRequest, function: Function) -> dict[str, Any]:
    qualifier = page_qualifier(request, function).name
    view = monitor_view_from_request(request)
    time_range = time_range_from_request(request)
    context: dict[str, Any] = {
        "monitor_view": view,
        "monitor_range": time_range,
        "monitor_ranges": list(TIME_RANGES.values()),
        "monitor_log_group": function.log_group_name,
        "monitor_qualifier": qualifier,
    }
    if view == "logs":
        context["monitor_invocations"] = invocation_recent_for_function(
            function=function, since=timezone.now() - time_range.span, qualifier=qualifier
        )
    else:
        context["monitor_metrics"] = function_metrics_chart_data(
            function=function, time_range=time_range, qualifier=qualifier
        )
    return context
