"""``/api/v1/schedules``: scheduled reviews for agents and tools.

Handlers parse, call one service or selector with the caller's actor, and shape the
answer; validation, the PeriodicTask and the audit trail are the services' business.
"""

from typing import Any

from django.http import HttpRequest
from ninja import Query, Router
from ninja.responses import Status

from access.auth import Principal, unconfined_only, write_access
from access.idempotency import IdempotencyKey, IdempotencyKeyValue, idempotent
from scheduling import selectors, services
from scheduling.exceptions import ExecutionNotFound, ReviewNotFound
from scheduling.models import ScheduledReview
from scheduling.recurrence import zone
from scheduling.schemas import (
    AccountHistoryPageOut,
    AccountReviewPageOut,
    ExecutionFilters,
    ExecutionOut,
    ExecutionPageOut,
    NextRunsOut,
    PauseIn,
    ResultFilters,
    ScheduleCreateIn,
    ScheduleFilters,
    ScheduleOut,
    SchedulePageOut,
    ScheduleUpdateIn,
)

router = Router(tags=["schedules"])
router.add_decorator(unconfined_only("schedules"))
accounts_router = Router(tags=["accounts"])
accounts_router.add_decorator(unconfined_only("accounts' review results"))


def _actor(request: HttpRequest) -> str:
    principal: Principal = request.auth  # type: ignore[attr-defined]
    return principal.actor


def _review(review_id: int) -> ScheduledReview:
    review = selectors.review_get(review_id)
    if review is None:
        raise ReviewNotFound(review_id)
    return review


@router.get("", response=SchedulePageOut)
def list_schedules(request: HttpRequest, filters: Query[ScheduleFilters]) -> Any:
    """Reviews by name; follow ``next_cursor`` for more."""
    return selectors.reviews_page(
        owner_id=filters.owner_id,
        enabled=filters.enabled,
        cursor=filters.cursor,
        limit=filters.limit,
    )


@router.post("", response={201: ScheduleOut}, auth=write_access)
def create_schedule(
    request: HttpRequest,
    payload: ScheduleCreateIn,
    idempotency_key: IdempotencyKeyValue | None = IdempotencyKey,
) -> Any:
    """Create a review; 422 names the field of a definition that cannot be scheduled."""
    fields = payload.model_dump(exclude_none=True)
    return idempotent(
        request,
        idempotency_key,
        lambda: services.review_create(actor=_actor(request), **fields),
        payload=payload,
        schema=ScheduleOut,
        status=201,
    )


@router.get("/{review_id}", response=ScheduleOut)
def get_schedule(request: HttpRequest, review_id: int) -> Any:
    return _review(review_id)


@router.patch("/{review_id}", response=ScheduleOut, auth=write_access)
def update_schedule(request: HttpRequest, review_id: int, payload: ScheduleUpdateIn) -> Any:
    """Change the given fields; the next run is recomputed when the schedule changes."""
    changes = payload.model_dump(exclude_unset=True)
    return services.review_update(review_id, changes=changes, actor=_actor(request))


@router.delete("/{review_id}", response={204: None}, auth=write_access)
def delete_schedule(request: HttpRequest, review_id: int) -> Any:
    """Delete the review and its beat entry; its run history stays."""
    services.review_delete(review_id, actor=_actor(request))
    return Status(204, None)


@router.post("/{review_id}/pause", response=ScheduleOut, auth=write_access)
def pause_schedule(
    request: HttpRequest,
    review_id: int,
    payload: PauseIn | None = None,
    idempotency_key: IdempotencyKeyValue | None = IdempotencyKey,
) -> Any:
    return idempotent(
        request,
        idempotency_key,
        lambda: services.review_pause(
            review_id, note=payload.note if payload else "", actor=_actor(request)
        ),
        payload=payload,
        schema=ScheduleOut,
    )


@router.post("/{review_id}/resume", response=ScheduleOut, auth=write_access)
def resume_schedule(
    request: HttpRequest,
    review_id: int,
    idempotency_key: IdempotencyKeyValue | None = IdempotencyKey,
) -> Any:
    """Runs missed while paused are not fired, except one inside the catch-up window."""
    return idempotent(
        request,
        idempotency_key,
        lambda: services.review_resume(review_id, actor=_actor(request)),
        payload=None,
        schema=ScheduleOut,
    )


@router.post("/{review_id}/trigger", response={202: ExecutionOut}, auth=write_access)
def trigger_schedule(
    request: HttpRequest,
    review_id: int,
    idempotency_key: IdempotencyKeyValue | None = IdempotencyKey,
) -> Any:
    """Run the review now, paused or not (trigger ``on_demand``). Each call is a run:
    send an Idempotency-Key so that a retry does not start a second one."""
    return idempotent(
        request,
        idempotency_key,
        lambda: services.review_trigger_on_demand(review_id, actor=_actor(request)),
        payload=None,
        schema=ExecutionOut,
        status=202,
    )


@router.get("/{review_id}/next-runs", response=NextRunsOut)
def next_runs(request: HttpRequest, review_id: int, count: int = Query(5, ge=1, le=100)) -> Any:
    """The next ``count`` runs, computed from the review (paused or not)."""
    review = _review(review_id)
    runs = selectors.review_next_runs(review, count=count)
    tz = zone(review.timezone)
    return {
        "timezone": review.timezone,
        "runs": runs,
        "local": [run.astimezone(tz).isoformat() for run in runs],
    }


@router.get("/{review_id}/executions", response=ExecutionPageOut)
def executions(request: HttpRequest, review_id: int, filters: Query[ExecutionFilters]) -> Any:
    """The run history, newest first; one row per attempt."""
    _review(review_id)
    return selectors.executions_page(
        review_id=review_id, statuses=filters.status, cursor=filters.cursor, limit=filters.limit
    )


@router.get("/{review_id}/executions/{execution_id}/results", response=AccountReviewPageOut)
def execution_results(
    request: HttpRequest, review_id: int, execution_id: str, filters: Query[ResultFilters]
) -> Any:
    """What the run found, one result per account, by account id; filter by outcome."""
    _review(review_id)
    if selectors.execution_get(execution_id, review_id=review_id) is None:
        raise ExecutionNotFound(execution_id)
    return selectors.account_reviews_page(
        execution_id, outcome=filters.outcome, cursor=filters.cursor, limit=filters.limit
    )


@accounts_router.get("/{account_id}/reviews", response=AccountHistoryPageOut)
def account_reviews(request: HttpRequest, account_id: str, filters: Query[ResultFilters]) -> Any:
    """One account's results across runs, newest first (an unknown account has none)."""
    return selectors.account_history_page(
        account_id, outcome=filters.outcome, cursor=filters.cursor, limit=filters.limit
    )
