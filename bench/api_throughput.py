"""Batch event ingest over HTTP against a direct write into the same table, in one run.

The HTTP path is the real one: gunicorn workers serving ``POST /api/v1/events`` (token
check, throttle, JSON parsing and validation, replay detection, one bulk INSERT per
batch, metrics on commit), fed by concurrent clients. The baselines write the same rows
into ``audit_event`` straight from this process, over as many connections as there are
clients, one transaction per batch: PostgreSQL ``COPY`` with the values ready-made (the
raw ceiling) and Django's ``bulk_create``. Prints events/s and the ratio; target: HTTP
>= 30% of COPY.

    DATABASE_URL=... REDIS_URL=... python bench/api_throughput.py [--quick]

Rows written here stay in the audit trail (it is append-only): run it against a
scratch or development database.
"""

import json
import logging
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.harness import Figure, gunicorn, parser, report, setup_django  # noqa: E402

TARGET_RATIO = 0.30


def main() -> int:
    arguments = parser(__doc__.split("\n")[0])
    arguments.add_argument("--events", type=int, help="events per path (default 100000)")
    arguments.add_argument("--batch", type=int, default=1000, help="events per request")
    arguments.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    arguments.add_argument("--clients", type=int, default=4, help="concurrent HTTP clients")
    args = arguments.parse_args()
    total = args.events or (4000 if args.quick else 100_000)
    batch = min(args.batch, 500) if args.quick else args.batch

    setup_django()
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one INFO line per request
    from django.core.management import call_command

    from access.services import agent_token_create
    from audit.services import audit_partitions_maintain
    from sessions import services

    call_command("migrate", verbosity=0, interactive=False)
    audit_partitions_maintain(actor="bench:api_throughput")
    run_id = uuid.uuid4().hex[:8]
    token = agent_token_create(
        name=f"bench-{run_id}", scopes=["write"], actor="bench:api_throughput"
    ).secret
    session_id = services.session_create(
        orchestrator_id="bench", session_id=f"bench_{run_id}", actor="bench:api_throughput"
    ).session_id
    services.session_start(session_id, actor="bench:api_throughput")

    bodies = [
        json.dumps({"events": _events(session_id, batch)}).encode()
        for _ in range(-(-total // batch))
    ]
    sent = sum(len(json.loads(body)["events"]) for body in bodies)
    # The baseline goes first, on the smaller table: the order favours it, not us.
    copy_rate = _direct_ingest(session_id, sent, batch, method="copy", clients=args.clients)
    http_rate = _http_ingest(bodies, token, workers=args.workers, clients=args.clients)
    bulk_rate = _direct_ingest(session_id, sent, batch, method="bulk_create", clients=args.clients)

    ratio = http_rate / copy_rate
    figures = [
        Figure(
            name=f"HTTP batch ingest ({batch}/request, {args.workers} workers)",
            value=http_rate,
            unit="events/s",
            baseline_name="COPY into audit_event",
            baseline_value=copy_rate,
            target=f">= {TARGET_RATIO:.0%} of COPY",
            met=ratio >= TARGET_RATIO,
        ),
        Figure(
            name="HTTP batch ingest vs bulk_create",
            value=http_rate,
            unit="events/s",
            baseline_name="bulk_create into audit_event",
            baseline_value=bulk_rate,
        ),
    ]
    report(
        "api_throughput",
        figures,
        quick=args.quick,
        notes=f"{sent} events per path, {args.clients} concurrent clients or connections each",
    )
    return 0


def _events(session_id: str, count: int) -> list[dict]:
    """pre_tool/post_tool pairs as an agent SDK sends them."""
    from django.utils import timezone

    now = timezone.now()
    events = []
    for number in range(count):
        stamp = (now + timedelta(microseconds=number)).isoformat()
        if number % 2 == 0:
            pre_id = str(uuid.uuid4())
            events.append(
                {
                    "event_id": pre_id,
                    "hook": "pre_tool",
                    "name": "crm.get_account",
                    "timestamp": stamp,
                    "session_id": session_id,
                    "input_bytes": 96,
                    "metadata": {"account_id": f"acct_{number:06d}"},
                }
            )
        else:
            events.append(
                {
                    "event_id": str(uuid.uuid4()),
                    "hook": "post_tool",
                    "name": "crm.get_account",
                    "timestamp": stamp,
                    "session_id": session_id,
                    "invocation_id": pre_id,
                    "duration_ms": 42.5,
                    "output_bytes": 4096,
                }
            )
    return events


def _http_ingest(bodies: list[bytes], token: str, *, workers: int, clients: int) -> float:
    import httpx

    events_per_body = len(json.loads(bodies[0])["events"])
    env = {"EVENTS_MAX_BATCH": str(max(events_per_body, 1000))}
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    with gunicorn(workers=workers, env=env) as base:
        url = f"{base}/api/v1/events"
        local = threading.local()

        def send(body: bytes) -> int:
            if not hasattr(local, "http"):  # one keep-alive connection per client thread
                local.http = httpx.Client(timeout=120)
            response = local.http.post(url, content=body, headers=headers)
            if response.status_code != 200:
                raise RuntimeError(f"{response.status_code}: {response.text[:300]}")
            return response.json()["recorded"]

        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=clients) as pool:
            recorded = sum(pool.map(send, bodies))
        elapsed = time.perf_counter() - started
    expected = sum(len(json.loads(body)["events"]) for body in bodies)
    if recorded != expected:
        raise RuntimeError(f"HTTP path recorded {recorded} of {expected} events")
    return recorded / elapsed


def _direct_ingest(session_id: str, count: int, batch: int, *, method: str, clients: int) -> float:
    """Write ``count`` rows shaped like the HTTP path's, one transaction per batch, from
    ``clients`` connections at once (the concurrency the HTTP path gets)."""
    from django.db import connection, transaction

    from audit.models import AuditEvent
    from sessions.schemas import EventIn

    rows = [
        EventIn(**event).to_hook_event().audit_row(agent_name="bench", actor="agent:bench")
        for event in _events(session_id, count)
    ]
    # The columns an event row carries (recorded_at is stamped by the database).
    fields = [field for field in AuditEvent._meta.concrete_fields if field.attname in rows[0]]
    columns = ", ".join(connection.ops.quote_name(field.column) for field in fields)
    copy_sql = f"COPY {AuditEvent._meta.db_table} ({columns}) FROM STDIN"
    # COPY gets its values ready-made: the baseline pays for nothing but the write.
    values = [
        [field.get_db_prep_save(row[field.attname], connection) for field in fields] for row in rows
    ]
    instances = [AuditEvent(**row) for row in rows]
    chunks = [(start, start + batch) for start in range(0, count, batch)]

    def write(share: list[tuple[int, int]]) -> None:
        try:
            for start, end in share:
                with transaction.atomic():
                    if method == "bulk_create":
                        AuditEvent.objects.bulk_create(instances[start:end])
                        continue
                    with connection.cursor() as cursor, cursor.copy(copy_sql) as copy:
                        for row in values[start:end]:
                            copy.write_row(row)
        finally:
            connection.close()

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        list(pool.map(write, [chunks[n::clients] for n in range(clients)]))
    return count / (time.perf_counter() - started)


if __name__ == "__main__":
    sys.exit(main())
