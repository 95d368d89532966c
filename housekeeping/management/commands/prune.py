from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from rich.progress import Progress

from housekeeping.services import housekeeping_prune, housekeeping_prune_size


class Command(BaseCommand):
    help = (
        "Remove what the retentions allow: finished runs with their results, batches of"
        " finished runs, archive finished sessions, expired idempotency records (beat runs"
        " it daily). Each chunk is one transaction with its audit event."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--dry-run", action="store_true", help="Say what would go; change nothing."
        )

    def handle(self, *args: Any, dry_run: bool, **options: Any) -> None:
        if dry_run:
            steps = housekeeping_prune(dry_run=True)
        else:
            totals = housekeeping_prune_size()
            with Progress(transient=True, disable=not self.stdout.isatty()) as progress:
                bars = {
                    name: progress.add_task(name.capitalize(), total=total)
                    for name, total in totals.items()
                }
                steps = housekeeping_prune(
                    actor="command:prune",
                    on_progress=lambda name, count: progress.advance(bars[name], count),
                )
        verb = "would remove" if dry_run else "removed"
        for step in steps:
            self.stdout.write(f"{step.name}: {verb} {step.count} ({step.setting})")
        self.stdout.write(self.style.SUCCESS("Dry run: nothing changed." if dry_run else "Done."))
