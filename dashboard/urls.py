from django.urls import path

from dashboard.views import accounts, approvals, audit, overview, runs, schedules, sessions

app_name = "dashboard"

urlpatterns = [
    path("", overview.overview, name="overview"),
    path("live/active-sessions", overview.active_sessions_fragment, name="active_sessions"),
    path("live/open-approvals", approvals.open_approvals_fragment, name="open_approvals"),
    path("approvals/<uuid:approval_id>/decide", approvals.approval_decide, name="approval_decide"),
    path("sessions/", sessions.session_list, name="sessions"),
    path("sessions/<str:session_id>/", sessions.session_detail, name="session"),
    path(
        "sessions/<str:session_id>/progress",
        sessions.session_progress_fragment,
        name="session_progress",
    ),
    path(
        "sessions/<str:session_id>/spans/<str:trace_id>/<str:span_id>",
        sessions.session_span_fragment,
        name="session_span",
    ),
    path(
        "sessions/<str:session_id>/<slug:action>",
        sessions.session_control,
        name="session_control",
    ),
    path("schedules/", schedules.schedule_list, name="schedules"),
    path("schedules/new", schedules.schedule_create, name="schedule_new"),
    path("schedules/<int:review_id>/", schedules.schedule_detail, name="schedule"),
    path("schedules/<int:review_id>/runs", schedules.schedule_runs_fragment, name="schedule_runs"),
    path("schedules/<int:review_id>/edit", schedules.schedule_edit, name="schedule_edit"),
    path(
        "schedules/<int:review_id>/<slug:action>",
        schedules.schedule_control,
        name="schedule_control",
    ),
    path("runs/<uuid:execution_id>/", runs.run_detail, name="run"),
    path("runs/<uuid:execution_id>/progress", runs.run_progress_fragment, name="run_progress"),
    path(
        "runs/<uuid:execution_id>/results.csv",
        runs.run_results_export,
        name="run_results_csv",
    ),
    path("accounts/<str:account_id>/", accounts.account_detail, name="account"),
    path("audit/", audit.audit_explorer, name="audit"),
    path("audit/export.<slug:fmt>", audit.audit_export, name="audit_export"),
    path(
        "audit/events/<uuid:event_id>/proof.json",
        audit.audit_event_proof_download,
        name="audit_event_proof",
    ),
]
