"""Schedule accuracy: thousands of reviews due in the same minute (the 09:00 herd).

For each size (1,000 and 10,000; 50 with --quick) it runs two scenarios in one run, on
the same machine, one after the other:

- ours: N daily reviews due at the same minute, our beat (``ReviewScheduler``) and W
  worker processes running a runner that does no review work (``bench.runners.
  InstantRunner``), so the figures are about scheduling, not reviewing. Per run:
  dispatch lag (nominal time -> ``enqueued_at``: the run handed to its executor) and
  start lag (nominal time -> the run started, as its rows say: the latest of the run's
  ``started_at``, its session's ``started_at`` and its batches' ``available_at``, counted
  only when the run started, its session started and every batch of it is claimable);
  whether every due run was dispatched exactly once; how many started within
  ``START_WITHIN`` seconds.
- stock: N django-celery-beat PeriodicTasks with the same crontab, the stock
  ``DatabaseScheduler`` and W workers running a no-op task; send and start times are
  recorded by Celery signals in ``bench.stock_beat``.

It uses a database of its own (``<DATABASE_URL name>_bench_schedule``), created fresh.
"""

import json
import math
import os
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.harness import (  # noqa: E402
    Figure,
    migrate,
    parser,
    percentile,
    purge_bench_queues,
    report,
    spawn,
    stop,
    use_fresh_database,
)
from bench.herds import crontab_at, herd_create  # noqa: E402

BENCH_ENV = {
    "SCHEDULING_REVIEW_QUEUE": "bench-reviews",
    "CELERY_DEFAULT_QUEUE": "bench-celery",
    "SERGAS_REVIEW_RUNNER": "bench.runners.InstantRunner",
    "SESSION_CACHE_KEY_PREFIX": "bench-schedule",
    "SCHEDULING_DISPATCH_POLL_SECONDS": "0.25",
}
STOCK_QUEUE = "bench-stock"
START_WITHIN = 30.0  # seconds: the herd's target (every run started within it)
START_RATIO = 1.5  # start lag p99 at most this many times stock's no-op task's

# When each scheduled run started, read from the rows (not from a task's own claim): its
# session running and every batch claimable; NULL while any of that is missing.
_STARTED_SQL = """
SELECT e.review_id, e.nominal_time, e.enqueued_at,
       CASE WHEN e.started_at IS NOT NULL AND s.started_at IS NOT NULL
                 AND b.total > 0 AND b.claimable = b.total
            THEN GREATEST(e.started_at, s.started_at, b.latest) END
FROM schedule_execution e
LEFT JOIN agent_session s ON s.session_id = e.session_id
LEFT JOIN LATERAL (
    SELECT count(*) AS total, count(available_at) AS claimable, max(available_at) AS latest
    FROM schedule_run_batch WHERE execution_id = e.id
) b ON true
WHERE e.trigger = 'schedule'
"""
CELERY = [sys.executable, "-m", "celery"]


def _due_minute(lead_seconds: float) -> datetime:
    earliest = datetime.now(UTC) + timedelta(seconds=lead_seconds)
    return (earliest + timedelta(minutes=1)).replace(second=0, microsecond=0)


def _sleep_until(moment: datetime) -> None:
    time.sleep(max(0.0, (moment - datetime.now(UTC)).total_seconds()))


def _stats(samples: list[float]) -> dict[str, float]:
    if not samples:
        return {"p50": math.nan, "p99": math.nan, "max": math.nan}
    return {
        "p50": percentile(samples, 0.5),
        "p99": percentile(samples, 0.99),
        "max": max(samples),
    }


def _reset_tables() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        # Children first: raw DELETEs do not cascade as the ORM would.
        cursor.execute("DELETE FROM schedule_account_review")
        cursor.execute("DELETE FROM schedule_run_batch")
        cursor.execute("DELETE FROM schedule_execution")
        cursor.execute("DELETE FROM scheduled_review")
        cursor.execute("DELETE FROM agent_session_checkpoint")
        cursor.execute("DELETE FROM agent_session_progress")
        cursor.execute("DELETE FROM agent_session_time")
        cursor.execute("DELETE FROM agent_session_account_list")
        cursor.execute("DELETE FROM agent_session_account")
        cursor.execute("DELETE FROM agent_session")
        cursor.execute(
            "DELETE FROM django_celery_beat_periodictask WHERE name LIKE 'review:%%'"
            " OR name LIKE 'bench:%%'"
        )


def ours(count: int, workers: int, *, quick: bool) -> dict[str, object]:
    from scheduling.models import ScheduleExecution

    _reset_tables()
    purge_bench_queues()
    # The herd is a minute boundary, as daily presets make it; a smoke run just needs soon.
    due = (
        (datetime.now(UTC) + timedelta(seconds=8)).replace(microsecond=0)
        if quick
        else _due_minute(lead_seconds=15 + count / 1000)
    )
    herd_create(count, due, accounts=1)

    worker = spawn(
        [
            *CELERY,
            "-A",
            "sergas",
            "worker",
            "--concurrency",
            str(workers),
            "--queues",
            "bench-reviews,bench-celery",
            "--without-mingle",
            "--without-gossip",
            "--loglevel",
            "WARNING",
        ],
        log_name=f"schedule-ours-{count}-worker",
    )
    beat = spawn(
        [*CELERY, "-A", "sergas", "beat", "--max-interval", "1", "--loglevel", "INFO"],
        log_name=f"schedule-ours-{count}-beat",
    )
    _sleep_until(due)
    deadline = time.monotonic() + 120 + count / 20
    while time.monotonic() < deadline:
        started = ScheduleExecution.objects.filter(started_at__isnull=False).count()
        if started >= count:
            break
        time.sleep(1)
    stop(beat, worker)

    rows = _started_rows()
    per_review: dict[int, int] = {}
    for review_id, *_ in rows:
        per_review[review_id] = per_review.get(review_id, 0) + 1
    dispatch = [(e - n).total_seconds() for _, n, e, _ in rows if e is not None]
    start = [(s - n).total_seconds() for _, n, _, s in rows if s is not None]
    return {
        "due": count,
        "dispatched": len(dispatch),
        "exactly_once": len(per_review) == count and set(per_review.values()) == {1},
        "duplicates": sum(v - 1 for v in per_review.values()),
        "started": len(start),
        "started_within": sum(1 for lag in start if lag <= START_WITHIN),
        "dispatch": _stats(dispatch),
        "start": _stats(start),
    }


def _started_rows() -> list[tuple]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(_STARTED_SQL)
        return cursor.fetchall()


def stock(count: int, workers: int, observe_seconds: float) -> dict[str, object]:
    import redis
    from django_celery_beat.models import PeriodicTask, PeriodicTasks

    from bench.stock_beat import SENT_KEY, STARTED_KEY

    _reset_tables()
    purge_bench_queues()
    due = _due_minute(lead_seconds=30 + count / 250)
    crontab = crontab_at(due)
    PeriodicTask.objects.bulk_create(
        [
            PeriodicTask(
                name=f"bench:{index:05d}",
                task="bench.noop",
                crontab=crontab,
                args=json.dumps([index]),
                queue=STOCK_QUEUE,
            )
            for index in range(count)
        ],
        batch_size=2000,
    )
    PeriodicTasks.update_changed()
    worker = spawn(
        [
            *CELERY,
            "-A",
            "bench.stock_beat",
            "worker",
            "--concurrency",
            str(workers),
            "--queues",
            STOCK_QUEUE,
            "--without-mingle",
            "--without-gossip",
            "--loglevel",
            "WARNING",
        ],
        log_name=f"schedule-stock-{count}-worker",
    )
    beat = spawn(
        [
            *CELERY,
            "-A",
            "bench.stock_beat",
            "beat",
            "--scheduler",
            "django_celery_beat.schedulers:DatabaseScheduler",
            "--loglevel",
            "WARNING",
        ],
        log_name=f"schedule-stock-{count}-beat",
    )
    _sleep_until(due + timedelta(seconds=observe_seconds))
    stop(beat, worker)

    client = redis.Redis.from_url(os.environ["REDIS_URL"])
    nominal = due.timestamp()
    sent = {
        json.loads(raw)["index"]: json.loads(raw)["at"] for raw in client.lrange(SENT_KEY, 0, -1)
    }
    started = [json.loads(raw)["at"] - nominal for raw in client.lrange(STARTED_KEY, 0, -1)]
    dispatch = [at - nominal for at in sent.values()]
    return {
        "due": count,
        "dispatched": len(dispatch),
        "exactly_once": len(sent) == count,
        "duplicates": client.llen(SENT_KEY) - len(sent),
        "started": len(started),
        "started_within": sum(1 for lag in started if lag <= START_WITHIN),
        "dispatch": _stats(dispatch),
        "start": _stats(started),
        "observed_seconds": observe_seconds,
    }


def _ratio_target(mine: dict[str, Any], theirs: dict[str, Any] | None, size: int) -> dict[str, Any]:
    """Start lag p99 at most START_RATIO x stock's, for the herd sizes stock can start
    (at 10,000 it starts a fraction of them: the figure there is the 30 s one)."""
    if theirs is None or size > 1000:
        return {}
    bound = START_RATIO * theirs["start"]["p99"]
    return {
        "target": f"<= {START_RATIO}x stock = {bound:.2f} s",
        "met": mine["started"] == size and mine["start"]["p99"] <= bound,
    }


def main() -> None:
    arguments = parser(__doc__.splitlines()[0])
    arguments.add_argument("--sizes", default=None, help="comma-separated review counts")
    arguments.add_argument("--workers", type=int, default=2)
    arguments.add_argument(
        "--observe-seconds",
        type=float,
        default=None,
        help="how long after the due time the stock beat is watched",
    )
    options = arguments.parse_args()
    sizes = [
        int(size)
        for size in (options.sizes or ("50" if options.quick else "1000,10000")).split(",")
    ]
    observe = options.observe_seconds or (20.0 if options.quick else 90.0)

    use_fresh_database("schedule")
    os.environ.update(BENCH_ENV)
    migrate()

    figures: list[Figure] = []
    results = {}
    for size in sizes:
        mine = ours(size, options.workers, quick=options.quick)
        # Stock crontabs only fire on minute boundaries; a smoke run does not wait for one.
        theirs = None if options.quick else stock(size, options.workers, observe)
        results[size] = {"ours": mine, "stock": theirs}
        print(f"\n{size} reviews due at once, {options.workers} worker processes")
        for label, result in (("ours", mine), ("stock django-celery-beat", theirs)):
            if result is None:
                continue
            print(
                f"  {label:26} dispatched {result['dispatched']}/{result['due']}"
                f" (duplicates {result['duplicates']})"
                f"  dispatch lag p50 {result['dispatch']['p50']:.3f}s"
                f" p99 {result['dispatch']['p99']:.3f}s max {result['dispatch']['max']:.3f}s"
                f"  start lag p50 {result['start']['p50']:.3f}s"
                f" p99 {result['start']['p99']:.3f}s max {result['start']['max']:.3f}s"
                f"  started {result['started']}/{result['due']}"
                f" ({result['started_within']} within {START_WITHIN:.0f} s)"
            )
        figures += [
            Figure(
                name=f"dispatch lag p99, {size} due at once",
                value=mine["dispatch"]["p99"],
                unit="s",
                baseline_name="stock django-celery-beat",
                baseline_value=theirs["dispatch"]["p99"] if theirs else None,
                target="< 2 s",
                met=mine["dispatch"]["p99"] < 2 and mine["exactly_once"],
            ),
            Figure(
                name=f"runs dispatched exactly once, {size} due",
                value=mine["dispatched"],
                unit="runs",
                baseline_name=f"stock django-celery-beat (sent in {observe:.0f} s)",
                baseline_value=theirs["dispatched"] if theirs else None,
                target=f"= {size}, no duplicate",
                met=mine["exactly_once"] and mine["dispatched"] == size,
            ),
            Figure(
                name=f"start lag p99, {size} due, {options.workers} workers",
                value=mine["start"]["p99"],
                unit="s",
                baseline_name="stock (no-op task)",
                baseline_value=theirs["start"]["p99"] if theirs else None,
                **_ratio_target(mine, theirs, size),
            ),
            Figure(
                name=f"runs started within {START_WITHIN:.0f} s, {size} due,"
                f" {options.workers} workers",
                value=mine["started_within"],
                unit="runs",
                baseline_name=f"stock (no-op task, {observe:.0f} s watched)",
                baseline_value=theirs["started_within"] if theirs else None,
                target=f"= {size}",
                met=mine["started_within"] == size,
            ),
        ]
    report(
        "schedule_accuracy", figures, quick=options.quick, notes=json.dumps(results, default=str)
    )
    purge_bench_queues()


if __name__ == "__main__":
    main()
