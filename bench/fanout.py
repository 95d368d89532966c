"""Fan-out: one review of 5,000 accounts on 1, 2 and 4 worker processes.

Each account takes a fixed 5 ms (``bench.runners.FixedLatencyRunner``, like a CRM call
of fixed latency); batches of ``--batch-size`` accounts are separate Celery tasks that
any worker process takes. For each worker count: wall time from the on-demand trigger to
the run's success, and the speed-up against one worker, measured in one run. It uses a
database of its own (``<DATABASE_URL name>_bench_fanout``), created fresh.
"""

import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.harness import (  # noqa: E402
    Figure,
    celery_worker,
    migrate,
    parser,
    purge_bench_queues,
    report,
    stop,
    use_fresh_database,
)

BENCH_ENV = {
    "SCHEDULING_REVIEW_QUEUE": "bench-reviews",
    "CELERY_DEFAULT_QUEUE": "bench-celery",
    "SERGAS_REVIEW_RUNNER": "bench.runners.FixedLatencyRunner",
    "SESSION_CACHE_KEY_PREFIX": "bench-fanout",
}


def review_wall_time(accounts: int, processes: int) -> float:
    from scheduling import services
    from scheduling.models import ScheduleExecution

    purge_bench_queues()
    worker = celery_worker(processes, log_name=f"fanout-{processes}")
    try:
        time.sleep(3)  # let the worker processes boot before the clock starts
        review = services.review_create(
            name=f"fan-out {accounts} on {processes}",
            owner_id="owner_bench",
            schedule_type="interval",
            interval_minutes=24 * 60,
            account_filter={"count": accounts},
            actor="bench:fanout",
        )
        services.review_pause(review.pk, note="triggered by the benchmark only")
        started = time.perf_counter()
        execution = services.review_trigger_on_demand(review.pk, actor="bench:fanout")
        deadline = started + 600
        while True:
            status = ScheduleExecution.objects.values_list("status", flat=True).get(pk=execution.pk)
            if status == "succeeded":
                return time.perf_counter() - started
            if status not in ("queued", "running") or time.perf_counter() > deadline:
                raise RuntimeError(f"run ended {status}; see var/bench-logs/fanout-*.log")
            time.sleep(0.05)
    finally:
        stop(worker)


def main() -> None:
    arguments = parser(__doc__.splitlines()[0])
    arguments.add_argument("--accounts", type=int, default=None)
    arguments.add_argument("--batch-size", type=int, default=50)
    arguments.add_argument("--account-ms", type=int, default=5)
    arguments.add_argument("--workers", default=None, help="comma-separated process counts")
    options = arguments.parse_args()
    accounts = options.accounts or (200 if options.quick else 5000)
    counts = [int(n) for n in (options.workers or ("1,2" if options.quick else "1,2,4")).split(",")]

    use_fresh_database("fanout")
    os.environ.update(BENCH_ENV)
    os.environ.update(
        {
            "BENCH_ACCOUNT_MS": str(options.account_ms),
            "SCHEDULING_RUNNER_BATCH_SIZE": str(options.batch_size),
        }
    )
    migrate()
    walls = {n: review_wall_time(accounts, n) for n in counts}
    ideal = accounts * options.account_ms / 1000
    print(
        f"\n{accounts} accounts x {options.account_ms} ms, batches of {options.batch_size}"
        f" ({ideal:.1f} s of account work)"
    )
    for n, wall in walls.items():
        print(f"  {n} worker process(es): {wall:.2f} s  speed-up {walls[counts[0]] / wall:.2f}x")
    report(
        "fanout",
        [
            Figure(
                name=f"review of {accounts} accounts, {n} worker process(es)",
                value=walls[n],
                unit="s",
                baseline_name=f"{counts[0]} worker process",
                baseline_value=walls[counts[0]],
                target="finishes sooner with more workers" if n != counts[0] else "",
                met=walls[n] < walls[counts[0]] if n != counts[0] else None,
            )
            for n in counts
        ],
        quick=options.quick,
        notes=f"{accounts} accounts x {options.account_ms} ms, batch size {options.batch_size}",
    )
    purge_bench_queues()


if __name__ == "__main__":
    main()
