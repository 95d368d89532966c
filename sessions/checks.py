"""System checks of the sessions app: the session owners it calls on every transition."""

from typing import Any

from django.core.checks import CheckMessage, register

from kernel.plugins import plugin_problems
from sessions import conf


@register()
def check_session_owners(app_configs: Any, **kwargs: Any) -> list[CheckMessage]:
    """Each of ``SERGAS_SESSIONS["OWNERS"]`` names a ``SessionOwner``."""
    from sessions.owners import SessionOwner

    problems: list[CheckMessage] = []
    for path in conf.owner_paths():
        problems += plugin_problems(
            path,
            SessionOwner,
            setting='SERGAS_SESSIONS["OWNERS"]',
            import_id="sergas.E005",
            subclass_id="sergas.E006",
            hint="Each a subclass of sessions.owners.SessionOwner (docs/architecture.md).",
        )[1]
    return problems
