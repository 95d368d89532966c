from pathlib import Path

import pytest
from django.test import Client

from audit.selectors import WITNESS_MAX_LAG_SEALS, audit_seal_head
from audit.services import audit_heads_publish
from tests.audit.support import record, seal_everything

pytestmark = pytest.mark.django_db


def test_healthz_reports_postgresql_and_redis_reachable(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["redis"]["ok"] is True


def test_healthz_is_503_with_the_reason_when_redis_is_unreachable(client, settings):
    settings.REDIS_URL = "redis://127.0.0.1:9/0"
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["redis"]["ok"] is False
    assert "ConnectionError" in body["checks"]["redis"]["error"]


def test_the_admin_login_page_is_served(client):
    assert client.get("/admin/login/").status_code == 200


def test_prometheus_metrics_are_exposed(client):
    response = client.get("/metrics")
    assert response.status_code == 200
    assert b"django_http_requests" in response.content


# --- the witnesses: reported, never deciding the answer ----------------------------------


def _witnesses(client) -> dict:
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    return body["checks"]["witnesses"]


def _file_witness(name: str, path: Path) -> dict:
    return {
        "NAME": name,
        "BACKEND": "audit.integrity.witnesses.FileWitness",
        "OPTIONS": {"path": path},
    }


@pytest.mark.django_db(transaction=True)  # sealing passes only committed transactions
def test_healthz_reports_how_far_each_witness_holds_the_seal_chain(client):
    record(2)
    seal_everything()
    head = audit_seal_head().number
    assert _witnesses(client) == {
        "ok": True,
        "witnesses": [
            {"name": "test-file", "published_seal": head, "failures": 0, "last_error": ""}
        ],
        "chain_head": head,
    }


@pytest.mark.django_db(transaction=True)
def test_a_failing_witness_is_reported_while_healthz_stays_200(client, settings, tmp_path):
    settings.AUDIT_WITNESSES = [_file_witness("test-file", tmp_path)]  # a directory: unwritable
    record(1)
    seal_everything()
    audit_heads_publish()
    witnesses = _witnesses(client)
    assert witnesses["ok"] is False
    assert witnesses["chain_head"] == audit_seal_head().number
    [witness] = witnesses["witnesses"]
    assert witness["failures"] >= 2  # seal_everything published once already
    assert witness["published_seal"] == 0
    assert str(tmp_path) in witness["last_error"]


@pytest.mark.django_db(transaction=True)
def test_a_witness_far_behind_the_chain_is_reported(client, settings, tmp_path):
    for _ in range(WITNESS_MAX_LAG_SEALS + 1):  # each round makes at least one seal
        record(1)
        seal_everything()
    settings.AUDIT_WITNESSES = [
        *settings.AUDIT_WITNESSES,
        _file_witness("new-disk", tmp_path / "heads.jsonl"),  # never published to yet
    ]
    witnesses = _witnesses(client)
    assert witnesses["ok"] is False
    assert [(w["name"], w["published_seal"], w["failures"]) for w in witnesses["witnesses"]] == [
        ("test-file", witnesses["chain_head"], 0),
        ("new-disk", 0, 0),
    ]
    audit_heads_publish()  # it catches up
    assert _witnesses(client)["ok"] is True


def test_with_redis_down_the_witnesses_are_still_reported_and_decide_nothing(client, settings):
    settings.REDIS_URL = "redis://127.0.0.1:9/0"
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["checks"]["witnesses"]["ok"] is True  # nothing sealed, none behind


# --- /livez and /readyz (the Kubernetes convention) ---------------------------------------


@pytest.mark.django_db(transaction=True)  # the outage closes the test's connection
def test_livez_answers_while_postgresql_and_redis_are_down(client, settings):
    from tests.test_availability import database_unreachable

    settings.REDIS_URL = "redis://127.0.0.1:9/0"
    with database_unreachable():
        response = client.get("/livez")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_reports_each_check_and_a_missing_beat_does_not_decide(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    checks = body["checks"]
    assert [checks[name]["ok"] for name in ("database", "redis", "broker")] == [True] * 3
    assert checks["beat"] == {"ok": False, "error": "no beat holds the leadership lock"}


def test_readyz_reports_the_beat_that_leads_and_when_it_last_renewed(client):
    from scheduling import conf
    from scheduling.beat import BeatLeadership

    leadership = BeatLeadership(conf.beat_lock_key())
    assert leadership.hold()
    try:
        beat = client.get("/readyz").json()["checks"]["beat"]
    finally:
        leadership.release()
    assert beat["ok"] is True
    assert beat["leader"]["backend_pid"] > 0
    assert beat["renewed_seconds_ago"] >= 0
    assert beat["stale_after_seconds"] == 60


def test_readyz_calls_a_leader_that_stopped_renewing_stale(client, settings):
    from scheduling import conf
    from scheduling.beat import BeatLeadership

    settings.SERGAS_SCHEDULING = {**settings.SERGAS_SCHEDULING, "BEAT_LEADER_STALE_SECONDS": 0}
    leadership = BeatLeadership(conf.beat_lock_key())
    assert leadership.hold()
    try:
        response = client.get("/readyz")  # the leader's last statement is behind it
    finally:
        leadership.release()
    assert response.status_code == 200  # reported, never deciding
    beat = response.json()["checks"]["beat"]
    assert beat["ok"] is False
    assert "has not renewed its leadership" in beat["error"]


def test_readyz_is_503_when_the_broker_is_unreachable(client, settings):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:9/0"
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["broker"]["ok"] is False
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["redis"]["ok"] is True


def test_readyz_is_503_when_redis_is_unreachable(client, settings):
    settings.REDIS_URL = "redis://127.0.0.1:9/0"
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["redis"]["ok"] is False


@pytest.mark.django_db(transaction=True)
def test_readyz_is_503_naming_the_database_when_postgresql_is_down(client):
    from tests.test_availability import database_unreachable

    with database_unreachable():
        response = Client(raise_request_exception=False).get("/readyz")
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["database"]["ok"] is False
    assert checks["beat"] == {"ok": False, "error": "not checked: the database is unreachable"}
