from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from agents.models import TokenScope
from agents.services import agent_token_create
from sergas.errors import ValidationFailed


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
            "admin: also search the whole audit trail.",
        )

    def handle(self, *args: Any, name: str, scopes: list[str], **options: Any) -> None:
        try:
            issued = agent_token_create(
                name=name, scopes=scopes, actor="command:create_agent_token"
            )
        except ValidationFailed as exc:
            raise CommandError(exc.detail) from exc
        token = issued.token
        self.stderr.write(
            f"Token for agent '{token.name}' (prefix {token.prefix}, scopes "
            f"{', '.join(token.scopes)}). Store it now: it cannot be shown again."
        )
        self.stdout.write(issued.secret)
