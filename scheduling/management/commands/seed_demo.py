from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from rich.progress import Progress

from scheduling.demo import demo_reviews_seed
from sessions.demo import demo_sessions_seed, demo_user_ensure


class Command(BaseCommand):
    help = (
        "Create the demo staff user, demo sessions with their audit trail and demo "
        "scheduled reviews (idempotent)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--no-user", action="store_true", help="Do not create the demo user.")

    def handle(self, *args: Any, no_user: bool, **options: Any) -> None:
        if not no_user:
            username, password, created = demo_user_ensure()
            state = "created" if created else "exists"
            self.stdout.write(f"Demo staff user ({state}): {username} / {password}")
        with Progress(transient=True, disable=not self.stdout.isatty()) as progress:
            bar = progress.add_task("Seeding demo sessions", total=None)
            created_count = demo_sessions_seed(on_progress=lambda _: progress.advance(bar))
        self.stdout.write(f"Demo sessions: {created_count} created.")
        self.stdout.write(f"Demo scheduled reviews: {demo_reviews_seed()} created.")
