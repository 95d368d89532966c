"""/metrics: the seven orchestrator metrics, django-prometheus's, and several processes."""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import connection

from sessions import services
from sessions.models import AgentSession
from tests.factories import make_session
from tests.scrape import scrape, value

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]


def test_metrics_carry_the_spec_names_and_labels_beside_django_prometheus():
    families = {name for name, _ in scrape()}
    assert "django_http_requests_total_by_method_total" in families
    assert "orchestrator_active_sessions" in families
    for metric in ("orchestrator_tool_duration_seconds", "orchestrator_task_duration_seconds"):
        # Histograms are declared with labels, so their series appear on first use; the
        # help and type lines are there from the start.
        assert f"# TYPE {metric} histogram" in _text()


def _text() -> str:
    from django.test import Client

    return Client().get("/metrics").content.decode()


def test_active_sessions_is_counted_in_the_database_at_each_scrape():
    assert value(scrape(), "orchestrator_active_sessions") == 0
    running = make_session("running")
    make_session("paused")
    make_session("pending")
    make_session("completed")
    assert value(scrape(), "orchestrator_active_sessions") == 2
    services.session_complete(running.session_id)
    assert value(scrape(), "orchestrator_active_sessions") == 1


def test_active_sessions_cannot_drift_when_rows_change_behind_the_services_back():
    make_session("running")
    # A crashed process, a manual fix in psql: no increment or decrement ever ran.
    AgentSession.objects.update(status="cancelled")
    assert value(scrape(), "orchestrator_active_sessions") == 0


def test_a_scrape_survives_a_database_outage_by_leaving_the_gauge_out(monkeypatch):
    from django.db import DatabaseError

    def unavailable():
        raise DatabaseError("connection refused")

    monkeypatch.setattr("sessions.selectors.sessions_count_active", unavailable)
    samples = scrape()
    assert ("orchestrator_active_sessions", frozenset()) not in samples
    assert any(name.startswith("django_http") for name, _ in samples)


_RECORD_IN_ANOTHER_PROCESS = """
from sessions.metrics import TOOL_INVOCATIONS
TOOL_INVOCATIONS.labels(tool_name="crm.get_account", agent_name="worker").inc({count})
"""


def test_several_processes_add_up_in_multiprocess_mode(tmp_path, monkeypatch):
    """Two worker processes record into PROMETHEUS_MULTIPROC_DIR; one scrape sums them,
    and the database gauge appears once, not once per process."""
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    for count in (2, 3):
        subprocess.run(
            [sys.executable, "-c", _RECORD_IN_ANOTHER_PROCESS.format(count=count)],
            cwd=ROOT,
            env=env,
            check=True,
            timeout=60,
        )
    make_session("running")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    samples = scrape()
    labels = {"tool_name": "crm.get_account", "agent_name": "worker"}
    assert value(samples, "orchestrator_tool_invocations_total", **labels) == 5
    gauges = [key for key in samples if key[0] == "orchestrator_active_sessions"]
    assert gauges == [("orchestrator_active_sessions", frozenset())]
    assert samples[gauges[0]] == 1
    assert connection.is_usable()


def test_serve_metrics_refuses_to_run_without_a_multiprocess_directory(monkeypatch):
    from django.core.management import CommandError, call_command

    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    with pytest.raises(CommandError, match="PROMETHEUS_MULTIPROC_DIR is not set"):
        call_command("serve_metrics")


def test_serve_metrics_exports_what_worker_processes_recorded(tmp_path):
    """A host running only Celery workers: its processes' files, scraped on a port."""
    import httpx
    from prometheus_client.parser import text_string_to_metric_families

    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    subprocess.run(
        [sys.executable, "-c", _RECORD_IN_ANOTHER_PROCESS.format(count=4)],
        cwd=ROOT,
        env=env,
        check=True,
        timeout=60,
    )
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [
            sys.executable,
            "manage.py",
            "serve_metrics",
            "--port",
            str(port),
            "--address",
            "127.0.0.1",
        ],
        cwd=ROOT,
        env={**env, "DJANGO_SETTINGS_MODULE": "sergas.settings.test"},
    )
    try:
        text = _get_when_up(f"http://127.0.0.1:{port}/metrics", server, httpx)
    finally:
        server.terminate()
        server.wait(timeout=30)
    samples = {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
    labels = frozenset({"tool_name": "crm.get_account", "agent_name": "worker"}.items())
    assert samples[("orchestrator_tool_invocations_total", labels)] == 4
    assert not any(name == "orchestrator_active_sessions" for name, _ in samples)


def _get_when_up(url, server, httpx):
    for _ in range(300):
        assert server.poll() is None, "serve_metrics exited"
        try:
            return httpx.get(url, timeout=2).text
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError("serve_metrics never answered")


@pytest.mark.django_db(transaction=True)  # the outage closes the test's connection
def test_a_scrape_with_postgresql_unreachable_succeeds_without_the_database_metrics(caplog):
    """A real outage: the first database reader fails to connect and the others are not
    tried (each would wait for the connect timeout again)."""
    from django.test import Client
    from prometheus_client.parser import text_string_to_metric_families

    from tests.test_availability import database_unreachable

    assert value(scrape(), "sergas_metrics_database_up") == 1
    with database_unreachable():
        response = Client(raise_request_exception=False).get("/metrics")
    assert response.status_code == 200
    samples = {
        sample.name: sample.value
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
    }
    assert samples["sergas_metrics_database_up"] == 0
    for absent in (
        "orchestrator_active_sessions",
        "sergas_beat_leaders",
        "sergas_work_pending_batches",
        "sergas_audit_unsealed_age_seconds",
        "sergas_audit_default_partition_rows",
    ):
        assert absent not in samples
    assert any(name.startswith("django_http_requests") for name in samples)
    failures = [r for r in caplog.records if "Database metrics not collected" in r.getMessage()]
    assert len(failures) == 1
