"""A day at 100x the PRD's scale: 500,000 account reviews in a few morning herds.

5,000 daily reviews of 100 accounts each (the PRD plans 5,000 accounts and 50 owners; this
is 100 times that), due in three herds ``--herd-gap`` seconds apart, our beat and
``--workers`` worker processes running the project's own ``SimulatedReviewRunner`` (tool
events, failures, recommendations, results per account: the whole control-plane path)
with a per-account time scaled down (``--account-ms``; a real review of an account takes
tens of seconds, an LLM call and CRM reads).

Measured, from the rows the run leaves: wall time from the first herd's due time to the
last run's end, runs/s, accounts/s and audit events/s sustained, dispatch and start lag
p99, and the database's growth for the day (tables, indexes, audit partitions, WAL). The
baseline is the runner's own time: the accounts' review time divided among the worker
processes, what the day would take if the control plane cost nothing; their ratio is the
control plane's share. Rates are sustained over the busy time (some run due and not yet
finished). It uses a database of its own (``<DATABASE_URL name>_bench_day``); WAL is the
server's, so run it alone on its server (``make bench`` does).
"""

import json
import os
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.harness import (  # noqa: E402
    Figure,
    celery_worker,
    migrate,
    parser,
    percentile,
    purge_bench_queues,
    report,
    spawn,
    stop,
    use_fresh_database,
)
from bench.herds import herd_create  # noqa: E402

BENCH_ENV = {
    "SCHEDULING_REVIEW_QUEUE": "bench-reviews",
    "CELERY_DEFAULT_QUEUE": "bench-celery",
    "SERGAS_REVIEW_RUNNER": "scheduling.runners.SimulatedReviewRunner",
    "SESSION_CACHE_KEY_PREFIX": "bench-day",
    "SCHEDULING_DISPATCH_POLL_SECONDS": "0.25",
}
AUDIT_TABLE = "audit_event"
FINISHED = ("succeeded", "failed", "retrying", "skipped_overlap", "missed")


def database_sizes() -> dict[str, dict[str, int]]:
    """Bytes of every table of the project: heap (with TOAST) and indexes; the audit
    trail's monthly partitions summed as one."""
    from django.db import connection

    sizes: dict[str, dict[str, int]] = {}
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT c.relname, pg_table_size(c.oid), pg_indexes_size(c.oid)
              FROM pg_class c
             WHERE c.relkind = 'r' AND c.relnamespace = 'public'::regnamespace
            """
        )
        for name, table, indexes in cursor.fetchall():
            key = AUDIT_TABLE if name.startswith(f"{AUDIT_TABLE}_") else name
            entry = sizes.setdefault(key, {"table": 0, "indexes": 0})
            entry["table"] += table
            entry["indexes"] += indexes
    return sizes


def wal_position() -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn")
        return int(cursor.fetchone()[0])


def audit_event_count() -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {AUDIT_TABLE}")
        return int(cursor.fetchone()[0])


def growth(before: dict[str, dict[str, int]], after: dict[str, dict[str, int]]) -> dict:
    """Per table, what the day added (tables that grew by under 64 KiB are left out)."""
    grown = {}
    for name, sizes in after.items():
        old = before.get(name, {"table": 0, "indexes": 0})
        added = {kind: sizes[kind] - old[kind] for kind in ("table", "indexes")}
        if added["table"] + added["indexes"] >= 64 * 1024:
            grown[name] = added
    return dict(sorted(grown.items(), key=lambda item: -sum(item[1].values())))


def run_day(
    reviews: int, accounts: int, herds: int, gap: float, workers: int, *, lead: float
) -> dict:
    from django.db.models import Count

    from scheduling.models import ScheduleExecution

    purge_bench_queues()
    per_herd = [reviews // herds + (1 if index < reviews % herds else 0) for index in range(herds)]
    first_due = (datetime.now(UTC) + timedelta(seconds=lead)).replace(microsecond=0)
    dues = [first_due + timedelta(seconds=gap * index) for index in range(herds)]
    created = 0
    for index, (count, due) in enumerate(zip(per_herd, dues, strict=True)):
        herd_create(count, due, accounts=accounts, name=f"day herd {index}", first_index=created)
        created += count
    sizes_before, wal_before, events_before = database_sizes(), wal_position(), audit_event_count()

    worker = celery_worker(workers, log_name=f"day-{reviews}-worker")
    beat = spawn(
        [sys.executable, "-m", "celery", "-A", "sergas", "beat", "--max-interval", "1"],
        log_name=f"day-{reviews}-beat",
    )
    print(
        f"{reviews:,} reviews x {accounts} accounts in {herds} herd(s) {gap:.0f} s apart,"
        f" first due {first_due:%H:%M:%S}; {workers} worker processes",
        flush=True,
    )
    # Nothing should take this long; a stuck day is reported, not waited for forever.
    deadline = time.monotonic() + (first_due - datetime.now(UTC)).total_seconds() + 3600
    try:
        while True:
            counts = dict(ScheduleExecution.objects.values_list("status").annotate(n=Count("id")))
            done = sum(counts.get(status, 0) for status in FINISHED)
            print(f"  {datetime.now(UTC):%H:%M:%S} runs {json.dumps(counts)}", flush=True)
            if done >= reviews and not counts.get("queued") and not counts.get("running"):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"the day did not finish: {counts}")
            time.sleep(10)
    finally:
        stop(beat, worker)

    rows = list(
        ScheduleExecution.objects.values_list(
            "review_id", "status", "nominal_time", "enqueued_at", "started_at", "finished_at"
        )
    )
    runs_per_review: dict[int, int] = {}
    for review_id, *_ in rows:
        runs_per_review[review_id] = runs_per_review.get(review_id, 0) + 1
    finished = [row[5] for row in rows if row[5] is not None]
    wall = (max(finished) - first_due).total_seconds()
    busy = busy_seconds([(row[2], row[5]) for row in rows if row[5] is not None])
    events = audit_event_count() - events_before
    return {
        "reviews": reviews,
        "accounts": reviews * accounts,
        "workers": workers,
        "herds": [
            {"due": due.isoformat(), "reviews": n} for due, n in zip(dues, per_herd, strict=True)
        ],
        "wall_seconds": wall,
        "busy_seconds": busy,
        "succeeded": sum(1 for row in rows if row[1] == "succeeded"),
        "runs_once": len(runs_per_review) == reviews and set(runs_per_review.values()) == {1},
        "dispatch_lag": [(e - n).total_seconds() for _, _, n, e, _, _ in rows if e],
        "start_lag": [(s - n).total_seconds() for _, _, n, _, s, _ in rows if s],
        "audit_events": events,
        "wal_bytes": wal_position() - wal_before,
        "growth": growth(sizes_before, database_sizes()),
    }


def busy_seconds(runs: list[tuple[datetime, datetime]]) -> float:
    """Seconds in which some run was due and not yet finished: the union of the runs'
    (nominal time, end) intervals. Rates are sustained over these, not over the idle
    time between herds that finished early."""
    total, current_start, current_end = 0.0, None, None
    for start, end in sorted(runs):
        if current_end is None or start > current_end:
            if current_end is not None:
                total += (current_end - current_start).total_seconds()
            current_start, current_end = start, end
        else:
            current_end = max(current_end, end)
    if current_end is not None:
        total += (current_end - current_start).total_seconds()
    return total


def _mib(size: int) -> str:
    return f"{size / 2**20:,.1f} MiB"


def main() -> None:
    arguments = parser(__doc__.splitlines()[0])
    arguments.add_argument("--reviews", type=int, default=None)
    arguments.add_argument("--accounts", type=int, default=100, help="accounts per review")
    arguments.add_argument("--herds", type=int, default=3)
    arguments.add_argument("--herd-gap", type=float, default=None, help="seconds between herds")
    arguments.add_argument("--workers", type=int, default=4, help="worker processes")
    arguments.add_argument(
        "--account-ms", type=int, default=2, help="mean simulated review time of an account"
    )
    arguments.add_argument("--batch-size", type=int, default=10)
    options = arguments.parse_args()
    reviews = options.reviews or (30 if options.quick else 5000)
    accounts = 10 if options.quick and options.accounts == 100 else options.accounts
    workers = 2 if options.quick else options.workers
    gap = options.herd_gap if options.herd_gap is not None else (5.0 if options.quick else 60.0)

    use_fresh_database("day")
    os.environ.update(BENCH_ENV)
    os.environ.update(
        {
            "SCHEDULING_SIMULATED_ACCOUNT_MS": str(options.account_ms),
            "SCHEDULING_RUNNER_BATCH_SIZE": str(options.batch_size),
        }
    )
    migrate()
    # Time to create the herds and boot the processes before the first one is due.
    lead = 8.0 if options.quick else 20 + reviews / 500
    day = run_day(reviews, accounts, options.herds, gap, workers, lead=lead)

    wall, busy, total = day["wall_seconds"], day["busy_seconds"], day["accounts"]
    # The simulated runner takes 0.5x-1.5x the mean per account: the mean on average.
    runner_seconds = total * options.account_ms / 1000 / workers
    dispatch_p99 = percentile(day["dispatch_lag"], 0.99)
    start_p99 = percentile(day["start_lag"], 0.99)
    grown = day["growth"]
    database_bytes = sum(sum(sizes.values()) for sizes in grown.values())
    audit_bytes = sum(grown.get(AUDIT_TABLE, {}).values())
    print(
        f"\n{reviews:,} runs, {total:,} accounts, {workers} worker processes,"
        f" {options.account_ms} ms per account, batches of {options.batch_size}"
    )
    print(f"  wall {wall:,.1f} s, busy {busy:,.1f} s (runner's own time {runner_seconds:,.1f} s)")
    print(f"  sustained {reviews / busy:,.1f} runs/s  {total / busy:,.0f} accounts/s")
    print(f"  audit events {day['audit_events']:,} ({day['audit_events'] / busy:,.0f}/s)")
    print(f"  dispatch lag p99 {dispatch_p99:.2f} s  start lag p99 {start_p99:.2f} s")
    print(f"  database growth {_mib(database_bytes)}, WAL {_mib(day['wal_bytes'])}")
    for name, sizes in grown.items():
        table, indexes = _mib(sizes["table"]), _mib(sizes["indexes"])
        print(f"    {name:32} table {table:>12}  indexes {indexes:>12}")

    figures = [
        Figure(
            name=f"day of {total:,} accounts, {workers} worker processes: wall time",
            value=wall,
            unit="s",
            baseline_name="the runner's own time (no control plane)",
            baseline_value=runner_seconds,
        ),
        Figure(
            name="runs finished, each once",
            value=day["succeeded"],
            unit="runs",
            target=f"= {reviews}",
            met=day["succeeded"] == reviews and day["runs_once"],
        ),
        Figure(
            name="accounts/s sustained",
            value=total / busy,
            unit="accounts/s",
            baseline_name="the runner alone",
            baseline_value=total / runner_seconds,
        ),
        Figure(name="runs/s sustained", value=reviews / busy, unit="runs/s"),
        Figure(name="audit events/s sustained", value=day["audit_events"] / busy, unit="events/s"),
        Figure(
            name="dispatch lag p99 over the day",
            value=dispatch_p99,
            unit="s",
            target="< 2 s",
            met=dispatch_p99 < 2,
        ),
        Figure(name="start lag p99 over the day", value=start_p99, unit="s"),
        Figure(name="database growth per day", value=database_bytes / 2**20, unit="MiB"),
        Figure(name="of which the audit partitions", value=audit_bytes / 2**20, unit="MiB"),
        Figure(name="WAL written per day", value=day["wal_bytes"] / 2**20, unit="MiB"),
    ]
    notes = {
        key: value for key, value in day.items() if key not in ("dispatch_lag", "start_lag")
    } | {"account_ms": options.account_ms, "batch_size": options.batch_size}
    report("day", figures, quick=options.quick, notes=json.dumps(notes, default=str))
    purge_bench_queues()


if __name__ == "__main__":
    main()
