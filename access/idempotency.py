"""Retry-safe writes over HTTP: the ``Idempotency-Key`` header of every state-changing POST.

A handler hands its work to ``idempotent``. Without a key it runs as it always did; with
one, ``access.services.idempotent_request_execute`` runs it once per (token, key), in one
transaction with the stored answer, and a retry whose answer was lost gets that answer
again (``Idempotent-Replayed: true``) instead of acting twice. "The same request" is the
same method, path with query string, body and ``If-Match``.
"""

import json
from collections.abc import Callable
from typing import Annotated, Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from ninja import Header
from ninja.responses import Status
from pydantic import BaseModel, WithJsonSchema

from access.auth import Principal
from access.services import idempotency_fingerprint, idempotent_request_execute
from access.services.idempotency import IDEMPOTENCY_KEY_PATTERN
from kernel.encoding import PreciseJSONEncoder

REPLAYED_HEADER = "Idempotent-Replayed"

# The header's value as the OpenAPI schema documents it; the service checks it and answers
# 422 invalid_idempotency_key otherwise.
IdempotencyKeyValue = Annotated[
    str,
    WithJsonSchema(
        {"type": "string", "pattern": IDEMPOTENCY_KEY_PATTERN, "minLength": 1, "maxLength": 255}
    ),
]

IdempotencyKey: Any = Header(
    None,
    alias="Idempotency-Key",
    description="Retry-safe write: a retry with the same key and request replays the first "
    "answer (Idempotent-Replayed: true); the same key with another request is 422. Any "
    "1-255 visible ASCII characters, e.g. a UUID.",
)


def idempotent(
    request: HttpRequest,
    key: str | None,
    run: Callable[[], Any],
    *,
    payload: BaseModel | None,
    schema: type[BaseModel],
    status: int = 200,
) -> Any:
    """``run()`` answered as ``schema`` with ``status``: once per key when there is one."""
    if key is None:
        return Status(status, run())

    def execute() -> tuple[int, Any]:
        return status, _as_json(schema.model_validate(run()).model_dump(by_alias=True))

    principal: Principal = request.auth  # type: ignore[attr-defined]
    stored = idempotent_request_execute(
        token=principal.token,  # type: ignore[arg-type]  # writes always carry a token
        key=key,
        fingerprint=_fingerprint(request, payload),
        execute=execute,
    )
    response: HttpResponse = JsonResponse(stored.body, status=stored.status_code, safe=False)
    response[REPLAYED_HEADER] = "true" if stored.replayed else "false"
    return response


def _fingerprint(request: HttpRequest, payload: BaseModel | None) -> str:
    body = None if payload is None else payload.model_dump(mode="json")
    if_match = request.headers.get("If-Match")
    # Without If-Match the fingerprint is the one POST /sessions always stored.
    fingerprinted = body if if_match is None else {"body": body, "If-Match": if_match}
    return idempotency_fingerprint(request.method or "POST", request.get_full_path(), fingerprinted)


def _as_json(data: Any) -> Any:
    """What the API's renderer would send (six-digit datetimes, exact decimals), as JSON
    values the stored answer can keep."""
    return json.loads(json.dumps(data, cls=PreciseJSONEncoder))
