from typing import Any

from django.core.checks import CheckMessage, Error, Warning, register

from access import conf
from access.throttling import parse_rate


@register()
def check_throttle_rate(app_configs: Any, **kwargs: Any) -> list[CheckMessage]:
    try:
        parse_rate(conf.throttle_rate())
    except ValueError as exc:
        return [Error(str(exc), hint="Fix API_THROTTLE_RATE.", id="agents.E001")]
    return []


@register()
def check_auth_failure_limits(app_configs: Any, **kwargs: Any) -> list[CheckMessage]:
    problems: list[CheckMessage] = []
    if conf.auth_failure_limit() < 1:
        problems.append(
            Error(
                "AUTH_FAILURE_LIMIT must be at least 1.",
                hint="Failed authentications per address and window before 429.",
                id="agents.E002",
            )
        )
    if conf.auth_failure_window_seconds() < 1:
        problems.append(
            Error(
                "AUTH_FAILURE_WINDOW_SECONDS must be at least 1.",
                hint="The window of the failure limit and of the audit summaries.",
                id="agents.E003",
            )
        )
    return problems


@register()
def check_body_limit(app_configs: Any, **kwargs: Any) -> list[CheckMessage]:
    """The API's body limit is no larger than Django's, or Django refuses a body the API
    would take with 400 before the API can answer."""
    django_limit = conf.django_max_body_bytes()
    if django_limit is None or conf.max_body_bytes() <= django_limit:
        return []
    return [
        Warning(
            f'SERGAS_ACCESS["MAX_BODY_BYTES"] ({conf.max_body_bytes()}) is above Django\'s'
            f" DATA_UPLOAD_MAX_MEMORY_SIZE ({django_limit}): bodies between them get 400,"
            " not the API's 413.",
            hint="Set API_MAX_BODY_BYTES (both limits) instead.",
            id="sergas.W001",
        )
    ]
