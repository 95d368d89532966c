import functools

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from access.staff import apply_as_staff
from kernel.admin import ActionsOnlyModelAdmin, ReadOnlyModelAdmin
from sessions import services
from sessions.models import (
    BULKY_COLUMNS,
    STATE_COLUMNS,
    AgentSession,
    SessionAccount,
    SessionAccountList,
    SessionApproval,
    SessionCheckpoint,
    SessionProgress,
    SessionTimes,
)

CHANGE_SESSIONS = "agent_sessions.change_agentsession"


# Each action runs its service per selected row as the staff member (access.staff).
_apply = functools.partial(apply_as_staff, permission=CHANGE_SESSIONS, noun="session(s)")


@admin.action(description="Pause selected sessions", permissions=["change"])
def pause_sessions(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet) -> None:
    _apply(modeladmin, request, queryset, "Paused", services.session_pause)


@admin.action(description="Resume selected sessions", permissions=["change"])
def resume_sessions(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet) -> None:
    _apply(modeladmin, request, queryset, "Resumed", services.session_resume)


@admin.action(description="Cancel selected sessions", permissions=["change"])
def cancel_sessions(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet) -> None:
    _apply(modeladmin, request, queryset, "Cancelled", services.session_cancel)


@admin.action(
    description="Recover selected sessions from their last checkpoint", permissions=["change"]
)
def recover_sessions(
    modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet
) -> None:
    _apply(modeladmin, request, queryset, "Recovered", services.session_recover)


class SessionCheckpointInline(admin.TabularInline):
    model = SessionCheckpoint
    fields = ["sequence", "status", "size_bytes", "created_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = False
    ordering = ["-sequence"]

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(SessionAccount)
class SessionAccountAdmin(ReadOnlyModelAdmin):
    """Which sessions review which account (kept by the session services)."""

    list_display = ["account_id", "session"]
    list_filter = ["session__status"]
    search_fields = ["=account_id", "=session__session_id"]
    list_select_related = ["session"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[SessionAccount]:
        return super().get_queryset(request).defer(*(f"session__{name}" for name in BULKY_COLUMNS))


class _SessionStateRowAdmin(ReadOnlyModelAdmin):
    """Rows of a session's state kept beside its row (docs/architecture.md, "Session
    state"), read-only: written by the session services, composed by the reads."""

    list_display = ["session", "sequence"]
    list_filter = ["session__status"]
    search_fields = ["=session__session_id"]
    list_select_related = ["session"]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).defer(*(f"session__{name}" for name in BULKY_COLUMNS))


admin.site.register(SessionProgress, _SessionStateRowAdmin)
admin.site.register(SessionTimes, _SessionStateRowAdmin)
admin.site.register(SessionAccountList, _SessionStateRowAdmin)


@admin.register(SessionApproval)
class SessionApprovalAdmin(ReadOnlyModelAdmin):
    """Agents' questions to staff, read-only: decided on the dashboard ("Needs a
    decision") through ``sessions.services``, each decision with its audit event."""

    list_display = ["question", "session", "status", "decision", "decided_by", "requested_at"]
    list_filter = ["status", "requested_at"]
    search_fields = ["=id", "=session__session_id", "question", "decided_by"]
    list_select_related = ["session"]
    date_hierarchy = "requested_at"

    def get_queryset(self, request: HttpRequest) -> QuerySet[SessionApproval]:
        return super().get_queryset(request).defer(*(f"session__{name}" for name in BULKY_COLUMNS))


@admin.register(SessionCheckpoint)
class SessionCheckpointAdmin(ReadOnlyModelAdmin):
    """Checkpoints, read-only: written by ``session_checkpoint``, restored by recovery."""

    list_display = ["session", "sequence", "status", "size_bytes", "created_at"]
    list_filter = ["status", "created_at"]
    search_fields = ["=session__session_id"]
    list_select_related = ["session"]
    date_hierarchy = "created_at"

    def get_queryset(self, request: HttpRequest) -> QuerySet[SessionCheckpoint]:
        # A context may be a megabyte: loaded only when a checkpoint's page shows it.
        return (
            super()
            .get_queryset(request)
            .defer(*STATE_COLUMNS, *(f"session__{name}" for name in BULKY_COLUMNS))
        )


@admin.register(AgentSession)
class AgentSessionAdmin(ActionsOnlyModelAdmin):
    """Sessions change only through the services (the actions), never by form edits."""

    list_display = [
        "session_id",
        "status",
        "session_type",
        "orchestrator_id",
        "owner_id",
        "created_at",
        "updated_at",
        "version",
    ]
    list_filter = ["status", "session_type", "created_at"]
    search_fields = ["=session_id", "=orchestrator_id", "=owner_id"]
    date_hierarchy = "created_at"
    # The composed context and metrics stand in for the row's own JSON fields.
    readonly_fields = [
        *(field.name for field in AgentSession._meta.fields if field.name not in STATE_COLUMNS),
        "context",
        "metrics",
        "audit_trail",
    ]
    actions = [pause_sessions, resume_sessions, cancel_sessions, recover_sessions]
    inlines = [SessionCheckpointInline]
    show_full_result_count = False

    @admin.display(description="Audit trail")
    def audit_trail(self, obj: AgentSession) -> str:
        url = reverse("api:download_audit_trail", kwargs={"session_id": obj.session_id})
        return format_html('<a href="{}">Download as JSON Lines</a>', url)
