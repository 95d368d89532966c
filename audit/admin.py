from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from audit.models import AuditArchive, AuditEventRecord, AuditSeal, WitnessStatus
from kernel.admin import ReadOnlyModelAdmin as ReadOnlyAdmin  # the database refuses edits too


@admin.register(AuditEventRecord)
class AuditEventRecordAdmin(ReadOnlyAdmin):
    """The audit trail."""

    list_display = ["timestamp", "event_type", "action", "actor", "resource", "session_id"]
    list_filter = ["event_type", "action"]
    search_fields = ["=session_id", "=actor", "=resource"]
    date_hierarchy = "timestamp"
    show_full_result_count = False
    exclude = ["content_hash"]

    def get_readonly_fields(self, request: HttpRequest, obj: object = None) -> list[str]:
        fields = [f for f in super().get_readonly_fields(request, obj) if f != "content_hash"]
        return [*fields, "content_hash_hex"]

    @admin.display(description="content hash (sha256)")
    def content_hash_hex(self, record: AuditEventRecord) -> str:
        return bytes(record.content_hash).hex()


@admin.register(AuditSeal)
class AuditSealAdmin(ReadOnlyAdmin):
    """The seal chain: each seal lists the events of a range of transactions."""

    list_display = [
        "number",
        "sealed_at",
        "event_count",
        "first_timestamp",
        "last_timestamp",
        "key_id",
    ]
    list_filter = ["sealed_at", "key_id"]
    search_fields = ["=number"]
    date_hierarchy = "sealed_at"
    show_full_result_count = False
    exclude = ["previous_hash", "hash", "members_digest", "members", "merkle_root", "signature"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[AuditSeal]:
        return super().get_queryset(request).defer("members")

    def get_readonly_fields(self, request: HttpRequest, obj: object = None) -> list[str]:
        hidden = set(self.exclude)
        fields = [f for f in super().get_readonly_fields(request, obj) if f not in hidden]
        return [*fields, "hash_hex", "previous_hash_hex", "merkle_root_hex"]

    @admin.display(description="hash (sha256)")
    def hash_hex(self, seal: AuditSeal) -> str:
        return bytes(seal.hash).hex()

    @admin.display(description="previous seal's hash")
    def previous_hash_hex(self, seal: AuditSeal) -> str:
        return bytes(seal.previous_hash).hex()

    @admin.display(description="Merkle root")
    def merkle_root_hex(self, seal: AuditSeal) -> str:
        return bytes(seal.merkle_root).hex() if seal.merkle_root is not None else ""


@admin.register(AuditArchive)
class AuditArchiveAdmin(ReadOnlyAdmin):
    """Partitions retention archived and dropped, and where their archives are."""

    list_display = ["partition", "event_count", "path", "dropped_at"]
    list_filter = ["dropped_at"]
    search_fields = ["partition", "sha256"]


@admin.register(WitnessStatus)
class WitnessStatusAdmin(ReadOnlyAdmin):
    """How far each witness holds the signed seal heads (kept by the publisher)."""

    list_display = ["name", "published_seal", "failures", "last_success_at", "last_attempt_at"]
    list_filter = ["failures"]
    search_fields = ["name"]
