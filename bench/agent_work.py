"""Agent work queue: agents as processes long-polling one queue over HTTP, against the
in-process runner, in one run.

Each batch takes a fixed ``--batch-ms`` (100 ms) of work, done either by agent
processes (docs/agent_worker.py, sergas_client.Worker: claim, heartbeat, complete over
HTTP to gunicorn) or by Celery worker processes running ``bench.runners.FixedBatchRunner``
(the same time per batch). The clock runs from the run's start (its batches written) to
its end, both read from the run's row. Per-batch overhead of an executor:
``wall x slots / batches - batch_ms``, what each slot spends per batch beyond the work.

1. Overhead: a review of 500 accounts (50 batches of 10) on one agent, and on one worker
   process: the control plane's cost per batch on the critical path, the agents'
   (HTTP, JSON, the lease checks) beyond the in-process runner's.
2. Throughput: a review of 5,000 accounts (500 batches) on ``--agents`` agents, and on as
   many worker processes. Every batch records into the one session of the run (metrics
   and a checkpoint under its row lock), so both executors queue there alike.
3. Wake-up: the agents wait on the empty queue (a long poll); one-batch runs are started
   one at a time, and the latency from the batch becoming claimable (its
   ``available_at``, written in the transaction that started the run) to an agent
   claiming it (``started_at``) gives p50 and p99.

It uses a database of its own (``<DATABASE_URL name>_bench_agent_work``), created fresh.
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
    gunicorn,
    migrate,
    parser,
    percentile,
    purge_bench_queues,
    report,
    spawn,
    stop,
    use_fresh_database,
)

QUEUE = "bench-agents"
BENCH_ENV = {
    "SCHEDULING_REVIEW_QUEUE": "bench-reviews",
    "CELERY_DEFAULT_QUEUE": "bench-celery",
    "SERGAS_REVIEW_RUNNER": "bench.runners.FixedBatchRunner",
    "SESSION_CACHE_KEY_PREFIX": "bench-agent-work",
    "SCHEDULING_RUNNER_BATCH_SIZE": "10",
    "SCHEDULING_ALLOW_SIMULATION": "true",
}


def _agents(count: int, url: str, token: str, batch_ms: int, first: int = 0) -> list[object]:
    return [
        spawn(
            [
                sys.executable,
                str(ROOT / "docs" / "agent_worker.py"),
                "--url",
                url,
                "--token",
                token,
                "--queue",
                QUEUE,
                "--wait-seconds",
                "30",
                "--batch-seconds",
                str(batch_ms / 1000),
                "--holder",
                f"bench-agent-{number}",
            ],
            log_name=f"agent-work-agent-{number}",
        )
        for number in range(first, first + count)
    ]


def _review(name: str, accounts: int, executor: str) -> object:
    from scheduling import services

    review = services.review_create(
        name=name,
        owner_id="owner_bench",
        schedule_type="interval",
        interval_minutes=24 * 60,
        account_filter={"count": accounts},
        executor=executor,
        actor="bench:agent_work",
    )
    return services.review_pause(review.pk, note="triggered by the benchmark only")


def _run_seconds(review_id: int, timeout: float = 900) -> tuple[float, int]:
    """Trigger the review and wait for its run to succeed: (seconds from its start to
    its end, batches)."""
    from scheduling import services
    from scheduling.models import RunBatch, ScheduleExecution

    execution = services.review_trigger_on_demand(review_id, actor="bench:agent_work")
    deadline = time.monotonic() + timeout
    while True:
        run = ScheduleExecution.objects.get(pk=execution.pk)
        if run.status == "succeeded":
            batches = RunBatch.objects.filter(execution=run).count()
            return (run.finished_at - run.started_at).total_seconds(), batches
        if run.status not in ("queued", "running") or time.monotonic() > deadline:
            raise RuntimeError(f"run ended {run.status}; see var/bench-logs/agent-work-*.log")
        time.sleep(0.05)


def _wakeups(review_id: int, trials: int) -> list[float]:
    """Milliseconds from a one-batch run's batch becoming claimable to its claim."""
    from scheduling import services
    from scheduling.models import RunBatch, ScheduleExecution

    latencies = []
    for _ in range(trials):
        execution = services.review_trigger_on_demand(review_id, actor="bench:agent_work")
        deadline = time.monotonic() + 60
        while True:
            batch = (
                RunBatch.objects.filter(execution_id=execution.pk, started_at__isnull=False)
                .values_list("available_at", "started_at")
                .first()
            )
            if batch is not None:
                break
            if time.monotonic() > deadline:
                raise RuntimeError("an idle agent never claimed the batch")
            time.sleep(0.02)
        latencies.append((batch[1] - batch[0]).total_seconds() * 1000)
        while ScheduleExecution.objects.get(pk=execution.pk).status != "succeeded":
            time.sleep(0.02)
        time.sleep(0.2)  # the agents are back on their long poll
    return latencies


def _overhead_ms(seconds: float, slots: int, batches: int, batch_ms: int) -> float:
    return seconds * 1000 * slots / batches - batch_ms


def main() -> None:
    arguments = parser(__doc__.splitlines()[0])
    arguments.add_argument("--accounts", type=int, default=None, help="of the big review")
    arguments.add_argument("--serial-accounts", type=int, default=None, help="of the small one")
    arguments.add_argument("--agents", type=int, default=4, help="agent processes (and slots)")
    arguments.add_argument("--batch-ms", type=int, default=100)
    arguments.add_argument("--trials", type=int, default=None, help="wake-up measurements")
    options = arguments.parse_args()
    accounts = options.accounts or (200 if options.quick else 5000)
    serial_accounts = options.serial_accounts or (50 if options.quick else 500)
    trials = options.trials or (10 if options.quick else 100)
    slots, batch_ms = options.agents, options.batch_ms

    use_fresh_database("agent_work")
    os.environ.update(BENCH_ENV)
    os.environ["BENCH_BATCH_MS"] = str(batch_ms)
    migrate()
    from access.services import agent_token_create

    purge_bench_queues()
    token = agent_token_create(name="bench-agent", scopes=["work"], queues=[QUEUE]).secret
    in_process = (
        _review("in-process, serial", serial_accounts, "worker"),
        _review("in-process", accounts, "worker"),
    )
    by_agents = (
        _review("agents, serial", serial_accounts, f"queue:{QUEUE}"),
        _review("agents", accounts, f"queue:{QUEUE}"),
    )
    single = _review("wake-up", 10, f"queue:{QUEUE}")

    worker = celery_worker(1, log_name="agent-work-worker-1")
    try:
        time.sleep(3)  # the worker processes boot before the clock starts
        worker_serial, serial_batches = _run_seconds(in_process[0].pk)
    finally:
        stop(worker)
    worker = celery_worker(slots, log_name=f"agent-work-worker-{slots}")
    try:
        time.sleep(3)
        worker_seconds, batches = _run_seconds(in_process[1].pk)
    finally:
        stop(worker)
    # Agents: a worker process only starts runs (their batches go to the queue).
    starter = celery_worker(1, log_name="agent-work-starter")
    try:
        with gunicorn(workers=2, threads=slots + 4) as url:
            agents = _agents(1, url, token, batch_ms)
            try:
                time.sleep(3)  # the agent starts and begins its long poll
                agent_serial, _ = _run_seconds(by_agents[0].pk)
                agents += _agents(slots - 1, url, token, batch_ms, first=1)
                time.sleep(3)
                agent_seconds, _ = _run_seconds(by_agents[1].pk)
                latencies = _wakeups(single.pk, trials)
            finally:
                stop(*agents)
    finally:
        stop(starter)
        purge_bench_queues()

    serial = {
        "in-process": _overhead_ms(worker_serial, 1, serial_batches, batch_ms),
        "agent": _overhead_ms(agent_serial, 1, serial_batches, batch_ms),
    }
    parallel = {
        "in-process": _overhead_ms(worker_seconds, slots, batches, batch_ms),
        "agents": _overhead_ms(agent_seconds, slots, batches, batch_ms),
    }
    p50, p99 = percentile(latencies, 0.5), percentile(latencies, 0.99)
    print(f"\nbatches of 10 accounts x {batch_ms} ms")
    print(
        f"  {serial_batches} batches, one slot: in-process overhead {serial['in-process']:.1f}"
        f" ms/batch, agent {serial['agent']:.1f} ms/batch"
        f" ({serial['agent'] - serial['in-process']:+.1f} ms)"
    )
    print(
        f"  {batches} batches, {slots} slots: in-process {worker_seconds:.2f} s"
        f" ({batches / worker_seconds:.1f} batches/s, overhead {parallel['in-process']:.1f}"
        f" ms/batch); agents {agent_seconds:.2f} s ({batches / agent_seconds:.1f} batches/s,"
        f" overhead {parallel['agents']:.1f} ms/batch)"
    )
    print(f"  wake-up of an idle agent: p50 {p50:.1f} ms, p99 {p99:.1f} ms ({trials} trials)")
    beyond = serial["agent"] - serial["in-process"]
    report(
        "agent_work",
        [
            Figure(
                name=f"one agent: per-batch overhead beyond the in-process runner "
                f"({serial_batches} batches of {batch_ms} ms)",
                value=beyond,
                unit="ms",
                baseline_name="in-process overhead per batch, one worker process",
                baseline_value=serial["in-process"],
                target="<= 10 ms",
                met=beyond <= 10,
            ),
            Figure(
                name=f"{slots} agents: batches/s ({batches} batches of {batch_ms} ms)",
                value=batches / agent_seconds,
                unit="batches/s",
                baseline_name=f"in-process runner, {slots} worker processes",
                baseline_value=batches / worker_seconds,
            ),
            Figure(
                name=f"{slots} agents: per-batch overhead ({batches} batches)",
                value=parallel["agents"],
                unit="ms",
                baseline_name=f"in-process, {slots} worker processes",
                baseline_value=parallel["in-process"],
            ),
            Figure(
                name="idle agent woken: batch claimable to claimed, p50",
                value=p50,
                unit="ms",
            ),
            Figure(
                name="idle agent woken: batch claimable to claimed, p99",
                value=p99,
                unit="ms",
                target="<= 1000 ms",
                met=p99 <= 1000,
            ),
        ],
        quick=options.quick,
        notes=f"batches of 10 accounts x {batch_ms} ms; {serial_accounts} accounts on one "
        f"slot, {accounts} on {slots}; gunicorn 2 workers x {slots + 4} threads; "
        f"{trials} wake-ups",
    )


if __name__ == "__main__":
    main()
