"""Checkpoint cost: what a 5,000-account review in batches of 10 writes for its session's
state, and whether recording a batch stays as cheap at the last batch as at the first.

One review of ``--accounts`` accounts (batches of 10) on a work queue; every batch is
claimed and recorded in this process with ``batch_record`` (its results, the session's
metrics and checkpoint, the events, in one transaction), as an agent's ``complete``
would. Measured in one run:

- bytes written for the session's state: the growth of the tables that hold it (the
  session's, the checkpoints' and, where they exist, the progress, times and account
  list tables; ``pg_total_relation_size``, TOAST and indexes included; autovacuum is off
  on them during the run, so nothing written is reused and the growth is what was
  written), and the WAL records written for those tables, their TOAST and their indexes
  (read back with ``pg_walinspect`` around each record, between flushed WAL positions,
  filtered by the tables' file nodes: the server's WAL is shared with other databases).
  The WAL of the whole bench database (results and audit events too) is reported beside
  it. Baseline: the size of the final context (its JSON as the API returns it).
  Target: <= 3x.
- per-batch record time: the mean of the first 10% of batches against the last 10%.
  Target: <= 1.5x.

A database of its own is used (``<DATABASE_URL name>_bench_checkpoints``).
"""

import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.harness import Figure, migrate, parser, report, use_fresh_database  # noqa: E402

QUEUE = "bench-checkpoints"
ACTOR = "bench:checkpoints"
BYTES_TARGET = 3.0
FLAT_TARGET = 1.5
# Every table that holds a session's state, whichever the release (missing ones count 0).
STATE_TABLES = (
    "agent_session",
    "agent_session_checkpoint",
    "agent_session_progress",
    "agent_session_time",
    "agent_session_account_list",
)


def _tables_size(cursor: Any) -> dict[str, int]:
    """Each state table's size, TOAST and indexes included (absent tables left out)."""
    sizes = {}
    for table in STATE_TABLES:
        cursor.execute("SELECT to_regclass(%s)", [table])
        if cursor.fetchone()[0] is not None:
            cursor.execute("SELECT pg_total_relation_size(%s::regclass)", [table])
            sizes[table] = cursor.fetchone()[0]
    return sizes


def _lsn(cursor: Any) -> str:
    cursor.execute("SELECT pg_current_wal_flush_lsn()::text")
    return cursor.fetchone()[0]


def _file_nodes(cursor: Any) -> list[int]:
    """The file nodes of the state tables, their TOAST tables and every index of both."""
    cursor.execute(
        """
        SELECT pg_relation_filenode(c.oid) FROM pg_class AS c
         WHERE c.oid IN (
               SELECT t.oid FROM pg_class AS t WHERE t.relname = ANY(%(tables)s)
         UNION SELECT t.reltoastrelid FROM pg_class AS t WHERE t.relname = ANY(%(tables)s)
         UNION SELECT i.indexrelid FROM pg_index AS i JOIN pg_class AS t ON t.oid = i.indrelid
                WHERE t.relname = ANY(%(tables)s)
         UNION SELECT i.indexrelid FROM pg_index AS i JOIN pg_class AS t
                   ON t.reltoastrelid = i.indrelid WHERE t.relname = ANY(%(tables)s))
        """,
        {"tables": list(STATE_TABLES)},
    )
    return [row[0] for row in cursor.fetchall() if row[0]]


def _wal_bytes(cursor: Any, start: str, end: str, nodes: list[int] | None) -> tuple[int, int]:
    """WAL bytes (and of them full-page images) of this database's records between two
    positions, only those touching ``nodes`` if given."""
    cursor.execute("SELECT oid FROM pg_database WHERE datname = current_database()")
    database = cursor.fetchone()[0]
    which = "|".join(str(node) for node in nodes) if nodes else r"\d+"
    cursor.execute(
        "SELECT coalesce(sum(record_length), 0), coalesce(sum(fpi_length), 0)"
        " FROM pg_get_wal_records_info(%s::pg_lsn, %s::pg_lsn) WHERE block_ref ~ %s",
        [start, end, rf"rel \d+/{database}/({which}) "],
    )
    total, images = cursor.fetchone()
    return int(total), int(images)


def _walinspect(cursor: Any) -> bool:
    """Whether ``pg_walinspect`` (contrib) can be had: the embedded PostgreSQL of ``make
    bench`` ships none, and then the WAL is the server's between two positions."""
    from django.db import DatabaseError, transaction

    try:
        with transaction.atomic():
            cursor.execute("CREATE EXTENSION IF NOT EXISTS pg_walinspect")
    except DatabaseError:
        print("pg_walinspect unavailable: WAL measured for the whole server", flush=True)
        return False
    return True


def _autovacuum(cursor: Any, enabled: bool) -> None:
    for table in STATE_TABLES:
        cursor.execute("SELECT to_regclass(%s)", [table])
        if cursor.fetchone()[0] is not None:
            flag = "true" if enabled else "false"
            cursor.execute(
                f"ALTER TABLE {table} SET (autovacuum_enabled = {flag},"
                f" toast.autovacuum_enabled = {flag})"
            )


def _start_review(name: str, accounts: int) -> tuple[str, list[int]]:
    """A running review of ``accounts`` accounts on the bench queue: its session, its
    batches' ids in order."""
    from django.utils import timezone

    from scheduling import services
    from scheduling.models import RunBatch, ScheduleExecution

    review = services.review_create(
        name=name,
        owner_id="owner_bench",
        schedule_type="daily",
        time_of_day=timezone.now().time().replace(microsecond=0),
        account_filter={"count": accounts, "name": name},
        executor=f"queue:{QUEUE}",
    )
    execution = ScheduleExecution.objects.create(
        review=review,
        review_name=review.name,
        nominal_time=timezone.now(),
        priority=review.priority,
        due_at=timezone.now(),
        enqueued_at=timezone.now(),
        executor=review.executor,
    )
    services.execution_claim(str(execution.pk), actor=ACTOR)
    execution.refresh_from_db()
    batches = list(
        RunBatch.objects.filter(execution=execution).order_by("index").values_list("pk", flat=True)
    )
    return execution.session_id, batches


def _claim(batch_id: int) -> Any:
    """Lease ``batch_id`` (the queue's next) to the bench."""
    from scheduling.services.work_queue import work_claim

    lease = work_claim(QUEUE, holder=ACTOR, actor=ACTOR)
    if lease is None or lease.batch_id != batch_id:
        raise RuntimeError(f"expected to claim batch {batch_id}, got {lease}")
    return lease


def _results(lease: Any, number: int) -> list[Any]:
    from scheduling.runners import simulated_result

    return [
        simulated_result(account, 5 + index, failed=(number + index) % 17 == 0)
        for index, account in enumerate(lease.accounts)
    ]


def _record_all(
    session_id: str, batches: list[int], nodes: list[int] | None
) -> tuple[list[float], int, int, int]:
    """Claim and record every batch with ``batch_record``: the record's milliseconds, and
    the WAL bytes of the state tables (of them full-page images) and of the database. The
    WAL is read after each batch, before the server recycles its segments. Without
    ``nodes`` (no pg_walinspect) only the server's WAL between the positions is known."""
    from django.db import connection

    from scheduling.services.batches import batch_record

    timings = []
    state = images = everything = 0
    for number, batch_id in enumerate(batches):
        lease = _claim(batch_id)
        results = _results(lease, number)
        with connection.cursor() as cursor:
            start = _lsn(cursor)
        started = time.perf_counter()
        batch_record(
            lease.batch_id,
            lease.token,
            results=results,
            counters={"api_call_count": 3},
            agent="bench",
            actor=ACTOR,
        )
        timings.append((time.perf_counter() - started) * 1000)
        with connection.cursor() as cursor:
            end = _lsn(cursor)
            if nodes is None:
                cursor.execute("SELECT %s::pg_lsn - %s::pg_lsn", [end, start])
                everything += int(cursor.fetchone()[0])
                continue
            wal, fpi = _wal_bytes(cursor, start, end, nodes)
            state, images = state + wal, images + fpi
            everything += _wal_bytes(cursor, start, end, None)[0]
    return timings, state, images, everything


def _final_context_bytes(session_id: str) -> int:
    """The final context as the API returns it, serialised."""
    from sessions.schemas import SessionDetailOut
    from sessions.selectors import session_get

    detail = SessionDetailOut.model_validate(session_get(session_id)).model_dump(mode="json")
    return len(json.dumps(detail["context"]))


def main() -> None:
    arguments = parser(__doc__.splitlines()[0])
    arguments.add_argument("--accounts", type=int, default=None)
    options = arguments.parse_args()
    accounts = options.accounts or (500 if options.quick else 5000)

    os.environ["SCHEDULING_RUNNER_BATCH_SIZE"] = "10"
    os.environ["SESSION_CACHE_KEY_PREFIX"] = "bench-checkpoints"
    use_fresh_database("checkpoints")
    migrate()
    from django.db import connection

    figures: list[Figure] = []
    with connection.cursor() as cursor:
        inspect = _walinspect(cursor)
        _autovacuum(cursor, enabled=False)

    session_id, batches = _start_review("full", accounts)
    with connection.cursor() as cursor:
        nodes = _file_nodes(cursor)
        size_before = _tables_size(cursor)
    timings, state_wal, state_images, all_wal = _record_all(
        session_id, batches, nodes if inspect else None
    )
    with connection.cursor() as cursor:
        size_after = _tables_size(cursor)
        _autovacuum(cursor, enabled=True)
    context_bytes = _final_context_bytes(session_id)

    kib = 1024
    growth = {table: size_after[table] - size_before[table] for table in size_after}
    table_growth = sum(growth.values())
    tenth = max(1, len(timings) // 10)
    first, last = statistics.mean(timings[:tenth]), statistics.mean(timings[-tenth:])
    context_name = "final context (JSON as the API returns it)"
    figures += [
        Figure(name="final context size", value=context_bytes / kib, unit="KiB"),
        Figure(
            name="session state tables growth over the review",
            value=table_growth / kib,
            unit="KiB",
            baseline_name=context_name,
            baseline_value=context_bytes / kib,
            target=f"<= {BYTES_TARGET:g}x the final context",
            met=table_growth <= BYTES_TARGET * context_bytes,
        ),
        *(
            Figure(name=f"of which {table}", value=grown / kib, unit="KiB")
            for table, grown in growth.items()
        ),
    ]
    if inspect:
        figures += [
            Figure(
                name="WAL written for the session state tables over the review",
                value=state_wal / kib,
                unit="KiB",
                baseline_name=context_name,
                baseline_value=context_bytes / kib,
                target=f"<= {BYTES_TARGET:g}x the final context",
                met=state_wal <= BYTES_TARGET * context_bytes,
            ),
            Figure(name="of which full-page images", value=state_images / kib, unit="KiB"),
        ]
    wal_scope = "the whole bench database" if inspect else "the whole server"
    figures += [
        Figure(
            name=f"WAL written for {wal_scope} (results, batches, audit too)",
            value=all_wal / kib,
            unit="KiB",
            baseline_name=context_name,
            baseline_value=context_bytes / kib,
        ),
        Figure(
            name=f"record time, mean of the last {tenth} batches",
            value=last,
            unit="ms",
            baseline_name=f"mean of the first {tenth} batches",
            baseline_value=first,
            target=f"<= {FLAT_TARGET:g}x the first",
            met=last <= FLAT_TARGET * first,
        ),
        Figure(
            name="record time p50 over all batches",
            value=statistics.median(timings),
            unit="ms",
        ),
    ]
    notes = f"{accounts} accounts, {len(batches)} batches of 10, recorded with batch_record"
    report("checkpoints", figures, quick=options.quick, notes=notes)


if __name__ == "__main__":
    main()
