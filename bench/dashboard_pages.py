"""Dashboard page latency: every page, p50 and p95, against a baseline page, in one run.

Each page is requested through Django's full stack in this process (middleware, session
and permission lookups, views, selectors, templates, PostgreSQL and Redis), logged in as
the demo superuser, so the figure is the server's time without the socket. The baseline
is the login page: a template and no query. Target: every page p95 < 200 ms.

Data: the demo data of ``manage.py seed_demo`` plus, to look beyond it, ``--sessions N``
synthetic sessions and ``--events N`` audit events spread over the last 30 days
(generated in SQL), and a day of scheduled runs. It uses a database of its own
(``<DATABASE_URL name>_bench_dashboard``), created fresh.

    DATABASE_URL=... REDIS_URL=... python bench/dashboard_pages.py [--quick]
        [--sessions 100000 --events 1000000] [--requests 200]
"""

import io
import logging
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.harness import Figure, parser, percentile, report, use_fresh_database  # noqa: E402

TARGET_MS = 200.0

# (name, path); {session}, {review} are filled in from the data.
PAGES = [
    ("overview", "/dashboard/"),
    ("overview live fragment", "/dashboard/live/active-sessions"),
    ("sessions list", "/dashboard/sessions/"),
    (
        "sessions list, filtered",
        "/dashboard/sessions/?status=failed&status=completed&owner_id=owner_07",
    ),
    ("session detail", "/dashboard/sessions/{session}/"),
    ("session control confirmation", "/dashboard/sessions/{session}/cancel"),
    ("schedules list", "/dashboard/schedules/"),
    ("schedule detail", "/dashboard/schedules/{review}/"),
    ("schedule edit form", "/dashboard/schedules/{review}/edit"),
    ("audit explorer, last 7 days", "/dashboard/audit/"),
    (
        "audit explorer, type and metadata",
        "/dashboard/audit/?event_type=tool&metadata_key=error_type&metadata_value=CrmTimeout",
    ),
    ("audit export CSV, one session", "/dashboard/audit/export.csv?session_id={session}"),
]

SESSIONS_SQL = """
INSERT INTO agent_session (
    session_id, orchestrator_id, status, session_type, context, metrics, account_ids,
    owner_id, version, error_message, created_at, updated_at, started_at, finished_at,
    last_heartbeat_at, last_checkpoint_sequence, recovery_count, created_by)
SELECT 'session_bench_' || g, 'bench-orchestrator',
       (ARRAY['completed', 'completed', 'completed', 'failed', 'cancelled', 'pending',
              'interrupted'])[1 + g %% 7],
       (ARRAY['scheduled','on_demand','manual','recovery'])[1 + g %% 4],
       jsonb_build_object('current_batch', 2, 'total_batches', 2,
                          'processed_accounts', jsonb_build_array('acct_1', 'acct_2'),
                          'failed_accounts', '[]'::jsonb),
       '{}'::jsonb, ARRAY['acct_1', 'acct_2', 'acct_' || g],
       'owner_' || lpad((g %% 50)::text, 2, '0'),
       3, '', t, t, t, CASE WHEN g %% 7 < 5 THEN t + interval '20 minutes' END, t, 2, 0,
       'agent:bench'
FROM generate_series(1, %(count)s) AS g,
     LATERAL (SELECT now() - (g %% 20160) * interval '1 minute' AS t) AS at;
INSERT INTO agent_session_account (session_id, account_id)
SELECT session_id, unnest(account_ids) FROM agent_session
 WHERE session_id LIKE 'session_bench_%%'
ON CONFLICT DO NOTHING
"""

EVENTS_SQL = """
INSERT INTO audit_event (
    event_id, timestamp, session_id, event_type, actor, action, resource, metadata)
SELECT gen_random_uuid(), now() - random() * interval '30 days',
       'session_bench_' || (1 + g %% greatest(%(sessions)s, 1)), 'tool', 'agent:bench', 'post_tool',
       'tool:crm.get_account',
       CASE WHEN g %% 20 = 0
            THEN jsonb_build_object('duration_ms', 40, 'error_type', 'CrmTimeout')
            ELSE jsonb_build_object('duration_ms', 40) END
FROM generate_series(1, %(count)s) AS g
"""

RUNS_SQL = """
INSERT INTO schedule_execution (
    id, review_id, review_name, nominal_time, attempt, trigger, status, priority, due_at,
    enqueued_at, started_at, finished_at, start_lag_ms, duration_ms, accounts_processed,
    accounts_failed, error, created_at)
SELECT gen_random_uuid(), %(review)s, 'bench', n, 1, 'schedule',
       CASE WHEN g %% 30 = 0 THEN 'failed' ELSE 'succeeded' END, 'medium', n, n,
       n + (40 + g %% 900) * interval '1 millisecond', n + interval '2 minutes',
       40 + g %% 900, 120000, 10, 0, '', n
FROM generate_series(1, 720) AS g, LATERAL (SELECT now() - g * interval '2 minutes' AS n) AS at
"""


def _load(sessions: int, events: int) -> None:
    from django.db import connection

    from scheduling.models import ScheduledReview

    review = ScheduledReview.objects.order_by("pk").first()
    with connection.cursor() as cursor:
        if sessions:
            cursor.execute(SESSIONS_SQL, {"count": sessions})
        if events:
            cursor.execute(EVENTS_SQL, {"count": events, "sessions": sessions})
        cursor.execute(RUNS_SQL, {"review": review.pk})
        cursor.execute("ANALYZE")


def main() -> int:
    arguments = parser(__doc__.split("\n")[0])
    arguments.add_argument("--requests", type=int, help="requests per page (default 200)")
    arguments.add_argument("--sessions", type=int, default=0, help="synthetic sessions to add")
    arguments.add_argument("--events", type=int, default=0, help="synthetic audit events to add")
    args = arguments.parse_args()
    requests = args.requests or (10 if args.quick else 200)

    use_fresh_database("dashboard")
    import django

    django.setup()
    logging.getLogger("audit").setLevel(logging.WARNING)
    from django.conf import settings
    from django.core.management import call_command
    from django.test import Client

    from sessions.models import SessionStatus

    quiet = io.StringIO()
    call_command("migrate", verbosity=0, interactive=False)
    call_command("maintain_audit_partitions", stdout=quiet)
    call_command("seed_demo", stdout=quiet)
    _load(args.sessions, args.events)

    from django.contrib.auth import get_user_model

    from scheduling.models import ScheduledReview
    from sessions.models import AgentSession

    settings.ALLOWED_HOSTS = ["*"]
    client = Client()
    client.force_login(get_user_model().objects.get(username="demo"))
    values = {
        "session": AgentSession.objects.filter(status=SessionStatus.RUNNING)
        .order_by("created_at")
        .values_list("session_id", flat=True)
        .first(),
        "review": ScheduledReview.objects.order_by("pk").values_list("pk", flat=True).first(),
    }

    def timed(path: str, client: Client = client) -> list[float]:
        samples = []
        for i in range(requests + 3):
            start = time.perf_counter()
            response = client.get(path)
            if response.streaming:
                b"".join(response.streaming_content)
            elapsed = (time.perf_counter() - start) * 1000
            assert response.status_code == 200, (path, response.status_code)
            if i >= 3:  # warm-up: first requests fill caches and connections
                samples.append(elapsed)
        return samples

    baseline = timed("/login/", Client())  # anonymous: the form itself
    baseline_p95 = percentile(baseline, 0.95)
    figures = []
    for name, template in PAGES:
        samples = timed(template.format(**values))
        p95 = percentile(samples, 0.95)
        figures.append(
            Figure(
                name=f"{name} p95",
                value=p95,
                unit="ms",
                baseline_name="login page p95",
                baseline_value=baseline_p95,
                target=f"< {TARGET_MS:.0f} ms",
                met=p95 < TARGET_MS,
            )
        )
        figures.append(Figure(name=f"{name} p50", value=percentile(samples, 0.5), unit="ms"))
    counts = (
        f"{AgentSession.objects.count()} sessions, "
        f"{ScheduledReview.objects.count()} reviews, {requests} requests per page"
    )
    report("dashboard_pages", figures, quick=args.quick, notes=counts)
    print(f"  data: {counts}")
    return 0 if all(f.met is not False for f in figures) or args.quick else 1


if __name__ == "__main__":
    sys.exit(main())
