"""Session owners: what else must move when a session moves through its lifecycle.

A scheduled run owns its session: resuming the session hands the run's batches out
again, recovering it takes back the batches of a dead worker, ending it closes the run.
The sessions app knows no such owner by name; the project lists them in
``SERGAS_SESSIONS["OWNERS"]`` (dotted paths, Django's backend pattern), and every
lifecycle transition calls each of them explicitly, in the lock order
(``kernel.locking``):

1. ``lock_ahead(session_id)`` before the session's row is locked: the owner locks the
   rows that come before a session in the order (a run's review); ``lock_ahead_many``
   before a bulk transition (``sessions.services.bulk``);
2. the session row is locked and the transition saved with its audit event;
3. ``follow(session, action, previous=..., actor=...)`` in the same transaction: the
   owner changes the rows that come after a session (the run, its batches), each with
   its own audit event.

So a session change and its run's change commit together, and no code path locks a run
or a batch before the session. (This replaces a signal whose receiver called back into
scheduling from inside the session's transaction, in no stated order.)
"""

from functools import cache

from django.utils.module_loading import import_string

from sessions import conf
from sessions.models import AgentSession
from sessions.transitions import SessionAction


class SessionOwner:
    """Base class of session owners (``SERGAS_SESSIONS["OWNERS"]``).

    ``lock_ahead`` must lock only rows earlier in the lock order than a session, and
    return quickly for sessions it does not own. ``follow`` runs inside the transition's
    transaction, after the session row was saved: it may lock only rows later in the
    order, must record an audit event for what it changes, and must start work elsewhere
    (Celery messages) only with ``transaction.on_commit``. Raising aborts the transition.
    """

    def lock_ahead(self, session_id: str) -> None:
        return None

    def lock_ahead_many(self, session_ids: list[str]) -> None:
        """``lock_ahead`` for a bulk transition of ``session_ids`` (sorted): the rows
        before them, in a deterministic order. Override to do it in a few statements."""
        for session_id in session_ids:
            self.lock_ahead(session_id)

    def follow(
        self, session: AgentSession, action: SessionAction, *, previous: str, actor: str
    ) -> None:
        raise NotImplementedError


@cache
def _owners(paths: tuple[str, ...]) -> tuple[SessionOwner, ...]:
    return tuple(import_string(path)() for path in paths)


def session_owners() -> tuple[SessionOwner, ...]:
    return _owners(tuple(conf.owner_paths()))
