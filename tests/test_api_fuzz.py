"""Schemathesis against ``/api/openapi.json`` with a valid admin token.

Every generated request, valid or deliberately invalid, must get an answer its schema
documents: no 5xx, no undocumented status, no body or header that breaks the schema, and
invalid input refused with a 4xx. A request the schema calls valid is accepted (or refused
for the state it finds: 404, 409): never a 400 or a 422, except for the rules only the
server can decide (``DECIDED_BY_THE_SERVER``, listed in docs/api.md).

Half of the requests that name a session, a review, a run or a work batch name one that
exists (in each status), so the fuzzing reaches past the 404; the token may also take
work (from a queue with a run waiting).

``make test`` sends about 5,200 requests; ``make drills`` about 8,600
(``SERGAS_FUZZ_EXAMPLES``, examples per operation and phase; ``SERGAS_FUZZ_RANDOM=1``
for new ones instead of the same every run).
"""

import itertools
import logging
import os
from collections import Counter
from pathlib import Path

import pytest
import schemathesis
from django.core import signals
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.core.parameters import ParameterLocation
from schemathesis.specs.openapi.checks import positive_data_acceptance

from access.services import agent_token_create
from scheduling.models import RunBatch
from scheduling.services import execution_claim, review_trigger_on_demand
from sergas.wsgi import application
from tests.drills.report import DrillReport
from tests.factories import make_session
from tests.scheduling.factories import make_review

EXAMPLES = int(os.environ.get("SERGAS_FUZZ_EXAMPLES", "8"))
# The same requests every run, so CI is repeatable; SERGAS_FUZZ_RANDOM=1 explores anew.
RANDOM = os.environ.get("SERGAS_FUZZ_RANDOM") == "1"
CONFIG = Path(__file__).resolve().parent.parent / "schemathesis.toml"

# Error codes a request the schema calls valid may still get, because only the server can
# decide (docs/api.md, "What the schema cannot say"); each is a 422 naming the field.
DECIDED_BY_THE_SERVER = {
    "invalid_cursor": "a cursor must be one this list issued",
    "idempotency_key_reused": "the key was used before, with another request",
    "versions_disagree": "If-Match and expected_version given at once must agree",
    "invalid_schedule": "a schedule's fields must fit its type and ever fire",
    "invalid_cron_expression": "a cron expression must be one croniter reads",
    "event_too_old": "an event older than the trail keeps, by the server's clock",
    "event_in_future": "an event ahead of the server's clock",
    "unknown_session": "an event's session must exist",
    "invalid_results": "a batch's results must name its accounts, each once",
    "foreign_session": "a batch's events must be of its session",
    "invalid_audit_search": "since (default: a week ago, by the server's clock) before until",
    "invalid_approval": "a default decision among the options, a deadline ahead of the clock",
}

_statuses: Counter[int] = Counter()
_decided_by_the_server: Counter[str] = Counter()
_alternate = itertools.count()


@pytest.fixture(scope="module")
def fuzz_report():
    report = DrillReport(f"schemathesis, {EXAMPLES} examples per operation and phase")
    yield report
    report.note("requests", sum(_statuses.values()))
    report.note("answers (status: count)", dict(sorted(_statuses.items())))
    report.note(
        "schema-valid requests refused by server-only rules (code: count)",
        dict(sorted(_decided_by_the_server.items())),
    )
    report.print()


@pytest.fixture(scope="module", autouse=True)
def client_errors_unlogged():
    """Thousands of deliberate 4xx would each log a warning through ``django.request``
    and bury the report; a 5xx still logs (at ERROR) and fails the test anyway."""
    logger = logging.getLogger("django.request")
    level = logger.level
    logger.setLevel(logging.ERROR)
    yield
    logger.setLevel(level)


@pytest.fixture
def wsgi_keeps_the_test_connection():
    """Requests go straight to the WSGI application, which closes the database
    connection when a request ends; the test's transaction lives on that connection (the
    test client disconnects the same handlers)."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def settings_throttle_off(settings):
    # Neither throttle: the deliberate bad tokens would soon answer 429 to everything.
    settings.SERGAS_ACCESS = {
        **settings.SERGAS_ACCESS,
        "THROTTLE_RATE": "1000000/min",
        "AUTH_FAILURE_LIMIT": 1_000_000,
    }
    # A claim on the real queue answers at once instead of long-polling.
    settings.SERGAS_SCHEDULING = {**settings.SERGAS_SCHEDULING, "WORK_WAIT_MAX_SECONDS": 0}


@pytest.fixture
def real_objects(db) -> dict[str, list]:
    statuses = ["pending", "running", "paused", "completed", "failed", "interrupted"]
    queued = make_review(name="fuzz queue", executor="queue:fuzz-queue")
    run = review_trigger_on_demand(queued.pk)
    execution_claim(str(run.pk))
    return {
        "session_id": [make_session(status).session_id for status in statuses],
        "review_id": [make_review(name=f"fuzz {i}").pk for i in range(2)] + [queued.pk],
        "execution_id": [str(run.pk)],
        "batch_id": list(RunBatch.objects.filter(execution=run).values_list("pk", flat=True)),
    }


@pytest.fixture
def token(db) -> str:
    return agent_token_create(name="fuzzer", scopes=["admin", "work"]).secret


# Loaded when the module is imported (the lazy loader needs pytest < 9).
schema = schemathesis.openapi.from_wsgi(
    "/api/openapi.json",
    application,
    config=schemathesis.config.SchemathesisConfig.from_path(CONFIG),
)


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    derandomize=not RANDOM,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@pytest.mark.usefixtures("settings_throttle_off", "wsgi_keeps_the_test_connection")
def test_generated_requests_get_documented_answers(case, token, real_objects, fuzz_report):
    meta = case._meta
    negative = meta is not None and meta.generation.mode.is_negative
    if case.path_parameters and not negative and next(_alternate) % 2:
        for name, values in real_objects.items():
            if name in case.path_parameters:
                case.path_parameters[name] = values[next(_alternate) % len(values)]
    # A case generated without its required Authorization header keeps it missing.
    auth = (
        {}
        if meta and meta.is_negative_at(ParameterLocation.HEADER)
        else {"Authorization": f"Bearer {token}"}
    )
    response = case.call(headers=auth)
    _statuses[response.status_code] += 1
    excluded = []
    if not negative and response.status_code == 422:
        code = response.json().get("code")
        if code in DECIDED_BY_THE_SERVER:
            _decided_by_the_server[code] += 1
            excluded = [positive_data_acceptance]
    case.validate_response(response, headers=auth, excluded_checks=excluded)
