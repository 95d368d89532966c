"""Monthly partitions of ``audit_event``, bounded on the 1st of the month at 00:00 UTC.

psqlextra's current-time strategy keeps the current hour in its bounds (upstream issue
269): a run at 02:xx would make ``2026-11-01 02:00 -> 2026-12-01 02:00`` and a later run
at another hour would collide with it. ``MonthlyPartitioningStrategy`` pins the start.
"""

from datetime import UTC, datetime

from psqlextra.partitioning import (
    PostgresCurrentTimePartitioningStrategy,
    PostgresPartitioningConfig,
    PostgresPartitioningManager,
    PostgresTimePartitionSize,
)

from audit import conf
from audit.models import AuditEvent


class MonthlyPartitioningStrategy(PostgresCurrentTimePartitioningStrategy):
    """The current month and ``count - 1`` months after it; never deletes anything."""

    def __init__(self, count: int, *, now: datetime | None = None) -> None:
        super().__init__(size=PostgresTimePartitionSize(months=1), count=count, max_age=None)
        self._now = now

    def get_start_datetime(self) -> datetime:
        now = (self._now or datetime.now(UTC)).astimezone(UTC)
        return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def partitioning_manager(*, now: datetime | None = None) -> PostgresPartitioningManager:
    return PostgresPartitioningManager(
        [
            PostgresPartitioningConfig(
                model=AuditEvent,
                strategy=MonthlyPartitioningStrategy(count=1 + conf.premake_months(), now=now),
            )
        ]
    )


class _LazyManager:
    """``PSQLEXTRA_PARTITIONING_MANAGER`` target that reads settings when used, not imported."""

    def __getattr__(self, name: str) -> object:
        return getattr(partitioning_manager(), name)


manager = _LazyManager()
