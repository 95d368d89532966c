from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from rich.progress import Progress

from sessions.selectors import sessions_archivable
from sessions.services import sessions_cleanup_old


class Command(BaseCommand):
    help = (
        "Archive finished sessions older than N days: keep only their final checkpoint, "
        "drop their cache entries and mark them archived. Audit events are kept."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--older-than-days", type=int, required=True, metavar="N")
        parser.add_argument(
            "--dry-run", action="store_true", help="List what would be archived; change nothing."
        )

    def handle(self, *args: Any, older_than_days: int, dry_run: bool, **options: Any) -> None:
        if older_than_days < 0:
            raise CommandError("--older-than-days must be zero or more.")
        if dry_run:
            session_ids = sessions_archivable(older_than_days=older_than_days)
            for session_id in session_ids:
                self.stdout.write(f"Would archive {session_id}")
            self.stdout.write(f"{len(session_ids)} session(s) would be archived.")
            return
        total = len(sessions_archivable(older_than_days=older_than_days))
        with Progress(transient=True, disable=not self.stdout.isatty()) as progress:
            bar = progress.add_task("Archiving sessions", total=total)
            result = sessions_cleanup_old(
                older_than_days=older_than_days,
                actor="command:cleanup_sessions",
                on_progress=lambda _session_id: progress.advance(bar),
            )
        self.stdout.write(
            self.style.SUCCESS(
                f"Archived {len(result.session_ids)} session(s); "
                f"pruned {result.checkpoints_pruned} checkpoint(s)."
            )
        )
