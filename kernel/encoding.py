"""JSON for the API and the audit export: Django's encoder keeps only milliseconds of a
datetime; audit timestamps, cursors and versions need all six digits. On the way in, a
datetime is an ISO 8601 string, as the OpenAPI schema says (pydantic alone would also
take a number of seconds since 1970)."""

import re
from datetime import UTC, datetime, time
from typing import Annotated, Any

from ninja.renderers import JSONRenderer
from ninja.responses import NinjaJSONEncoder
from pydantic import AfterValidator, BeforeValidator, WithJsonSchema

_ISO_DATE = re.compile(r"^\s*\d{4}-\d{2}-\d{2}")


def _iso_only(value: Any) -> Any:
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not _ISO_DATE.match(value):
        raise ValueError("must be an ISO 8601 date-time, e.g. 2026-01-31T09:00:00Z")
    return value


def _in_utc(value: datetime) -> datetime:
    """UTC from here on: PostgreSQL refuses offsets Python accepts (beyond +-15:59). At
    the very edges of the calendar an offset can carry the time past year 1 or 9999: it
    is clamped to the edge, and the rules that judge times (too old, in the future, a
    schedule that never fires) answer for it, as for any other time that far out."""
    if value.tzinfo is None:
        return value
    try:
        return value.astimezone(UTC)
    except OverflowError:
        edge = datetime.min if value.year == datetime.min.year else datetime.max
        return edge.replace(tzinfo=UTC)


# Input datetimes of the API schemas.
IsoDateTime = Annotated[datetime, BeforeValidator(_iso_only), AfterValidator(_in_utc)]

# HH:MM[:SS[.ffffff]], each part in its range (ASCII digits: what datetime.time reads).
_LOCAL_TIME = r"^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,6})?)?$"


def _local_time(value: Any) -> Any:
    if isinstance(value, time):
        return value
    if not isinstance(value, str) or not re.match(_LOCAL_TIME, value):
        raise ValueError("must be a local time without an offset, e.g. 09:00")
    return value


# A wall-clock time read in some timezone named elsewhere: no offset of its own.
LocalTime = Annotated[
    time,
    BeforeValidator(_local_time),
    WithJsonSchema({"type": "string", "pattern": _LOCAL_TIME, "example": "09:00"}),
]


class PreciseJSONEncoder(NinjaJSONEncoder):
    def default(self, o: Any) -> Any:
        if isinstance(o, datetime):
            text = o.isoformat()
            return text[:-6] + "Z" if text.endswith("+00:00") else text
        return super().default(o)


class PreciseJSONRenderer(JSONRenderer):
    """The API's renderer (``sergas.api``); ``sessions.detail`` renders with it too, ahead
    of the request, so its bytes are the API's."""

    encoder_class = PreciseJSONEncoder

    def content_type(self) -> str:
        return f"{self.media_type}; charset={self.charset}"
