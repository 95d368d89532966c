from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from access.selectors import agent_tokens_list
from access.services import agent_token_revoke
from kernel.errors import NotFound

ACTOR = "command:revoke_agent_token"


class Command(BaseCommand):
    help = "Revoke agent tokens at once, by prefix (sgs_<prefix>_…) or every token of an agent."

    def add_arguments(self, parser: CommandParser) -> None:
        target = parser.add_mutually_exclusive_group(required=True)
        target.add_argument(
            "prefix", nargs="?", help="The token's prefix, or the whole token (sgs_<prefix>_…)."
        )
        target.add_argument("--agent", help="Revoke every live token of this agent.")

    def handle(self, *args: Any, prefix: str | None, agent: str | None, **options: Any) -> None:
        if agent:
            prefixes = list(agent_tokens_list().filter(name=agent).values_list("prefix", flat=True))
            if not prefixes:
                raise CommandError(f"Agent '{agent}' has no live token.")
        else:
            prefixes = [_prefix_of(prefix or "")]
        for each in prefixes:
            try:
                token = agent_token_revoke(each, actor=ACTOR)
            except NotFound as exc:
                raise CommandError(exc.detail) from exc
            self.stdout.write(f"Revoked {token.name} sgs_{token.prefix}_… at {token.revoked_at}")


def _prefix_of(value: str) -> str:
    """Accept the bare prefix or a whole token, whose second part is the prefix."""
    parts = value.split("_")
    return parts[1] if len(parts) >= 3 and parts[0] == "sgs" else value
