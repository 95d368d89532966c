"""/metrics: the seven orchestrator metrics, django-prometheus's, and several processes."""

import os
import subprocess
import sys
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
