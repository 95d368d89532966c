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
    params = connection.get_connection_params()
    user = quote(params.get("user") or "")
    password = f":{quote(params['password'])}" if params.get("password") else ""
    host = params.get("host") or ""
    if host.startswith("/"):  # a socket directory, spelled as embedded_servers spells it
        return f"postgresql://{user}{password}@/{params['dbname']}?host={host}"
    port = f":{params['port']}" if params.get("port") else ""
    return f"postgresql://{user}{password}@{host}{port}/{params['dbname']}"


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
    assert "ingest while sealing every second, seals signed and published" in run.stdout
    assert "inclusion proof of a sealed event, p99" in run.stdout
    assert "verify the sealed trail, signatures and witness checked" in run.stdout
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_namespace WHERE nspname = 'bench_audit'")
        assert cursor.fetchone()[0] == 0  # the scratch schema is gone
