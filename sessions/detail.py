"""The JSON of ``GET /api/v1/sessions/{id}``, rendered once per cache entry.

A session is read far more often than it is written, and its detail depends on nothing
but its cache entry (``sessions.cache``: the row's fields with the context and metrics).
So the bytes rendered from an entry are kept beside it and served again for as long as
the cache returns that same entry; any write replaces the entry, and with it the
bytes. This skips decoding the entry, validating it against ``SessionDetailOut`` and
encoding the JSON, which were most of the cached detail's own time. The rendering is
the API's own (the schema, then its renderer class), so the bytes are the ones it would
send. A session the cache does not hold is read through ``session_get`` (PostgreSQL,
which fills the cache) and rendered without being kept.
"""

import threading
from dataclasses import dataclass

from cachetools import LRUCache
from django.http import HttpRequest

from kernel.encoding import PreciseJSONRenderer
from sessions import selectors
from sessions.cache import decode_session, session_cache
from sessions.models import AgentSession
from sessions.schemas import SessionDetailOut

# The API's renderer (sergas.api uses the same class).
_RENDERER = PreciseJSONRenderer()
# Bytes of entries and their renderings kept per process (large sessions weigh more).
KEPT_BYTES = 32 * 1024 * 1024


@dataclass(frozen=True)
class Detail:
    body: bytes
    content_type: str
    version: int


@dataclass(frozen=True)
class _Rendered:
    entry: bytes
    detail: Detail


def _weight(rendered: _Rendered) -> int:
    return len(rendered.entry) + len(rendered.detail.body)


_rendered: LRUCache[str, _Rendered] = LRUCache(maxsize=KEPT_BYTES, getsizeof=_weight)
_lock = threading.Lock()


def session_detail(request: HttpRequest, session_id: str) -> Detail | None:
    """The session's detail as the API renders it, or None if there is no such session."""
    entry = session_cache().get_encoded(session_id)
    if entry is None:
        session = selectors.session_get(session_id)
        return None if session is None else _render(request, session)
    with _lock:
        kept = _rendered.get(session_id)
    if kept is not None and (kept.entry is entry or kept.entry == entry):
        return kept.detail
    detail = _render(request, decode_session(entry))
    rendered = _Rendered(entry=entry, detail=detail)
    if _weight(rendered) <= KEPT_BYTES // 8:
        with _lock:
            _rendered[session_id] = rendered
    return detail


def _render(request: HttpRequest, session: AgentSession) -> Detail:
    data = SessionDetailOut.model_validate(session).model_dump()
    body = _RENDERER.render(request, data, response_status=200)
    return Detail(
        body=body.encode() if isinstance(body, str) else body,
        content_type=_RENDERER.content_type(),
        version=session.version,
    )
