from __future__ import annotations

import re
import uuid
from datetime import timedelta

import pytest
from django.test import RequestFactory
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import expect

from functions.services import function_create
from invocations.models import Invocation
from invocations.tests.helpers import invoke, make_function
from monitoring.models import LogEvent, LogGroup, LogStream, MetricDatapoint
from monitoring.tabs import monitor_tab_context
from tests.browser import signed_in_page

pytestmark = pytest.mark.django_db


@pytest.fixture
def function(user):
    return function_create(owner=user, name="orders", role=None)


@pytest.fixture
def signed_in(client, user):
    client.force_login(user)
    return client


def record_invocation(function, *, age, status="succeeded", error_type="", stream=""):
    invocation = Invocation.objects.create(
        function=function,
        function_name=function.name,
        status=status,
        payload="{}",
        error_type=error_type,
        code_sha256=function.code_sha256,
        memory_size=128,
        timeout=3,
        duration_ms=12.345,
        billed_duration_ms=13,
        max_memory_used_mb=41,
        log_stream_name=stream,
    )
    # created_at is set on insert; move it back to when the invocation "happened".
    Invocation.objects.filter(pk=invocation.pk).update(created_at=timezone.now() - age)
    return invocation


def chart_series(payload, slug):
    chart = next(chart for chart in payload["charts"] if chart["slug"] == slug)
    return chart


def test_metrics_json_covers_the_requested_range(signed_in, user, function):
    minute = timezone.now().replace(second=0, microsecond=0)
    for metric, value in (("Invocations", 3), ("Errors", 1)):
        MetricDatapoint.objects.create(
            owner=user,
            metric_name=metric,
            dimension_name="FunctionName",
            dimension_value="orders",
            period_start=minute - timedelta(minutes=2),
            sum=value,
            sample_count=3,
            minimum=0,
            maximum=1,
        )

    response = signed_in.get(reverse("monitoring:metrics", args=[function.pk]), {"range": "1h"})

    assert response.status_code == 200
    assert response["Cache-Control"].startswith("max-age=0")
    payload = response.json()
    assert payload["range"] == "1h"
    assert payload["period_seconds"] == 60
    assert len(payload["labels"]) == 60
    invocations = chart_series(payload, "invocations")
    assert invocations["has_data"] is True
    assert [v for v in invocations["datasets"][0]["data"] if v is not None] == [3]
    rates = chart_series(payload, "errors")["datasets"][1]["data"]
    assert [v for v in rates if v is not None] == [pytest.approx(66.67)]
    assert chart_series(payload, "throttles")["has_data"] is False


def test_metrics_default_to_three_hours(signed_in, function):
    response = signed_in.get(reverse("monitoring:metrics", args=[function.pk]))

    assert response.json()["range"] == "3h"
    assert len(response.json()["labels"]) == 36


def test_invalid_range_is_a_400_with_a_message(signed_in, function):
    metrics = signed_in.get(reverse("monitoring:metrics", args=[function.pk]), {"range": "2h"})
    table = signed_in.get(
        reverse("monitoring:recent-invocations", args=[function.pk]), {"range": "2h"}
    )

    assert metrics.status_code == 400
    assert metrics.json() == {
        "message": "Invalid range '2h'. Choose one of: 1h, 3h, 12h, 1d, 3d, 1w."
    }
    assert table.status_code == 400
    assert "Invalid range '2h'" in table.content.decode()


def test_someone_elses_function_is_not_found(client, other_user, function):
    invocation = record_invocation(function, age=timedelta(minutes=1))
    client.force_login(other_user)

    urls = [
        reverse("monitoring:metrics", args=[function.pk]),
        reverse("monitoring:recent-invocations", args=[function.pk]),
        reverse("monitoring:monitor-tab", args=[function.pk]),
        reverse("monitoring:invocation-logs", args=[invocation.request_id]),
    ]

    assert [client.get(url).status_code for url in urls] == [404, 404, 404, 404]


def test_recent_invocations_are_newest_first_within_the_range(signed_in, function):
    older = record_invocation(function, age=timedelta(minutes=30))
    newer = record_invocation(
        function, age=timedelta(minutes=5), status="failed", error_type="KeyError"
    )
    too_old = record_invocation(function, age=timedelta(hours=2))

    response = signed_in.get(
        reverse("monitoring:recent-invocations", args=[function.pk]), {"range": "1h"}
    )

    html = response.content.decode()
    assert response.status_code == 200
    assert html.index(str(newer.request_id)) < html.index(str(older.request_id))
    assert str(too_old.request_id) not in html
    assert "KeyError" in html
    assert "12.35" in html
    assert "/aws/lambda/orders" in html
    assert reverse("monitoring:invocation-logs", args=[newer.request_id]) in html


def test_recent_invocations_stop_at_fifty(signed_in, function):
    for minutes in range(55):
        record_invocation(function, age=timedelta(minutes=minutes))

    response = signed_in.get(reverse("monitoring:recent-invocations", args=[function.pk]))

    assert response.content.decode().count("data-invocation-row") == 50


def test_invocation_logs_returns_its_lines_and_stream(signed_in, user, function):
    stream_name = "2025/03/04/[$LATEST]0123456789abcdef0123456789abcdef"
    invocation = record_invocation(function, age=timedelta(minutes=1), stream=stream_name)
    group = LogGroup.objects.create(owner=user, name="/aws/lambda/orders")
    stream = LogStream.objects.create(group=group, name=stream_name)
    request_id = str(invocation.request_id)
    lines = [
        f"START RequestId: {request_id} Version: $LATEST",
        "<b>hello</b>",
        f"END RequestId: {request_id}",
        f"REPORT RequestId: {request_id}\tDuration: 12.35 ms\tBilled Duration: 13 ms\t",
    ]
    now = timezone.now()
    for offset, message in enumerate(lines):
        LogEvent.objects.create(
            stream=stream,
            timestamp=now + timedelta(milliseconds=offset),
            message=message,
            request_id=invocation.request_id,
        )
    LogEvent.objects.create(
        stream=stream, timestamp=now, message="someone else's line", request_id=uuid.uuid4()
    )

    response = signed_in.get(reverse("monitoring:invocation-logs", args=[invocation.request_id]))

    html = response.content.decode()
    assert response.status_code == 200
    assert stream_name in html
    assert f"START RequestId: {request_id} Version: $LATEST\n&lt;b&gt;hello&lt;/b&gt;\n" in html
    assert "Billed Duration: 13 ms" in html
    assert "someone else" not in html
    assert 'class="logs' in html


def test_unknown_invocation_logs_are_not_found(signed_in):
    response = signed_in.get(reverse("monitoring:invocation-logs", args=[uuid.uuid4()]))

    assert response.status_code == 404


def test_tab_context_defaults_to_metrics_and_falls_back_from_a_bad_range(user, function):
    request = RequestFactory().get("/", {"tab": "monitor", "range": "nope"})
    request.user = user

    context = monitor_tab_context(request, function)

    assert context["monitor_view"] == "metrics"
    assert context["monitor_range"].key == "3h"
    assert context["monitor_log_group"] == "/aws/lambda/orders"
    assert len(context["monitor_metrics"]["charts"]) == 9


def test_monitor_tab_renders_each_sub_tab(signed_in, function):
    record_invocation(function, age=timedelta(minutes=1), stream="2025/03/04/[$LATEST]abc")
    url = reverse("monitoring:monitor-tab", args=[function.pk])

    metrics = signed_in.get(url, {"view": "metrics", "range": "12h"}).content.decode()
    logs = signed_in.get(url, {"view": "logs", "range": "12h"}).content.decode()

    assert 'id="monitor-metrics-data"' in metrics
    assert "No data available." in metrics
    assert metrics.count('class="container monitor-chart"') == 9
    assert re.search(r'value="12h"\s+aria-pressed="true"', metrics)
    assert "data-invocation-row" not in metrics
    assert "data-invocation-row" in logs
    assert "2025/03/04/[$LATEST]abc" in logs
    assert 'id="monitor-metrics-data"' not in logs


def test_htmx_sub_tab_switch_keeps_the_function_page_in_the_address_bar(signed_in, function):
    response = signed_in.get(
        reverse("monitoring:monitor-tab", args=[function.pk]),
        {"view": "logs", "range": "1d"},
        headers={
            "HX-Request": "true",
            "HX-Current-URL": f"http://testserver/functions/{function.pk}/?tab=monitor",
        },
    )

    assert response["HX-Push-Url"] == f"/functions/{function.pk}/?tab=monitor&view=logs&range=1d"


def test_invoking_a_function_shows_up_in_metrics_and_logs(signed_in, user):
    function = make_function(
        user,
        """
        def lambda_handler(event, context):
            print("handling", event["n"])
            if event["n"] < 0:
                raise ValueError("negative")
            return event["n"]
        """,
        name="numbers",
    )

    succeeded = invoke(function, '{"n": 1}')
    failed = invoke(function, '{"n": -1}')

    assert (succeeded.status, failed.status) == ("succeeded", "failed")
    metrics = signed_in.get(
        reverse("monitoring:metrics", args=[function.pk]), {"range": "1h"}
    ).json()
    invocations = chart_series(metrics, "invocations")["datasets"][0]["data"]
    errors = chart_series(metrics, "errors")["datasets"][0]["data"]
    assert sum(value for value in invocations if value) == 2
    assert sum(value for value in errors if value is not None) == 1
    assert chart_series(metrics, "duration")["has_data"] is True
    assert chart_series(metrics, "concurrent-executions")["has_data"] is True

    table = signed_in.get(
        reverse("monitoring:recent-invocations", args=[function.pk]), {"range": "1h"}
    ).content.decode()
    assert table.index(str(failed.request_id)) < table.index(str(succeeded.request_id))
    assert "ValueError" in table
    assert failed.log_stream_name in table

    logs = signed_in.get(
        reverse("monitoring:invocation-logs", args=[failed.request_id])
    ).content.decode()
    assert f"START RequestId: {failed.request_id} Version: $LATEST" in logs
    assert "handling -1" in logs
    assert f"REPORT RequestId: {failed.request_id}\tDuration: " in logs


def chart_time_ticks(page):
    """Each chart's time-axis labels, joined by commas."""
    return page.evaluate(
        """() => [...document.querySelectorAll("[data-chart] canvas")].map((canvas) =>
            Chart.getChart(canvas).scales.x.ticks.map((tick) => String(tick.label)).join())"""
    )


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_monitor_tab_in_a_browser(live_server, user, function):
    MetricDatapoint.objects.create(
        owner=user,
        metric_name="Invocations",
        dimension_name="FunctionName",
        dimension_value="orders",
        period_start=timezone.now().replace(second=0, microsecond=0),
        sum=4,
        sample_count=4,
        minimum=1,
        maximum=1,
    )
    invocation = record_invocation(
        function, age=timedelta(minutes=2), stream="2025/03/04/[$LATEST]ab"
    )
    group = LogGroup.objects.create(owner=user, name="/aws/lambda/orders")
    stream = LogStream.objects.create(group=group, name="2025/03/04/[$LATEST]ab")
    LogEvent.objects.create(
        stream=stream,
        timestamp=timezone.now(),
        message=f"START RequestId: {invocation.request_id} Version: $LATEST",
        request_id=invocation.request_id,
    )
    page_url = f"{live_server.url}{reverse('functions:detail', args=[function.pk])}?tab=monitor"

    with signed_in_page(live_server.url, user) as (page, problems):
        page.goto(page_url)

        page.wait_for_function("window.Chart && Object.keys(Chart.instances).length === 9")
        invocations_chart = page.locator("[data-chart='invocations']")
        expect(invocations_chart.locator("[data-chart-empty]")).to_be_hidden()
        expect(page.locator("[data-chart='throttles'] [data-chart-empty]")).to_have_text(
            "No data available."
        )

        ticks = chart_time_ticks(page)
        assert len(set(ticks)) == 1, f"every chart labels the same times: {ticks}"
        assert [label[-2:] for label in ticks[0].split(",")] in (["00", "30"] * 3, ["30", "00"] * 3)

        page.locator("[data-monitor-range-form] button[value='1h']").click()
        expect(invocations_chart.locator("[data-monitor-period]")).to_have_text("1 minute")
        expect(page).to_have_url(re.compile(r"view=metrics&range=1h$"))
        expect(page.locator("[data-monitor-status]")).to_contain_text("Updated")
        ticks = chart_time_ticks(page)
        assert len(set(ticks)) == 1, ticks
        assert all(label.endswith("0") for label in ticks[0].split(",")), ticks

        page.locator("[data-monitor-view-link='logs']").click()
        row = page.locator("[data-invocation-row]")
        expect(row).to_have_count(1)
        expect(page).to_have_url(re.compile(r"view=logs&range=1h$"))
        row.focus()
        page.keyboard.press("Enter")
        expect(row).to_have_attribute("aria-expanded", "true")
        expect(page.locator("pre.logs")).to_contain_text(
            f"START RequestId: {invocation.request_id} Version: $LATEST"
        )
        page.keyboard.press("Enter")
        expect(page.locator("pre.logs")).to_be_hidden()
        assert problems.messages == []
