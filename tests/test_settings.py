"""One settings convention: the environment fills each app's ``SERGAS_<APP>`` dict only
with what it sets, the apps' conf modules hold the defaults, and beat's schedule is built
once from them (docs/architecture.md, "Settings")."""

import json
import subprocess
import sys

import environ

from sergas.beat_schedule import beat_schedule
from sergas.celery import app
from sergas.settings.knobs import knobs_from_env
from tests.processes import ROOT

PRODUCTION = {
    "DJANGO_SETTINGS_MODULE": "sergas.settings.production",
    "SECRET_KEY": "x" * 20 + "production-secret-key-for-the-settings-test-0123456789",
    "ALLOWED_HOSTS": "sergas.example",
}


def _in_a_process(code: str, **env: str) -> object:
    """What ``code`` prints as JSON in a fresh process with only ``env`` set."""
    result = subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); {code}"],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "DJANGO_SETTINGS_MODULE": "sergas.settings.base", **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout.splitlines()[-1])


def test_only_the_variables_that_are_set_become_keys():
    env = environ.Env()
    env.ENVIRON = {"A_SET": "7", "A_FLAG": "true", "A_LIST": "x,y", "AN_EMPTY": ""}
    knobs = knobs_from_env(
        env,
        {
            "SET": ("A_SET", env.int),
            "FLAG": ("A_FLAG", env.bool),
            "LIST": ("A_LIST", env.list),
            "EMPTY": ("AN_EMPTY", env.str),
            "UNSET": ("AN_UNSET", env.int),
        },
    )
    assert knobs == {"SET": 7, "FLAG": True, "LIST": ["x", "y"], "EMPTY": ""}


def test_without_the_environment_every_default_comes_from_the_apps_conf():
    dicts = _in_a_process(
        "from django.conf import settings; import json; print(json.dumps({name: getattr("
        "settings, name) for name in dir(settings) if name.startswith('SERGAS_')}))"
    )
    assert dicts == {
        "SERGAS_ACCESS": {},
        "SERGAS_AUDIT": {},
        "SERGAS_DASHBOARD": {},
        "SERGAS_SCHEDULING": {},
        "SERGAS_SESSIONS": {"OWNERS": ["scheduling.session_owner.ScheduledRunOwner"]},
        "SERGAS_TRACES": {},
    }


def test_the_documented_variables_still_set_the_knobs():
    read = (
        "from access import conf as a; from audit import conf as au; "
        "from scheduling import conf as s; from sessions import conf as se; import json; "
        "print(json.dumps([s.review_runner_path(), s.account_source_path(), "
        "a.trusted_proxy_count(), a.max_body_bytes(), au.seal_interval_seconds(), "
        "str(au.archive_dir()), au.witnesses(), se.heartbeat_timeout_seconds()]))"
    )
    assert _in_a_process(
        read,
        SERGAS_REVIEW_RUNNER="",
        SERGAS_ACCOUNT_SOURCE="crm.Accounts",
        TRUSTED_PROXY_COUNT="2",
        API_MAX_BODY_BYTES="1000",
        AUDIT_SEAL_INTERVAL_SECONDS="5",
        AUDIT_ARCHIVE_DIR="/srv/archive",
        AUDIT_WITNESS_FILES="",
        AUDIT_WITNESS_URLS="https://notary.example/h",
        AUDIT_WITNESS_TOKEN="t",
        SESSION_HEARTBEAT_TIMEOUT_SECONDS="30",
    ) == [
        "",
        "crm.Accounts",
        2,
        1000,
        5,
        "/srv/archive",
        [
            {
                "NAME": "http:https://notary.example/h",
                "BACKEND": "audit.integrity.witnesses.HttpWitness",
                "OPTIONS": {"url": "https://notary.example/h", "token": "t"},
            }
        ],
        30,
    ]


def test_production_assumes_no_key_no_witness_and_no_simulation_unless_told():
    read = (
        "from audit import conf as au; from scheduling import conf as s; import json; "
        "print(json.dumps([au.signing_key_path() and str(au.signing_key_path()), "
        "au.signing_key_autocreate(), au.witnesses(), s.allow_simulation()]))"
    )
    assert _in_a_process(read, **PRODUCTION) == [None, False, [], False]
    told = _in_a_process(
        read,
        **PRODUCTION,
        AUDIT_SIGNING_KEY_FILE="/etc/sergas/key.pem",
        AUDIT_SIGNING_KEY_AUTOCREATE="true",  # never in production
        AUDIT_WITNESS_FILES="/mnt/b/heads.jsonl",
        SCHEDULING_ALLOW_SIMULATION="true",
    )
    assert told[0] == "/etc/sergas/key.pem"
    assert told[1] is False
    assert [w["OPTIONS"] for w in told[2]] == [{"path": "/mnt/b/heads.jsonl"}]
    assert told[3] is True


def test_celery_runs_the_one_schedule_with_its_tasks_intervals_and_queues():
    assert app.conf.beat_schedule == beat_schedule()
    assert {name: entry["task"] for name, entry in beat_schedule().items()} == {
        "scheduling-recover-interrupted-runs": "scheduling.tasks.recover_interrupted_runs",
        "sessions-interrupt-stale": "sessions.tasks.interrupt_stale_sessions",
        "sessions-expire-approvals": "sessions.tasks.expire_approvals",
        "agents-prune-idempotency-records": "agents.tasks.prune_idempotency_records",
        "agents-flush-auth-failure-summaries": "agents.tasks.flush_auth_failure_summaries",
        "audit-maintain-partitions": "audit.tasks.maintain_audit_partitions",
        "housekeeping-prune": "housekeeping.tasks.prune",
        "traces-maintain-partitions": "traces.tasks.maintain_trace_partitions",
        "audit-seal-events": "audit.tasks.seal_audit_events",
    }


def test_drills_shorten_beats_intervals_through_the_environment():
    schedule = _in_a_process(
        "from sergas.celery import app; import json; "
        "print(json.dumps({k: [v['schedule'], v.get('options')] "
        "for k, v in app.conf.beat_schedule.items()}))",
        SESSION_STALE_CHECK_SECONDS="1",
        SESSION_APPROVAL_EXPIRY_CHECK_SECONDS="5",
        SCHEDULING_RECOVERY_CHECK_SECONDS="2",
        AUTH_FAILURE_FLUSH_SECONDS="3",
        AUDIT_SEAL_INTERVAL_SECONDS="4",
        MAINTENANCE_QUEUE="maintenance",
    )
    assert schedule == {
        "scheduling-recover-interrupted-runs": [2.0, None],
        "sessions-interrupt-stale": [1.0, None],
        "sessions-expire-approvals": [5.0, None],
        "agents-prune-idempotency-records": [3600.0, None],
        "agents-flush-auth-failure-summaries": [3.0, None],
        "audit-maintain-partitions": [86400.0, {"queue": "maintenance"}],
        "housekeeping-prune": [86400.0, None],
        "traces-maintain-partitions": [21600.0, {"queue": "maintenance"}],
        "audit-seal-events": [4.0, None],
    }


def test_the_traces_variables_set_its_knobs_and_conf_holds_the_defaults():
    read = (
        "from traces import conf as t; import json; "
        "print(json.dumps([t.retention_days(), t.premake_days(), "
        "{m: [str(i), str(o)] for m, (i, o) in t.model_prices().items()}]))"
    )
    assert _in_a_process(read) == [30, 7, {}]
    assert _in_a_process(
        read,
        TRACES_RETENTION_DAYS="14",
        TRACES_MODEL_PRICES='{"claude-sonnet-4": {"input": 3, "output": "15.5"}}',
    ) == [14, 7, {"claude-sonnet-4": ["3", "15.5"]}]
