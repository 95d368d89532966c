"""The audit benchmark runs end to end in its quick mode, so it never rots."""

import os
import subprocess
import sys
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connection

pytestmark = pytest.mark.django_db(transaction=True)


def _database_url() -> str:
    """The URL of the test database (the script must not touch the development one)."""
    db = connection.settings_dict
    user = quote(db["USER"] or "")
    password = f":{quote(db['PASSWORD'])}" if db["PASSWORD"] else ""
    host = db["HOST"] or ""
    if host.startswith("/"):
        return f"postgresql://{user}{password}@/{db['NAME']}?host={quote(host)}"
    port = f":{db['PORT']}" if db["PORT"] else ""
    return f"postgresql://{user}{password}@{host}{port}/{db['NAME']}"


def test_the_quick_audit_benchmark_runs_and_reports_every_figure():
    run = subprocess.run(
        [sys.executable, "bench/audit_query.py", "--quick"],
        cwd=settings.BASE_DIR,
        env={**os.environ, "DATABASE_URL": _database_url()},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    for name in ("session", "event type", "actor", "resource", "metadata contains"):
        assert f"search by {name}, 1-month window, p95" in run.stdout
    assert "detach + drop speed-up over DELETE" in run.stdout
    assert "baseline DELETE of the same rows" in run.stdout
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_namespace WHERE nspname = 'bench_audit'")
        assert cursor.fetchone()[0] == 0  # the scratch schema is gone
