"""The Test tab through HTTP: the tab itself, saving, renaming and deleting events, and the
Test button end to end (tasks run in-process: no broker)."""

from __future__ import annotations

import json
import re
import textwrap
import uuid

import pytest
from django.contrib.auth.models import User
from django.urls import reverse

from console.selectors import account_for_user
from functions.models import Blueprint
from functions.services import function_create
from invocations import models as invocation_models
from invocations import saved_events, views
from invocations.errors import InvocationWaitTimeout

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}
PRINTING_CODE = """
    import json

    def lambda_handler(event, context):
        print("checking key1 =", event["key1"])
        return {"statusCode": 200, "body": json.dumps(event["key1"])}
"""
RAISING_CODE = """
    def lambda_handler(event, context):
        raise ValueError("key1 is not acceptable")
"""
REPORT_LINE = re.compile(
    r"REPORT RequestId: [0-9a-f-]{36}\tDuration: \d+\.\d\d ms\tBilled Duration: \d+ ms\t"
    r"Memory Size: 128 MB\tMax Memory Used: \d+ MB\t"
)


@pytest.fixture
def function(user):
    return function_create(owner=user, name="my-function", role=None)


@pytest.fixture
def owner_client(client, user):
    client.force_login(user)
    return client


def url(name, function, *args):
    return reverse(f"invocations:{name}", args=[function.pk, *args])


def tab_url(function, **params):
    query = "&".join(f"{key}={value}" for key, value in {"tab": "test", **params}.items())
    return f"{reverse('functions:detail', args=[function.pk])}?{query}"


def make_event(user, function, name="MyEvent", payload='{"key1": "saved"}', shareable=False):
    return saved_events.test_event_save(
        user=user, function=function, name=name, payload=payload, shareable=shareable
    )


def code_function(user, code, name="tested"):
    return function_create(
        owner=user, name=name, role=None, files={"lambda_function.py": textwrap.dedent(code)}
    )


def text(response):
    return response.content.decode()


# ---------------------------------------------------------------- the tab


def test_tab_shows_the_test_event_form_with_hello_world(owner_client, function):
    response = owner_client.get(tab_url(function))

    body = text(response)
    assert response.status_code == 200
    assert "Test event action" in body and "Create new event" in body
    assert "Event sharing settings" in body and "Shareable" in body
    assert "data-json-editor" in body
    assert "&quot;key1&quot;: &quot;value1&quot;" in body
    assert 'value="apigateway-aws-proxy"' in body
    assert "invocations/test-tab.js" in body


def test_tab_opens_a_saved_event_from_the_query(owner_client, user, function):
    event = make_event(user, function)

    body = text(owner_client.get(tab_url(function, event=event.pk)))

    assert f'<option value="{event.pk}" selected>MyEvent</option>' in body
    assert "&quot;key1&quot;: &quot;saved&quot;" in body
    assert 'data-open-modal="delete-test-event"' in body


def test_tab_starts_from_the_blueprints_template(owner_client, user):
    function = function_create(owner=user, name="bp", role=None)
    function.blueprint = "queue-consumer"
    function.save()
    Blueprint.objects.create(
        slug="queue-consumer",
        title="Queue consumer",
        description="",
        runtime="python3.11",
        handler="lambda_function.lambda_handler",
        test_event_template="sqs-receive-message",
    )

    body = text(owner_client.get(tab_url(function)))

    assert '<option value="sqs-receive-message" selected>' in body
    assert "Hello from SQS!" in body


@pytest.mark.parametrize(
    ("method", "name", "extra"),
    [
        ("post", "test_run", ()),
        ("post", "test_event_save", ()),
        ("get", "test_event_form", ()),
    ],
)
def test_other_users_get_404(client, other_user, function, method, name, extra):
    client.force_login(other_user)

    response = getattr(client, method)(url(name, function, *extra), {"payload": "{}"}, **HTMX)

    assert response.status_code == 404
    assert not invocation_models.Invocation.objects.exists()
    assert not invocation_models.TestEvent.objects.exists()


def test_other_users_cannot_rename_delete_or_read_results(client, user, other_user, function):
    event = make_event(user, function, shareable=True)
    client.force_login(other_user)

    assert client.get(tab_url(function)).status_code == 404
    assert (
        client.post(url("test_event_rename", function, event.pk), {"name": "x"}).status_code == 404
    )
    assert client.post(url("test_event_delete", function, event.pk)).status_code == 404
    assert client.get(url("test_result", function, uuid.uuid4())).status_code == 404
    assert invocation_models.TestEvent.objects.get(pk=event.pk).name == "MyEvent"


def test_another_users_private_event_is_404_even_for_staff(client, user, function):
    private = make_event(user, function, name="alices-secret", payload='{"secret": 1}')
    staff = User.objects.create_user(username="carol", password="x", is_staff=True)
    client.force_login(staff)

    assert client.post(url("test_event_delete", function, private.pk), **HTMX).status_code == 404
    body = text(client.get(tab_url(function, event=private.pk)))
    assert "alices-secret" not in body and "secret" not in body


# ---------------------------------------------------------------- saving


def test_save_with_htmx_creates_the_event_and_opens_it(owner_client, user, function):
    response = owner_client.post(
        url("test_event_save", function),
        {"name": "MyEvent", "sharing": "private", "payload": '{"key1": "v"}'},
        **HTMX,
    )

    body = text(response)
    event = invocation_models.TestEvent.objects.get()
    assert (event.name, event.payload, event.shareable) == ("MyEvent", '{"key1": "v"}', False)
    assert event.owner_id == user.pk
    assert "The test event MyEvent was successfully saved." in body
    assert f'<option value="{event.pk}" selected>MyEvent</option>' in body
    assert body.lstrip().startswith("<section")


def test_save_without_js_redirects_to_the_tab_with_the_event(owner_client, function):
    response = owner_client.post(
        url("test_event_save", function),
        {"name": "Shared", "sharing": "shareable", "payload": "{}"},
    )

    event = invocation_models.TestEvent.objects.get()
    assert event.shareable
    assert response.status_code == 302
    assert response["Location"] == tab_url(function, event=event.pk)


def test_save_shows_name_errors_at_the_field_and_keeps_the_json(owner_client, function):
    response = owner_client.post(
        url("test_event_save", function),
        {
            "name": "bad name!",
            "sharing": "private",
            "payload": '{"typed": "by hand"}',
            "template": "s3-put",
        },
        **HTMX,
    )

    body = text(response)
    assert not invocation_models.TestEvent.objects.exists()
    assert re.search(r'class="field has-error">\s*<label for="test-event-name">', body)
    assert "Event name must be 1 to 25 characters long" in body
    assert "&quot;typed&quot;: &quot;by hand&quot;" in body
    assert 'value="bad name!"' in body
    assert '<option value="s3-put" selected>' in body


def test_save_revalidates_the_json_on_the_server(owner_client, function):
    body = text(
        owner_client.post(
            url("test_event_save", function),
            {"name": "Broken", "sharing": "private", "payload": '{"key1": }'},
            **HTMX,
        )
    )

    assert not invocation_models.TestEvent.objects.exists()
    assert "Event JSON is not valid JSON: Expecting value (line 1, column 10)." in body


def test_save_without_js_shows_errors_on_the_function_page(owner_client, function):
    response = owner_client.post(
        url("test_event_save", function), {"name": "", "sharing": "private", "payload": "{}"}
    )

    body = text(response)
    assert response.status_code == 200
    assert "Enter an event name." in body
    assert '<nav class="tabs"' in body or 'class="tabs"' in body


def test_save_overwrites_the_event_being_edited(owner_client, user, function):
    event = make_event(user, function)

    owner_client.post(
        url("test_event_save", function),
        {"event": event.pk, "sharing": "private", "payload": '{"key1": "new"}'},
        **HTMX,
    )

    event.refresh_from_db()
    assert event.payload == '{"key1": "new"}' and event.name == "MyEvent"


def test_eleventh_private_event_gets_a_clear_message(owner_client, user, function):
    for number in range(10):
        make_event(user, function, name=f"event{number}")

    body = text(
        owner_client.post(
            url("test_event_save", function),
            {"name": "event10", "sharing": "private", "payload": "{}"},
            **HTMX,
        )
    )

    assert "You can save up to 10 private test events for this function." in body
    assert invocation_models.TestEvent.objects.count() == 10


def test_form_endpoint_loads_a_saved_event_and_switches_modes(owner_client, user, function):
    event = make_event(user, function, payload='{"loaded": 1}')

    edit = text(owner_client.get(url("test_event_form", function), {"event": event.pk}, **HTMX))
    new = text(owner_client.get(url("test_event_form", function), {"mode": "new"}, **HTMX))
    first = text(owner_client.get(url("test_event_form", function), {"mode": "edit"}, **HTMX))

    assert "&quot;loaded&quot;: 1" in edit and 'name="event"' in edit
    assert 'id="test-event-name"' in new and "&quot;key1&quot;: &quot;value1&quot;" in new
    assert f'<option value="{event.pk}" selected>' in first


def test_form_endpoint_without_js_redirects_to_the_tab(owner_client, function):
    response = owner_client.get(url("test_event_form", function), {"template": "s3-put"})

    assert response.status_code == 302
    assert response["Location"] == tab_url(function, template="s3-put")


def test_a_teammate_sees_and_edits_shareable_events(client, user, function):
    shared = make_event(user, function, name="Shared", shareable=True)
    make_event(user, function, name="Private")
    staff = User.objects.create_user(username="carol", password="x", is_staff=True)
    client.force_login(staff)

    body = text(client.get(tab_url(function, mode="edit")))
    client.post(
        url("test_event_save", function),
        {"event": shared.pk, "payload": '{"by": "carol"}'},
        **HTMX,
    )

    assert 'label="Shareable saved events"' in body and ">Shared</option>" in body
    assert ">Private</option>" not in body
    shared.refresh_from_db()
    assert shared.payload == '{"by": "carol"}' and shared.shareable


def test_rename_and_delete_with_htmx(owner_client, user, function):
    event = make_event(user, function)
    make_event(user, function, name="Other")

    taken = text(
        owner_client.post(url("test_event_rename", function, event.pk), {"name": "Other"}, **HTMX)
    )
    renamed = text(
        owner_client.post(url("test_event_rename", function, event.pk), {"name": "Renamed"}, **HTMX)
    )

    assert "data-open-on-load" in taken and "already exists" in taken
    assert "The test event MyEvent was renamed to Renamed." in renamed
    event.refresh_from_db()
    assert event.name == "Renamed"

    deleted = text(owner_client.post(url("test_event_delete", function, event.pk), **HTMX))
    assert "The test event Renamed was deleted." in deleted
    assert list(invocation_models.TestEvent.objects.values_list("name", flat=True)) == ["Other"]


def test_event_template_endpoint_fills_in_the_account(owner_client, user):
    response = owner_client.get(reverse("invocations:event_template", args=["sns-notification"]))

    payload = response.json()["payload"]
    assert account_for_user(user).account_id in payload
    assert json.loads(payload)["Records"][0]["EventSource"] == "aws:sns"
    missing = owner_client.get(reverse("invocations:event_template", args=["no-such"]))
    assert missing.status_code == 404


# ---------------------------------------------------------------- the Test button


def test_test_runs_the_editor_content_and_shows_the_result(owner_client, user):
    function = code_function(user, PRINTING_CODE)

    response = owner_client.post(
        url("test_run", function), {"payload": '{"key1": "unsaved value"}'}, **HTMX
    )

    body = text(response)
    invocation = invocation_models.Invocation.objects.get()
    assert response.status_code == 200
    assert "Execution result: succeeded" in body
    assert "status-success" in body
    assert "&quot;statusCode&quot;: 200" in body
    assert "&quot;body&quot;: &quot;\\&quot;unsaved value\\&quot;&quot;" in body
    assert "checking key1 = unsaved value" in body
    assert REPORT_LINE.search(body.replace("&#x27;", "'"))
    assert f"START RequestId: {invocation.request_id} Version: $LATEST" in body
    assert "<dt>Init duration</dt>" in body
    assert "<dt>Resources configured</dt><dd>128 MB</dd>" in body
    assert f'class="mono break-all">{invocation.request_id}</dd>' in body
    assert "?tab=monitor" in body and "Click here to view the logs in the Monitor tab" in body
    assert invocation.source == "console"
    assert not invocation_models.TestEvent.objects.exists()


def test_warm_run_has_no_init_duration(owner_client, user):
    function = code_function(user, PRINTING_CODE)
    owner_client.post(url("test_run", function), {"payload": '{"key1": "a"}'}, **HTMX)

    body = text(owner_client.post(url("test_run", function), {"payload": '{"key1": "b"}'}, **HTMX))

    assert "Execution result: succeeded" in body
    assert "Init duration" not in body


def test_a_handler_that_raises_shows_failed_with_the_error(owner_client, user):
    function = code_function(user, RAISING_CODE)

    body = text(owner_client.post(url("test_run", function), {"payload": "{}"}, **HTMX))

    assert "Execution result: failed" in body
    assert "status-error" in body
    assert "&quot;errorType&quot;: &quot;ValueError&quot;" in body
    assert "&quot;errorMessage&quot;: &quot;key1 is not acceptable&quot;" in body
    assert "[ERROR] ValueError: key1 is not acceptable" in body
    assert invocation_models.Invocation.objects.get().status == "failed"


def test_payload_over_6_mb_is_refused_and_nothing_recorded(owner_client, user):
    function = code_function(user, PRINTING_CODE)
    payload = json.dumps({"key1": "x" * 6_291_456})

    body = text(owner_client.post(url("test_run", function), {"payload": payload}, **HTMX))

    assert 'class="alert alert-error' in body
    assert "RequestTooLargeException" in body
    assert "Request must be smaller than 6291456 bytes for the InvokeFunction operation" in body
    assert not invocation_models.Invocation.objects.exists()


def test_invalid_json_is_refused_and_nothing_recorded(owner_client, user):
    function = code_function(user, PRINTING_CODE)

    body = text(owner_client.post(url("test_run", function), {"payload": "{not json"}, **HTMX))

    assert "alert-error" in body and "InvalidRequestContentException" in body
    assert "Could not parse request body into json" in body
    assert not invocation_models.Invocation.objects.exists()


def test_test_without_js_renders_the_function_page_with_the_result(owner_client, user):
    function = code_function(user, PRINTING_CODE)

    response = owner_client.post(
        url("test_run", function), {"name": "Draft", "payload": '{"key1": "plain post"}'}
    )

    body = text(response)
    assert response.status_code == 200
    assert "Execution result: succeeded" in body
    assert "checking key1 = plain post" in body
    assert 'value="Draft"' in body
    assert "<html" in body


def test_a_wait_that_times_out_says_it_is_still_running(owner_client, user, monkeypatch):
    function = code_function(user, PRINTING_CODE)

    def give_up(*, invocation, timeout=None):
        raise InvocationWaitTimeout("still running")

    monkeypatch.setattr(views, "invocation_wait", give_up)

    body = text(owner_client.post(url("test_run", function), {"payload": '{"key1": "v"}'}, **HTMX))

    invocation = invocation_models.Invocation.objects.get()
    assert "Execution result: still running" in body
    assert str(invocation.request_id) in body
    assert url("test_result", function, invocation.request_id) in body


def test_result_endpoint_stops_polling_once_finished(owner_client, user):
    function = code_function(user, PRINTING_CODE)
    owner_client.post(url("test_run", function), {"payload": '{"key1": "v"}'}, **HTMX)
    invocation = invocation_models.Invocation.objects.get()

    response = owner_client.get(url("test_result", function, invocation.request_id), **HTMX)

    assert response.status_code == 286
    assert "Execution result: succeeded" in text(response)
