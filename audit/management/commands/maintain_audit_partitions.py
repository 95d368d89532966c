from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.management.progress import ProgressBars
from audit.services import MaintenanceReport, audit_partitions_maintain


class Command(BaseCommand):
    help = (
        "Maintain the audit_event partitions: create the current month and the next "
        "AUDIT_PREMAKE_MONTHS; archive, verify, then detach and drop partitions older "
        "than AUDIT_RETENTION_MONTHS; report rows in the default partition (--repair moves "
        "them). Idempotent; never drops a partition it has not archived and verified."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--dry-run", action="store_true", help="Print the plan and change nothing."
        )
        parser.add_argument(
            "--repair",
            action="store_true",
            help="Move rows from the default partition into partitions of their months.",
        )

    def handle(self, *args: Any, dry_run: bool, repair: bool, **options: Any) -> None:
        with ProgressBars(self.stdout) as progress:
            report = audit_partitions_maintain(
                dry_run=dry_run,
                repair=repair,
                actor="command:maintain_audit_partitions",
                on_progress=progress,
            )
        lines = _plan_lines(report) if dry_run else _result_lines(report)
        for line in lines:
            self.stdout.write(line)
        if not lines:
            self.stdout.write("Audit partitions are up to date; nothing to do.")
        if report.refused:
            for name, reason in report.refused.items():
                self.stderr.write(f"Refused to drop {name}: {reason}")
            raise CommandError(f"{len(report.refused)} partition(s) past retention were kept.")
        if not dry_run and lines:
            self.stdout.write(self.style.SUCCESS("Audit partitions maintained."))


def _default_lines(report: MaintenanceReport) -> list[str]:
    if report.repaired:
        return []
    return [
        f"The default partition holds {count} event(s) of {name}"
        + ("; that partition cannot be created until they move" if name in report.blocked else "")
        + ": run with --repair to move them."
        for name, count in report.default_rows.items()
    ]


def _plan_lines(report: MaintenanceReport) -> list[str]:
    lines = [f"Would create partition audit_event_{name}" for name in report.created]
    lines += [
        f"Would move {count} event(s) from the default partition into {name}"
        for name, count in report.repaired.items()
    ]
    lines += _default_lines(report)
    lines += [
        f"Would archive {expired.name} ({expired.events} events) to {expired.archive},"
        " verify the archive, then detach and drop the partition"
        for expired in report.expired
    ]
    return lines


def _result_lines(report: MaintenanceReport) -> list[str]:
    lines = [f"Created partition audit_event_{name}" for name in report.created]
    lines += [
        f"Moved {count} event(s) from the default partition into {name}"
        for name, count in report.repaired.items()
    ]
    lines += _default_lines(report)
    if report.guards_added and not report.created:
        lines.append(f"Added the TRUNCATE guard to {report.guards_added} partition(s)")
    for expired in report.expired:
        if expired.name in report.dropped:
            verb = "Archived" if expired.name in report.archived else "Reused the archive of"
            lines.append(
                f"{verb} {expired.name} ({expired.events} events) at {expired.archive};"
                " verified it; detached and dropped the partition"
            )
        elif expired.name in report.deferred:
            lines.append(f"Deferred {expired.name}: {report.deferred[expired.name]}")
    return lines
