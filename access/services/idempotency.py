"""Stored answers of ``Idempotency-Key`` requests: run once, replay after."""

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from access import conf
from access.exceptions import (
    IdempotencyKeyReused,
    InvalidIdempotencyKey,
)
from access.models import AgentToken, IdempotencyRecord
from audit.models import AuditEventType
from audit.services import SYSTEM_ACTOR, audit_event_record

# 1-255 visible ASCII characters; the OpenAPI schema documents the same pattern.
IDEMPOTENCY_KEY_PATTERN = r"^[\x21-\x7e]{1,255}$"
_IDEMPOTENCY_KEY = re.compile(IDEMPOTENCY_KEY_PATTERN)


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


def idempotency_records_prune(
    *, older_than_hours: int | None = None, dry_run: bool = False, actor: str = SYSTEM_ACTOR
) -> int:
    """Delete stored responses past their replay window, with one audit event saying how
    many; returns how many (``dry_run``: would delete)."""
    hours = conf.idempotency_ttl_hours() if older_than_hours is None else older_than_hours
    cutoff = timezone.now() - timedelta(hours=hours)
    expired = IdempotencyRecord.objects.filter(created_at__lt=cutoff)
    if dry_run:
        return expired.count()
    with transaction.atomic():
        deleted, _ = expired.delete()
        if deleted:
            audit_event_record(
                event_type=AuditEventType.SYSTEM,
                action="idempotency_records_pruned",
                actor=actor,
                resource="api:idempotency",
                metadata={"count": deleted, "created_before": cutoff.isoformat()},
            )
    return deleted
