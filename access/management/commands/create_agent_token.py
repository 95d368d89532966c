from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from access.models import TokenScope
from access.services import agent_token_create
from kernel.errors import ValidationFailed


class Command(BaseCommand):
    help = (
        "Issue an API token for an agent. The token is printed once and never stored: "
        "only its SHA-256 is kept."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", help="The agent's name; its writes are audited as agent:NAME.")
        parser.add_argument(
            "--scopes",
            nargs="+",
            default=[TokenScope.WRITE],
            choices=TokenScope.values,
            help="read: GET only; write: drive sessions, report events (default); "
            "admin: also search the whole audit trail; work: take batches from work queues.",
        )
        parser.add_argument(
            "--queues",
            nargs="+",
            default=[],
            metavar="QUEUE",
            help="With --scopes work: the work queues the token may take from (default: any).",
        )
        parser.add_argument(
            "--own-sessions",
            action="store_true",
            help="Confine the token to the sessions its agent creates: any other session is "
            "404 to it, and schedules and the audit search are refused.",
        )

    def handle(
        self,
        *args: Any,
        name: str,
        scopes: list[str],
        own_sessions: bool,
        queues: list[str],
        **options: Any,
    ) -> None:
        try:
            issued = agent_token_create(
                name=name,
                scopes=scopes,
                own_sessions_only=own_sessions,
                queues=queues,
                actor="command:create_agent_token",
            )
        except ValidationFailed as exc:
            raise CommandError(exc.detail) from exc
        token = issued.token
        confined = ", own sessions only" if token.own_sessions_only else ""
        if token.queues:
            confined += f", queues {', '.join(token.queues)}"
        self.stderr.write(
            f"Token for agent '{token.name}' (prefix {token.prefix}, scopes "
            f"{', '.join(token.scopes)}{confined}). Store it now: it cannot be shown again."
        )
        self.stdout.write(issued.secret)
