"""deploy/: the Prometheus alerts pass promtool's checks and unit tests, and every metric
the alerts and the Grafana dashboard name is one the application exports."""

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parent.parent
PROMETHEUS = ROOT / "deploy" / "prometheus"
DASHBOARD = ROOT / "deploy" / "grafana" / "sergas.json"

# Our metrics and django-prometheus's; anything else in an expression is PromQL.
_METRIC = re.compile(r"\b((?:sergas|orchestrator|django)_[A-Za-z0-9_:]*)")
_QUOTED = re.compile(r'"[^"]*"')
_SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "summary": ("_count", "_sum", "_created"),
    "gauge": ("",),
}


def _names_in(expression: str) -> set[str]:
    return set(_METRIC.findall(_QUOTED.sub('""', expression)))


def _alert_expressions() -> dict[str, str]:
    rules = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())
    return {rule["alert"]: rule["expr"] for group in rules["groups"] for rule in group["rules"]}


def _dashboard_expressions() -> dict[str, str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return {
        f"{panel['title']} / {target['refId']}": target["expr"]
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
    }


@pytest.fixture
def exported(db) -> set[str]:
    """Every series name /metrics can carry: declared families (a labelled histogram
    shows its HELP and TYPE before its first observation) with their types' suffixes,
    and the database-derived ones."""
    text = Client().get("/metrics").content.decode()
    names = set()
    for family in text_string_to_metric_families(text):
        for suffix in _SUFFIXES.get(family.type, ("",)):
            names.add(family.name + suffix)
        names.update(sample.name for sample in family.samples)
    return names


def test_every_metric_the_alerts_name_is_exported(exported):
    missing = {
        alert: sorted(_names_in(expression) - exported)
        for alert, expression in _alert_expressions().items()
        if _names_in(expression) - exported
    }
    assert missing == {}
    assert all(_names_in(expression) for expression in _alert_expressions().values())


def test_every_metric_the_dashboard_names_is_exported(exported):
    expressions = _dashboard_expressions()
    missing = {
        panel: sorted(_names_in(expression) - exported)
        for panel, expression in expressions.items()
        if _names_in(expression) - exported
    }
    assert missing == {}
    named = set().union(*(_names_in(expression) for expression in expressions.values()))
    # The dashboard shows the SPEC's seven metrics and the operations metrics.
    for metric in (
        "orchestrator_tool_invocations_total",
        "orchestrator_tool_errors_total",
        "orchestrator_tool_duration_seconds_bucket",
        "orchestrator_task_executions_total",
        "orchestrator_task_duration_seconds_bucket",
        "orchestrator_session_duration_seconds_bucket",
        "orchestrator_active_sessions",
        "sergas_beat_leaders",
        "sergas_dispatch_lag_seconds_bucket",
        "sergas_runs_finished_total",
        "sergas_batches_leased_total",
        "sergas_batch_leases_expired_total",
        "sergas_batches_taken_over_total",
        "sergas_work_pending_batches",
        "sergas_work_oldest_pending_seconds",
        "sergas_audit_unsealed_age_seconds",
        "sergas_audit_default_partition_rows",
        "sergas_audit_witness_publish_failures_total",
        "sergas_prepared_runs_single_start_total",
    ):
        assert metric in named, metric


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (Debian: apt-get install prometheus)")
    return subprocess.run(
        [promtool, *args], cwd=PROMETHEUS, capture_output=True, text=True, timeout=120
    )


def test_the_alert_rules_are_valid():
    result = _promtool("check", "rules", "alerts.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_alert_rules_pass_their_unit_tests():
    result = _promtool("test", "rules", "alerts_test.yml")
    assert result.returncode == 0, result.stdout + result.stderr
