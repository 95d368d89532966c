from typing import Any

from django.core.checks import CheckMessage, Error, register

from agents import conf
from agents.throttling import parse_rate


@register()
def check_throttle_rate(app_configs: Any, **kwargs: Any) -> list[CheckMessage]:
    try:
        parse_rate(conf.throttle_rate())
    except ValueError as exc:
        return [Error(str(exc), hint="Fix API_THROTTLE_RATE.", id="agents.E001")]
    return []
