"""Agent tokens: issuing, revoking, authenticating (only their SHA-256 is stored)."""

import functools
import hashlib
import hmac
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from access import conf
from access.exceptions import (
    INVALID_QUEUE_NAME,
    QUEUES_WITHOUT_WORK,
    AgentTokenNotFound,
    ConfinedAdminToken,
    InvalidQueues,
    InvalidScopes,
    InvalidToken,
    InvalidTokenName,
    TokenRevoked,
)
from access.models import AgentToken, TokenScope
from access.selectors import agent_token_get_by_prefix
from access.token_cache import revocation_publish
from audit.models import AuditEventType
from audit.services import SYSTEM_ACTOR, audit_event_record

_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


_TOKEN = re.compile(r"^sgs_([0-9a-f]{12})_([A-Za-z0-9_-]{32,64})$")


# The syntax of a work queue's name (scheduling.models.QUEUE_NAME_PATTERN).
_QUEUE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


# Compared against when the prefix is unknown, so a miss costs what a hit costs.
_NO_TOKEN_HASH = hashlib.sha256(b"no such token").hexdigest()


def token_hash(raw: str) -> str:
    """SHA-256 of the whole token. Secrets are 256 random bits: no need for a slow KDF."""
    return hashlib.sha256(raw.encode()).hexdigest()


@dataclass(frozen=True)
class IssuedToken:
    token: AgentToken
    secret: str  # the whole bearer token: shown once, never stored


def agent_token_create(
    *,
    name: str,
    scopes: Sequence[str] = (TokenScope.WRITE,),
    own_sessions_only: bool = False,
    queues: Sequence[str] = (),
    actor: str = SYSTEM_ACTOR,
) -> IssuedToken:
    """Issue a token for agent ``name``; its actor in the audit trail is ``agent:<name>``.

    ``own_sessions_only`` confines it to the sessions its agent created (with any of its
    tokens): others are 404 to it, as if they did not exist. Such a token cannot have
    the admin scope, which searches the whole audit trail. ``queues`` limits a token
    with the work scope to those work queues."""
    if not _NAME.match(name or ""):
        raise InvalidTokenName(name or "")
    if not scopes or any(scope not in TokenScope.values for scope in scopes):
        raise InvalidScopes(list(scopes), TokenScope.values)
    if own_sessions_only and TokenScope.ADMIN in scopes:
        raise ConfinedAdminToken
    queues = sorted(set(queues))
    if queues and TokenScope.WORK not in scopes:
        raise InvalidQueues(QUEUES_WITHOUT_WORK)
    for queue in queues:
        if not _QUEUE.match(queue):
            raise InvalidQueues(INVALID_QUEUE_NAME.format(queue=queue[:100]))
    chosen = sorted(set(scopes), key=TokenScope.values.index)
    with transaction.atomic():
        while True:  # a 48-bit prefix collides about never; the unique index decides
            prefix = secrets.token_hex(6)
            raw = f"sgs_{prefix}_{secrets.token_urlsafe(32)}"
            try:
                with transaction.atomic():
                    token = AgentToken.objects.create(
                        name=name,
                        prefix=prefix,
                        secret_hash=token_hash(raw),
                        scopes=chosen,
                        own_sessions_only=own_sessions_only,
                        queues=queues,
                        created_by=actor,
                    )
                break
            except IntegrityError:
                continue
        audit_event_record(
            event_type=AuditEventType.AUTH,
            action="token_create",
            actor=actor,
            resource=f"agent_token:{prefix}",
            metadata={
                "name": name,
                "scopes": chosen,
                "own_sessions_only": own_sessions_only,
                "queues": queues,
            },
        )
    return IssuedToken(token=token, secret=raw)


def agent_token_revoke(prefix: str, *, actor: str = SYSTEM_ACTOR) -> AgentToken:
    """Revoke a token at once; revoking a revoked token changes nothing."""
    with transaction.atomic():
        token = AgentToken.objects.select_for_update().filter(prefix=prefix).first()
        if token is None:
            raise AgentTokenNotFound(prefix)
        if token.revoked_at is not None:
            return token
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        # Every process's cached copy goes: marked now (and again once committed, so the
        # mark outlives a long transaction); access.token_cache says why both.
        revocation_publish(prefix)
        transaction.on_commit(functools.partial(revocation_publish, prefix))
        audit_event_record(
            event_type=AuditEventType.AUTH,
            action="token_revoke",
            actor=actor,
            resource=f"agent_token:{prefix}",
            metadata={"name": token.name},
        )
    return token


def token_prefix_of(raw: str) -> str | None:
    """The public prefix of something shaped like a token (never the secret)."""
    match = _TOKEN.match(raw or "")
    return match.group(1) if match else None


def agent_token_authenticate(raw: str) -> AgentToken:
    """The live token ``raw`` names, or ``InvalidToken``/``TokenRevoked``.

    The hash comparison is constant-time, and an unknown prefix is compared against a
    dummy hash, so response times do not reveal which part of a guess was right.
    """
    match = _TOKEN.match(raw or "")
    token = agent_token_get_by_prefix(match.group(1)) if match else None
    expected = token.secret_hash if token is not None else _NO_TOKEN_HASH
    if not hmac.compare_digest(expected, token_hash(raw or "")) or token is None:
        raise InvalidToken
    if token.revoked_at is not None:
        raise TokenRevoked(token.prefix, token.revoked_at.isoformat())
    agent_token_touch(token)
    return token


def agent_token_touch(token: AgentToken) -> None:
    """Record use at most every ``TOKEN_TOUCH_SECONDS``: one write a minute, not a request."""
    now = timezone.now()
    interval = timedelta(seconds=conf.token_touch_seconds())
    if token.last_used_at is not None and token.last_used_at > now - interval:
        return
    AgentToken.objects.filter(pk=token.pk).filter(
        Q(last_used_at__isnull=True) | Q(last_used_at__lte=now - interval)
    ).update(last_used_at=now)
    token.last_used_at = now
