"""Monthly partitions of ``audit_event``, bounded on the 1st of the month at 00:00 UTC.

psqlextra's current-time strategy keeps the current hour in its bounds (upstream issue
269): a run at 02:xx would make ``2026-11-01 02:00 -> 2026-12-01 02:00`` and a later run
at another hour would collide with it. ``MonthlyPartitioningStrategy`` pins the start.
"""

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from django.db import connection
from psqlextra.partitioning import (
    PostgresCurrentTimePartitioningStrategy,
    PostgresPartitioningConfig,
    PostgresPartitioningManager,
    PostgresTimePartitionSize,
)
from psqlextra.partitioning.constants import AUTO_PARTITIONED_COMMENT

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


def month_start(moment: datetime) -> datetime:
    """The 1st of ``moment``'s month at 00:00 UTC."""
    return moment.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def add_months(moment: datetime, months: int) -> datetime:
    """``moment`` (the 1st of a month) moved by ``months`` whole months."""
    index = moment.year * 12 + moment.month - 1 + months
    return moment.replace(year=index // 12, month=index % 12 + 1)


def partition_name(start: datetime) -> str:
    """The table name psqlextra gives the month starting at ``start``."""
    return f"{AuditEvent._meta.db_table}_{start.strftime('%Y_%b').lower()}"


DEFAULT_PARTITION = f"{AuditEvent._meta.db_table}_default"


@dataclass(frozen=True)
class Partition:
    """One partition of ``audit_event``; the default partition has no bounds."""

    name: str
    start: datetime | None
    end: datetime | None

    @property
    def is_default(self) -> bool:
        return self.start is None


_BOUND = re.compile(r"FOR VALUES FROM \('([^']+)'\) TO \('([^']+)'\)")


def partitions() -> list[Partition]:
    """Every partition of ``audit_event``, oldest first, the default partition last.

    Bounds are printed in the session time zone, which Django sets to UTC.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT child.relname, pg_get_expr(child.relpartbound, child.oid)
              FROM pg_inherits
              JOIN pg_class child ON child.oid = pg_inherits.inhrelid
             WHERE pg_inherits.inhparent = %s::regclass
            """,
            [AuditEvent._meta.db_table],
        )
        rows = cursor.fetchall()
    found = []
    for name, bound in rows:
        match = _BOUND.fullmatch(bound)
        if match:
            start, end = (datetime.fromisoformat(value) for value in match.groups())
            found.append(Partition(name, start.astimezone(UTC), end.astimezone(UTC)))
        else:
            found.append(Partition(name, None, None))
    return sorted(found, key=lambda p: (p.is_default, p.start or datetime.max.replace(tzinfo=UTC)))


def partition_row_count(name: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {connection.ops.quote_name(name)}")
        return cursor.fetchone()[0]


def guard_partitions() -> int:
    """Give every partition lacking one the TRUNCATE guard (row guards are cloned by
    PostgreSQL, statement ones are not). Returns how many were added."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT audit_guard_partitions()")
        return cursor.fetchone()[0]


def default_partition_months() -> dict[datetime, int]:
    """Rows waiting in the default partition, counted by the month they belong to."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT date_trunc('month', "timestamp" AT TIME ZONE 'UTC'), count(*)
              FROM {connection.ops.quote_name(DEFAULT_PARTITION)}
             GROUP BY 1 ORDER BY 1
            """
        )
        return {month.replace(tzinfo=UTC): count for month, count in cursor.fetchall()}


def set_lock_timeout(seconds: int) -> None:
    """Bound the wait for partition DDL locks in the current transaction: DDL queued on
    ``audit_event`` would otherwise block every writer that arrives behind it.

    ``SET LOCAL``, not ``SELECT set_config()``: a utility statement takes no snapshot,
    so a REPEATABLE READ transaction can still lock before its snapshot is taken.
    """
    with connection.cursor() as cursor:
        cursor.execute(f"SET LOCAL lock_timeout = '{int(seconds)}s'")


def allow_maintenance_ddl() -> None:
    """Let this transaction detach and drop audit partitions: the DDL guards (event
    triggers, migration 0004) refuse it otherwise. ``SET LOCAL``: it ends with the
    transaction. Only partition maintenance calls it, after archiving and verifying."""
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL sergas.audit_ddl = 'maintenance'")


def detach_and_drop(partition: Partition) -> None:
    """Remove a whole partition; call inside a transaction (after archiving it)."""
    quote = connection.ops.quote_name
    parent = quote(AuditEvent._meta.db_table)
    allow_maintenance_ddl()
    with connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE {parent} DETACH PARTITION {quote(partition.name)}")
        cursor.execute(f"DROP TABLE {quote(partition.name)}")


def move_default_rows(months: list[datetime]) -> dict[str, int]:
    """Move the default partition's rows into new partitions for ``months``, keeping
    every column as stored (content hash and transaction id included, so the seals that
    list them stay valid). Call inside a transaction.

    PostgreSQL refuses to create a partition while the default one holds rows of its
    range, and the insert trigger would restamp the rows, so: detach the default
    partition (its cloned triggers go with it), build each month as a plain table from
    its rows, attach it (triggers and indexes are cloned then), delete the moved rows
    from the detached default partition and attach it again.
    """
    quote = connection.ops.quote_name
    parent = quote(AuditEvent._meta.db_table)
    default = quote(DEFAULT_PARTITION)
    moved: dict[str, int] = {}
    allow_maintenance_ddl()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) FROM pg_attribute"
            " WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped",
            [AuditEvent._meta.db_table],
        )
        columns = cursor.fetchone()[0]
        cursor.execute(f"ALTER TABLE {parent} DETACH PARTITION {default}")
        for start in months:
            end = add_months(start, 1)
            name = partition_name(start)
            cursor.execute(
                f"CREATE TABLE {quote(name)} (LIKE {parent} INCLUDING DEFAULTS INCLUDING STORAGE)"
            )
            cursor.execute(
                f"INSERT INTO {quote(name)} ({columns}) SELECT {columns} FROM {default}"
                f' WHERE "timestamp" >= %s AND "timestamp" < %s',
                [start, end],
            )
            moved[name] = cursor.rowcount
            cursor.execute(
                f"ALTER TABLE {parent} ATTACH PARTITION {quote(name)} FOR VALUES FROM (%s) TO (%s)",
                [start, end],
            )
            cursor.execute(f"COMMENT ON TABLE {quote(name)} IS %s", [AUTO_PARTITIONED_COMMENT])
            cursor.execute(
                f'DELETE FROM {default} WHERE "timestamp" >= %s AND "timestamp" < %s',
                [start, end],
            )
        cursor.execute(f"ALTER TABLE {parent} ATTACH PARTITION {default} DEFAULT")
    guard_partitions()
    return moved
