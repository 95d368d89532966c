from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

import pytest

from scheduling.exceptions import InvalidCronExpression, InvalidSchedule, InvalidTimezone
from scheduling.recurrence import Recurrence, describe, validate_cron

LA = ZoneInfo("America/Los_Angeles")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


class TestCronValidation:
    @pytest.mark.parametrize(
        ("expression", "message"),
        [
            (
                "61 * * * *",
                "'61 * * * *' is not a valid cron expression: minute 61 is out of range 0-59",
            ),
            (
                "* 24 * * *",
                "'* 24 * * *' is not a valid cron expression: hour 24 is out of range 0-23",
            ),
            (
                "* * 0 * *",
                "'* * 0 * *' is not a valid cron expression: day of month 0 is out of range 1-31",
            ),
            (
                "* * * 13 *",
                "'* * * 13 *' is not a valid cron expression: month 13 is out of range 1-12",
            ),
            (
                "* * * * 8",
                "'* * * * 8' is not a valid cron expression: day of week 8 is out of range 0-7",
            ),
            (
                "* * * *",
                "'* * * *' is not a valid cron expression: expected 5 fields "
                "(minute hour day-of-month month day-of-week), got 4",
            ),
            (
                "*/0 * * * *",
                "'*/0 * * * *' is not a valid cron expression: minute step '0' must be a "
                "positive number",
            ),
            (
                "30-10 * * * *",
                "'30-10 * * * *' is not a valid cron expression: minute range 30-10 runs backwards",
            ),
            (
                "abc * * * *",
                "'abc * * * *' is not a valid cron expression: minute 'abc' is not a number",
            ),
        ],
    )
    def test_an_invalid_expression_says_what_is_wrong(self, expression, message):
        with pytest.raises(InvalidCronExpression) as excinfo:
            validate_cron(expression)
        assert excinfo.value.detail == message
        assert excinfo.value.field == "cron_expression"

    @pytest.mark.parametrize(
        "expression",
        ["*/15 9-17 * * 1-5", "0 0 1 jan,jul *", "5 4 * * sun", "0 12 * * 7", "0,30 * * * *"],
    )
    def test_valid_expressions_pass_normalised(self, expression):
        assert validate_cron(f"  {expression}  ") == expression


def test_an_unknown_timezone_is_refused_by_name():
    with pytest.raises(InvalidTimezone) as excinfo:
        Recurrence("daily", timezone="Not/AZone", time_of_day=time(9)).validate()
    assert excinfo.value.detail == "'Not/AZone' is not an IANA timezone"
    assert excinfo.value.field == "timezone"


@pytest.mark.parametrize(
    ("recurrence", "field"),
    [
        (Recurrence("daily"), "time_of_day"),
        (Recurrence("weekly", time_of_day=time(9)), "weekday"),
        (Recurrence("biweekly", time_of_day=time(9), weekday=7), "weekday"),
        (Recurrence("monthly", time_of_day=time(9), day_of_month=32), "day_of_month"),
        (Recurrence("interval", interval_minutes=0), "interval_minutes"),
        (Recurrence("one_time"), "scheduled_time"),
        (Recurrence("hourly"), "schedule_type"),
    ],
)
def test_incomplete_definitions_name_the_missing_field(recurrence, field):
    with pytest.raises(InvalidSchedule) as excinfo:
        recurrence.validate()
    assert excinfo.value.field == field


def test_daily_runs_at_the_local_time_converted_not_relabelled():
    daily = Recurrence("daily", timezone="Europe/Paris", time_of_day=time(9, 0))
    assert daily.preview(utc(2026, 11, 24, 12, 0), 2) == [
        utc(2026, 11, 25, 8, 0),  # 09:00 CET is 08:00 UTC
        utc(2026, 11, 26, 8, 0),
    ]


def test_a_daily_review_in_los_angeles_follows_the_dst_change():
    daily = Recurrence("daily", timezone="America/Los_Angeles", time_of_day=time(9, 0))
    # DST ends on Sunday 1 November 2026: 09:00 PDT (UTC-7) becomes 09:00 PST (UTC-8).
    runs = daily.preview(utc(2026, 10, 30, 0, 0), 4)
    assert runs == [
        utc(2026, 10, 30, 16, 0),
        utc(2026, 10, 31, 16, 0),
        utc(2026, 11, 1, 17, 0),
        utc(2026, 11, 2, 17, 0),
    ]
    assert all(run.astimezone(LA).hour == 9 for run in runs)


def test_a_time_skipped_by_spring_forward_runs_an_hour_later_on_the_clock():
    nightly = Recurrence("daily", timezone="America/Los_Angeles", time_of_day=time(2, 30))
    runs = nightly.preview(utc(2027, 3, 13, 12, 0), 2)  # DST starts 14 March 2027
    assert [run.astimezone(LA).strftime("%d %H:%M %Z") for run in runs] == [
        "14 03:30 PDT",
        "15 02:30 PDT",
    ]


def test_a_time_repeated_by_fall_back_runs_once():
    early = Recurrence("daily", timezone="America/Los_Angeles", time_of_day=time(1, 30))
    runs = early.preview(utc(2026, 10, 31, 12, 0), 2)
    assert runs == [utc(2026, 11, 1, 8, 30), utc(2026, 11, 2, 9, 30)]


def test_cron_in_a_timezone():
    business = Recurrence("cron", timezone="America/New_York", cron_expression="0 9 * * 1-5")
    # Friday 27 Nov 2026 15:00 UTC -> next is Monday 30 Nov 09:00 EST = 14:00 UTC.
    assert business.next_after(utc(2026, 11, 27, 15, 0)) == utc(2026, 11, 30, 14, 0)


def test_weekly_runs_on_the_weekday_in_local_time():
    weekly = Recurrence("weekly", timezone="Asia/Tokyo", time_of_day=time(8, 0), weekday=0)
    # Monday 08:00 JST is Sunday 23:00 UTC.
    assert weekly.preview(utc(2026, 11, 24), 2) == [utc(2026, 11, 29, 23), utc(2026, 12, 6, 23)]


def test_biweekly_skips_every_other_week_from_its_anchor():
    biweekly = Recurrence(
        "biweekly", time_of_day=time(10), weekday=2, starts_at=utc(2026, 11, 2)
    )  # anchored on the week of Monday 2 November
    assert biweekly.preview(utc(2026, 11, 2), 3) == [
        utc(2026, 11, 4, 10),
        utc(2026, 11, 18, 10),
        utc(2026, 12, 2, 10),
    ]


def test_monthly_on_the_31st_falls_back_to_the_last_day():
    month_end = Recurrence("monthly", time_of_day=time(18), day_of_month=31)
    assert month_end.preview(utc(2027, 1, 1), 3) == [
        utc(2027, 1, 31, 18),
        utc(2027, 2, 28, 18),
        utc(2027, 3, 31, 18),
    ]


def test_interval_counts_from_its_anchor():
    every_90 = Recurrence("interval", interval_minutes=90, starts_at=utc(2026, 11, 24, 0, 0))
    assert every_90.preview(utc(2026, 11, 24, 2, 0), 2) == [
        utc(2026, 11, 24, 3, 0),
        utc(2026, 11, 24, 4, 30),
    ]
    assert every_90.next_after(utc(2026, 11, 23)) == utc(2026, 11, 24, 0, 0)


def test_a_start_on_the_first_day_of_the_calendar_does_not_overflow():
    hourly = Recurrence("interval", interval_minutes=60, starts_at=datetime.min.replace(tzinfo=UTC))
    assert hourly.next_after(utc(2026, 11, 24, 0, 30)) == utc(2026, 11, 24, 1, 0)


def test_one_time_runs_once_and_then_never():
    once = Recurrence("one_time", scheduled_time=utc(2026, 12, 1, 9))
    assert once.preview(utc(2026, 11, 24), 3) == [utc(2026, 12, 1, 9)]
    assert once.next_after(utc(2026, 12, 1, 9)) is None


def test_descriptions_read_like_sentences():
    assert describe(
        Recurrence("cron", cron_expression="*/15 9-17 * * 1-5", timezone="Europe/London")
    ) == ("Every 15 minutes, between 09:00 AM and 05:59 PM, Monday through Friday (Europe/London)")
    assert describe(Recurrence("biweekly", time_of_day=time(14), weekday=3)).endswith(
        "every other week (UTC)"
    )
    assert describe(Recurrence("interval", interval_minutes=30)) == "Every 30 minute(s)"
