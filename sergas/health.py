"""Health probes, with the Kubernetes convention (docs/operations.md, "Probes"):

- ``/livez``: the process answers; no dependency is checked, so a database outage never
  makes an orchestrator restart every web process.
- ``/readyz``: this process can serve: PostgreSQL, Redis (the caches) and the Celery
  broker answer. It also reports whether a beat leads and renewed its leadership
  recently, which never changes the answer: every web process would fail it at once,
  and taking them all out of the load balancer would turn a scheduling outage into a
  total one (the ``SergasBeatLeaderless`` alert is for that).
- ``/healthz`` (kept as it was): PostgreSQL and Redis, plus how far the audit witnesses
  hold the seal chain, which never changes the answer.
"""

import time

import redis
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from audit.selectors import audit_witnesses_health

# A probe answers within its timeout (Kubernetes default: 1 s) even when Redis or the
# broker hangs: their checks give up after this (PostgreSQL: DATABASE_CONNECT_TIMEOUT).
CHECK_TIMEOUT_SECONDS = 0.5


def _failed(exc: BaseException) -> dict[str, object]:
    return {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}


def _check_database() -> dict[str, object]:
    started = time.perf_counter()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # any failure means "not reachable"; report it, do not raise
        return _failed(exc)
    return {"ok": True, "latency_ms": round((time.perf_counter() - started) * 1000, 2)}


def _check_redis() -> dict[str, object]:
    started = time.perf_counter()
    try:
        client = redis.Redis.from_url(
            settings.REDIS_URL,
            socket_connect_timeout=CHECK_TIMEOUT_SECONDS,
            socket_timeout=CHECK_TIMEOUT_SECONDS,
        )
        client.ping()
        client.close()
    except redis.RedisError as exc:
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
    return {"ok": True, "latency_ms": round((time.perf_counter() - started) * 1000, 2)}


def _check_witnesses(*, database_ok: bool) -> dict[str, object]:
    if not database_ok:  # not another connect timeout: the database check says why
        return {"ok": False, "error": "not checked: the database is unreachable"}
    try:
        health = audit_witnesses_health()
    except Exception as exc:  # report it, do not raise
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
    return {
        "ok": health.ok,
        "witnesses": [
            {
                "name": witness.name,
                "published_seal": witness.published_seal,
                "failures": witness.failures,
                "last_error": witness.last_error,
            }
            for witness in health.witnesses
        ],
        "chain_head": health.chain_head,
    }


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    checks = {"database": _check_database(), "redis": _check_redis()}
    # Only PostgreSQL and Redis decide the answer: a witness that is down or behind delays
    # nothing but its own copy of the heads (writes and sealing go on), so it is reported
    # for monitoring and never turns /healthz into a 503.
    healthy = all(check["ok"] for check in checks.values())
    checks["witnesses"] = _check_witnesses(database_ok=bool(checks["database"]["ok"]))
    return JsonResponse(
        {"status": "ok" if healthy else "unavailable", "checks": checks},
        status=200 if healthy else 503,
    )


def _check_broker() -> dict[str, object]:
    """Connect to the Celery broker (Redis or RabbitMQ) once, without retrying."""
    from sergas.celery import app

    started = time.perf_counter()
    options = {
        **(app.conf.broker_transport_options or {}),
        "socket_connect_timeout": CHECK_TIMEOUT_SECONDS,
        "socket_timeout": CHECK_TIMEOUT_SECONDS,
    }
    try:
        with app.connection_for_write(
            settings.CELERY_BROKER_URL,
            connect_timeout=CHECK_TIMEOUT_SECONDS,
            transport_options=options,
        ) as broker:
            broker.ensure_connection(max_retries=0)
    except Exception as exc:  # any failure means "not reachable"; report it, do not raise
        return _failed(exc)
    return {"ok": True, "latency_ms": round((time.perf_counter() - started) * 1000, 2)}


def _check_beat(*, database_ok: bool) -> dict[str, object]:
    """Does a beat hold the leadership lock, and did it renew it recently?"""
    from scheduling.conf import beat_leader_stale_seconds
    from scheduling.selectors import beat_leaders

    if not database_ok:
        return {"ok": False, "error": "not checked: the database is unreachable"}
    try:
        leaders = beat_leaders()
    except Exception as exc:  # report it, do not raise
        return _failed(exc)
    stale_after = beat_leader_stale_seconds()
    if not leaders:
        return {"ok": False, "error": "no beat holds the leadership lock"}
    leader = leaders[0]
    renewed = leader.renewed_seconds
    answer: dict[str, object] = {
        "ok": renewed is None or renewed <= stale_after,
        "leader": {"address": leader.address, "backend_pid": leader.backend_pid},
        # None: this database role may not see the beat's activity (docs/operations.md).
        "renewed_seconds_ago": None if renewed is None else round(renewed, 1),
        "stale_after_seconds": stale_after,
    }
    if not answer["ok"]:
        answer["error"] = f"the leader has not renewed its leadership for {renewed:.0f} s"
    return answer


@never_cache
@require_GET
def livez(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


@never_cache
@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    checks = {"database": _check_database(), "redis": _check_redis(), "broker": _check_broker()}
    ready = all(check["ok"] for check in checks.values())
    # Reported, never deciding (module docstring).
    checks["beat"] = _check_beat(database_ok=bool(checks["database"]["ok"]))
    return JsonResponse(
        {"status": "ok" if ready else "unavailable", "checks": checks},
        status=200 if ready else 503,
    )
