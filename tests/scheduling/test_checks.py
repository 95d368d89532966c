"""Production refuses the simulated runner and the synthetic accounts unless allowed."""

from django.core.checks import run_checks

from scheduling.checks import SIMULATED_RUNNER, SYNTHETIC_SOURCE


def _ids(app_settings, **scheduling):
    app_settings("SCHEDULING", **scheduling)
    return sorted(message.id for message in run_checks() if message.id.startswith("scheduling"))


def test_the_simulation_is_refused_unless_allowed(app_settings):
    app_settings("SCHEDULING", REVIEW_RUNNER=SIMULATED_RUNNER, ACCOUNT_SOURCE=SYNTHETIC_SOURCE)
    assert _ids(app_settings, ALLOW_SIMULATION=False) == ["scheduling.E001", "scheduling.E002"]
    assert _ids(app_settings, ALLOW_SIMULATION=True) == []


def test_real_classes_or_no_runner_pass(app_settings):
    app_settings("SCHEDULING", REVIEW_RUNNER="", ACCOUNT_SOURCE="crm.accounts.SalesforceAccount")
    assert _ids(app_settings, ALLOW_SIMULATION=False) == []


def test_the_message_says_what_to_do(app_settings):
    app_settings("SCHEDULING", REVIEW_RUNNER=SIMULATED_RUNNER, ALLOW_SIMULATION=False)
    [error] = [m for m in run_checks() if m.id == "scheduling.E001"]
    assert "invented results" in error.msg
    assert "SCHEDULING_ALLOW_SIMULATION=true" in error.hint


def test_production_settings_refuse_the_simulation_by_default():
    import subprocess
    import sys

    from tests.processes import ROOT

    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env={
            "PATH": "/usr/bin:/bin",
            "DJANGO_SETTINGS_MODULE": "sergas.settings.production",
            "SECRET_KEY": "x" * 20 + "production-secret-key-for-the-check-test-0123456789",
            "ALLOWED_HOSTS": "sergas.example",
            "DATABASE_URL": "postgres://nobody@127.0.0.1:1/none",
            "REDIS_URL": "redis://127.0.0.1:1/0",
        },
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert "scheduling.E001" in result.stderr
    assert "scheduling.E002" in result.stderr


def test_web_and_worker_processes_refuse_to_start_on_a_check_error(app_settings):
    import pytest

    from sergas.startup import refuse_to_start_on_errors

    app_settings("SCHEDULING", REVIEW_RUNNER=SIMULATED_RUNNER, ALLOW_SIMULATION=False)
    with pytest.raises(SystemExit, match=r"scheduling\.E001"):
        refuse_to_start_on_errors("celery")
    app_settings("SCHEDULING", ALLOW_SIMULATION=True)
    refuse_to_start_on_errors("celery")
