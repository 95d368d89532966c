from typing import Any

from django.core.checks import CheckMessage, Error, register

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
