"""Writes of API access: agent tokens and stored idempotent responses."""

import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from agents import conf
from agents.exceptions import (
    INVALID_QUEUE_NAME,
    QUEUES_WITHOUT_WORK,
    AgentTokenNotFound,
    ConfinedAdminToken,
    IdempotencyKeyReused,
    InvalidIdempotencyKey,
    InvalidQueues,
    InvalidScopes,
    InvalidToken,
    InvalidTokenName,
    StaffPermissionDenied,
    TokenRevoked,
)
from agents.models import AgentToken, IdempotencyRecord, TokenScope
from agents.selectors import agent_token_get_by_prefix
from audit.models import AuditEventType
from audit.services import SYSTEM_ACTOR, audit_event_record

_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_TOKEN = re.compile(r"^sgs_([0-9a-f]{12})_([A-Za-z0-9_-]{32,64})$")
_IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")
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


def api_refusal_record(
    *,
    action: str,
    code: str,
    actor: str,
    resource: str,
    method: str,
    path: str,
    remote_addr: str | None,
) -> None:
    """Record a refused API request in the audit trail (event type ``auth``): a failed
    authentication (``authentication_failed``) or a refused authorisation
    (``access_denied``). Never the token itself: at most its public prefix."""
    audit_event_record(
        event_type=AuditEventType.AUTH,
        action=action,
        actor=actor,
        resource=resource,
        metadata={"code": code, "method": method, "path": path[:500], "remote_addr": remote_addr},
    )


def staff_access_record(
    *, action: str, username: str, remote_addr: str | None, path: str, method: str = "POST"
) -> None:
    """Record a staff login (``login``), a failed one (``login_failed``), a lockout after
    too many (``login_locked_out``) or a refused page (``permission_denied``)."""
    name = username[:150]
    audit_event_record(
        event_type=AuditEventType.AUTH,
        action=action,
        actor=f"staff:{name}" if name and action in ("login", "permission_denied") else "anonymous",
        resource=f"user:{name}" if name else "user:",
        metadata={
            "username": name,
            "remote_addr": remote_addr,
            "path": path[:500],
            "method": method,
        },
    )


def staff_actor(
    user: Any, permission: str, *, path: str = "", remote_addr: str | None = None
) -> str:
    """The audit actor (``staff:<username>``) of a staff member about to change
    something, once they may: an active staff user holding ``permission``. Otherwise the
    refusal is recorded (``permission_denied``) and ``StaffPermissionDenied`` raised (403).

    Views and admin actions take their actor from here, so the permission is checked
    where the identity handed to the services is made, whatever the view checked."""
    if user.is_active and user.is_staff and user.has_perm(permission):
        return f"staff:{user.get_username()}"
    staff_access_record(
        action="permission_denied",
        username=user.get_username() if user.is_authenticated else "",
        remote_addr=remote_addr,
        path=path,
    )
    raise StaffPermissionDenied(permission)


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
    _touch(token)
    return token


def _touch(token: AgentToken) -> None:
    """Record use at most every ``TOKEN_TOUCH_SECONDS``: one write a minute, not a request."""
    now = timezone.now()
    interval = timedelta(seconds=conf.token_touch_seconds())
    if token.last_used_at is not None and token.last_used_at > now - interval:
        return
    AgentToken.objects.filter(pk=token.pk).filter(
        Q(last_used_at__isnull=True) | Q(last_used_at__lte=now - interval)
    ).update(last_used_at=now)
    token.last_used_at = now


def idempotency_fingerprint(method: str, path: str, payload: Any) -> str:
    """What makes two requests "the same" for an Idempotency-Key: method, path, body."""
    canonical = json.dumps([method.upper(), path, payload], sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class StoredResponse:
    status_code: int
    body: Any
    replayed: bool


def idempotent_request_execute(
    *,
    token: AgentToken,
    key: str,
    fingerprint: str,
    execute: Callable[[], tuple[int, Any]],
) -> StoredResponse:
    """Run ``execute`` once per (token, key) and store its response; replay it after.

    The claim, the work and the stored response are one transaction: a concurrent
    request with the same key waits on the unique index and then replays, and a failed
    attempt (a domain error, a crash) leaves no record, so it can simply be retried.
    """
    if not _IDEMPOTENCY_KEY.match(key or ""):
        raise InvalidIdempotencyKey
    with transaction.atomic():
        try:
            with transaction.atomic():
                record = IdempotencyRecord.objects.create(
                    token=token, key=key, fingerprint=fingerprint
                )
        except IntegrityError:
            record = IdempotencyRecord.objects.get(token=token, key=key)
            if record.fingerprint != fingerprint:
                raise IdempotencyKeyReused(key) from None
            return StoredResponse(record.status_code or 200, record.response, replayed=True)
        status_code, body = execute()
        record.status_code, record.response = status_code, body
        record.save(update_fields=["status_code", "response"])
    return StoredResponse(status_code, body, replayed=False)


def idempotency_records_prune(*, older_than_hours: int | None = None) -> int:
    """Delete stored responses past their replay window; returns how many."""
    hours = conf.idempotency_ttl_hours() if older_than_hours is None else older_than_hours
    cutoff = timezone.now() - timedelta(hours=hours)
    deleted, _ = IdempotencyRecord.objects.filter(created_at__lt=cutoff).delete()
    return deleted
