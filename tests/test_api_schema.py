"""The API's shape: OpenAPI, docs, and the one error form for every failure."""

import pytest

from kernel.errors import PayloadTooLarge, RateLimited, ServiceUnavailable
from sergas.api import STATUS_OF, api

_REQUIRED = {
    PayloadTooLarge: {"limit": 10, "unit": "bytes"},
    RateLimited: {"retry_after": 1},
    ServiceUnavailable: {"retry_after": 5},
}

pytestmark = pytest.mark.django_db


def test_the_openapi_schema_lists_every_operation_with_bearer_security(client):
    response = client.get("/api/openapi.json")
    assert response.status_code == 200
    schema = response.json()
    paths = schema["paths"]
    for path in [
        "/api/v1/sessions",
        "/api/v1/sessions/{session_id}",
        "/api/v1/sessions/{session_id}/recover",
        "/api/v1/sessions/{session_id}/context",
        "/api/v1/sessions/{session_id}/checkpoints",
        "/api/v1/sessions/{session_id}/audit-trail",
        "/api/v1/events",
        "/api/v1/audit/events",
        "/api/v1/me",
    ]:
        assert path in paths, path
    assert schema["components"]["securitySchemes"]["ApiAuth"]["scheme"] == "bearer"


def test_the_interactive_docs_are_served(client):
    assert client.get("/api/docs").status_code == 200


@pytest.mark.parametrize(("base", "status"), STATUS_OF)
def test_every_domain_error_base_maps_to_its_status_and_the_error_form(rf, base, status):
    class Example(base):
        code = "example"

    exc = Example("what went wrong", **_REQUIRED.get(base, {}))
    response = api.on_exception(rf.get("/api/v1/x"), exc)
    assert response.status_code == status
    assert response.content.startswith(b'{"code": "example", "detail": "what went wrong"')


def test_an_unknown_api_path_is_a_404(agent_api):
    assert agent_api().get("/nothing-here").status_code == 404


# Writes that are safe to resend as they are: a heartbeat, events (their ids), a schedule's
# fields set again, the work queue's calls after the claim (fenced by the lease token). A
# claim is not keyed: a lost claim's batch returns to the queue when its lease runs out.
_RETRY_SAFE_WITHOUT_A_KEY = {
    ("patch", "/api/v1/schedules/{review_id}"),
    ("post", "/api/v1/sessions/{session_id}/heartbeat"),
    ("post", "/api/v1/events"),
    ("post", "/api/v1/work/claim"),
    ("post", "/api/v1/work/{batch_id}/heartbeat"),
    ("post", "/api/v1/work/{batch_id}/complete"),
    ("post", "/api/v1/work/{batch_id}/fail"),
    ("post", "/api/v1/work/{batch_id}/release"),
}


def test_every_other_state_changing_post_documents_its_idempotency_key(client):
    paths = client.get("/api/openapi.json").json()["paths"]
    keyed, unkeyed = set(), set()
    for path, operations in paths.items():
        for method, operation in operations.items():
            if method not in ("post", "patch"):
                continue
            headers = {
                parameter["name"]: parameter["schema"]
                for parameter in operation.get("parameters", [])
                if parameter["in"] == "header"
            }
            (keyed if "Idempotency-Key" in headers else unkeyed).add((method, path))
            if "Idempotency-Key" in headers:
                assert "pattern" in str(headers["Idempotency-Key"]), path
    assert unkeyed == _RETRY_SAFE_WITHOUT_A_KEY
    assert ("post", "/api/v1/schedules/{review_id}/trigger") in keyed
    assert ("post", "/api/v1/sessions/{session_id}/metrics") in keyed


def test_parameters_are_described_as_a_client_sends_them(client):
    schema = client.get("/api/openapi.json").json()
    parameters = [
        parameter
        for operations in schema["paths"].values()
        for operation in operations.values()
        for parameter in operation.get("parameters", [])
    ]
    # Left out when not wanted, never null.
    assert not [
        p["name"] for p in parameters if {"type": "null"} in p.get("schema", {}).get("anyOf", [])
    ]
    json_parameters = {p["name"] for p in parameters if "content" in p}
    assert json_parameters == {"context", "metadata"}
    for parameter in parameters:
        if "content" in parameter:
            assert parameter["content"]["application/json"]["schema"]["type"] == "object"


def test_context_increments_and_counters_are_named_fields(client):
    components = client.get("/api/openapi.json").json()["components"]["schemas"]
    assert set(components["ContextIncrementsIn"]["properties"]) == {
        "current_batch",
        "total_batches",
        "recommendations_count",
    }
    assert components["ContextIncrementsIn"]["additionalProperties"] is False
    assert components["MetricCountersIn"]["additionalProperties"] is False
