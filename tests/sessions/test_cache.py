"""The three read tiers of session_get, and what happens when Redis goes away."""

import time

import pytest

from sessions import services
from sessions.cache import SessionCache, session_cache
from sessions.models import AgentSession
from sessions.selectors import session_get
from tests.factories import make_session

pytestmark = pytest.mark.django_db(transaction=True)


def _other_process_cache(settings, *, local_ttl: float = 60.0) -> SessionCache:
    """A second cache as another process would have: same Redis, its own local tier."""
    conf = settings.SERGAS_SESSIONS
    return SessionCache(
        redis_url=conf.get("CACHE_REDIS_URL", settings.REDIS_URL),
        key_prefix=conf["CACHE_KEY_PREFIX"],
        local_ttl=local_ttl,
        local_maxsize=100,
        redis_ttl=60,
        max_entry_bytes=512 * 1024,
        retry_seconds=5,
    )


def test_a_read_fills_the_tiers_and_the_next_reads_skip_postgresql(
    settings, django_assert_num_queries
):
    session = make_session("running")
    with django_assert_num_queries(1):
        first = session_get(session.session_id)
    with django_assert_num_queries(0):
        second = session_get(session.session_id)
    other = _other_process_cache(settings)
    with django_assert_num_queries(0):
        from_redis = other.get(session.session_id)
    for copy in (first, second, from_redis):
        assert copy.session_id == session.session_id
        assert copy.version == session.version
        assert copy.context == session.context
        assert copy.started_at == session.started_at
        assert copy.account_ids == session.account_ids


def test_a_missing_session_is_none():
    assert session_get("session_missing") is None


def test_the_writing_process_sees_its_write_at_once():
    session = make_session("running")
    session_get(session.session_id)
    services.session_pause(session.session_id)
    assert session_get(session.session_id).status == "paused"


def test_another_process_sees_a_write_within_its_local_ttl(settings):
    session = make_session("running")
    other = _other_process_cache(settings, local_ttl=0.2)
    other.fill(AgentSession.objects.get(pk=session.session_id))
    assert other.get(session.session_id).status == "running"

    services.session_pause(session.session_id)

    time.sleep(0.3)  # the documented bound for this cache
    assert other.get(session.session_id) is None  # tombstone: go to PostgreSQL


def test_a_slow_reader_cannot_put_back_a_state_older_than_a_committed_write():
    session = make_session("running")
    read_before_write = AgentSession.objects.get(pk=session.session_id)
    services.session_pause(session.session_id)  # commits version + 1, tombstone in Redis

    session_cache().fill(read_before_write)  # arrives late with the old version

    assert session_cache().get(session.session_id) is None
    assert session_get(session.session_id).status == "paused"
    assert session_cache().get(session.session_id).status == "paused"


def test_heartbeats_leave_the_cache_alone():
    session = make_session("running")
    cached = session_get(session.session_id)
    services.session_heartbeat(session.session_id)
    assert session_get(session.session_id).version == cached.version


def test_an_oversized_session_is_read_from_postgresql(settings, django_assert_num_queries):
    settings.SERGAS_SESSIONS = {**settings.SERGAS_SESSIONS, "CACHE_MAX_ENTRY_BYTES": 2000}
    session_cache.cache_clear()
    session = make_session("running", context={"metadata": {"blob": "x" * 5000}})
    session_get(session.session_id)
    with django_assert_num_queries(1):
        assert session_get(session.session_id).context["metadata"]["blob"] == "x" * 5000


def test_reads_and_writes_work_when_redis_stops(private_redis, use_cache_redis):
    use_cache_redis(private_redis.url)
    session = make_session("running")
    assert session_get(session.session_id).status == "running"  # filled into Redis

    private_redis.stop()

    services.session_pause(session.session_id)  # invalidation cannot reach Redis
    services.session_update_context(session.session_id, changes={"current_batch": 4})
    fresh = session_get(session.session_id)
    assert fresh.status == "paused"
    assert fresh.context["current_batch"] == 4
    services.session_resume(session.session_id)
    assert session_get(session.session_id).status == "running"


def test_the_cache_uses_redis_again_once_it_returns(private_redis, use_cache_redis, settings):
    settings.SERGAS_SESSIONS = {**settings.SERGAS_SESSIONS, "CACHE_REDIS_RETRY_SECONDS": 0.1}
    use_cache_redis(private_redis.url)
    session = make_session("running")
    private_redis.stop()
    assert session_get(session.session_id).status == "running"

    private_redis.start()
    time.sleep(0.2)  # past the retry window
    session_cache().clear_local()
    session_get(session.session_id)
    assert _other_process_cache(settings).get(session.session_id) is not None


def test_reads_and_writes_work_when_redis_is_unreachable(
    use_cache_redis, django_assert_num_queries
):
    use_cache_redis("redis://127.0.0.1:9/0")  # discard port: nothing listens
    session = make_session("running")
    services.session_pause(session.session_id)
    assert session_get(session.session_id).status == "paused"
    services.session_resume(session.session_id)
    assert session_get(session.session_id).status == "running"
