"""Settings of the scheduling app, read lazily from ``settings.SERGAS_SCHEDULING``."""

from typing import Any

from django.conf import settings


def _get(name: str, default: Any) -> Any:
    return getattr(settings, "SERGAS_SCHEDULING", {}).get(name, default)


def review_runner_path() -> str:
    """Dotted path of the ``ReviewRunner`` class that runs the batches of worker-executed
    runs; empty when agents do all the work (``SERGAS_REVIEW_RUNNER``)."""
    return str(_get("REVIEW_RUNNER", "scheduling.runners.SimulatedReviewRunner"))


def account_source_path() -> str:
    """Dotted path of the ``AccountSource`` class that resolves ``account_filter``
    (``SERGAS_ACCOUNT_SOURCE``)."""
    return str(_get("ACCOUNT_SOURCE", "scheduling.accounts.SyntheticAccountSource"))


def recovery_check_seconds() -> float:
    """How often beat re-queues batches whose lease ran out and recovers the interrupted
    sessions of scheduled runs."""
    return float(_get("RECOVERY_CHECK_SECONDS", 60.0))


def review_queue() -> str:
    """The Celery queue review runs are published to."""
    return str(_get("REVIEW_QUEUE", "reviews"))


def dispatch_batch_size() -> int:
    """Reviews dispatched per transaction; each batch is published right after commit."""
    return int(_get("DISPATCH_BATCH_SIZE", 1000))


def dispatch_lead_seconds() -> float:
    """Runs are written to the outbox this long before they are due, so that at the due
    second only publishing is left to do (the 09:00 herd)."""
    return float(_get("DISPATCH_LEAD_SECONDS", 10.0))


def prepare_batch_size() -> int:
    """Runs prepared ahead of their time per ``prepare_runs`` message (and transaction)."""
    return int(_get("PREPARE_BATCH_SIZE", 200))


def dispatch_poll_seconds() -> float:
    """Longest sleep of the dispatcher between looks at the next due review."""
    return float(_get("DISPATCH_POLL_SECONDS", 1.0))


def missed_runs_recorded_max() -> int:
    """At most this many missed runs are recorded per review per dispatch."""
    return int(_get("MISSED_RUNS_RECORDED_MAX", 100))


def beat_lock_key() -> int:
    """PostgreSQL advisory lock key held by the one active beat."""
    return int(_get("BEAT_LOCK_KEY", 0x5E76A5))


def leadership_database() -> dict[str, Any]:
    """The database (Django's ``DATABASES["default"]``) beat's leadership connection
    opens, with its options (keepalives, connect timeout)."""
    return dict(settings.DATABASES["default"])


def beat_standby_poll_seconds() -> float:
    """How often a standby beat tries to take the lock over."""
    return float(_get("BEAT_STANDBY_POLL_SECONDS", 2.0))


def beat_leader_stale_seconds() -> float:
    """A leading beat renews its lock at every tick (at most ``DISPATCH_POLL_SECONDS``
    apart, longer while it dispatches a herd); past this without one, /readyz calls the
    leadership stale: the beat hangs, or is cut off while PostgreSQL keeps its lock."""
    return float(_get("BEAT_LEADER_STALE_SECONDS", 60.0))


def runner_batch_size() -> int:
    """Accounts per batch: the unit of work one worker takes, with one checkpoint."""
    return int(_get("RUNNER_BATCH_SIZE", 10))


def batch_lease_seconds() -> int:
    """A batch claimed longer ago than this without finishing is presumed lost with its
    worker and runs again; keep it above the longest batch."""
    return int(_get("BATCH_LEASE_SECONDS", 600))


def simulated_account_ms() -> int:
    """Mean simulated review time of one account; 0 makes the simulation instant."""
    return int(_get("SIMULATED_ACCOUNT_MS", 50))


def simulated_failure_rate() -> float:
    """Share of accounts the simulation fails (deterministically, by account id)."""
    return float(_get("SIMULATED_FAILURE_RATE", 0.05))


def default_account_count() -> int:
    """Accounts the synthetic source yields for a filter that does not name a count."""
    return int(_get("DEFAULT_ACCOUNT_COUNT", 25))


def work_lease_seconds() -> int:
    """How long an agent's lease on a batch lasts without a heartbeat; a lease that runs
    out makes the batch claimable again. Agents heartbeat well within it."""
    return int(_get("WORK_LEASE_SECONDS", 60))


def work_wait_max_seconds() -> int:
    """The longest long poll of ``POST /api/v1/work/claim`` (``wait_seconds``)."""
    return int(_get("WORK_WAIT_MAX_SECONDS", 30))


def batch_max_attempts() -> int:
    """Attempts a batch gets when its holder fails it as retryable; after the last one
    the run fails (and is retried as a whole if the review allows)."""
    return int(_get("BATCH_MAX_ATTEMPTS", 3))


def wakeup_fallback_seconds() -> float:
    """While the wake-up listener is disconnected, waiters look at the queue this often."""
    return float(_get("WAKEUP_FALLBACK_SECONDS", 1.0))


def allow_simulation() -> bool:
    """Whether the simulated runner and the synthetic account source may be configured
    (development and tests; production refuses them unless told otherwise)."""
    return bool(_get("ALLOW_SIMULATION", True))


def batch_retention_days() -> int:
    """Days a finished run keeps its batches (lease history) before the daily prune
    removes them; its results stay. 0: kept forever."""
    return int(_get("BATCH_RETENTION_DAYS", 30))


def execution_retention_days() -> int:
    """Days a finished run is kept, with its per-account results, before the daily prune
    removes it (the audit trail keeps its events). 0: kept forever."""
    return int(_get("EXECUTION_RETENTION_DAYS", 400))
