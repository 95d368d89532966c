"""Prometheus metrics of scheduling: how late runs go out, how they end, what happens to
batch leases, and (read from PostgreSQL at scrape time) the work backlog and the beat
that leads.

Counters and the histogram are observed after the commit of the transaction that made
the change, in the process that made it (beat, a worker, a web process serving an
agent): a rolled-back move counts nothing. Under several processes they reach
``/metrics`` through ``PROMETHEUS_MULTIPROC_DIR`` (docs/operations.md). The backlog and
the leadership are never kept in memory: ``database_families`` reads them at each scrape
(``sergas.metrics.DatabaseCollector``).
"""

from collections.abc import Iterable, Iterator

from django.db import transaction
from prometheus_client import Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric

from scheduling.models import FINISHED_EXECUTION_STATUSES, executor_of

# Nominal time to the run handed to its executor: well under a second when beat keeps
# up (SPEC: p99 < 2 s for a herd of 10,000), up to the catch-up window (30 min) after an
# outage of beat or the broker.
DISPATCH_LAG_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)

DISPATCH_LAG = Histogram(
    "sergas_dispatch_lag_seconds",
    "From the time a run was due to its hand-over to its executor (published to the"
    " broker, or started in bulk when prepared ahead), by trigger.",
    ["trigger"],
    buckets=DISPATCH_LAG_BUCKETS,
)
RUNS_FINISHED = Counter(
    "sergas_runs_finished_total",
    "Runs (attempts) that ended, by outcome (succeeded, failed, retrying: failed with"
    " another attempt queued, skipped_overlap, missed) and executor.",
    ["outcome", "executor"],
)
BATCHES_LEASED = Counter(
    "sergas_batches_leased_total",
    "Batch leases granted to a worker or an agent (a claim of a pending batch), by executor.",
    ["executor"],
)
BATCH_LEASES_EXPIRED = Counter(
    "sergas_batch_leases_expired_total",
    "Batch leases that ran out (their holder died or was cut off): the batch became"
    " claimable again.",
    ["executor"],
)
BATCHES_TAKEN_OVER = Counter(
    "sergas_batches_taken_over_total",
    "Leased batches taken over by another worker because their message was redelivered"
    " (the holder died).",
    ["executor"],
)
PREPARED_RUNS_BULK_STARTED = Counter(
    "sergas_prepared_runs_bulk_started_total",
    "Runs prepared ahead of their time and started in bulk when due.",
)
PREPARED_RUNS_LEFT_TO_SINGLE_START = Counter(
    "sergas_prepared_runs_single_start_total",
    "Runs prepared ahead of their time that the bulk start left to a worker's single"
    " start, by reason (overlap: another run of the review is running; session: its"
    " session was no longer pending; error: its chunk failed).",
    ["reason"],
)

BACKLOG_PENDING = "sergas_work_pending_batches"
BACKLOG_OLDEST = "sergas_work_oldest_pending_seconds"
BEAT_LEADERS = "sergas_beat_leaders"
BEAT_LEADER = "sergas_beat_leader"
BEAT_RENEWED = "sergas_beat_leader_renewed_seconds"


def observe_dispatch_lags(lags: Iterable[tuple[str, float]]) -> None:
    """(trigger, seconds) of runs handed out, once the transaction commits."""
    lags = list(lags)
    if lags:
        transaction.on_commit(lambda: _observe_lags(lags))


def _observe_lags(lags: list[tuple[str, float]]) -> None:
    for trigger, seconds in lags:
        DISPATCH_LAG.labels(trigger=trigger).observe(max(0.0, seconds))


def observe_runs_finished(outcome: str, executors: Iterable[str]) -> None:
    """Runs that reached ``outcome``, once the transaction commits."""
    if outcome not in FINISHED_EXECUTION_STATUSES:
        return
    executors = list(executors)
    if executors:
        transaction.on_commit(lambda: _count_finished(outcome, executors))


def _count_finished(outcome: str, executors: list[str]) -> None:
    for executor in executors:
        RUNS_FINISHED.labels(outcome=outcome, executor=executor).inc()


_LEASE_COUNTERS = {
    "claim": BATCHES_LEASED,
    "take_over": BATCHES_TAKEN_OVER,
    "expire": BATCH_LEASES_EXPIRED,
}


def observe_batch_move(action: str, queue: str) -> None:
    """A batch claimed, taken over or expired, once the transaction commits."""
    counter = _LEASE_COUNTERS.get(action)
    if counter is not None:
        executor = executor_of(queue)
        transaction.on_commit(lambda: counter.labels(executor=executor).inc())


def observe_prepared_start(started: int, left: dict[str, int]) -> None:
    """The outcome of one bulk start (committed chunk by chunk before it returns)."""
    if started:
        PREPARED_RUNS_BULK_STARTED.inc(started)
    for reason, count in left.items():
        if count:
            PREPARED_RUNS_LEFT_TO_SINGLE_START.labels(reason=reason).inc(count)


# --- read from PostgreSQL at each scrape ------------------------------------------------------


def database_families() -> Iterator[Metric]:
    """The work backlog per executor and the beat leadership, as PostgreSQL has them."""
    from scheduling.selectors import beat_leaders, work_backlog

    pending = GaugeMetricFamily(
        BACKLOG_PENDING,
        "Batches waiting to be claimed (pending, their run and session running), by executor.",
        labels=["executor"],
    )
    oldest = GaugeMetricFamily(
        BACKLOG_OLDEST,
        "How long the oldest claimable batch has waited, by executor.",
        labels=["executor"],
    )
    for backlog in work_backlog():
        pending.add_metric([backlog.executor], backlog.pending)
        oldest.add_metric([backlog.executor], backlog.oldest_pending_seconds)
    yield pending
    yield oldest

    leaders = beat_leaders()
    yield GaugeMetricFamily(
        BEAT_LEADERS,
        "Beats holding the leadership lock now (1: one dispatches; 0: none does).",
        value=len(leaders),
    )
    leader = GaugeMetricFamily(
        BEAT_LEADER,
        "The beat holding the leadership lock (value 1): its address as PostgreSQL sees it"
        " (unknown when this role may not see it) and its database backend's pid.",
        labels=["address", "backend_pid"],
    )
    renewed = GaugeMetricFamily(
        BEAT_RENEWED,
        "Seconds since the leading beat last renewed its leadership (its last tick);"
        " absent when this database role may not see the beat's activity.",
    )
    for holder in leaders:
        leader.add_metric([holder.address, str(holder.backend_pid)], 1)
        if holder.renewed_seconds is not None:
            renewed.add_metric([], holder.renewed_seconds)
    yield leader
    yield renewed
