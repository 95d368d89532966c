"""``/healthz``: is this process able to reach PostgreSQL and Redis right now? It also
reports how far the audit witnesses hold the seal chain, which never changes the answer."""

import time

import redis
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from audit.selectors import audit_witnesses_health


def _check_database() -> dict[str, object]:
    started = time.perf_counter()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # any failure means "not reachable"; report it, do not raise
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
    return {"ok": True, "latency_ms": round((time.perf_counter() - started) * 1000, 2)}


def _check_redis() -> dict[str, object]:
    started = time.perf_counter()
    try:
        client = redis.Redis.from_url(
            settings.REDIS_URL, socket_connect_timeout=0.5, socket_timeout=0.5
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
