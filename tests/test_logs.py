"""Structured logs (kernel/logs): the lines of a request, of the tasks it enqueued and its
audit events found by one request id, in the production format."""

import io
import json
import logging
import logging.config
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.test import Client
from django.utils import timezone

from audit.models import AuditEvent
from kernel.logs import context
from kernel.logs.config import logging_config
from kernel.logs.gunicorn import GunicornLogger
from scheduling.models import ExecutionStatus, ScheduleExecution
from tests.scheduling.factories import make_review
from tests.scheduling.test_runs import wait_for

Lines = Callable[[], list]


@contextmanager
def _configured(log_format: str) -> Iterator[io.StringIO]:
    """The project's ``LOGGING`` for ``log_format``, writing into a buffer."""
    buffer = io.StringIO()
    config = logging_config(log_format, "INFO")
    config["handlers"]["console"]["stream"] = buffer
    logging.config.dictConfig(config)
    try:
        yield buffer
    finally:
        logging.config.dictConfig(settings.LOGGING)
        context.clear()


@pytest.fixture
def json_lines() -> Iterator[Lines]:
    """The lines logged so far, each parsed as the one JSON object it must be."""
    with _configured("json") as buffer:
        yield lambda: [json.loads(line) for line in buffer.getvalue().splitlines()]


@pytest.fixture
def text_lines() -> Iterator[Lines]:
    with _configured("text") as buffer:
        yield lambda: buffer.getvalue().splitlines()


def _logged_by(lines: list[dict], logger: str) -> dict:
    [line] = [line for line in lines if line["logger"] == logger]
    return line


@pytest.mark.django_db
def test_a_requests_json_lines_carry_its_id_its_agent_and_its_session(agent_api, json_lines):
    api = agent_api("read", name="crm-reviewer")
    response = api.get("/sessions/session_gone_0123456789")

    assert response.status_code == 404
    request_id = response["X-Request-ID"]
    line = _logged_by(json_lines(), "django.request")
    assert line == {
        "time": line["time"],
        "level": "WARNING",
        "logger": "django.request",
        "message": "Not Found: /api/v1/sessions/session_gone_0123456789",
        "request_id": request_id,
        "actor": "agent:crm-reviewer",
        "token_prefix": api.token.prefix,
        "session_id": "session_gone_0123456789",
        "status_code": 404,
        "request": line["request"],
    }
    assert line["time"].endswith("+00:00")
    assert len(request_id) == 32  # made here: none came with the request


@pytest.mark.django_db
def test_a_staff_page_names_the_staff_member(django_user_model, json_lines):
    client = Client()
    client.force_login(django_user_model.objects.create_superuser("ana", password=None))
    response = client.get("/dashboard/sessions/session_gone_0123456789/")

    assert response.status_code == 404
    line = _logged_by(json_lines(), "django.request")
    assert (line["request_id"], line["actor"], line["session_id"]) == (
        response["X-Request-ID"],
        "staff:ana",
        "session_gone_0123456789",
    )


@pytest.mark.django_db
def test_lines_logged_outside_any_request_or_task_have_no_ids(client, json_lines):
    client.get("/no-such-page")
    logging.getLogger("sergas.test").warning("after the request")

    [line] = [line for line in json_lines() if line["logger"] == "sergas.test"]
    assert set(line) == {"time", "level", "logger", "message"}


@pytest.mark.django_db
def test_development_lines_stay_readable_and_end_with_the_request_id(client, text_lines):
    response = client.get("/no-such-page", HTTP_X_REQUEST_ID="dev-request-0001")

    assert response["X-Request-ID"] == "dev-request-0001"
    [line] = [line for line in text_lines() if "Not Found" in line]
    assert line.endswith(
        " WARNING django.request Not Found: /no-such-page [request_id=dev-request-0001]"
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    "incoming",
    [
        "0f8fad5b-d9cb-469f-a165-70867728950e",
        "1f0c2b7e9a3d4c5b8e6f7a8b9c0d1e2f",
        "Root=1-67891233:abcdef012345678912345678",
        "a+b/c=d" * 28,  # 196 characters, base64-like
    ],
)
def test_a_sane_incoming_request_id_is_kept_and_returned(client, incoming):
    assert client.get("/healthz", HTTP_X_REQUEST_ID=incoming)["X-Request-ID"] == incoming


@pytest.mark.django_db
@pytest.mark.parametrize(
    "incoming",
    ["short", "x" * 201, "has spaces in it", 'quote"and\\backslash', "line\nbreak-12345", "é" * 10],
)
def test_an_insane_incoming_request_id_is_replaced(client, incoming):
    returned = client.get("/healthz", HTTP_X_REQUEST_ID=incoming)["X-Request-ID"]
    assert returned != incoming
    assert len(returned) == 32
    assert returned.isalnum()


@pytest.mark.django_db
def test_each_request_gets_its_own_id(client):
    assert client.get("/healthz")["X-Request-ID"] != client.get("/healthz")["X-Request-ID"]


@pytest.mark.django_db
def test_an_audit_event_recorded_in_a_request_has_its_request_id(agent_api):
    api = agent_api("write")
    response = api.post("/sessions", {"orchestrator_id": "orch"}, X_REQUEST_ID="req-audit-0001")

    assert response.status_code == 201
    assert response["X-Request-ID"] == "req-audit-0001"
    event = AuditEvent.objects.get(action="create", session_id=response.json()["session_id"])
    assert event.metadata["request_id"] == "req-audit-0001"


@pytest.mark.django_db
def test_agents_events_reported_in_a_request_have_its_request_id(agent_api):
    api = agent_api("write")
    session_id = api.post("/sessions", {"orchestrator_id": "orch"}).json()["session_id"]
    event = {
        "event_id": str(uuid.uuid4()),
        "hook": "post_tool",
        "name": "crm.get_account",
        "timestamp": timezone.now().isoformat(),
        "session_id": session_id,
        "duration_ms": 12.5,
        # An agent's own request_id key does not pass for ours.
        "metadata": {"request_id": "forged", "account_id": "a1"},
    }
    response = api.post("/events", {"events": [event]}, X_REQUEST_ID="req-events-0001")

    assert response.status_code in (200, 201), response.content
    [stored] = AuditEvent.objects.filter(action="post_tool")
    assert stored.metadata["request_id"] == "req-events-0001"
    assert stored.metadata["account_id"] == "a1"


@pytest.mark.django_db
def test_an_audit_event_recorded_outside_requests_has_no_request_id():
    from audit.services import audit_event_record

    event = audit_event_record(event_type="system", action="probe", actor="test", resource="r")
    assert "request_id" not in event.metadata


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_task_logs_with_the_id_of_the_request_that_enqueued_it(agent_api, celery_processes):
    worker = celery_processes.worker(
        "--pool", "solo", LOG_FORMAT="json", SCHEDULING_SIMULATED_FAILURE_RATE="0"
    )
    worker.wait_for_log("ready")
    review = make_review(account_filter={"count": 3})
    request_id = "req-trigger-0001"
    response = agent_api("write", name="ops-bot").post(
        f"/schedules/{review.pk}/trigger", X_REQUEST_ID=request_id
    )
    assert response.status_code == 202
    execution_id = response.json()["id"]
    wait_for(
        lambda: ScheduleExecution.objects.get(pk=execution_id).status == ExecutionStatus.SUCCEEDED,
        timeout=60,
        what="the triggered run",
    )

    # The batch task logs its success just after committing the run's end.
    worker.wait_for_log(
        '"logger": "celery.app.trace", "message": "Task scheduling.tasks.run_review_batch'
    )
    # The worker's own lines are JSON (Celery's banner, printed, is not a log line).
    lines = [json.loads(line) for line in worker.log().splitlines() if line.startswith("{")]
    traced = [line for line in lines if line.get("request_id") == request_id]
    run_lines = [line for line in traced if line.get("task_id") == execution_id]
    assert any(line["logger"] == "celery.app.trace" for line in run_lines), lines[-20:]
    assert all(line["execution_id"] == execution_id for line in run_lines)
    # The run's batch tasks, enqueued by the run's task, carry the request id on.
    batch_lines = [line for line in traced if line.get("batch_id")]
    assert batch_lines
    assert {line["execution_id"] for line in batch_lines} == {execution_id}
    assert {line["task_id"] for line in batch_lines}.isdisjoint({execution_id})
    # The audit trail of the request and of its tasks, by the same id.
    actors = set(
        AuditEvent.objects.filter(metadata__request_id=request_id).values_list("actor", flat=True)
    )
    assert {"agent:ops-bot", "worker:run_review"} <= actors


@pytest.mark.django_db
def test_a_task_run_in_its_callers_thread_extends_the_callers_context_and_gives_it_back():
    from scheduling.tasks import publish_due_runs

    seen = []
    handler = logging.Handler()
    handler.emit = lambda record: seen.append(dict(context.current()))
    logging.getLogger("celery.app.trace").addHandler(handler)
    token = context.replace({"request_id": "req-eager-0001", "actor": "staff:ana"})
    try:
        result = publish_due_runs.apply()
        after = dict(context.current())
    finally:
        context.reset(token)
        logging.getLogger("celery.app.trace").removeHandler(handler)

    assert after == {"request_id": "req-eager-0001", "actor": "staff:ana"}
    assert seen
    assert seen[-1] == {**after, "task_id": result.id}


def test_production_writes_json_and_other_settings_text():
    code = "from django.conf import settings; print(settings.LOGGING['formatters'].popitem()[0])"

    def formatter(module: str, **env: str) -> str:
        environment = {**os.environ, "DJANGO_SETTINGS_MODULE": module, **env}
        environment.pop("LOG_FORMAT", None)
        answer = subprocess.run(
            [sys.executable, "-c", code], env=environment, capture_output=True, text=True
        )
        assert answer.returncode == 0, answer.stderr
        return answer.stdout.strip()

    secret = "s3cr3t-" + "k" * 40 + "-abcdefgh"
    assert formatter("sergas.settings.production", SECRET_KEY=secret, ALLOWED_HOSTS="x") == "json"
    assert formatter("sergas.settings.base") == "text"


def test_an_unknown_log_format_is_refused():
    with pytest.raises(ImproperlyConfigured, match="LOG_FORMAT must be one of json, text"):
        logging_config("xml", "INFO")


def test_gunicorns_lines_go_through_the_projects_handler():
    from gunicorn.config import Config

    GunicornLogger(Config())  # gunicorn's own handler on its error log, replaced
    error_log = logging.getLogger("gunicorn.error")
    try:
        assert not [h for h in error_log.handlers if type(h) is logging.StreamHandler]
        with _configured("json") as buffer:
            context.replace({"request_id": "req-gunicorn-01"})
            error_log.warning("Worker timeout (pid:%s)", 4242)
            [line] = [json.loads(line) for line in buffer.getvalue().splitlines()]
    finally:
        error_log.propagate = False
    assert (line["logger"], line["message"], line["request_id"]) == (
        "gunicorn.error",
        "Worker timeout (pid:4242)",
        "req-gunicorn-01",
    )
