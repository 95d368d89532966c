from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from scheduling.services import schedules_reconcile


class Command(BaseCommand):
    help = (
        "Repair drift between scheduled reviews and their django-celery-beat PeriodicTasks "
        "(missing, edited by hand, orphaned) and report what changed."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--dry-run", action="store_true", help="Report the drift; change nothing."
        )

    def handle(self, *args: Any, dry_run: bool, **options: Any) -> None:
        report = schedules_reconcile(dry_run=dry_run)
        verb = "Would" if dry_run else "Did"
        for review_id in report.created:
            self.stdout.write(f"{verb} create the PeriodicTask of review {review_id}")
        for review_id, fields in report.updated.items():
            self.stdout.write(
                f"{verb} correct the PeriodicTask of review {review_id}: {', '.join(fields)}"
            )
        for name in report.orphans_deleted:
            self.stdout.write(f"{verb} delete orphaned PeriodicTask {name}")
        if not report.changed:
            self.stdout.write("Schedules are in sync; nothing to change.")
