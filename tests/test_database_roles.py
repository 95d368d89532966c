"""The production roles of docs/deployment.md ("Roles"), from deploy/postgres/*.sql: the
application's role does its work (sessions, runs, the audit trail's appends and seals,
the dashboard's warning) and can neither change the audit trail nor run DDL; partition
maintenance needs the owner, hence its own queue."""

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from django.db import DatabaseError, connection, transaction

from audit.selectors import audit_default_partition_rows
from audit.services import audit_event_record, audit_events_seal, audit_partitions_maintain
from sessions import services
from tests.processes import ROOT

pytestmark = pytest.mark.django_db


@pytest.fixture
def roles() -> None:
    """Both files, run as the superuser the tests connect as (rolled back with the test:
    roles and grants are transactional)."""
    with connection.cursor() as cursor:
        for name in ("roles.sql", "grants.sql"):
            cursor.execute((ROOT / "deploy" / "postgres" / name).read_text())


@contextmanager
def as_app() -> Iterator[None]:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL ROLE sergas_app")
        yield


def _refused(sql: str) -> str:
    with pytest.raises(DatabaseError) as refusal, as_app(), connection.cursor() as cursor:
        cursor.execute(sql)
    return str(refusal.value)


def test_the_application_role_does_its_work(roles):
    with as_app():
        session = services.session_create(account_ids=["a", "b"], orchestrator_id="o")
        services.session_start(session.session_id)
        services.session_checkpoint(
            session.session_id, context_changes={"processed_accounts": ["a"]}
        )
        audit_event_record(event_type="system", actor="test", action="probe", resource="r")
        assert audit_default_partition_rows() >= 0
    with as_app():
        audit_events_seal()  # reads pg_stat_activity, appends to audit_seal


def test_the_application_role_cannot_change_the_audit_trail_or_run_ddl(roles):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT inhrelid::regclass::text FROM pg_inherits"
            " WHERE inhparent = 'audit_event'::regclass LIMIT 1"
        )
        (partition,) = cursor.fetchone()
    assert "permission denied" in _refused("DELETE FROM audit_event")
    assert "permission denied" in _refused("UPDATE audit_seal SET key_id = ''")
    assert "permission denied" in _refused(f"DELETE FROM {partition}")
    assert "permission denied" in _refused("TRUNCATE audit_archive")
    assert "must be owner" in _refused(f"ALTER TABLE audit_event DETACH PARTITION {partition}")
    with pytest.raises(DatabaseError, match=r"must be owner|permission denied"), as_app():
        audit_partitions_maintain(repair=True)  # DDL: the owner's, on MAINTENANCE_QUEUE
