"""The API's limits are checked when the project starts."""

from django.core.checks import run_checks


def _ids() -> list[str]:
    return sorted(message.id for message in run_checks() if message.id.startswith("sergas.W"))


def test_the_api_body_limit_is_djangos_by_default():
    from access import conf

    assert conf.max_body_bytes() == 4 * 1024 * 1024
    assert _ids() == []


def test_an_api_body_limit_above_djangos_is_a_warning(app_settings, settings):
    app_settings("ACCESS", MAX_BODY_BYTES=settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1)
    assert _ids() == ["sergas.W001"]
    app_settings("ACCESS", MAX_BODY_BYTES=1000)
    assert _ids() == []
