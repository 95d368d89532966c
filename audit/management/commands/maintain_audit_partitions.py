from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from audit.services import audit_partitions_maintain


class Command(BaseCommand):
    help = (
        "Create the audit_event partitions for the current month and the next "
        "AUDIT_PREMAKE_MONTHS months. Idempotent; never drops a partition."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--dry-run", action="store_true", help="Print the plan and change nothing."
        )

    def handle(self, *args: Any, dry_run: bool, **options: Any) -> None:
        summary = audit_partitions_maintain(
            dry_run=dry_run, actor="command:maintain_audit_partitions"
        )
        if not summary.created:
            self.stdout.write("Audit partitions are up to date; nothing to create.")
            return
        verb = "Would create" if dry_run else "Created"
        for name in summary.created:
            self.stdout.write(f"{verb} partition audit_event_{name}")
        if not dry_run:
            self.stdout.write(self.style.SUCCESS(f"{len(summary.created)} partition(s) created."))
