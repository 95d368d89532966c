"""The scheduling app as a session owner (``SERGAS_SESSIONS["OWNERS"]``): a run owns
its session, and moves with it (``scheduling.services.run_sessions``)."""

from sessions.models import AgentSession
from sessions.owners import SessionOwner
from sessions.transitions import SessionAction


class ScheduledRunOwner(SessionOwner):
    def lock_ahead(self, session_id: str) -> None:
        from scheduling.services import run_of_session_lock_ahead

        run_of_session_lock_ahead(session_id)

    def lock_ahead_many(self, session_ids: list[str]) -> None:
        from scheduling.services import runs_of_sessions_lock_ahead

        runs_of_sessions_lock_ahead(session_ids)

    def follow(
        self, session: AgentSession, action: SessionAction, *, previous: str, actor: str
    ) -> None:
        from scheduling.services import run_follow_session

        run_follow_session(session, action, actor=actor)
