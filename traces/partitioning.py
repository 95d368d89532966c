"""Daily partitions of ``trace_span``, bounded at 00:00 UTC (psqlextra's day size is
anchored on the epoch, so its bounds never take the hour of the run, unlike its months:
see audit/partitioning.py), named ``trace_span_2026_dec_03``.

Spans whose day has no partition land in the default partition and are moved out when
their day's partition is made; whole days past the retention are dropped.
"""

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db import connection
from psqlextra.partitioning import (
    PostgresCurrentTimePartitioningStrategy,
    PostgresPartitioningConfig,
    PostgresPartitioningManager,
    PostgresTimePartitionSize,
)
from psqlextra.partitioning.constants import AUTO_PARTITIONED_COMMENT
from psqlextra.partitioning.time_partition import PostgresTimePartition

from traces.models import Span

TABLE = Span._meta.db_table
DEFAULT_PARTITION = f"{TABLE}_default"
DAY = PostgresTimePartitionSize(days=1)


class DailyPartitioningStrategy(PostgresCurrentTimePartitioningStrategy):
    """Today and ``count - 1`` days after it; deletes nothing (retention does)."""

    def __init__(self, count: int, *, now: datetime | None = None) -> None:
        super().__init__(size=DAY, count=count, max_age=None)
        self._now = now

    def get_start_datetime(self) -> datetime:
        return (self._now or datetime.now(UTC)).astimezone(UTC)


def partitioning_manager(*, days: int, now: datetime | None = None) -> PostgresPartitioningManager:
    return PostgresPartitioningManager(
        [PostgresPartitioningConfig(model=Span, strategy=DailyPartitioningStrategy(days, now=now))]
    )


def day_start(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


@dataclass(frozen=True)
class Partition:
    name: str
    start: datetime | None  # None: the default partition
    end: datetime | None


_BOUND = re.compile(r"FOR VALUES FROM \('([^']+)'\) TO \('([^']+)'\)")


def partitions() -> list[Partition]:
    """The partitions of ``trace_span``, oldest first, the default one last (bounds are
    printed in the session's time zone, UTC under Django)."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT child.relname, pg_get_expr(child.relpartbound, child.oid)
              FROM pg_inherits JOIN pg_class child ON child.oid = pg_inherits.inhrelid
             WHERE pg_inherits.inhparent = %s::regclass
            """,
            [TABLE],
        )
        rows = cursor.fetchall()
    found = []
    for name, bound in rows:
        match = _BOUND.fullmatch(bound)
        if match:
            start, end = (datetime.fromisoformat(v).astimezone(UTC) for v in match.groups())
            found.append(Partition(name, start, end))
        else:
            found.append(Partition(name, None, None))
    far = datetime.max.replace(tzinfo=UTC)
    return sorted(found, key=lambda p: (p.start is None, p.start or far))


def set_lock_timeout(seconds: int) -> None:
    """Partition DDL waits at most this long for its lock: writers come first."""
    with connection.cursor() as cursor:
        cursor.execute(f"SET LOCAL lock_timeout = '{int(seconds)}s'")


def partition_create(partition: PostgresTimePartition) -> int:
    """Create one day's partition (inside a transaction), first taking the rows of its
    day out of the default partition, where PostgreSQL would refuse them; returns how
    many rows moved."""
    quote = connection.ops.quote_name
    start, end = partition.start_datetime, partition.end_datetime
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TEMPORARY TABLE trace_span_moving (LIKE {quote(TABLE)}) ON COMMIT DROP"
        )
        cursor.execute(
            f"WITH moved AS (DELETE FROM {quote(DEFAULT_PARTITION)}"
            f" WHERE start_time >= %s AND start_time < %s RETURNING *)"
            f" INSERT INTO trace_span_moving SELECT * FROM moved",
            [start.replace(tzinfo=UTC), end.replace(tzinfo=UTC)],
        )
        moved = cursor.rowcount
        with connection.schema_editor() as editor:
            partition.create(Span, editor, comment=AUTO_PARTITIONED_COMMENT)
        cursor.execute(f"INSERT INTO {quote(TABLE)} SELECT * FROM trace_span_moving")
        cursor.execute("DROP TABLE trace_span_moving")
    return moved


def partition_drop(partition: Partition) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE {connection.ops.quote_name(partition.name)}")


def default_rows_delete(before: datetime) -> int:
    """Delete the default partition's spans that started before ``before``."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"DELETE FROM {connection.ops.quote_name(DEFAULT_PARTITION)} WHERE start_time < %s",
            [before],
        )
        return cursor.rowcount


def retention_cutoff(now: datetime, days: int) -> datetime:
    """Spans starting before this are past retention: whole days, so a day's partition
    goes all at once."""
    return day_start(now) - timedelta(days=days)
