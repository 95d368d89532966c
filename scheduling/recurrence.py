"""When a review runs: validation of its definition and its occurrences in UTC.

Occurrences are computed in the review's own timezone and converted to UTC (the original
scheduler relabelled local times as UTC). Wall-clock schedules follow cron's rules on
DST days: a time that does not exist (spring forward) runs at the same offset as before
the change, i.e. one hour later on the clock; a time that exists twice (fall back) runs
once, at its first occurrence.
"""

import calendar
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from itertools import islice
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

from scheduling.exceptions import InvalidCronExpression, InvalidSchedule, InvalidTimezone
from scheduling.models import ScheduledReview, ScheduleType

# --- validation ---------------------------------------------------------------------------

# An interval longer than a year is a mistake, and far longer ones overflow date arithmetic.
MAX_INTERVAL_MINUTES = 366 * 24 * 60

_CRON_FIELDS = [
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day of month", 1, 31, {}),
    (
        "month",
        1,
        12,
        {name.lower(): i for i, name in enumerate(calendar.month_abbr) if name},
    ),
    (
        "day of week",
        0,
        7,
        {name.lower(): (i + 1) % 7 for i, name in enumerate(calendar.day_abbr)},
    ),
]
_ITEM = re.compile(r"^(?P<range>\*|[a-z0-9]+(?:-[a-z0-9]+)?)(?:/(?P<step>[^/]+))?$")


def _cron_value(token: str, field: str, low: int, high: int, names: dict[str, int]) -> int:
    if token in names:
        return names[token]
    if not token.isdigit():
        raise ValueError(f"{field} '{token}' is not a number")
    value = int(token)
    if not low <= value <= high:
        raise ValueError(f"{field} {value} is out of range {low}-{high}")
    return value


def validate_cron(expression: str) -> str:
    """Return the normalised expression or raise ``InvalidCronExpression`` saying why."""
    normalised = " ".join(expression.split())
    fields = normalised.lower().split(" ") if normalised else []
    if len(fields) != 5:
        raise InvalidCronExpression(
            expression,
            f"expected 5 fields (minute hour day-of-month month day-of-week), got {len(fields)}",
        )
    try:
        for text, (field, low, high, names) in zip(fields, _CRON_FIELDS, strict=True):
            for item in text.split(","):
                match = _ITEM.match(item)
                if not match:
                    raise ValueError(f"{field} '{item}' is not a value, range or step")
                if match["range"] != "*":
                    bounds = [
                        _cron_value(part, field, low, high, names)
                        for part in match["range"].split("-")
                    ]
                    if len(bounds) == 2 and bounds[0] > bounds[1]:
                        raise ValueError(f"{field} range {match['range']} runs backwards")
                if match["step"] is not None and (
                    not match["step"].isdigit() or int(match["step"]) < 1
                ):
                    raise ValueError(f"{field} step '{match['step']}' must be a positive number")
    except ValueError as exc:
        raise InvalidCronExpression(expression, str(exc)) from None
    if not croniter.is_valid(normalised):
        raise InvalidCronExpression(expression, "croniter cannot parse it")
    return normalised


@lru_cache(maxsize=1024)
def zone(name: str) -> ZoneInfo:
    """The IANA zone ``name`` or ``InvalidTimezone``."""
    try:
        if not name or name != name.strip():
            raise ValueError(name)
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise InvalidTimezone(name) from None


# --- the definition as a value -------------------------------------------------------------


@dataclass(frozen=True)
class Recurrence:
    """Everything that decides when a review runs; equal recurrences share occurrences."""

    schedule_type: str
    timezone: str = "UTC"
    time_of_day: time | None = None
    weekday: int | None = None
    day_of_month: int | None = None
    cron_expression: str = ""
    interval_minutes: int | None = None
    scheduled_time: datetime | None = None
    starts_at: datetime | None = None

    @classmethod
    def of(cls, review: "ScheduledReview | Any") -> "Recurrence":
        """The recurrence of a review, or of anything carrying a review's fields."""
        return cls(
            schedule_type=review.schedule_type,
            timezone=review.timezone,
            time_of_day=review.time_of_day,
            weekday=review.weekday,
            day_of_month=review.day_of_month,
            cron_expression=review.cron_expression,
            interval_minutes=review.interval_minutes,
            scheduled_time=review.scheduled_time,
            starts_at=review.starts_at,
        )

    def normalized_after(self, moment: datetime) -> "Recurrence":
        """An equivalent recurrence for occurrences after ``moment``: irrelevant fields and
        a ``starts_at`` floor already passed are dropped, so reviews that share a schedule
        (the 09:00 herd) compare equal and share one computation."""
        kind = self.schedule_type
        keep = {"schedule_type", "timezone"} | _RELEVANT.get(kind, set())
        anchored = kind in (ScheduleType.INTERVAL, ScheduleType.BIWEEKLY)
        if not anchored and self.starts_at is not None and self.starts_at <= moment:
            keep.discard("starts_at")
        values = {name: getattr(self, name) if name in keep else _EMPTY[name] for name in _EMPTY}
        return Recurrence(**values)

    def validate(self) -> None:
        """Raise ``InvalidSchedule`` (with the field) unless this can be scheduled."""
        if self.schedule_type not in ScheduleType.values:
            raise InvalidSchedule(
                f"'{self.schedule_type}' is not a schedule type; use one of "
                f"{', '.join(ScheduleType.values)}",
                field="schedule_type",
            )
        zone(self.timezone)
        kind = self.schedule_type
        if kind in _PRESETS and self.time_of_day is None:
            raise InvalidSchedule(f"a {kind} schedule needs a time_of_day", field="time_of_day")
        if kind in (ScheduleType.WEEKLY, ScheduleType.BIWEEKLY) and (
            self.weekday is None or not 0 <= self.weekday <= 6
        ):
            raise InvalidSchedule(
                f"a {kind} schedule needs a weekday from 0 (Monday) to 6 (Sunday)",
                field="weekday",
            )
        if kind == ScheduleType.MONTHLY and (
            self.day_of_month is None or not 1 <= self.day_of_month <= 31
        ):
            raise InvalidSchedule(
                "a monthly schedule needs a day_of_month from 1 to 31", field="day_of_month"
            )
        if kind == ScheduleType.CRON:
            validate_cron(self.cron_expression)
        if kind == ScheduleType.INTERVAL and (
            self.interval_minutes is None or not 1 <= self.interval_minutes <= MAX_INTERVAL_MINUTES
        ):
            raise InvalidSchedule(
                f"an interval schedule needs interval_minutes from 1 to {MAX_INTERVAL_MINUTES}",
                field="interval_minutes",
            )
        if kind == ScheduleType.ONE_TIME and self.scheduled_time is None:
            raise InvalidSchedule(
                "a one_time schedule needs a scheduled_time", field="scheduled_time"
            )

    # --- occurrences -------------------------------------------------------------------
    def occurrences(self, after: datetime) -> Iterator[datetime]:
        """Run times strictly after ``after``, ascending, as aware UTC datetimes."""
        after = after.astimezone(UTC)
        if self.starts_at is not None and self.schedule_type != ScheduleType.ONE_TIME:
            starts = self.starts_at.astimezone(UTC)
            if starts > after:  # so never below datetime.min (a start in year 1)
                after = starts - timedelta(microseconds=1)
        kind = self.schedule_type
        if kind == ScheduleType.ONE_TIME:
            when = self.scheduled_time.astimezone(UTC) if self.scheduled_time else None
            if when is not None and when > after:
                yield when
            return
        if kind == ScheduleType.INTERVAL:
            yield from self._interval(after)
            return
        if kind == ScheduleType.MONTHLY:
            yield from self._monthly(after)
            return
        for candidate in self._cron(after):
            if kind == ScheduleType.BIWEEKLY and not self._on_biweekly_week(candidate):
                continue
            yield candidate

    def next_after(self, after: datetime) -> datetime | None:
        return next(self.occurrences(after), None)

    def preview(self, after: datetime, count: int) -> list[datetime]:
        return list(islice(self.occurrences(after), count))

    def cron_equivalent(self) -> str | None:
        """The 5-field cron expression of a wall-clock schedule (biweekly: every week;
        monthly: days 28-31 stand in for 'the clamped day'), None for interval/one-time."""
        if self.schedule_type == ScheduleType.CRON:
            return validate_cron(self.cron_expression)
        if self.time_of_day is None:
            return None
        hm = f"{self.time_of_day.minute} {self.time_of_day.hour}"
        if self.schedule_type == ScheduleType.DAILY:
            return f"{hm} * * *"
        if self.schedule_type in (ScheduleType.WEEKLY, ScheduleType.BIWEEKLY):
            return f"{hm} * * {(self.weekday + 1) % 7}"
        if self.schedule_type == ScheduleType.MONTHLY:
            day = self.day_of_month
            return f"{hm} {day if day <= 28 else '28-31'} * *"
        return None

    def _cron(self, after: datetime) -> Iterator[datetime]:
        tz = zone(self.timezone)
        expression = self.cron_equivalent()
        local_after = after.astimezone(tz).replace(tzinfo=None)
        # Iterate wall-clock times, then attach the zone: fold=0 maps a skipped time
        # forward and a repeated time to its first occurrence, as cron does.
        iterator = croniter(expression, local_after)
        previous: datetime | None = None
        while True:
            naive = iterator.get_next(datetime)
            aware = naive.replace(tzinfo=tz).astimezone(UTC)
            if aware <= after or (previous is not None and aware <= previous):
                continue
            previous = aware
            yield aware

    def _interval(self, after: datetime) -> Iterator[datetime]:
        step = timedelta(minutes=self.interval_minutes or 1)
        anchor = (self.starts_at or after).astimezone(UTC)
        current = anchor if after < anchor else anchor + step * ((after - anchor) // step + 1)
        while True:
            yield current
            current += step

    def _monthly(self, after: datetime) -> Iterator[datetime]:
        tz = zone(self.timezone)
        local = after.astimezone(tz)
        year, month = local.year, local.month
        while True:
            last = calendar.monthrange(year, month)[1]
            day = min(self.day_of_month or 1, last)
            aware = datetime.combine(date(year, month, day), self.time_of_day, tzinfo=tz)
            aware = aware.astimezone(UTC)
            if aware > after:
                yield aware
            month += 1
            if month == 13:
                year, month = year + 1, 1

    def _on_biweekly_week(self, candidate: datetime) -> bool:
        tz = zone(self.timezone)
        anchor = (self.starts_at or candidate).astimezone(tz).date()
        anchor_monday = anchor - timedelta(days=anchor.weekday())
        day = candidate.astimezone(tz).date()
        return ((day - anchor_monday).days // 7) % 2 == 0


_EMPTY: dict[str, object] = {
    "schedule_type": "",
    "timezone": "UTC",
    "time_of_day": None,
    "weekday": None,
    "day_of_month": None,
    "cron_expression": "",
    "interval_minutes": None,
    "scheduled_time": None,
    "starts_at": None,
}
_RELEVANT: dict[str, set[str]] = {
    ScheduleType.DAILY: {"time_of_day", "starts_at"},
    ScheduleType.WEEKLY: {"time_of_day", "weekday", "starts_at"},
    ScheduleType.BIWEEKLY: {"time_of_day", "weekday", "starts_at"},
    ScheduleType.MONTHLY: {"time_of_day", "day_of_month", "starts_at"},
    ScheduleType.CRON: {"cron_expression", "starts_at"},
    ScheduleType.INTERVAL: {"interval_minutes", "starts_at"},
    ScheduleType.ONE_TIME: {"scheduled_time"},
}
_PRESETS = {ScheduleType.DAILY, ScheduleType.WEEKLY, ScheduleType.BIWEEKLY, ScheduleType.MONTHLY}


def describe(recurrence: Recurrence) -> str:
    """A sentence for people: 'At 09:00 AM, only on Monday (Europe/Paris)'."""
    from cron_descriptor import get_description

    kind = recurrence.schedule_type
    if kind == ScheduleType.INTERVAL:
        return f"Every {recurrence.interval_minutes} minute(s)"
    if kind == ScheduleType.ONE_TIME:
        when = recurrence.scheduled_time
        local = when.astimezone(zone(recurrence.timezone)) if when else None
        return f"Once, at {local:%Y-%m-%d %H:%M} ({recurrence.timezone})" if local else "Once"
    if kind == ScheduleType.MONTHLY:
        text = (
            f"At {recurrence.time_of_day:%H:%M}, on day {recurrence.day_of_month} of the month"
            " (or its last day)"
        )
    else:
        text = get_description(recurrence.cron_equivalent())
        if kind == ScheduleType.BIWEEKLY:
            text += ", every other week"
    return f"{text} ({recurrence.timezone})"
