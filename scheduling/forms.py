"""The review form of the admin and the dashboard: the same validation as the services
and the API (``review_validate``), reported on the field it concerns."""

from typing import Any

from django import forms
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.forms.models import model_to_dict

from scheduling import services
from scheduling.exceptions import InvalidSchedule
from scheduling.models import WORKER_EXECUTOR, ScheduledReview


class ScheduledReviewForm(forms.ModelForm):
    class Meta:
        model = ScheduledReview
        fields = list(services.EDITABLE_FIELDS)
        help_texts = {
            "executor": '"worker": the in-process runner; "queue:<name>": agents take the '
            "batches from that work queue over the API.",
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["executor"].required = False  # left empty: the in-process runner

    def clean_executor(self) -> str:
        return (self.cleaned_data.get("executor") or "").strip() or WORKER_EXECUTOR

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        candidate = ScheduledReview(
            **{**model_to_dict(self.instance, fields=self.Meta.fields), **cleaned}
        )
        try:
            services.review_validate(candidate)
        except InvalidSchedule as exc:
            field = exc.field if exc.field in self.fields else NON_FIELD_ERRORS
            raise ValidationError({field: exc.detail}) from None
        return cleaned

    def changes(self) -> dict[str, Any]:
        """The fields the person changed, for ``review_update``."""
        return {name: self.cleaned_data[name] for name in self.changed_data}

    def fields_to_create(self) -> dict[str, Any]:
        """Every editable field given, for ``review_create``."""
        return {
            name: self.cleaned_data[name]
            for name in services.EDITABLE_FIELDS
            if name in self.cleaned_data
        }
