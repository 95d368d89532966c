"""Reads of partitions."""

from django.db import connection

from audit.partitions.partitioning import DEFAULT_PARTITION

DEFAULT_PARTITION_COUNT_LIMIT = 100_000


def audit_default_partition_rows() -> int:
    """Rows in the default partition (events whose month had no partition), counted up
    to ``DEFAULT_PARTITION_COUNT_LIMIT`` so a scrape stays cheap whatever it holds."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT count(*) FROM (SELECT 1 FROM {connection.ops.quote_name(DEFAULT_PARTITION)}"
            " LIMIT %s) AS capped",
            [DEFAULT_PARTITION_COUNT_LIMIT],
        )
        return cursor.fetchone()[0]
