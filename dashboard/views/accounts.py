from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from dashboard.access import VIEW_REVIEWS, VIEW_SESSIONS, staff_view
from dashboard.forms import ResultFilterForm
from dashboard.paging import filtered_page, has_filters
from scheduling.selectors import account_history_page
from sessions.selectors import sessions_list

SESSIONS_SHOWN = 10


@staff_view(VIEW_REVIEWS)
def account_detail(request: HttpRequest, account_id: str) -> HttpResponse:
    """One account's results across runs, newest first, and the sessions that reviewed
    it. Accounts live in the CRM: an id no run has seen is an empty history, not a 404."""
    form = ResultFilterForm(request.GET)
    history = filtered_page(request, form, account_history_page, account_id)
    sessions = None
    if request.user.has_perm(VIEW_SESSIONS):
        sessions = sessions_list(account_id=account_id, limit=SESSIONS_SHOWN)
    return render(
        request,
        "dashboard/account_detail.html",
        {
            "account_id": account_id,
            "form": form,
            "history": history,
            "filtered": has_filters(form.data),
            "sessions": sessions,
        },
    )
