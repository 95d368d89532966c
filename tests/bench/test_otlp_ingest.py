"""bench/otlp_ingest.py in quick mode: both paths store every span, and the figure is a
ratio of spans/s through HTTP to COPY into the span table."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.processes import child_database_url

BENCH = Path(__file__).resolve().parents[2] / "bench"


@pytest.mark.slow
def test_the_otlp_ingest_benchmark_runs_in_quick_mode(django_db_setup, settings):
    env = {**os.environ, "DATABASE_URL": child_database_url(), "REDIS_URL": settings.REDIS_URL}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    completed = subprocess.run(
        [sys.executable, str(BENCH / "otlp_ingest.py"), "--quick", "--batch", "256"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    result = json.loads((BENCH / "results" / "otlp_ingest.json").read_text())
    assert result["quick"] is True
    [figure] = result["figures"]
    assert figure["unit"] == "spans/s"
    assert figure["baseline_name"] == "COPY into trace_span"
    assert figure["value"] > 0
    assert figure["ratio"] == figure["value"] / figure["baseline_value"]
    assert "256 spans/request" in figure["name"]
