"""Forms of the dashboard: list filters (GET) and the inputs of controls (POST).

Filter forms turn query strings into the keyword arguments of the apps' selectors; they
never query anything themselves.
"""

import json
from datetime import UTC, datetime, time, timedelta
from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from audit.models import AuditEventType
from audit.selectors import AUDIT_SEARCH_RECORDED_LATE_MAX_SECONDS, audit_search_since
from scheduling.exceptions import InvalidTimezone
from scheduling.forms import ScheduledReviewForm
from scheduling.models import ExecutionStatus, ResultOutcome, SchedulePriority, ScheduleType
from scheduling.recurrence import zone
from scheduling.services import EDITABLE_FIELDS
from sessions.models import SessionStatus, SessionType

METADATA_KEY_WITHOUT_VALUE = "Give the value the metadata key must have."
RANGE_BACKWARDS = "The end of the range must be after its start."
CONTEXT_NOT_AN_OBJECT = 'Give a JSON object, e.g. {"metadata": {"region": "emea"}}.'


def _any(choices: list[tuple[str, str]], label: str = "Any") -> list[tuple[str, str]]:
    return [("", label), *choices]


def _text(label: str, placeholder: str = "") -> forms.CharField:
    return forms.CharField(
        label=label,
        required=False,
        max_length=255,
        widget=forms.TextInput(attrs={"placeholder": placeholder}),
    )


class SessionFilterForm(forms.Form):
    session_id = _text("Session id", "session_…")
    status = forms.MultipleChoiceField(
        choices=SessionStatus.choices, required=False, widget=forms.CheckboxSelectMultiple
    )
    session_type = forms.ChoiceField(
        label="Type", choices=_any(SessionType.choices), required=False
    )
    owner_id = _text("Owner", "owner_01")
    account_id = _text("Account", "acct_10001")
    orchestrator_id = _text("Orchestrator")
    created_from = forms.DateField(
        label="Created from", required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    created_to = forms.DateField(
        label="Created to (inclusive)",
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    context = forms.CharField(
        label="Context contains",
        required=False,
        max_length=2000,
        widget=forms.TextInput(attrs={"placeholder": '{"metadata": {"region": "emea"}}'}),
    )

    def clean_context(self) -> dict[str, Any] | None:
        text = self.cleaned_data.get("context", "").strip()
        if not text:
            return None
        try:
            value = json.loads(text)
        except ValueError:
            value = None
        if not isinstance(value, dict):
            raise ValidationError(CONTEXT_NOT_AN_OBJECT)
        return value

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        start, end = cleaned.get("created_from"), cleaned.get("created_to")
        if start and end and end < start:
            raise ValidationError(RANGE_BACKWARDS)
        return cleaned

    def selector_filters(self) -> dict[str, Any]:
        """Keyword arguments of ``sessions.selectors.sessions_list``."""
        data = self.cleaned_data
        start, end = data.get("created_from"), data.get("created_to")
        return {
            "session_id": data.get("session_id", "").strip() or None,
            "statuses": data.get("status") or (),
            "session_type": data.get("session_type") or None,
            "owner_id": data.get("owner_id", "").strip() or None,
            "account_id": data.get("account_id", "").strip() or None,
            "orchestrator_id": data.get("orchestrator_id", "").strip() or None,
            "context": data.get("context"),
            "created_after": datetime.combine(start, time(), UTC) if start else None,
            "created_before": (
                datetime.combine(end + timedelta(days=1), time(), UTC) if end else None
            ),
        }


class ReviewFilterForm(forms.Form):
    name = _text("Name contains")
    owner_id = _text("Owner")
    state = forms.ChoiceField(
        choices=[("", "Any state"), ("enabled", "Enabled"), ("paused", "Paused")],
        required=False,
    )
    schedule_type = forms.ChoiceField(
        label="Type", choices=_any(ScheduleType.choices), required=False
    )
    priority = forms.ChoiceField(choices=_any(SchedulePriority.choices), required=False)

    def selector_filters(self) -> dict[str, Any]:
        """Keyword arguments of ``scheduling.selectors.reviews_page``."""
        data = self.cleaned_data
        state = data.get("state")
        return {
            "name_contains": data.get("name", "").strip() or None,
            "owner_id": data.get("owner_id", "").strip() or None,
            "enabled": {"enabled": True, "paused": False}.get(state or ""),
            "schedule_type": data.get("schedule_type") or None,
            "priority": data.get("priority") or None,
        }


class ExecutionFilterForm(forms.Form):
    status = forms.ChoiceField(
        label="Run status", choices=_any(ExecutionStatus.choices, "Any status"), required=False
    )


class ResultFilterForm(forms.Form):
    outcome = forms.ChoiceField(
        label="Outcome", choices=_any(ResultOutcome.choices, "Any outcome"), required=False
    )

    def selector_filters(self) -> dict[str, Any]:
        """Keyword arguments of ``scheduling.selectors.account_reviews_page`` and
        ``account_history_page``."""
        return {"outcome": self.cleaned_data.get("outcome") or None}


class AuditFilterForm(forms.Form):
    since = forms.DateTimeField(
        label="From (UTC)",
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )
    until = forms.DateTimeField(
        label="To (UTC)",
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )
    event_type = forms.ChoiceField(
        label="Type", choices=_any(AuditEventType.choices), required=False
    )
    action = _text("Action", "pause")
    actor = _text("Actor", "staff:ana")
    resource = _text("Resource", "review:12")
    session_id = _text("Session id")
    metadata_key = _text("Metadata key", "to")
    metadata_value = _text("Metadata value", "failed")
    recorded_late_seconds = forms.IntegerField(
        label="Recorded late by more than (s)",
        required=False,
        min_value=0,
        max_value=AUDIT_SEARCH_RECORDED_LATE_MAX_SECONDS,
        widget=forms.NumberInput(attrs={"placeholder": "60"}),
    )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        since, until = cleaned.get("since"), cleaned.get("until")
        if since and until and until <= since:
            raise ValidationError(RANGE_BACKWARDS)
        if cleaned.get("metadata_key") and not cleaned.get("metadata_value"):
            self.add_error("metadata_value", METADATA_KEY_WITHOUT_VALUE)
        return cleaned

    def selector_filters(self, now: datetime | None = None) -> dict[str, Any]:
        """Keyword arguments of ``audit.selectors.audit_events_search``; the range always
        has a start, so PostgreSQL prunes the partitions outside it."""
        data = self.cleaned_data
        key = data.get("metadata_key", "").strip()
        return {
            "since": audit_search_since(data.get("since"), now=now),
            "until": data.get("until"),
            "event_type": data.get("event_type") or None,
            "action": data.get("action", "").strip() or None,
            "actor": data.get("actor", "").strip() or None,
            "resource": data.get("resource", "").strip() or None,
            "session_id": data.get("session_id", "").strip() or None,
            "metadata_contains": ({key: metadata_value(data["metadata_value"])} if key else None),
            "recorded_late_seconds": data.get("recorded_late_seconds"),
        }


def metadata_value(text: str) -> Any:
    """A JSON literal (``3``, ``true``, ``null``, ``"3"``, ``{...}``) is read as JSON, so
    numbers and booleans match; anything else is the text itself."""
    try:
        return json.loads(text)
    except ValueError:
        return text


class ReasonForm(forms.Form):
    reason = forms.CharField(
        required=False,
        max_length=500,
        widget=forms.TextInput(attrs={"placeholder": "Why? Recorded in the audit trail"}),
    )


class PauseNoteForm(forms.Form):
    note = forms.CharField(
        required=False,
        max_length=2000,
        widget=forms.Textarea(
            attrs={"rows": 3, "placeholder": "Why is it paused? Shown to other staff"}
        ),
    )


_LOCAL_DATETIME = forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")


class ReviewForm(ScheduledReviewForm):
    """The review form with browser widgets; date-times are wall time in the review's
    timezone (shown and read that way), as the API reads a naive time."""

    LOCAL_DATETIMES = ("scheduled_time", "starts_at")

    class Meta(ScheduledReviewForm.Meta):
        widgets = {
            "time_of_day": forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
            "scheduled_time": _LOCAL_DATETIME,
            "starts_at": _LOCAL_DATETIME,
            "account_filter": forms.Textarea(attrs={"rows": 3}),
            "metadata": forms.Textarea(attrs={"rows": 3}),
        }
        help_texts = {
            "time_of_day": "Daily, weekly, biweekly and monthly: local time.",
            "weekday": "Weekly and biweekly: 0 = Monday … 6 = Sunday.",
            "day_of_month": "Monthly: 1-31 (the month's last day when shorter).",
            "cron_expression": "Cron: five fields, in the review's timezone.",
            "interval_minutes": "Interval: minutes between runs, counted from the start.",
            "scheduled_time": "One-time: when, in the review's timezone.",
            "starts_at": "Nothing runs before it; anchors interval and biweekly schedules.",
            "timezone": "IANA name, e.g. Europe/Paris.",
            "account_filter": 'JSON, e.g. {"segment": "emea"}.',
            "metadata": "JSON object handed to the review runner.",
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Validation writes the new values into the instance: keep the old ones to compare.
        self._original = {name: getattr(self.instance, name) for name in EDITABLE_FIELDS}
        tz = zone(self.instance.timezone or "UTC")
        for name in self.LOCAL_DATETIMES:
            value = self.initial.get(name)
            if isinstance(value, datetime):
                self.initial[name] = value.astimezone(tz).replace(tzinfo=None)

    def clean(self) -> dict[str, Any]:
        data = self.cleaned_data
        try:
            tz = zone(data.get("timezone") or "UTC")
        except InvalidTimezone:
            tz = None  # the base form reports the timezone
        for name in self.LOCAL_DATETIMES:
            value = data.get(name)
            if tz is not None and isinstance(value, datetime):
                data[name] = value.replace(tzinfo=None).replace(tzinfo=tz)
        for name in ("account_filter", "metadata"):
            if name in data and data[name] is None:
                data[name] = {}
        return super().clean()

    def changes(self) -> dict[str, Any]:
        """The fields whose value differs from the review's. Date-times are compared to
        the minute, the precision of the browser's input."""
        changes = {}
        for name in EDITABLE_FIELDS:
            if name not in self.cleaned_data:
                continue
            new, old = self.cleaned_data[name], self._original[name]
            if isinstance(new, datetime) and isinstance(old, datetime):
                old = old.replace(second=0, microsecond=0)
                new = new.replace(second=0, microsecond=0)
                if new == old:
                    continue
            if new != old:
                changes[name] = self.cleaned_data[name]
        if "timezone" in changes:  # the same wall time now means another instant
            for name in self.LOCAL_DATETIMES:
                if self.cleaned_data.get(name) is not None:
                    changes[name] = self.cleaned_data[name]
        return changes
