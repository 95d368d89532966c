"""HTTP throughput of the busiest pages against a trivial Django view on the same server.

Loads 100,000 sessions and 10 million audit events spread over the last 12 months (2,000
and 50,000 with --quick) into a database of its own, serves the project with gunicorn
(``--workers`` processes, as docs/deployment.md configures it), and drives each URL
with wrk: requests/s and p99 latency. The baseline is ``/bench/trivial``, a view that
does no work, on the same server in the same run: the ratio is what each page costs
beyond Django and gunicorn themselves.
"""

import sys
from pathlib import Path

# Run as a script, this file's folder comes first on sys.path and its name would hide the
# standard library's ``http`` package from Django: put the project root there instead.
ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]

import os  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402

from bench.harness import Figure, gunicorn, migrate, parser, report, use_fresh_database  # noqa: E402

MONTHS = 12
# Issue 13: the API's own overhead. The cached session detail, side by side with the
# trivial view in one run: at least this share of its requests/s, and a p99 below this.
DETAIL = "session detail (cached)"
DETAIL_MIN_SHARE = 0.70
DETAIL_MAX_P99_MS = 10.0
STATUSES = ["pending", "running", "paused", "completed", "failed", "interrupted", "cancelled"]


def _wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):  # Debian's package, as in CI
        subprocess.run(
            ["apt-get", "install", "-y", "-q", "wrk"], check=True, stdout=subprocess.DEVNULL
        )
        found = shutil.which("wrk")
    if not found:
        raise SystemExit("wrk is needed: apt-get install wrk")
    return found


def _load(sessions: int, events: int) -> None:
    """Sessions and audit events in SQL (generate_series), with the hash trigger on."""
    from django.db import connection
    from django.utils import timezone
    from psqlextra.partitioning import PostgresTimePartition, PostgresTimePartitionSize

    from audit.models import AuditEvent
    from audit.partitions.partitioning import add_months, month_start, partition_name, partitions

    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO agent_session
                (session_id, orchestrator_id, status, session_type, context, metrics,
                 account_ids, owner_id, version, error_message, created_at, updated_at,
                 started_at, last_checkpoint_sequence, recovery_count, created_by)
            SELECT 'session_bench_' || lpad(g::text, 8, '0'), 'orch-' || g %% 20,
                   (%s::text[])[1 + g %% 7], 'scheduled',
                   jsonb_build_object('account_ids', jsonb_build_array('acct_' || g),
                                      'current_batch', g %% 10, 'total_batches', 10,
                                      'processed_accounts', jsonb_build_array(),
                                      'failed_accounts', jsonb_build_array(),
                                      'recommendations_count', g %% 7, 'metadata', '{}'::jsonb),
                   jsonb_build_object('api_call_count', g %% 100, 'error_count', g %% 3),
                   ARRAY['acct_' || g], 'owner_' || lpad((g %% 50)::text, 2, '0'), 1, '',
                   %s - g * interval '5 seconds', %s - g * interval '5 seconds',
                   %s - g * interval '5 seconds', 0, 0, 'agent:orch-' || g %% 20
              FROM generate_series(1, %s) AS g
            """,
            [STATUSES, now, now, now, sessions],
        )
        cursor.execute(
            "INSERT INTO agent_session_account (session_id, account_id)"
            " SELECT session_id, account_ids[1] FROM agent_session"
        )
    existing = {partition.name for partition in partitions()}
    first = add_months(month_start(now), -(MONTHS - 1))
    size = PostgresTimePartitionSize(months=1)
    with connection.schema_editor() as editor:
        for index in range(MONTHS):
            start = add_months(first, index)
            if partition_name(start) not in existing:
                PostgresTimePartition(size=size, start_datetime=start.replace(tzinfo=None)).create(
                    AuditEvent, editor
                )
    span = (now - first).total_seconds()
    chunk = max(events // 20, 1000)
    with connection.cursor() as cursor:
        for low in range(1, events + 1, chunk):
            high = min(low + chunk - 1, events)
            cursor.execute(
                """
                INSERT INTO audit_event
                    (event_id, "timestamp", session_id, event_type, actor, action, resource,
                     metadata)
                SELECT gen_random_uuid(),
                       %s::timestamptz + i * (%s::float8 / %s) * interval '1 second',
                       'session_bench_' || lpad((i %% %s + 1)::text, 8, '0'),
                       CASE WHEN i %% 5 < 3 THEN 'tool' ELSE 'task' END,
                       'agent:orch-' || i %% 20,
                       CASE WHEN i %% 5 < 3 THEN 'post_tool' ELSE 'post_task' END,
                       'tool:crm.get_account',
                       jsonb_build_object('duration_ms', i %% 997,
                                          'error_type', CASE WHEN i %% 50 = 0 THEN 'CRMTimeout' END)
                  FROM generate_series(%s::bigint, %s::bigint) AS i
                """,
                [first, span, events, sessions, low, high],
            )
            print(f"  loaded {high:,} / {events:,} audit events", flush=True)
        cursor.execute("ANALYZE")


def _staff_cookie() -> str:
    """A logged-in staff session (stored in PostgreSQL, so gunicorn accepts it)."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.test import Client

    user = get_user_model().objects.create_user("bench-staff", password="x", is_staff=True)
    user.groups.add(Group.objects.get(name="Operators"))
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}"


_RATE = re.compile(r"Requests/sec:\s+([\d.]+)")
_P99 = re.compile(r"^\s+99%\s+([\d.]+)(us|ms|s)\s*$", re.M)


def _drive(
    wrk: str, url: str, *, seconds: int, connections: int, headers: list[str]
) -> tuple[float, float]:
    """(requests/s, p99 ms) of ``url`` under wrk; fails if any request was not a 2xx."""
    command = [wrk, "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", url]
    for header in headers:
        command += ["-H", header]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    if "Non-2xx" in output:
        raise RuntimeError(f"{url} answered errors under load:\n{output}")
    rate = float(_RATE.search(output).group(1))
    value, unit = _P99.search(output).groups()
    p99 = float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
    return rate, p99


def main() -> None:
    arguments = parser(__doc__.splitlines()[0])
    arguments.add_argument("--workers", type=int, default=4, help="gunicorn workers")
    arguments.add_argument("--seconds", type=int, default=None, help="wrk duration per URL")
    arguments.add_argument("--connections", type=int, default=16)
    options = arguments.parse_args()
    sessions, events = (2_000, 50_000) if options.quick else (100_000, 10_000_000)
    seconds = options.seconds or (3 if options.quick else 20)
    wrk = _wrk()

    use_fresh_database("http")
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"
    migrate()
    started = time.perf_counter()
    _load(sessions, events)
    print(
        f"loaded {sessions:,} sessions and {events:,} audit events"
        f" in {time.perf_counter() - started:.0f} s"
    )

    from access.services import agent_token_create

    token = agent_token_create(name="bench-http", scopes=["read"], actor="bench:http").secret
    auth = [f"Authorization: Bearer {token}"]
    targets = {
        DETAIL: ("/api/v1/sessions/session_bench_00000042", auth),
        "session list (first page of 50)": ("/api/v1/sessions?limit=50", auth),
        "dashboard overview": ("/dashboard/", [f"Cookie: {_staff_cookie()}"]),
    }
    figures = []
    with gunicorn(
        workers=options.workers, env={"DJANGO_SETTINGS_MODULE": "bench.settings"}
    ) as base:
        trivial = _drive(
            wrk,
            f"{base}/bench/trivial",
            seconds=seconds,
            connections=options.connections,
            headers=[],
        )
        for name, (path, headers) in targets.items():
            rate, p99 = _drive(
                wrk,
                f"{base}{path}",
                seconds=seconds,
                connections=options.connections,
                headers=headers,
            )
            targeted = name == DETAIL
            figures += [
                Figure(
                    name=f"{name} requests/s",
                    value=rate,
                    unit="req/s",
                    baseline_name="trivial Django view",
                    baseline_value=trivial[0],
                    target=f">= {DETAIL_MIN_SHARE:.0%} of the trivial view" if targeted else "",
                    met=rate >= DETAIL_MIN_SHARE * trivial[0] if targeted else None,
                ),
                Figure(
                    name=f"{name} p99",
                    value=p99,
                    unit="ms",
                    baseline_name="trivial Django view",
                    baseline_value=trivial[1],
                    target=f"< {DETAIL_MAX_P99_MS:.0f} ms" if targeted else "",
                    met=p99 < DETAIL_MAX_P99_MS if targeted else None,
                ),
            ]
    report(
        "http",
        figures,
        quick=options.quick,
        notes=f"{sessions} sessions, {events} audit events; gunicorn {options.workers} "
        f"workers; wrk {options.connections} connections, {seconds} s per URL",
    )


if __name__ == "__main__":
    main()
