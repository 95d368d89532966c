"""What the apps' admins share."""

from collections.abc import Callable

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from kernel.errors import DomainError


class ReadOnlyModelAdmin(admin.ModelAdmin):
    """Records the services write and nobody edits (history, checkpoints, stored
    answers): browsable with the ``view`` permission, never added, changed or deleted."""

    show_full_result_count = False

    def get_readonly_fields(self, request: HttpRequest, obj: object = None) -> list[str]:
        return [field.name for field in self.model._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class ActionsOnlyModelAdmin(admin.ModelAdmin):
    """Rows changed only by admin actions calling services (sessions, tokens): listed and
    browsable, never added, edited in a form or deleted. The actions need "change" on
    the list; an object's form never saves."""

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return obj is None and super().has_change_permission(request)

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


def apply_each(
    modeladmin: admin.ModelAdmin,
    request: HttpRequest,
    queryset: QuerySet,
    action: Callable[..., object],
    *,
    actor: Callable[[], str],
    done: str,
) -> None:
    """An admin action through a service: ``action(pk, actor=...)`` for each selected row.
    ``actor()`` is asked once, first; if it refuses, that is an error message and nothing
    runs. Then ``done`` (formatted with how many succeeded) is a success message, and each
    refusal of the service a warning naming its reason."""
    try:
        who = actor()
    except DomainError as exc:
        modeladmin.message_user(request, exc.detail, messages.ERROR)
        return
    succeeded, refused = 0, []
    for pk in queryset.values_list("pk", flat=True):
        try:
            action(pk, actor=who)
            succeeded += 1
        except DomainError as exc:
            refused.append(exc.detail)
    if succeeded:
        modeladmin.message_user(request, done.format(succeeded), messages.SUCCESS)
    for detail in refused:
        modeladmin.message_user(request, detail, messages.WARNING)
