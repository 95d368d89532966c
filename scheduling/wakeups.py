"""Waking agents that long-poll an empty work queue, with PostgreSQL LISTEN/NOTIFY.

Whatever makes a batch claimable (a run starts, a lease expires or is given back, a
session resumes) calls ``work_available(queue)`` inside its transaction: a
``pg_notify`` that PostgreSQL delivers when, and only if, that transaction commits.

Each web process listens on one connection of its own, in one daemon thread started on
the first long poll (after gunicorn forks). A notification bumps the queue's generation
and wakes the requests waiting on it, which then try to claim again. So an idle agent
learns of new work within milliseconds of the commit, and the database sees one claim
attempt per notification, not a poll per second per waiting agent.

If the listening connection breaks (PostgreSQL restarting), the thread reconnects with
a growing delay and, meanwhile, ``wait`` returns after at most
``WAKEUP_FALLBACK_SECONDS`` so that waiters look at the queue themselves; a
notification sent while nobody listened is not lost, as waiters look again on
reconnection too.
"""

import logging
import threading
import time
from collections import defaultdict
from typing import Any

from django.db import connection, connections

from scheduling import conf

logger = logging.getLogger(__name__)

CHANNEL = "sergas_work"


def work_available(queue: str) -> None:
    """Tell the waiters of ``queue`` that work is claimable once this transaction commits
    (PostgreSQL folds repeated notifications of one transaction into one)."""
    if not queue:
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_notify(%s, %s)", [CHANNEL, queue])


class WorkWakeups:
    """The queues' generations and the listener thread that bumps them."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._generations: dict[str, int] = defaultdict(int)
        self._listening = False
        self._stopping = False
        self._thread: threading.Thread | None = None

    @property
    def listening(self) -> bool:
        """Whether notifications reach this process now (the listener is connected)."""
        return self._listening

    def generation(self, queue: str) -> int:
        """The queue's generation now: read it before looking at the queue, then pass it
        to ``wait``, so a notification between the look and the wait is not missed."""
        self._ensure_listening()
        with self._condition:
            return self._generations[queue]

    def wait(self, queue: str, seen: int, timeout: float) -> bool:
        """Wait until the queue's generation passes ``seen`` or ``timeout`` elapses;
        True if woken by a notification."""
        deadline = time.monotonic() + max(0.0, timeout)
        with self._condition:
            while self._generations[queue] == seen:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                if not self._listening:
                    left = min(left, conf.wakeup_fallback_seconds())
                self._condition.wait(left)
                if not self._listening and self._generations[queue] == seen:
                    return False  # degraded: let the caller look at the queue itself
            return True

    def _bump(self, queues: set[str] | None) -> None:
        with self._condition:
            for queue in queues if queues is not None else list(self._generations):
                self._generations[queue] += 1
            self._condition.notify_all()

    def _ensure_listening(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        with self._condition:
            if self._thread is not None and self._thread.is_alive():
                return
            self._thread = threading.Thread(
                target=self._listen_forever, name="sergas-work-wakeups", daemon=True
            )
            self._thread.start()

    def stop(self) -> None:
        """Stop listening and close the connection (tests; a process exits without it)."""
        self._stopping = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._thread = None
        self._stopping = False

    def _listen_forever(self) -> None:
        delay = 0.5
        while not self._stopping:
            try:
                raw = _listening_connection()
            except Exception as exc:  # PostgreSQL away: retry, waiters fall back meanwhile
                logger.warning("Work wake-ups: cannot listen (%s); retrying in %.1f s", exc, delay)
                time.sleep(delay)
                delay = min(delay * 2, 10.0)
                continue
            delay = 0.5
            self._listening = True
            self._bump(None)  # anything sent while nobody listened: look again
            try:
                while not self._stopping:
                    # A timeout now and then lets the thread notice stop().
                    for notification in raw.notifies(timeout=1.0):
                        self._bump({notification.payload})
            except Exception as exc:
                logger.warning("Work wake-ups: the listening connection broke (%s)", exc)
            finally:
                self._listening = False
                self._bump(None)
                try:
                    raw.close()
                except Exception:  # already broken
                    logger.debug("closing the broken listening connection failed", exc_info=True)


def _listening_connection() -> Any:
    """A psycopg connection of its own (not Django's: it must stay in autocommit and
    outlive requests), configured like Django's, listening on the channel."""
    wrapper = connections["default"]
    raw = wrapper.get_new_connection(wrapper.get_connection_params())
    raw.autocommit = True
    raw.execute(f"LISTEN {CHANNEL}")
    return raw


_wakeups = WorkWakeups()


def wakeups() -> WorkWakeups:
    return _wakeups
