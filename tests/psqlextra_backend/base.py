"""The project's database backend, plus one thing tests need: flushing the audit tables.

Transactional tests end with Django's flush, a ``TRUNCATE`` of every table, which the
audit trail's append-only triggers refuse. Tests run as a superuser, so the flush turns
ordinary triggers off for its own transaction only (``SET LOCAL
session_replication_role = replica``), exactly as a superuser could. Production keeps
psqlextra's backend: there ``manage.py flush`` cannot wipe the audit trail.
"""

from typing import Any

from psqlextra.backend.base import DatabaseWrapper as PsqlextraDatabaseWrapper
from psqlextra.backend.operations import PostgresOperations


class DatabaseOperations(PostgresOperations):
    def sql_flush(self, style: Any, tables: Any, **kwargs: Any) -> list[str]:
        statements = super().sql_flush(style, tables, **kwargs)
        if not statements:
            return statements
        return ["SET LOCAL session_replication_role = replica", *statements]


class DatabaseWrapper(PsqlextraDatabaseWrapper):
    ops_class = DatabaseOperations
