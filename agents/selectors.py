"""Reads of API access."""

from django.db.models import QuerySet

from agents.models import AgentToken


def agent_token_get_by_prefix(prefix: str) -> AgentToken | None:
    return AgentToken.objects.filter(prefix=prefix).first()


def agent_tokens_list(*, include_revoked: bool = False) -> QuerySet[AgentToken]:
    tokens = AgentToken.objects.order_by("name", "-created_at")
    if not include_revoked:
        tokens = tokens.filter(revoked_at__isnull=True)
    return tokens
