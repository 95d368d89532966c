"""Approvals on the dashboard: the overview's live "Needs a decision" panel and an
operator's decision (a POST from the panel or the session page)."""

import uuid

from django import forms
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from access.staff import staff_actor_of
from dashboard import conf
from dashboard.access import CONTROL_SESSIONS, VIEW_SESSIONS, staff_view
from dashboard.controls import perform
from sessions import services
from sessions.selectors import approval_get, approvals_open

OPEN_SHOWN = 20


class DecisionForm(forms.Form):
    """The button pressed: ``decision`` (approve with that option) or ``reject``; and a
    comment. (Rejecting is a field of its own: any text may be an option.)"""

    decision = forms.CharField(required=False, max_length=200)
    reject = forms.BooleanField(required=False)
    comment = forms.CharField(required=False, max_length=4000)

    def clean(self) -> dict[str, object]:
        cleaned = super().clean() or {}
        if not cleaned.get("reject") and not cleaned.get("decision"):
            raise forms.ValidationError("Choose an option, or reject.")
        return cleaned


def open_approvals_context(request: HttpRequest) -> dict[str, object]:
    shown, total = approvals_open(limit=OPEN_SHOWN)
    return {
        "open_approvals": shown,
        "open_approvals_count": total,
        "can_decide": request.user.has_perm(CONTROL_SESSIONS),
        "refresh_seconds": conf.refresh_seconds(),
    }


@staff_view(VIEW_SESSIONS)
def open_approvals_fragment(request: HttpRequest) -> HttpResponse:
    """The overview's "Needs a decision" panel, polled by htmx."""
    return render(request, "dashboard/_open_approvals.html", open_approvals_context(request))


@require_POST
@staff_view(CONTROL_SESSIONS)
def approval_decide(request: HttpRequest, approval_id: uuid.UUID) -> HttpResponse:
    """Approve with the option chosen, or reject; then back to the session's page."""
    approval = approval_get(approval_id)
    if approval is None:
        raise Http404(f"Approval {approval_id} does not exist.")
    form = DecisionForm(request.POST)
    if not form.is_valid():
        messages.error(request, " ".join(form.errors.get("__all__", ["Invalid decision."])))
    else:
        decision = form.cleaned_data["decision"]
        comment = form.cleaned_data["comment"]
        actor = staff_actor_of(request, CONTROL_SESSIONS)
        if form.cleaned_data["reject"]:
            perform(
                request,
                lambda: services.approval_reject(approval_id, comment=comment, actor=actor),
                success=f"Rejected: {approval.question[:80]}",
            )
        else:
            perform(
                request,
                lambda: services.approval_approve(
                    approval_id, decision=decision, comment=comment, actor=actor
                ),
                success=f"Approved with “{decision}”: {approval.question[:80]}",
            )
    if request.POST.get("next") == "overview":
        return redirect("dashboard:overview")
    return redirect("dashboard:session", session_id=approval.session_id)
