from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from sessions import conf
from sessions.services import sessions_interrupt_stale


class Command(BaseCommand):
    help = (
        "Mark running sessions whose heartbeat is older than the timeout as interrupted, "
        "so they can be recovered. Beat runs the same every minute."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--timeout-seconds",
            type=int,
            default=None,
            help="Default: SESSION_HEARTBEAT_TIMEOUT_SECONDS "
            f"(currently {conf.heartbeat_timeout_seconds()}).",
        )

    def handle(self, *args: Any, timeout_seconds: int | None, **options: Any) -> None:
        if timeout_seconds is not None and timeout_seconds < 1:
            raise CommandError("--timeout-seconds must be at least 1.")
        interrupted = sessions_interrupt_stale(
            timeout_seconds=timeout_seconds, actor="command:interrupt_stale_sessions"
        )
        for session_id in interrupted:
            self.stdout.write(f"Interrupted {session_id}")
        self.stdout.write(f"{len(interrupted)} stale session(s) marked interrupted.")
