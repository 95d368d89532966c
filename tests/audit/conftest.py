from collections.abc import Iterator
from pathlib import Path

import pytest
from django.db import connection, transaction

from audit.partitions.partitioning import allow_maintenance_ddl, partitions


@pytest.fixture
def drop_new_partitions() -> Iterator[None]:
    """Transactional tests commit the partitions they create: drop them afterwards."""
    before = {partition.name for partition in partitions()}
    yield
    quote = connection.ops.quote_name
    with transaction.atomic(), connection.cursor() as cursor:
        allow_maintenance_ddl()  # the DDL guards let only maintenance drop partitions
        for partition in partitions():
            if partition.name not in before:
                cursor.execute(f"DROP TABLE {quote(partition.name)}")


@pytest.fixture
def archive_dir(settings, tmp_path) -> Path:
    settings.AUDIT_ARCHIVE_DIR = tmp_path / "archive"
    return settings.AUDIT_ARCHIVE_DIR
