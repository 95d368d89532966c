"""Following the sessions of scheduled runs (connected in ``SchedulingConfig.ready``)."""

from typing import Any

from sessions.models import TERMINAL_STATUSES
from sessions.transitions import SessionAction


def follow_run_session(
    sender: object,
    *,
    session_id: str,
    action: SessionAction,
    status: str,
    actor: str,
    **kwargs: Any,
) -> None:
    """Resume, recovery or an outside end of a session moves its scheduled run along."""
    from scheduling.services import execution_continue, execution_end_with_session

    if action is SessionAction.RESUME:
        execution_continue(session_id, takeover=False, actor=actor)
    elif action is SessionAction.RECOVER:
        execution_continue(session_id, takeover=True, actor=actor)
    elif status in TERMINAL_STATUSES:
        execution_end_with_session(session_id, status, actor=actor)
