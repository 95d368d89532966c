"""``/api/v1/sessions``, ``/api/v1/events`` and ``/api/v1/approvals``: agents drive
sessions, report events and ask staff for decisions.

Handlers parse, call one service or selector with the caller's actor, and shape the
answer; the lifecycle, validation and auditing all happen in ``sessions.services``.
"""

import functools
import uuid
from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from ninja import Header, Query, Router

from access.auth import caller, record_refusal, write_access
from access.idempotency import IdempotencyKey, IdempotencyKeyValue, idempotent
from audit.selectors import audit_events_for_session
from audit.services import audit_export_record
from audit.trail.export import JSONL_CONTENT_TYPE, audit_events_jsonl
from kernel.client_connection import client_disconnected
from kernel.conditional import IfMatchValue, expected_version
from sessions import conf, selectors, services
from sessions.detail import session_detail
from sessions.exceptions import ApprovalNotFound, SessionNotFound
from sessions.models import DECIDED_APPROVAL_STATUSES
from sessions.schemas import (
    ApprovalCreateIn,
    ApprovalOut,
    CheckpointIn,
    CheckpointOut,
    ContextIn,
    EventBatchIn,
    EventBatchOut,
    FailIn,
    HeartbeatOut,
    MetricsIn,
    ReasonIn,
    RecoveryOut,
    SessionCreateIn,
    SessionDetailOut,
    SessionFilters,
    SessionOut,
    SessionPageOut,
    VersionIn,
)

router = Router(tags=["sessions"])
events_router = Router(tags=["events"])
approvals_router = Router(tags=["approvals"])


def _own_sessions_only(view: Callable[..., Any]) -> Callable[..., Any]:
    """A token confined to its own sessions finds every other session missing (404, as
    if it did not exist); the attempt is recorded in the audit trail."""

    @functools.wraps(view)
    def checked(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        owner = caller(request).sessions_owner
        session_id = kwargs.get("session_id")
        if owner is not None and session_id is not None:
            creator = selectors.session_creator(session_id)
            if creator is not None and creator != owner:
                refused = SessionNotFound(session_id)
                record_refusal(
                    request, refused, actor=caller(request).actor, resource=f"session:{session_id}"
                )
                raise refused
        return view(request, *args, **kwargs)

    return checked


router.add_decorator(_own_sessions_only)

APPROVALS_LISTED = 200

IfMatch = Header(None, alias="If-Match", description='Expected version, e.g. "7" (409 if not).')


def _require(session_id: str) -> None:
    if not selectors.session_exists(session_id):
        raise SessionNotFound(session_id)


def _move(
    request: HttpRequest,
    session_id: str,
    move: Callable[..., Any],
    payload: VersionIn | None,
    if_match: IfMatchValue | None,
    idempotency_key: IdempotencyKeyValue | None,
    **arguments: Any,
) -> Any:
    """A lifecycle move: the caller is the actor, the version expected comes from
    If-Match or the body, and an Idempotency-Key makes a retry answer as the first did."""
    return idempotent(
        request,
        idempotency_key,
        lambda: move(
            session_id,
            actor=caller(request).actor,
            expected_version=expected_version(if_match, payload),
            **arguments,
        ),
        payload=payload,
        schema=SessionOut,
    )


@router.post("", response={201: SessionDetailOut}, auth=write_access)
def create_session(
    request: HttpRequest,
    payload: SessionCreateIn,
    idempotency_key: IdempotencyKeyValue | None = IdempotencyKey,
) -> Any:
    """Create a pending session. With ``Idempotency-Key`` a retry returns the first
    response (header ``Idempotent-Replayed: true``) instead of a second session."""
    return idempotent(
        request,
        idempotency_key,
        lambda: services.session_create(**payload.dict(), actor=caller(request).actor),
        payload=payload,
        schema=SessionDetailOut,
        status=201,
    )


@router.get("", response=SessionPageOut)
def list_sessions(request: HttpRequest, filters: Query[SessionFilters]) -> Any:
    """Sessions matching every filter, newest first; follow ``next_cursor`` for more."""
    return selectors.sessions_list(
        statuses=filters.status,
        session_type=filters.session_type,
        owner_id=filters.owner_id,
        orchestrator_id=filters.orchestrator_id,
        account_id=filters.account_id,
        created_after=filters.created_after,
        created_before=filters.created_before,
        created_by=caller(request).sessions_owner,
        context=filters.context,
        cursor=filters.cursor,
        limit=filters.limit,
    )


@router.get("/{session_id}", response=SessionDetailOut)
def get_session(request: HttpRequest, session_id: str) -> HttpResponse:
    """The session with its context and metrics. ``ETag`` is its version."""
    detail = session_detail(request, session_id)  # rendered once per cache entry
    if detail is None:
        raise SessionNotFound(session_id)
    response = HttpResponse(detail.body, content_type=detail.content_type)
    response["ETag"] = f'"{detail.version}"'
    return response


@router.post("/{session_id}/start", response=SessionOut, auth=write_access)
def start_session(
    request: HttpRequest,
    session_id: str,
    payload: VersionIn | None = None,
    if_match: IfMatchValue | None = IfMatch,
    idempotency_key: IdempotencyKeyValue | None = IdempotencyKey,
) -> Any:
    return _move(request, session_id, services.session_start, payload, if_match, idempotency_key)


@router.post("/{session_id}/pause", response=SessionOut, auth=write_access)
def pause_session(
    request: HttpRequest,
    session_id: str,
    payload: ReasonIn | None = None,
    if_match: IfMatchValue | None = IfMatch,
    idempotency_key: IdempotencyKeyValue | None = IdempotencyKey,
) -> Any:
    return _move(
        request,
        session_id,
        services.session_pause,
        payload,
        if_match,
        idempotency_key,
        reason=payload.reason if payload else "",
    )


@router.post("/{session_id}/resume", response=SessionOut, auth=write_access)
def resume_session(
    request: HttpRequest,
    session_id: str,
    payload: VersionIn | None = None,
    if_match: IfMatchValue | None = IfMatch,
    idempotency_key: IdempotencyKeyValue | None = IdempotencyKey,
) -> Any:
    return _move(request, session_id, services.session_resume, payload, if_match, idempotency_key)


@router.post("/{session_id}/complete", response=SessionOut, auth=write_access)
def complete_session(
    request: HttpRequest,
    session_id: str,
    payload: VersionIn | None = None,
    if_match: IfMatchValue | None = IfMatch,
    idempotency_key: IdempotencyKeyValue | None = IdempotencyKey,
) -> Any:
    """Complete a running session; its ``summary`` comes back with it."""
    return _move(request, session_id, services.session_complete, payload, if_match, idempotency_key)


@router.post("/{session_id}/fail", response=SessionOut, auth=write_access)
def fail_session(
    request: HttpRequest,
    session_id: str,
    payload: FailIn,
    if_match: IfMatchValue | None = IfMatch,
    idempotency_key: IdempotencyKeyValue | None = IdempotencyKey,
) -> Any:
    return _move(
        request,
        session_id,
        services.session_fail,
        payload,
        if_match,
        idempotency_key,
        error=payload.error,
    )


@router.post("/{session_id}/cancel", response=SessionOut, auth=write_access)
def cancel_session(
    request: HttpRequest,
    session_id: str,
    payload: ReasonIn | None = None,
    if_match: IfMatchValue | None = IfMatch,
    idempotency_key: IdempotencyKeyValue | None = IdempotencyKey,
) -> Any:
    return _move(
        request,
        session_id,
        services.session_cancel,
        payload,
        if_match,
        idempotency_key,
        reason=payload.reason if payload else "",
    )


@router.post("/{session_id}/recover", response=RecoveryOut, auth=write_access)
def recover_session(
    request: HttpRequest,
    session_id: str,
    payload: VersionIn | None = None,
    include_state: bool = False,
    if_match: IfMatchValue | None = IfMatch,
    idempotency_key: IdempotencyKeyValue | None = IdempotencyKey,
) -> Any:
    """Restore the newest checkpoint and run again. The answer leaves the (possibly
    large) context in the database unless ``?include_state=true``."""

    def recover() -> Any:
        session = services.session_recover(
            session_id,
            actor=caller(request).actor,
            expected_version=expected_version(if_match, payload),
        )
        return session if include_state else SessionOut.model_validate(session)

    return idempotent(request, idempotency_key, recover, payload=payload, schema=RecoveryOut)


@router.patch("/{session_id}/context", response=SessionOut, auth=write_access)
def update_context(
    request: HttpRequest,
    session_id: str,
    payload: ContextIn,
    if_match: IfMatchValue | None = IfMatch,
    idempotency_key: IdempotencyKeyValue | None = IdempotencyKey,
) -> Any:
    """Merge ``changes`` into the context (account sets only grow) and add
    ``increments`` to its counters: agents sharing a session lose nothing without
    If-Match. Increments count again when resent: send an Idempotency-Key."""
    return idempotent(
        request,
        idempotency_key,
        lambda: services.session_update_context(
            session_id,
            changes=payload.changes,
            increments=payload.increments.given() if payload.increments else None,
            actor=caller(request).actor,
            expected_version=expected_version(if_match, payload),
        ),
        payload=payload,
        schema=SessionOut,
    )


@router.post("/{session_id}/metrics", response=SessionOut, auth=write_access)
def increment_metrics(
    request: HttpRequest,
    session_id: str,
    payload: MetricsIn,
    idempotency_key: IdempotencyKeyValue | None = IdempotencyKey,
) -> Any:
    """Add to the metric counters and append account processing times. They count again
    when resent: send an Idempotency-Key."""
    return idempotent(
        request,
        idempotency_key,
        lambda: services.session_update_metrics(
            session_id,
            counters=payload.counters.given(),
            processing_times_ms=payload.processing_times_ms,
            actor=caller(request).actor,
        ),
        payload=payload,
        schema=SessionOut,
    )


@router.post("/{session_id}/heartbeat", response=HeartbeatOut, auth=write_access)
def heartbeat(request: HttpRequest, session_id: str) -> Any:
    """Liveness of a running session; the answer's status tells a paused or cancelled
    agent to stop, its ``approvals`` what staff decided. Safe to resend as it is (no
    Idempotency-Key)."""
    beat = services.session_heartbeat(session_id)
    return {
        "status": beat.status,
        "recorded": beat.recorded,
        "at": beat.at,
        "approvals": selectors.approvals_to_tell(session_id),
    }


@router.post("/{session_id}/approvals", response={201: ApprovalOut}, auth=write_access)
def request_approval(
    request: HttpRequest,
    session_id: str,
    payload: ApprovalCreateIn,
    idempotency_key: IdempotencyKeyValue | None = IdempotencyKey,
) -> Any:
    """Ask staff for a decision on a running session; wait for it with
    ``GET /approvals/{id}?wait_seconds=30`` or learn it from a heartbeat."""
    return idempotent(
        request,
        idempotency_key,
        lambda: services.approval_request(
            session_id, **payload.dict(), actor=caller(request).actor
        ),
        payload=payload,
        schema=ApprovalOut,
        status=201,
    )


@router.get("/{session_id}/approvals", response=list[ApprovalOut])
def list_approvals(request: HttpRequest, session_id: str) -> Any:
    """The session's approvals, newest first (at most ``APPROVALS_LISTED``)."""
    _require(session_id)
    return selectors.approvals_of_session(session_id)[:APPROVALS_LISTED]


@router.post("/{session_id}/checkpoints", response={201: CheckpointOut}, auth=write_access)
def create_checkpoint(
    request: HttpRequest,
    session_id: str,
    payload: CheckpointIn | None = None,
    idempotency_key: IdempotencyKeyValue | None = IdempotencyKey,
) -> Any:
    return idempotent(
        request,
        idempotency_key,
        lambda: services.session_checkpoint(
            session_id,
            context_changes=payload.context_changes if payload else None,
            actor=caller(request).actor,
        ),
        payload=payload,
        schema=CheckpointOut,
        status=201,
    )


@router.get("/{session_id}/checkpoints", response=list[CheckpointOut])
def list_checkpoints(request: HttpRequest, session_id: str) -> Any:
    """The retained checkpoints, newest first, without their state."""
    _require(session_id)
    return selectors.session_checkpoints(session_id, with_state=False)


@router.get("/{session_id}/audit-trail", response={200: None})
def download_audit_trail(request: HttpRequest, session_id: str) -> StreamingHttpResponse:
    """The session's audit trail as JSON Lines, oldest first, streamed. The download is
    itself recorded (``audit_export``), as the dashboard's exports are."""
    _require(session_id)
    audit_export_record(
        fmt="jsonl", filters={"session_id": session_id}, actor=caller(request).actor
    )
    response = StreamingHttpResponse(
        audit_events_jsonl(audit_events_for_session(session_id)), content_type=JSONL_CONTENT_TYPE
    )
    response["Content-Disposition"] = f'attachment; filename="{session_id}.audit.jsonl"'
    return response


@events_router.post("", response=EventBatchOut, auth=write_access)
def report_events(request: HttpRequest, payload: EventBatchIn) -> Any:
    """Record a batch of pre_tool/post_tool/pre_task/post_task events. Event ids you
    already sent are skipped, so a retried batch adds nothing."""
    principal = caller(request)
    result = services.hook_events_record(
        [event.to_hook_event() for event in payload.events],
        agent_name=principal.name,
        actor=principal.actor,
        sessions_created_by=principal.sessions_owner,
    )
    return {
        "received": len(payload.events),
        "recorded": len(result.recorded),
        "duplicates": len(result.duplicates),
        "duplicate_event_ids": result.duplicates,
    }


@approvals_router.get("/{approval_id}", response=ApprovalOut)
def get_approval(
    request: HttpRequest,
    approval_id: uuid.UUID,
    wait_seconds: float = Query(
        0,
        ge=0,
        le=60,
        description="Wait up to this long while it is pending (a long poll): the answer "
        "comes as soon as it is decided, expires or is cancelled.",
    ),
) -> Any:
    """The approval, once decided or after ``wait_seconds`` (``status`` pending). An
    agent's first read of an outcome stops its heartbeats mentioning it."""
    principal = caller(request)
    owner = principal.sessions_owner
    found = selectors.approval_session_creator(approval_id)
    if found is None or (owner is not None and found[1] != owner):
        refused = ApprovalNotFound(str(approval_id))
        if found is not None:
            record_refusal(
                request, refused, actor=principal.actor, resource=f"approval:{approval_id}"
            )
        raise refused
    approval = services.approval_wait(
        approval_id,
        wait_seconds=min(wait_seconds, conf.approval_wait_max_seconds()),
        still_wanted=lambda: not client_disconnected(request),
    )
    if principal.token is not None and approval.status in DECIDED_APPROVAL_STATUSES:
        services.approval_mark_delivered(approval.pk, actor=principal.actor)
    return approval
