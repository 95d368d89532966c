"""The session owners every transition calls are checked when the project starts."""

from django.core.checks import run_checks

from sessions.owners import SessionOwner


class Bystander(SessionOwner):
    """An owner that owns nothing: a valid configuration."""


def _ids() -> list[str]:
    return sorted(message.id for message in run_checks() if message.id.startswith("sergas.E00"))


def test_the_projects_owners_pass():
    assert _ids() == []


def test_an_owner_that_does_not_import_is_an_error(app_settings):
    app_settings("SESSIONS", OWNERS=["scheduling.session_owner.Missing"])
    assert _ids() == ["sergas.E005"]
    [error] = [m for m in run_checks() if m.id == "sergas.E005"]
    assert 'SERGAS_SESSIONS["OWNERS"]' in error.msg


def test_an_owner_that_is_no_session_owner_is_an_error(app_settings):
    app_settings(
        "SESSIONS",
        OWNERS=["tests.sessions.test_checks.Bystander", "scheduling.runners.ReviewRunner"],
    )
    assert _ids() == ["sergas.E006"]
