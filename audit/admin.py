from django.contrib import admin
from django.http import HttpRequest

from audit.models import AuditEventRecord


@admin.register(AuditEventRecord)
class AuditEventRecordAdmin(admin.ModelAdmin):
    """The audit trail, read-only: no add, change or delete, whatever the user's rights."""

    list_display = ["timestamp", "event_type", "action", "actor", "resource", "session_id"]
    list_filter = ["event_type", "action"]
    search_fields = ["=session_id", "=actor", "=resource"]
    date_hierarchy = "timestamp"
    show_full_result_count = False
    readonly_fields = [field.name for field in AuditEventRecord._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False
