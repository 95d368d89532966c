from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from access.addresses import client_address
from access.models import AgentToken, IdempotencyRecord
from access.services import agent_token_revoke, staff_actor
from kernel.admin import ReadOnlyModelAdmin


@admin.action(description="Revoke selected tokens", permissions=["change"])
def revoke_tokens(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet) -> None:
    actor = staff_actor(
        request.user,
        "agents.change_agenttoken",
        path=request.path,
        remote_addr=client_address(request),
    )
    prefixes = list(queryset.filter(revoked_at__isnull=True).values_list("prefix", flat=True))
    for prefix in prefixes:
        agent_token_revoke(prefix, actor=actor)
    modeladmin.message_user(request, f"Revoked {len(prefixes)} token(s).", messages.SUCCESS)


@admin.register(AgentToken)
class AgentTokenAdmin(admin.ModelAdmin):
    """Tokens are issued by ``manage.py create_agent_token`` (the secret is shown once)
    and revoked here or by ``revoke_agent_token``; never edited or deleted."""

    list_display = [
        "name",
        "prefix",
        "scopes",
        "own_sessions_only",
        "queues",
        "created_at",
        "last_used_at",
        "revoked_at",
    ]
    list_filter = ["revoked_at", "own_sessions_only"]
    search_fields = ["=name", "=prefix"]
    readonly_fields = [f.name for f in AgentToken._meta.fields if f.name != "secret_hash"]
    exclude = ["secret_hash"]
    actions = [revoke_tokens]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return obj is None and super().has_change_permission(request)

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(IdempotencyRecord)
class IdempotencyRecordAdmin(ReadOnlyModelAdmin):
    """Stored answers of ``Idempotency-Key`` requests, read-only; pruned by beat."""

    list_display = ["key", "token", "status_code", "created_at"]
    list_filter = ["status_code", "created_at"]
    search_fields = ["=key", "=token__prefix", "=token__name"]
    list_select_related = ["token"]
    date_hierarchy = "created_at"
