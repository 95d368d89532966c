"""Retention archives a month past AUDIT_RETENTION_MONTHS, verifies the archive, then
detaches and drops the partition; it never drops what it has not archived and verified."""

import gzip
import io
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from django.conf import settings as django_settings
from django.core.management import CommandError, call_command
from django.db import connection

from audit.integrity.archive import digest_path, verify_archive
from audit.integrity.findings import ProblemKind
from audit.integrity.verification import audit_trail_verify
from audit.models import AuditArchive, AuditEvent
from audit.partitions.partitioning import partitions
from audit.services import audit_partitions_maintain
from tests.audit.support import as_superuser, make_month, record, seal_everything

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("drop_new_partitions"),
]

JAN, FEB = datetime(2018, 1, 1, tzinfo=UTC), datetime(2018, 2, 1, tzinfo=UTC)
# 84 months before March 2025: January and February 2018 are past retention.
NOW = datetime(2025, 3, 15, 10, 30, tzinfo=UTC)


@pytest.fixture
def old_months(archive_dir) -> dict[str, list[AuditEvent]]:
    make_month(JAN)
    make_month(FEB)
    events = {
        "audit_event_2018_jan": record(5, timestamp=datetime(2018, 1, 10, tzinfo=UTC)),
        "audit_event_2018_feb": record(3, timestamp=datetime(2018, 2, 28, 23, 59, tzinfo=UTC)),
    }
    record(2, timestamp=datetime(2018, 3, 1, tzinfo=UTC))  # the default partition: kept
    seal_everything()
    return events


def _names() -> set[str]:
    return {partition.name for partition in partitions()}


def _actions() -> list[str]:
    return list(
        AuditEvent.objects.filter(event_type="system")
        .order_by("timestamp")
        .values_list("action", flat=True)
    )


class TtyStream(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_month_past_retention_is_archived_verified_then_dropped(old_months, archive_dir):
    report = audit_partitions_maintain(now=NOW)

    assert report.dropped == ["audit_event_2018_jan", "audit_event_2018_feb"]
    assert report.archived == report.dropped
    assert not report.refused
    assert not report.deferred
    assert not {"audit_event_2018_jan", "audit_event_2018_feb"} & _names()
    for name, events in old_months.items():
        archive = archive_dir / f"{name}.jsonl.gz"
        check = verify_archive(archive)
        assert check.ok, check.problems
        assert check.events == len(events)
        assert digest_path(archive).read_text().split()[0] == check.sha256
        stored = AuditArchive.objects.get(partition=name)
        assert (stored.event_count, stored.sha256, stored.path) == (
            len(events),
            check.sha256,
            str(archive),
        )
        dropped = AuditEvent.objects.get(action="partition_dropped", resource=f"partition:{name}")
        assert dropped.metadata["sha256"] == check.sha256
        assert dropped.metadata["events"] == len(events)
    assert _actions().count("partition_archived") == 2

    # The seals still list the dropped events: verification counts them as retired.
    seal_everything()
    verification = audit_trail_verify()
    assert verification.ok, verification.problems
    assert verification.retired == 8


def test_the_archive_verifies_offline_without_django_or_a_database(old_months, archive_dir):
    audit_partitions_maintain(now=NOW)
    archive = archive_dir / "audit_event_2018_jan.jsonl.gz"
    blocked = "import sys, runpy; sys.modules['django'] = None; sys.modules['psycopg'] = None; "
    run = subprocess.run(
        [
            sys.executable,
            "-c",
            blocked + "runpy.run_module('audit.archive', run_name='__main__')",
            str(archive),
        ],
        cwd=django_settings.BASE_DIR,
        env={"PATH": os.environ.get("PATH", "")},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    assert "5 events" in run.stdout
    assert run.stdout.rstrip().endswith("OK")


def test_the_archive_command_checks_the_seals_against_the_chain(old_months, archive_dir, capsys):
    audit_partitions_maintain(now=NOW)
    archive = archive_dir / "audit_event_2018_jan.jsonl.gz"
    call_command("verify_audit_archive", str(archive))
    assert "verified and against the database's seal chain" in capsys.readouterr().out
    as_superuser("UPDATE audit_seal SET hash = sha256('forged') WHERE number = 1")
    with pytest.raises(CommandError, match="1 archive"):
        call_command("verify_audit_archive", str(archive))
    assert "differs from the database's seal" in capsys.readouterr().err
    call_command("verify_audit_archive", "--offline", str(archive))


def _rewrite(archive: Path, change) -> None:
    with gzip.open(archive, "rb") as stream:
        lines = stream.read().splitlines()
    with gzip.open(archive, "wb") as stream:
        stream.write(b"\n".join(change(lines)) + b"\n")
    digest_path(archive).unlink()


@pytest.mark.parametrize(
    ("change", "kind"),
    [
        (lambda lines: [*lines[:-1], lines[-1].replace(b'"test"', b'"forger"')], "modified"),
        (lambda lines: lines[:-1], "deleted"),
        (lambda lines: [*lines, lines[-1].replace(b'"n": ', b'"n": 1')], "inserted"),
        (
            lambda lines: [
                lines[0],
                lines[1].replace(b'"event_count": ', b'"event_count": 9'),
                *lines[2:],
            ],
            "broken",
        ),
    ],
    ids=["modified", "deleted", "inserted", "broken seal"],
)
def test_a_tampered_archive_fails_offline_verification(old_months, archive_dir, change, kind):
    audit_partitions_maintain(now=NOW)
    archive = archive_dir / "audit_event_2018_jan.jsonl.gz"
    _rewrite(archive, change)
    check = verify_archive(archive)
    assert not check.ok
    assert any(problem.kind.startswith(kind) for problem in check.problems), check.problems


def test_an_archive_whose_file_digest_changed_fails(old_months, archive_dir):
    audit_partitions_maintain(now=NOW)
    archive = archive_dir / "audit_event_2018_feb.jsonl.gz"
    digest_path(archive).write_text(f"{'0' * 64}  {archive.name}\n")
    assert [p.kind for p in verify_archive(archive).problems] == [ProblemKind.MODIFIED]


def test_a_month_that_fails_verification_is_neither_archived_nor_dropped(
    old_months, archive_dir, capsys
):
    victim = old_months["audit_event_2018_jan"][2]
    as_superuser(
        'DELETE FROM audit_event WHERE event_id = %s AND "timestamp" = %s',
        [victim.event_id, victim.timestamp],
    )
    with pytest.raises(CommandError, match="1 partition"):
        call_command("maintain_audit_partitions")
    assert "Refused to drop audit_event_2018_jan" in capsys.readouterr().err

    # The command ran "now"; run again as of NOW to look at the report.
    report = audit_partitions_maintain(now=NOW)
    assert "audit_event_2018_jan" in _names()
    assert "deleted event" in report.refused["audit_event_2018_jan"]
    assert not (archive_dir / "audit_event_2018_jan.jsonl.gz").exists()
    refusal = AuditEvent.objects.filter(action="retention_refused").last()
    assert refusal.metadata["partition"] == "audit_event_2018_jan"
    assert report.dropped == [] or "audit_event_2018_jan" not in report.dropped


def test_an_archive_in_the_way_that_does_not_verify_stops_retention(old_months, archive_dir):
    archive_dir.mkdir(parents=True)
    archive = archive_dir / "audit_event_2018_jan.jsonl.gz"
    archive.write_bytes(b"not an archive")
    report = audit_partitions_maintain(now=NOW)
    assert "already exists" in report.refused["audit_event_2018_jan"]
    assert "audit_event_2018_jan" in _names()
    assert archive.read_bytes() == b"not an archive"  # evidence is left alone
    assert report.dropped == ["audit_event_2018_feb"]


def test_an_unwritable_archive_directory_keeps_the_partition(old_months, settings, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    settings.AUDIT_ARCHIVE_DIR = blocker / "archive"
    report = audit_partitions_maintain(now=NOW)
    assert set(report.refused) == {"audit_event_2018_jan", "audit_event_2018_feb"}
    assert {"audit_event_2018_jan", "audit_event_2018_feb"} <= _names()
    assert AuditArchive.objects.count() == 0


def test_unsealed_events_defer_retention_until_a_later_run(old_months, archive_dir):
    with psycopg.connect(**connection.get_connection_params()) as other:
        other.execute("SELECT pg_current_xact_id()")  # an open transaction holds seals back
        record(1, timestamp=datetime(2018, 1, 20, tzinfo=UTC))
        report = audit_partitions_maintain(now=NOW)
        assert "not sealed yet" in report.deferred["audit_event_2018_jan"]
        assert "audit_event_2018_jan" in _names()
    seal_everything()
    again = audit_partitions_maintain(now=NOW)
    assert again.dropped == ["audit_event_2018_jan"]
    assert verify_archive(archive_dir / "audit_event_2018_jan.jsonl.gz").events == 6


def test_a_busy_table_defers_the_drop_and_a_stale_archive_is_replaced(
    old_months, archive_dir, settings
):
    settings.AUDIT_DDL_LOCK_TIMEOUT_SECONDS = 1
    with psycopg.connect(**connection.get_connection_params()) as other:
        # A writer mid-flight holds the parent table (not the old partitions).
        other.execute("LOCK TABLE ONLY audit_event IN ROW EXCLUSIVE MODE")
        report = audit_partitions_maintain(now=NOW)
    assert {"audit_event_2018_jan", "audit_event_2018_feb"} <= set(report.deferred)
    assert "busy" in report.deferred["audit_event_2018_jan"]
    assert report.created == []  # creation waits for its lock no longer than the timeout
    assert {"audit_event_2018_jan", "audit_event_2018_feb"} <= _names()
    # The archives were written before the drop was refused: an interrupted run's leftovers.
    assert verify_archive(archive_dir / "audit_event_2018_feb.jsonl.gz").ok

    record(1, timestamp=datetime(2018, 1, 21, tzinfo=UTC))  # a late, backdated event
    seal_everything()
    report = audit_partitions_maintain(now=NOW)
    assert report.dropped == ["audit_event_2018_jan", "audit_event_2018_feb"]
    assert report.archived == ["audit_event_2018_jan"]  # rewritten; February's was reused
    assert verify_archive(archive_dir / "audit_event_2018_jan.jsonl.gz").events == 6
    assert list(archive_dir.glob("audit_event_2018_jan.jsonl.gz.superseded-*"))
    reused = AuditEvent.objects.get(
        action="partition_archived", resource="partition:audit_event_2018_feb"
    )
    assert reused.metadata["reused"] is True


def test_maintenance_is_idempotent(old_months, archive_dir):
    first = audit_partitions_maintain(now=NOW)
    assert first.dropped
    events = AuditEvent.objects.count()
    second = audit_partitions_maintain(now=NOW)
    assert (second.created, second.dropped, second.expired, second.refused) == ([], [], [], {})
    assert AuditEvent.objects.count() == events  # a run with nothing to do records nothing


def test_the_dry_run_prints_the_plan_and_changes_nothing(old_months, archive_dir, capsys):
    before = _names()
    events = AuditEvent.objects.count()
    call_command("maintain_audit_partitions", "--dry-run")
    out = capsys.readouterr().out
    assert "Would archive audit_event_2018_jan (5 events)" in out
    assert "Would archive audit_event_2018_feb (3 events)" in out
    assert "then detach and drop the partition" in out
    assert "Would create partition audit_event_" in out
    assert "The default partition holds 2 event(s) of audit_event_2018_mar" in out
    assert _names() == before
    assert AuditEvent.objects.count() == events
    assert not archive_dir.exists()


def test_the_command_reports_what_it_did_with_progress_bars_on_a_terminal(old_months, archive_dir):
    out = TtyStream()
    call_command("maintain_audit_partitions", stdout=out)
    text = out.getvalue()
    assert "Archived audit_event_2018_jan (5 events)" in text
    assert "detached and dropped the partition" in text
    assert "Verifying audit_event_2018_jan" in text or "Archiving audit_event_2018_jan" in text


@pytest.fixture
def archive_storage_dir(settings, tmp_path) -> Path:
    """An archive storage of its own (any Django storage would do), apart from the
    directory where archives are written and verified first."""
    kept = tmp_path / "kept"
    settings.STORAGES = {
        **settings.STORAGES,
        "audit_archive": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(kept)},
        },
    }
    return kept


def test_archives_are_kept_in_the_configured_storage(old_months, archive_dir, archive_storage_dir):
    report = audit_partitions_maintain(now=NOW)
    assert report.dropped == ["audit_event_2018_jan", "audit_event_2018_feb"]
    for name in report.dropped:
        kept = archive_storage_dir / f"{name}.jsonl.gz"
        check = verify_archive(kept)  # the stored copy, digest file included
        assert check.ok, check.problems
        stored = AuditArchive.objects.get(partition=name)
        assert (stored.path, stored.sha256) == (str(kept), check.sha256)
        dropped = AuditEvent.objects.get(action="partition_dropped", resource=f"partition:{name}")
        assert dropped.metadata["archive"] == str(kept)
    seal_everything()
    assert audit_trail_verify().ok


def test_a_different_archive_in_the_storage_stops_retention_and_stays(
    old_months, archive_dir, archive_storage_dir
):
    archive_storage_dir.mkdir(parents=True)
    squatter = archive_storage_dir / "audit_event_2018_jan.jsonl.gz"
    squatter.write_bytes(b"someone else's file")
    report = audit_partitions_maintain(now=NOW)
    assert "a different file is stored under that name" in report.refused["audit_event_2018_jan"]
    assert "audit_event_2018_jan" in _names()  # not dropped
    assert squatter.read_bytes() == b"someone else's file"  # evidence is left alone
    assert report.dropped == ["audit_event_2018_feb"]
