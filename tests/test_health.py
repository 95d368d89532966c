from pathlib import Path

import pytest

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
    return {"NAME": name, "BACKEND": "audit.witnesses.FileWitness", "OPTIONS": {"path": path}}


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
