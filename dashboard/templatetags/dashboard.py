"""Formatting for the dashboard's templates: times, durations, JSON, page links."""

import json
from datetime import datetime
from decimal import Decimal
from typing import Any

from django import template
from django.http import QueryDict
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.timesince import timesince

from audit.models import AuditEvent
from dashboard import conf
from kernel.encoding import PreciseJSONEncoder

register = template.Library()

NO_VALUE = "\u2013"  # an en dash: what a table shows for nothing


@register.filter
def when(value: datetime | None) -> SafeString | str:
    """``2026-11-24 09:00:01`` (UTC) with the relative time as a tooltip."""
    if value is None:
        return NO_VALUE
    local = timezone.localtime(value)  # settings.TIME_ZONE: UTC
    return format_html(
        '<time datetime="{}" title="{}">{}</time>',
        local.isoformat(),
        ago(value),
        local.strftime("%Y-%m-%d %H:%M:%S"),
    )


@register.filter
def ago(value: datetime | None) -> str:
    """``3 minutes ago`` or ``in 2 hours``."""
    if value is None:
        return "never"
    now = timezone.now()
    return f"{timesince(value, now)} ago" if value <= now else f"in {timesince(now, value)}"


@register.filter
def ms(value: float | None) -> str:
    """A duration in milliseconds, in the unit a person reads best."""
    if value is None:
        return NO_VALUE
    if abs(value) < 1000:
        return f"{value:.0f} ms"
    seconds = value / 1000
    if abs(seconds) < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {rest} s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h"


@register.filter
def seconds(value: float | None) -> str:
    return NO_VALUE if value is None else ms(value * 1000)


@register.filter
def recorded_late(event: AuditEvent) -> float | None:
    """How many seconds after the time it claims the database recorded an audit event,
    when that is more than ``LATE_RECORD_SECONDS`` (None otherwise, and for events recorded
    before recording times were kept)."""
    if event.recorded_at is None:
        return None
    delay = (event.recorded_at - event.timestamp).total_seconds()
    return delay if delay > conf.late_record_seconds() else None


@register.filter
def usd(value: Decimal | None) -> str:
    """``$0.0042``: a cost in dollars, as precise as it was recorded, without trailing zeros."""
    if value is None:
        return NO_VALUE
    return f"${value.normalize():f}"


@register.filter
def pretty_json(value: Any) -> str:
    return json.dumps(value, cls=PreciseJSONEncoder, indent=2, sort_keys=True)


@register.filter
def compact_json(value: Any) -> str:
    return json.dumps(value, cls=PreciseJSONEncoder, sort_keys=True, separators=(", ", ": "))


@register.simple_tag(takes_context=True)
def query(context: template.Context, **changes: Any) -> str:
    """The current query string with ``changes`` applied (None removes a key)."""
    params: QueryDict = context["request"].GET.copy()
    for key, value in changes.items():
        params.pop(key, None)
        if value not in (None, ""):
            params[key] = value
    encoded = params.urlencode()
    return f"?{encoded}" if encoded else "?"


@register.filter
def get(mapping: dict, key: str) -> Any:
    return mapping.get(key)
