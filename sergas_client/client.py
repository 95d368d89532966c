"""``SergasClient``: one method per API operation, with safe retries."""

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx

from sergas_client.recorder import EventRecorder
from sergas_client.types import Checkpoint, EventsResult, Heartbeat, Session

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


class SergasClient:
    """A client of ``/api/v1``. Requests that cannot do harm twice (reads, event batches
    with their ids, creates with an Idempotency-Key, heartbeats) are retried on network
    errors and 502/503/504; every request is retried after a 429, as told by Retry-After.
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
        headers = {"Idempotency-Key": idempotency_key or str(uuid.uuid4())}
        return Session.from_json(
            self._request("POST", "/sessions", json=body, headers=headers, idempotent=True)
        )

    def get_session(self, session_id: str) -> Session:
        return Session.from_json(self._request("GET", f"/sessions/{session_id}"))

    def list_sessions(self, *, page_size: int = 100, **filters: Any) -> Iterator[Session]:
        """Every session matching ``filters`` (status, session_type, owner_id,
        orchestrator_id, account_id, created_after, created_before), page after page."""
        for item in self._pages("/sessions", {**filters, "limit": page_size}):
            yield Session.from_json(item)

    def start(self, session_id: str, *, expected_version: int | None = None) -> Session:
        return self._action(session_id, "start", {"expected_version": expected_version})

    def pause(
        self, session_id: str, *, reason: str = "", expected_version: int | None = None
    ) -> Session:
        return self._action(
            session_id, "pause", {"reason": reason, "expected_version": expected_version}
        )

    def resume(self, session_id: str, *, expected_version: int | None = None) -> Session:
        return self._action(session_id, "resume", {"expected_version": expected_version})

    def complete(self, session_id: str, *, expected_version: int | None = None) -> Session:
        return self._action(session_id, "complete", {"expected_version": expected_version})

    def fail(self, session_id: str, *, error: str, expected_version: int | None = None) -> Session:
        return self._action(
            session_id, "fail", {"error": error, "expected_version": expected_version}
        )

    def cancel(
        self, session_id: str, *, reason: str = "", expected_version: int | None = None
    ) -> Session:
        return self._action(
            session_id, "cancel", {"reason": reason, "expected_version": expected_version}
        )

    def recover(self, session_id: str, *, include_state: bool = False) -> Session:
        """Restart from the newest checkpoint; the context comes back only if asked."""
        return Session.from_json(
            self._request(
                "POST",
                f"/sessions/{session_id}/recover",
                params={"include_state": "true"} if include_state else None,
                json={},
            )
        )

    def update_context(
        self,
        session_id: str,
        changes: dict[str, Any],
        *,
        expected_version: int | None = None,
    ) -> Session:
        body = {"changes": changes, "expected_version": expected_version}
        return Session.from_json(
            self._request("PATCH", f"/sessions/{session_id}/context", json=body)
        )

    def increment_metrics(
        self,
        session_id: str,
        counters: dict[str, int] | None = None,
        processing_times_ms: list[int] | None = None,
    ) -> Session:
        body = {"counters": counters or {}, "processing_times_ms": processing_times_ms or []}
        return Session.from_json(
            self._request("POST", f"/sessions/{session_id}/metrics", json=body)
        )

    def heartbeat(self, session_id: str) -> Heartbeat:
        data = self._request("POST", f"/sessions/{session_id}/heartbeat", idempotent=True)
        return Heartbeat(status=data["status"], recorded=data["recorded"])

    def checkpoint(
        self, session_id: str, context_changes: dict[str, Any] | None = None
    ) -> Checkpoint:
        body = {"context_changes": context_changes or {}}
        return Checkpoint(**self._request("POST", f"/sessions/{session_id}/checkpoints", json=body))

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

    # --- plumbing -------------------------------------------------------------------
    def _action(self, session_id: str, action: str, body: dict[str, Any]) -> Session:
        return Session.from_json(
            self._request("POST", f"/sessions/{session_id}/{action}", json=body)
        )

    def _pages(self, path: str, params: dict[str, Any]) -> Iterator[dict[str, Any]]:
        params = {key: value for key, value in params.items() if value is not None}
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
    ) -> Any:
        retry_unsure = method == "GET" if idempotent is None else idempotent
        for attempt in range(self.retries + 1):
            last = attempt == self.retries
            try:
                response = self._http.request(
                    method, path, json=json, params=params, headers=headers
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
                    return response.json()
                wait = response.headers.get("Retry-After")
                if wait and wait.isdigit():
                    time.sleep(min(int(wait), 60))
                    continue
            time.sleep(self.backoff_seconds * 2**attempt)
        raise AssertionError("unreachable")  # the last attempt returns or raises


def _error(response: httpx.Response) -> SergasAPIError:
    try:
        body = response.json()
    except ValueError:
        body = {"code": "http_error", "detail": response.text[:500]}
    return SergasAPIError(response.status_code, body if isinstance(body, dict) else {})
