"""``SergasClient``: one method per API operation, with safe retries."""

import json
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

import httpx

from sergas_client.recorder import EventRecorder
from sergas_client.types import (
    AccountResult,
    Approval,
    ApprovalNotice,
    BatchState,
    Checkpoint,
    CompletedBatch,
    EventsResult,
    Execution,
    Heartbeat,
    Lease,
    LeaseRenewal,
    Schedule,
    Session,
)

# Answers that mean "not processed, try again later" (429) or "maybe not processed".
_RETRY_ALWAYS = frozenset({429})
_RETRY_IF_IDEMPOTENT = frozenset({502, 503, 504})


class SergasAPIError(Exception):
    """An error answer: ``code`` and ``detail`` as the API sent them (docs/api.md)."""

    def __init__(self, status_code: int, body: dict[str, Any]) -> None:
        self.status_code = status_code
        self.body = body
        self.code: str = body.get("code", "error")
        self.detail: str = body.get("detail", "")
        super().__init__(f"{status_code} {self.code}: {self.detail}")


class LeaseLost(SergasAPIError):
    """``409 lease_lost``: the lease on a batch no longer holds, so stop working on it.
    ``reason``: taken_over, lease_expired, run_cancelled, session_paused,
    session_stopped, batch_failed or released."""

    def __init__(self, status_code: int, body: dict[str, Any]) -> None:
        super().__init__(status_code, body)
        self.reason: str = body.get("reason", "")
        self.batch_id: int | None = body.get("batch_id")


class SergasClient:
    """A client of ``/api/v1``. Requests that cannot do harm twice (reads, event batches
    with their ids, creates with an Idempotency-Key, heartbeats, calls fenced by a lease
    token) are retried on network errors and 502/503/504; every request is retried after
    a 429, as told by Retry-After, and after a connection that could not be made.
    """

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        timeout: float = 10.0,
        retries: int = 3,
        backoff_seconds: float = 0.5,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._http = httpx.Client(
            base_url=base_url.rstrip("/") + "/api/v1",
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
            timeout=timeout,
            transport=transport,
        )
        self.timeout = timeout
        self.retries = retries
        self.backoff_seconds = backoff_seconds

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "SergasClient":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- sessions ------------------------------------------------------------------
    def create_session(
        self,
        *,
        orchestrator_id: str,
        session_type: str = "manual",
        account_ids: list[str] | None = None,
        owner_id: str | None = None,
        context: dict[str, Any] | None = None,
        session_id: str | None = None,
        idempotency_key: str | None = None,
    ) -> Session:
        """Create a pending session; a fresh Idempotency-Key makes retries safe."""
        body = {
            "orchestrator_id": orchestrator_id,
            "session_type": session_type,
            "account_ids": account_ids,
            "owner_id": owner_id,
            "context": context,
            "session_id": session_id,
        }
        return Session.from_json(self._keyed("POST", "/sessions", body, idempotency_key))

    def get_session(self, session_id: str) -> Session:
        return Session.from_json(self._request("GET", f"/sessions/{session_id}"))

    def list_sessions(self, *, page_size: int = 100, **filters: Any) -> Iterator[Session]:
        """Every session matching ``filters`` (status, session_type, owner_id,
        orchestrator_id, account_id, created_after, created_before, and ``context``: a
        dict the context must contain), page after page."""
        if isinstance(filters.get("context"), dict):
            filters["context"] = json.dumps(filters["context"])
        for item in self._pages("/sessions", {**filters, "limit": page_size}):
            yield Session.from_json(item)

    # Every write below sends a fresh Idempotency-Key (or the one given), so a retry after
    # a lost answer replays the first answer instead of acting twice.
    def start(
        self,
        session_id: str,
        *,
        expected_version: int | None = None,
        idempotency_key: str | None = None,
    ) -> Session:
        return self._action(
            session_id, "start", {"expected_version": expected_version}, idempotency_key
        )

    def pause(
        self,
        session_id: str,
        *,
        reason: str = "",
        expected_version: int | None = None,
        idempotency_key: str | None = None,
    ) -> Session:
        return self._action(
            session_id,
            "pause",
            {"reason": reason, "expected_version": expected_version},
            idempotency_key,
        )

    def resume(
        self,
        session_id: str,
        *,
        expected_version: int | None = None,
        idempotency_key: str | None = None,
    ) -> Session:
        return self._action(
            session_id, "resume", {"expected_version": expected_version}, idempotency_key
        )

    def complete(
        self,
        session_id: str,
        *,
        expected_version: int | None = None,
        idempotency_key: str | None = None,
    ) -> Session:
        return self._action(
            session_id, "complete", {"expected_version": expected_version}, idempotency_key
        )

    def fail(
        self,
        session_id: str,
        *,
        error: str,
        expected_version: int | None = None,
        idempotency_key: str | None = None,
    ) -> Session:
        return self._action(
            session_id,
            "fail",
            {"error": error, "expected_version": expected_version},
            idempotency_key,
        )

    def cancel(
        self,
        session_id: str,
        *,
        reason: str = "",
        expected_version: int | None = None,
        idempotency_key: str | None = None,
    ) -> Session:
        return self._action(
            session_id,
            "cancel",
            {"reason": reason, "expected_version": expected_version},
            idempotency_key,
        )

    def recover(
        self, session_id: str, *, include_state: bool = False, idempotency_key: str | None = None
    ) -> Session:
        """Restart from the newest checkpoint; the context comes back only if asked."""
        return Session.from_json(
            self._keyed(
                "POST",
                f"/sessions/{session_id}/recover",
                {},
                idempotency_key,
                params={"include_state": "true"} if include_state else None,
            )
        )

    def update_context(
        self,
        session_id: str,
        changes: dict[str, Any] | None = None,
        *,
        increments: dict[str, int] | None = None,
        expected_version: int | None = None,
        idempotency_key: str | None = None,
    ) -> Session:
        """Merge ``changes`` into the context and add ``increments`` to its counters
        (current_batch, total_batches, recommendations_count): agents sharing a session
        lose nothing without ``expected_version``."""
        body: dict[str, Any] = {"changes": changes or {}, "expected_version": expected_version}
        if increments:
            body["increments"] = increments
        return Session.from_json(
            self._keyed("PATCH", f"/sessions/{session_id}/context", body, idempotency_key)
        )

    def increment_metrics(
        self,
        session_id: str,
        counters: dict[str, int] | None = None,
        processing_times_ms: list[int] | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> Session:
        body = {"counters": counters or {}, "processing_times_ms": processing_times_ms or []}
        return Session.from_json(
            self._keyed("POST", f"/sessions/{session_id}/metrics", body, idempotency_key)
        )

    def heartbeat(self, session_id: str) -> Heartbeat:
        data = self._request("POST", f"/sessions/{session_id}/heartbeat", idempotent=True)
        return Heartbeat(
            status=data["status"],
            recorded=data["recorded"],
            approvals=tuple(ApprovalNotice(**notice) for notice in data.get("approvals", [])),
        )

    # --- approvals -----------------------------------------------------------------
    def request_approval(
        self,
        session_id: str,
        *,
        question: str,
        options: Sequence[str],
        payload: Mapping[str, Any] | None = None,
        deadline: datetime | None = None,
        default_decision: str | None = None,
        idempotency_key: str | None = None,
    ) -> Approval:
        """Ask staff for a decision on a running session. ``options`` (two or more,
        unique) are the answers an operator may approve with; with a ``deadline`` (an
        aware datetime), ``default_decision`` applies if nobody decides by then."""
        body: dict[str, Any] = {
            "question": question,
            "options": list(options),
            "payload": dict(payload or {}),
        }
        if deadline is not None:
            if deadline.tzinfo is None:
                raise ValueError("deadline must be an aware datetime")
            body["deadline"] = deadline.isoformat()
        if default_decision is not None:
            body["default_decision"] = default_decision
        return Approval.from_json(
            self._keyed("POST", f"/sessions/{session_id}/approvals", body, idempotency_key)
        )

    def get_approval(self, approval_id: str, *, wait_seconds: float = 0) -> Approval:
        """The approval; with ``wait_seconds`` (at most 60) wait that long while it is
        pending. Reading an outcome stops the heartbeats mentioning it."""
        return Approval.from_json(
            self._request(
                "GET",
                f"/approvals/{approval_id}",
                params={"wait_seconds": wait_seconds},
                timeout=httpx.Timeout(self.timeout, read=self.timeout + wait_seconds),
            )
        )

    def wait_for_approval(
        self,
        approval_id: str,
        *,
        timeout: float | None = None,
        poll_seconds: float = 30,
    ) -> Approval:
        """Long-poll until the approval is no longer pending (or ``timeout`` seconds
        passed: then the pending approval). Look at ``status`` and ``decision``."""
        ends = None if timeout is None else time.monotonic() + timeout
        while True:
            wait = poll_seconds if ends is None else min(poll_seconds, ends - time.monotonic())
            approval = self.get_approval(approval_id, wait_seconds=max(0.0, wait))
            if not approval.pending or (ends is not None and time.monotonic() >= ends):
                return approval

    def approvals(self, session_id: str) -> list[Approval]:
        """The session's approvals, newest first."""
        return [
            Approval.from_json(item)
            for item in self._request("GET", f"/sessions/{session_id}/approvals")
        ]

    def checkpoint(
        self,
        session_id: str,
        context_changes: dict[str, Any] | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> Checkpoint:
        body = {"context_changes": context_changes or {}}
        return Checkpoint(
            **self._keyed("POST", f"/sessions/{session_id}/checkpoints", body, idempotency_key)
        )

    def checkpoints(self, session_id: str) -> list[Checkpoint]:
        return [
            Checkpoint(**item)
            for item in self._request("GET", f"/sessions/{session_id}/checkpoints")
        ]

    def audit_trail(self, session_id: str) -> Iterator[dict[str, Any]]:
        """The session's audit events, oldest first, streamed line by line."""
        with self._http.stream("GET", f"/sessions/{session_id}/audit-trail") as response:
            if response.status_code != 200:
                response.read()
                raise _error(response)
            for line in response.iter_lines():
                if line:
                    yield json.loads(line)

    # --- events and audit -------------------------------------------------------------
    def send_events(self, events: list[dict[str, Any]]) -> EventsResult:
        """Report tool/task events; their ids make a retried batch add nothing."""
        data = self._request("POST", "/events", json={"events": events}, idempotent=True)
        return EventsResult(**data)

    def recorder(self, session_id: str | None, *, batch_size: int = 200) -> EventRecorder:
        """Agent-side hooks that time each invocation and send events in batches."""
        return EventRecorder(self, session_id, batch_size=batch_size)

    def search_audit(self, *, page_size: int = 100, **filters: Any) -> Iterator[dict[str, Any]]:
        """Audit events matching ``filters`` (admin scope), newest first, page after page.
        ``metadata`` may be a dict: it is sent as the JSON the API expects."""
        if isinstance(filters.get("metadata"), dict):
            filters["metadata"] = json.dumps(filters["metadata"])
        yield from self._pages("/audit/events", {**filters, "limit": page_size})

    def me(self) -> dict[str, Any]:
        return self._request("GET", "/me")

    # --- schedules (scope ``write``; ``read`` for the reads) -----------------------------
    def list_schedules(self, *, page_size: int = 100, **filters: Any) -> Iterator[Schedule]:
        """Every review matching ``filters`` (owner_id, enabled), by name."""
        if isinstance(filters.get("enabled"), bool):
            filters["enabled"] = "true" if filters["enabled"] else "false"
        for item in self._pages("/schedules", {**filters, "limit": page_size}):
            yield Schedule.from_json(item)

    def create_schedule(
        self,
        *,
        name: str,
        owner_id: str,
        schedule_type: str,
        idempotency_key: str | None = None,
        **fields: Any,
    ) -> Schedule:
        """Create a review: ``schedule_type`` and its fields (time_of_day, weekday,
        day_of_month, cron_expression, interval_minutes, scheduled_time, starts_at,
        timezone, priority, executor, ...; docs/scheduling.md)."""
        body = {"name": name, "owner_id": owner_id, "schedule_type": schedule_type}
        body.update({key: _plain(value) for key, value in fields.items()})
        return Schedule.from_json(self._keyed("POST", "/schedules", body, idempotency_key))

    def get_schedule(self, review_id: int) -> Schedule:
        return Schedule.from_json(self._request("GET", f"/schedules/{review_id}"))

    def update_schedule(self, review_id: int, **changes: Any) -> Schedule:
        """Change the given fields (setting them again changes nothing, so it is retried)."""
        body = {key: _plain(value) for key, value in changes.items()}
        return Schedule.from_json(
            self._request("PATCH", f"/schedules/{review_id}", json=body, idempotent=True)
        )

    def delete_schedule(self, review_id: int) -> None:
        """Delete the review and its beat entry; the run history stays."""
        self._request("DELETE", f"/schedules/{review_id}")

    def pause_schedule(
        self, review_id: int, *, note: str = "", idempotency_key: str | None = None
    ) -> Schedule:
        return Schedule.from_json(
            self._keyed("POST", f"/schedules/{review_id}/pause", {"note": note}, idempotency_key)
        )

    def resume_schedule(self, review_id: int, *, idempotency_key: str | None = None) -> Schedule:
        return Schedule.from_json(
            self._keyed("POST", f"/schedules/{review_id}/resume", None, idempotency_key)
        )

    def trigger_schedule(self, review_id: int, *, idempotency_key: str | None = None) -> Execution:
        """Run the review now (paused or not): one run per key, however often retried."""
        response = self._send(
            "POST",
            f"/schedules/{review_id}/trigger",
            headers=self._key_header(idempotency_key),
            idempotent=True,
        )
        return Execution.from_json(
            response.json(), replayed=response.headers.get("Idempotent-Replayed") == "true"
        )

    def next_runs(self, review_id: int, *, count: int = 5) -> list[datetime]:
        """The next ``count`` (1-100) runs, in UTC."""
        data = self._request("GET", f"/schedules/{review_id}/next-runs", params={"count": count})
        return [datetime.fromisoformat(run) for run in data["runs"]]

    def executions(
        self, review_id: int, *, status: list[str] | None = None, page_size: int = 100
    ) -> Iterator[Execution]:
        """The review's run history, newest first, one row per attempt."""
        params: dict[str, Any] = {"limit": page_size, "status": status}
        for item in self._pages(f"/schedules/{review_id}/executions", params):
            yield Execution.from_json(item)

    def execution_results(
        self,
        review_id: int,
        execution_id: str,
        *,
        outcome: str | None = None,
        page_size: int = 100,
    ) -> Iterator[dict[str, Any]]:
        """What a run found, one result per account, by account id."""
        path = f"/schedules/{review_id}/executions/{execution_id}/results"
        yield from self._pages(path, {"outcome": outcome, "limit": page_size})

    def account_reviews(
        self, account_id: str, *, outcome: str | None = None, page_size: int = 100
    ) -> Iterator[dict[str, Any]]:
        """One account's results across runs, newest first."""
        path = f"/accounts/{account_id}/reviews"
        yield from self._pages(path, {"outcome": outcome, "limit": page_size})

    # --- the work queue (scope ``work``) -------------------------------------------------
    def claim_batch(
        self, queue: str, *, wait_seconds: int = 0, holder: str | None = None
    ) -> Lease | None:
        """Lease the next batch of ``queue``, waiting up to ``wait_seconds`` (0-30) for one;
        None when none came. ``holder`` is shown to staff (host:pid); default the agent."""
        body: dict[str, Any] = {"queue": queue, "wait_seconds": wait_seconds}
        if holder is not None:
            body["holder"] = holder
        # Not retried once the request may have reached the server: a claim whose answer
        # is lost leaves a batch leased to nobody until its lease runs out, so the caller
        # claims again instead. A connection never made (or a 429) is retried as usual.
        data = self._request(
            "POST",
            "/work/claim",
            json=body,
            idempotent=False,
            timeout=httpx.Timeout(self.timeout, read=self.timeout + wait_seconds),
        )
        return None if data is None else Lease.from_json(data)

    def heartbeat_batch(self, lease: Lease) -> LeaseRenewal:
        """Extend the lease; ``LeaseLost`` (which also marks ``lease`` lost) means stop."""
        return LeaseRenewal.from_json(self._lease_call(lease, "heartbeat", {}))

    def complete_batch(
        self,
        lease: Lease,
        results: Sequence[AccountResult | Mapping[str, Any]],
        *,
        events: Sequence[Mapping[str, Any]] = (),
        metrics: Mapping[str, int] | None = None,
    ) -> CompletedBatch:
        """Record one result per account of the batch, with tool/task ``events`` (as for
        ``send_events``; session_id may be left out) and other session ``metrics``
        counters. Safe to retry: the token makes a repeat replay the first answer."""
        body = {
            "results": [
                item.to_json() if isinstance(item, AccountResult) else dict(item)
                for item in results
            ],
            "events": [dict(event) for event in events],
            "metrics": dict(metrics or {}),
        }
        response = self._lease_send(lease, "complete", body)
        return CompletedBatch(
            **response.json(), replayed=response.headers.get("Idempotent-Replayed") == "true"
        )

    def fail_batch(self, lease: Lease, error: str, *, retryable: bool = True) -> BatchState:
        """The batch could not be done: back to the queue if ``retryable`` (up to the
        attempts limit), else its run fails."""
        body = {"error": error[:5000] or "failed", "retryable": retryable}
        return BatchState(**self._lease_call(lease, "fail", body))

    def release_batch(self, lease: Lease) -> BatchState:
        """Give the batch back unfinished (stopping): claimable again at once, the
        attempt not counted."""
        return BatchState(**self._lease_call(lease, "release", {}))

    # --- plumbing -------------------------------------------------------------------
    def _lease_call(self, lease: Lease, action: str, body: dict[str, Any]) -> Any:
        return self._lease_send(lease, action, body).json()

    def _lease_send(self, lease: Lease, action: str, body: dict[str, Any]) -> httpx.Response:
        # The token fences every call: a repeat of one that was processed cannot act twice
        # (it replays, or finds the lease gone), so all of them are retried.
        try:
            return self._send(
                "POST",
                f"/work/{lease.batch_id}/{action}",
                json={"token": lease.lease_token, **body},
                idempotent=True,
            )
        except LeaseLost as exc:
            lease.mark_lost(exc.reason or exc.code)
            raise

    def _action(
        self, session_id: str, action: str, body: dict[str, Any], key: str | None
    ) -> Session:
        return Session.from_json(self._keyed("POST", f"/sessions/{session_id}/{action}", body, key))

    def _keyed(
        self,
        method: str,
        path: str,
        body: Any,
        key: str | None,
        *,
        params: dict[str, Any] | None = None,
    ) -> Any:
        """A write sent with an Idempotency-Key, so its retries are safe."""
        return self._request(
            method,
            path,
            json=body,
            params=params,
            headers=self._key_header(key),
            idempotent=True,
        )

    @staticmethod
    def _key_header(key: str | None) -> dict[str, str]:
        return {"Idempotency-Key": key or str(uuid.uuid4())}

    def _pages(self, path: str, params: dict[str, Any]) -> Iterator[dict[str, Any]]:
        params = {key: value for key, value in params.items() if value not in (None, [])}
        while True:
            page = self._request("GET", path, params=params)
            yield from page["items"]
            if not page["next_cursor"]:
                return
            params["cursor"] = page["next_cursor"]

    def _request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        idempotent: bool | None = None,
        timeout: httpx.Timeout | None = None,
    ) -> Any:
        """The answer's JSON; None for a 204."""
        response = self._send(
            method,
            path,
            json=json,
            params=params,
            headers=headers,
            idempotent=idempotent,
            timeout=timeout,
        )
        return None if response.status_code == 204 else response.json()

    def _send(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        idempotent: bool | None = None,
        timeout: httpx.Timeout | None = None,
    ) -> httpx.Response:
        retry_unsure = method == "GET" if idempotent is None else idempotent
        for attempt in range(self.retries + 1):
            last = attempt == self.retries
            try:
                response = self._http.request(
                    method,
                    path,
                    json=json,
                    params=params,
                    headers=headers,
                    timeout=httpx.USE_CLIENT_DEFAULT if timeout is None else timeout,
                )
            except httpx.ConnectError:
                if last:
                    raise
            except httpx.TransportError:
                if last or not retry_unsure:
                    raise
            else:
                retry = response.status_code in _RETRY_ALWAYS or (
                    retry_unsure and response.status_code in _RETRY_IF_IDEMPOTENT
                )
                if not retry or last:
                    if response.status_code >= 400:
                        raise _error(response)
                    return response
                wait = response.headers.get("Retry-After")
                if wait and wait.isdigit():
                    time.sleep(min(int(wait), 60))
                    continue
            time.sleep(self.backoff_seconds * 2**attempt)
        raise AssertionError("unreachable")  # the last attempt returns or raises


def _plain(value: Any) -> Any:
    """A datetime or a time of day as the ISO 8601 text the API reads."""
    return value.isoformat() if hasattr(value, "isoformat") else value


def _error(response: httpx.Response) -> SergasAPIError:
    try:
        body = response.json()
    except ValueError:
        body = {"code": "http_error", "detail": response.text[:500]}
    body = body if isinstance(body, dict) else {}
    if response.status_code == 409 and body.get("code") == "lease_lost":
        return LeaseLost(response.status_code, body)
    return SergasAPIError(response.status_code, body)
