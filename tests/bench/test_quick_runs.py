"""Every benchmark script runs in its quick mode, so none of them rots. A script with a
test module of its own here (``test_<script>.py``) is checked there instead."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.harness import scripts
from tests.processes import child_database_url

BENCH = Path(__file__).resolve().parents[2] / "bench"
OWN_TESTS = {p.stem.removeprefix("test_") for p in Path(__file__).parent.glob("test_*.py")}
SCRIPTS = [script for script in scripts() if script not in OWN_TESTS]


@pytest.mark.slow
@pytest.mark.parametrize("script", SCRIPTS)
def test_the_benchmark_runs_in_quick_mode(script, django_db_setup, settings):
    env = {
        **os.environ,
        "DATABASE_URL": child_database_url(),  # benches derive their own database from it
        "REDIS_URL": settings.REDIS_URL,
    }
    env.pop("DJANGO_SETTINGS_MODULE", None)
    completed = subprocess.run(
        [sys.executable, str(BENCH / f"{script}.py"), "--quick"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    result = json.loads((BENCH / "results" / f"{script}.json").read_text())
    assert result["quick"] is True
    assert result["figures"], "a benchmark must report figures"
    assert all(figure["value"] == figure["value"] for figure in result["figures"])  # no NaN
