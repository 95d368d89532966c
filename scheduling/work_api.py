"""``/api/v1/work``: agents take scheduled work from a queue (scope ``work``).

The protocol (docs/api.md, "Work queue"): claim a batch with a long poll, heartbeat
while working, then complete it with one result per account, or fail it, or give it
back. Every call after the claim names the lease token; a lease that no longer holds is
``409 lease_lost`` with its ``reason``. Handlers parse, call one service of
``scheduling.services.work_queue`` with the caller, and shape the answer.
"""

from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from ninja import Router
from ninja.responses import Status

from access.auth import Principal, work_access
from kernel.client_connection import client_disconnected
from scheduling import conf, services
from scheduling.schemas import (
    BatchStateOut,
    ClaimIn,
    CompleteIn,
    CompleteOut,
    FailIn,
    HeartbeatLeaseOut,
    LeaseOut,
    LeaseTokenIn,
)
from scheduling.services import BatchLease

router = Router(tags=["work"], auth=work_access)


def _caller(request: HttpRequest) -> Principal:
    return request.auth  # type: ignore[attr-defined, return-value]


def _lease_out(lease: BatchLease) -> dict[str, Any]:
    execution = lease.execution
    lease_seconds = conf.work_lease_seconds()
    return {
        "batch_id": lease.batch_id,
        "lease_token": lease.token,
        "lease_expires_at": lease.expires_at,
        "lease_seconds": lease_seconds,
        "heartbeat_seconds": max(1, lease_seconds // 3),
        "queue": lease.queue,
        "batch_index": lease.index,
        "batch_count": lease.batch_count,
        "attempt": lease.attempt,
        "session_id": lease.run.session_id,
        "account_ids": lease.accounts,
        "run": {
            "execution_id": execution.pk,
            "review_id": execution.review_id,
            "review_name": execution.review_name,
            "nominal_time": execution.nominal_time,
            "attempt": execution.attempt,
            "trigger": execution.trigger,
            "priority": execution.priority,
            "metadata": lease.run.metadata,
        },
    }


@router.post("/claim", response={200: LeaseOut, 204: None})
def claim(request: HttpRequest, payload: ClaimIn) -> Any:
    """Lease the next batch of ``queue`` (critical runs first, then by nominal time), or
    wait up to ``wait_seconds`` for one: 204 when none came. An unknown queue is 404."""
    caller = _caller(request)
    services.work_queue_check(payload.queue, allowed=caller.queues)
    lease = services.work_claim_wait(
        payload.queue,
        wait_seconds=min(payload.wait_seconds, conf.work_wait_max_seconds()),
        holder=payload.holder or caller.actor,
        actor=caller.actor,
        still_wanted=lambda: not client_disconnected(request),
    )
    if lease is not None and client_disconnected(request):
        # The agent went away while it waited: the batch goes back at once, not after
        # its lease.
        services.work_release(
            lease.batch_id, lease.token, allowed=caller.queues, actor=caller.actor
        )
        lease = None
    if lease is None:
        return Status(204, None)
    return _lease_out(lease)


@router.post("/{batch_id}/heartbeat", response=HeartbeatLeaseOut)
def heartbeat(request: HttpRequest, batch_id: int, payload: LeaseTokenIn) -> Any:
    """Extend the lease. 409 ``lease_lost`` (with ``reason``: taken_over, lease_expired,
    run_cancelled, session_paused, ...) means stop working on the batch."""
    caller = _caller(request)
    batch = services.work_heartbeat(
        batch_id, payload.token, allowed=caller.queues, actor=caller.actor
    )
    return {
        "batch_id": batch.pk,
        "lease_expires_at": batch.lease_expires_at,
        "lease_seconds": conf.work_lease_seconds(),
    }


@router.post("/{batch_id}/complete", response=CompleteOut)
def complete(request: HttpRequest, batch_id: int, payload: CompleteIn) -> HttpResponse:
    """Record one result per account (and optional tool/task events) in one
    transaction. A retry with the same token replays the first answer
    (``Idempotent-Replayed: true``)."""
    caller = _caller(request)
    answer, replayed = services.work_complete(
        batch_id,
        payload.token,
        results=payload.results,
        events=[event.to_hook_event() for event in payload.events],
        counters=payload.metrics.given(),
        allowed=caller.queues,
        agent=caller.name,
        actor=caller.actor,
    )
    response = JsonResponse(CompleteOut.model_validate(answer).model_dump(mode="json"))
    response["Idempotent-Replayed"] = "true" if replayed else "false"
    return response


@router.post("/{batch_id}/fail", response=BatchStateOut)
def fail(request: HttpRequest, batch_id: int, payload: FailIn) -> Any:
    """The batch could not be done. ``retryable`` (default): it goes back to the queue,
    up to the attempts limit; otherwise, or after the last attempt, the run fails."""
    caller = _caller(request)
    batch = services.work_fail(
        batch_id,
        payload.token,
        error=payload.error,
        retryable=payload.retryable,
        allowed=caller.queues,
        actor=caller.actor,
    )
    return _state(batch)


@router.post("/{batch_id}/release", response=BatchStateOut)
def release(request: HttpRequest, batch_id: int, payload: LeaseTokenIn) -> Any:
    """Give the batch back unfinished (the agent is stopping): another agent may take it
    at once; the attempt does not count."""
    caller = _caller(request)
    batch = services.work_release(
        batch_id, payload.token, allowed=caller.queues, actor=caller.actor
    )
    return _state(batch)


def _state(batch: Any) -> dict[str, Any]:
    return {
        "batch_id": batch.pk,
        "status": batch.status,
        "attempt": batch.attempts,
        "attempts_left": max(0, conf.batch_max_attempts() - batch.attempts),
    }
