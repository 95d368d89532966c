"""Production refuses the simulated runner and the synthetic accounts unless allowed."""

from django.core.checks import run_checks

from scheduling.accounts import AccountSource
from scheduling.checks import SIMULATED_RUNNER, SYNTHETIC_SOURCE


def _ids(app_settings, **scheduling):
    app_settings("SCHEDULING", **scheduling)
    return sorted(message.id for message in run_checks() if message.id.startswith("scheduling"))


def _plugin_ids(app_settings, **scheduling):
    app_settings("SCHEDULING", **scheduling)
    return sorted(message.id for message in run_checks() if message.id.startswith("sergas.E00"))


def test_the_simulation_is_refused_unless_allowed(app_settings):
    app_settings("SCHEDULING", REVIEW_RUNNER=SIMULATED_RUNNER, ACCOUNT_SOURCE=SYNTHETIC_SOURCE)
    assert _ids(app_settings, ALLOW_SIMULATION=False) == ["scheduling.E001", "scheduling.E002"]
    assert _ids(app_settings, ALLOW_SIMULATION=True) == []


def test_real_classes_or_no_runner_pass(app_settings):
    app_settings("SCHEDULING", REVIEW_RUNNER="", ACCOUNT_SOURCE="tests.scheduling.test_checks.CRM")
    assert _ids(app_settings, ALLOW_SIMULATION=False) == []
    assert _plugin_ids(app_settings) == []


def test_the_message_says_what_to_do(app_settings):
    app_settings("SCHEDULING", REVIEW_RUNNER=SIMULATED_RUNNER, ALLOW_SIMULATION=False)
    [error] = [m for m in run_checks() if m.id == "scheduling.E001"]
    assert "invented results" in error.msg
    assert "SCHEDULING_ALLOW_SIMULATION=true" in error.hint


class CRM(AccountSource):
    """An account source of the project's own, as a deployment would configure one."""


def test_a_review_runner_that_does_not_import_is_an_error(app_settings):
    assert _plugin_ids(app_settings, REVIEW_RUNNER="crm.runners.Missing") == ["sergas.E001"]
    [error] = [m for m in run_checks() if m.id == "sergas.E001"]
    assert "SERGAS_REVIEW_RUNNER names 'crm.runners.Missing'" in error.msg


def test_a_review_runner_that_is_no_review_runner_is_an_error(app_settings):
    wrong = "tests.scheduling.test_checks.CRM"
    assert _plugin_ids(app_settings, REVIEW_RUNNER=wrong) == ["sergas.E002"]


def test_an_account_source_that_does_not_import_or_is_no_account_source_is_an_error(
    app_settings,
):
    assert _plugin_ids(app_settings, ACCOUNT_SOURCE="crm.accounts.Missing") == ["sergas.E003"]
    assert _plugin_ids(app_settings, ACCOUNT_SOURCE=SIMULATED_RUNNER) == ["sergas.E004"]


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
