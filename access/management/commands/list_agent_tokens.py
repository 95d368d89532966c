from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from access.selectors import agent_tokens_list


class Command(BaseCommand):
    help = "List agent tokens (never their secrets)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--all", action="store_true", help="Include revoked tokens.")

    def handle(self, *args: Any, all: bool, **options: Any) -> None:
        tokens = list(agent_tokens_list(include_revoked=all))
        if not tokens:
            self.stdout.write("No agent tokens.")
            return
        for token in tokens:
            state = f"revoked {token.revoked_at:%Y-%m-%d %H:%M}" if token.revoked_at else "live"
            if token.own_sessions_only:
                state += ", own sessions only"
            if token.queues:
                state += f", queues {','.join(token.queues)}"
            used = f"{token.last_used_at:%Y-%m-%d %H:%M}" if token.last_used_at else "never"
            self.stdout.write(
                f"{token.name:<24} sgs_{token.prefix}_…  {','.join(token.scopes):<16} "
                f"created {token.created_at:%Y-%m-%d %H:%M}  last used {used}  {state}"
            )
