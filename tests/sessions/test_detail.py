"""GET /api/v1/sessions/{id} renders each cache entry once (sessions.detail)."""

import json

import pytest

from sessions import selectors
from sessions.cache import session_cache
from sessions.schemas import SessionDetailOut
from tests.factories import make_session

pytestmark = pytest.mark.django_db


def test_the_detail_is_the_schemas_whether_read_from_postgresql_or_the_cache(agent_api):
    api = agent_api("read")
    session = make_session("running", context={"metadata": {"region": "emea"}})
    first = api.get(f"/sessions/{session.session_id}")  # PostgreSQL, filling the cache
    assert session_cache().get_encoded(session.session_id) is not None
    again = api.get(f"/sessions/{session.session_id}")  # the cache entry, rendered
    kept = api.get(f"/sessions/{session.session_id}")  # the same entry's bytes
    assert first.content == again.content == kept.content
    assert first["Content-Type"] == kept["Content-Type"] == "application/json; charset=utf-8"
    assert first["ETag"] == kept["ETag"] == f'"{session.version}"'
    expected = SessionDetailOut.model_validate(selectors.session_get(session.session_id))
    assert json.loads(kept.content) == expected.model_dump(mode="json")


def test_a_write_replaces_the_rendered_detail(agent_api, django_capture_on_commit_callbacks):
    api = agent_api("write")
    session_id = api.post("/sessions", {"orchestrator_id": "o"}).json()["session_id"]
    api.get(f"/sessions/{session_id}")
    before = api.get(f"/sessions/{session_id}")
    with django_capture_on_commit_callbacks(execute=True):
        changed = api.patch(f"/sessions/{session_id}/context", {"changes": {"current_batch": 4}})
    assert changed.status_code == 200
    after = api.get(f"/sessions/{session_id}")
    assert json.loads(before.content)["context"]["current_batch"] == 0
    assert json.loads(after.content)["context"]["current_batch"] == 4
    assert after["ETag"] == f'"{changed.json()["version"]}"' != before["ETag"]


def test_an_unknown_session_is_still_404(agent_api):
    response = agent_api("read").get("/sessions/session_nope_0")
    assert response.status_code == 404
    assert response.json()["code"] == "session_not_found"
