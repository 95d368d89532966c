from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from traces.services import trace_partitions_maintain


class Command(BaseCommand):
    help = (
        "Create the coming days' trace_span partitions and drop the days past"
        " TRACES_RETENTION_DAYS (beat does it every six hours)."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="Say what would be done.")

    def handle(self, *args: Any, dry_run: bool = False, **options: Any) -> None:
        report = trace_partitions_maintain(
            dry_run=dry_run, actor="command:maintain_trace_partitions"
        )
        if report.deferred:
            raise CommandError(f"Deferred, the table was busy: {report.deferred}")
        verb = "Would create" if dry_run else "Created"
        self.stdout.write(f"{verb}: {', '.join(report.created) or 'nothing'}")
        verb = "Would drop" if dry_run else "Dropped"
        self.stdout.write(f"{verb}: {', '.join(report.dropped) or 'nothing'}")
        if report.moved:
            self.stdout.write(f"Moved {report.moved} spans out of the default partition")
        if report.default_rows_deleted:
            self.stdout.write(
                f"Deleted {report.default_rows_deleted} expired spans from the default partition"
            )
