from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from rich.progress import Progress

from demo.services import (
    DEMO_QUEUE,
    demo_agent_token_issue,
    demo_reviews_seed,
    demo_sessions_seed,
    demo_user_ensure,
)


class Command(BaseCommand):
    help = (
        "Create the demo staff user, demo sessions with their audit trail and demo "
        "scheduled reviews (idempotent)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--no-user", action="store_true", help="Do not create the demo user.")
        parser.add_argument(
            "--agent-token-file",
            type=Path,
            help=f"Issue a work token for the demo agent (queue {DEMO_QUEUE}) into this file.",
        )

    def handle(
        self, *args: Any, no_user: bool, agent_token_file: Path | None, **options: Any
    ) -> None:
        if not no_user:
            username, password, created = demo_user_ensure()
            state = "created" if created else "exists"
            self.stdout.write(f"Demo staff user ({state}): {username} / {password}")
        with Progress(transient=True, disable=not self.stdout.isatty()) as progress:
            bar = progress.add_task("Seeding demo sessions", total=None)
            created_count = demo_sessions_seed(on_progress=lambda _: progress.advance(bar))
        self.stdout.write(f"Demo sessions: {created_count} created.")
        self.stdout.write(f"Demo scheduled reviews: {demo_reviews_seed()} created.")
        if agent_token_file is not None:
            prefix = demo_agent_token_issue(agent_token_file)
            self.stdout.write(f"Demo agent token sgs_{prefix}_… written to {agent_token_file}.")
