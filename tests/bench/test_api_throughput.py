"""bench/api_throughput.py --quick runs end to end, so the benchmark never rots.

It asserts that the run completes and reports both figures, never a timing: these
machines are shared and noisy.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.processes import child_database_url

ROOT = Path(__file__).resolve().parents[2]
RESULT = ROOT / "bench" / "results" / "api_throughput.json"

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def test_the_quick_benchmark_ingests_over_http_and_reports_the_ratio_to_copy():
    env = {
        **os.environ,
        "DATABASE_URL": child_database_url(),
        "DJANGO_SETTINGS_MODULE": "sergas.settings.test",
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    completed = subprocess.run(
        [sys.executable, "bench/api_throughput.py", "--quick", "--events", "2000"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "HTTP batch ingest" in completed.stdout
    assert "baseline COPY into audit_event" in completed.stdout
    report = json.loads(RESULT.read_text())
    assert report["quick"] is True
    http, versus_bulk = report["figures"]
    assert http["unit"] == "events/s"
    assert http["value"] > 0
    assert http["baseline_value"] > 0
    assert http["ratio"] == pytest.approx(http["value"] / http["baseline_value"])
    assert versus_bulk["baseline_name"] == "bulk_create into audit_event"
