"""``ReviewScheduler``: django-celery-beat's DatabaseScheduler plus the review dispatcher,
with one active beat at a time.

- Reviews are dispatched in bulk from ``ScheduledReview.next_run_at``
  (``reviews_dispatch_due``), not one beat entry at a time: the stock scheduler walks
  its entries one per tick, which for thousands of reviews due at 09:00 spreads the
  sends over minutes. Review PeriodicTasks are therefore left out of the stock heap;
  every other PeriodicTask (stale-session detection, partition maintenance, ...) runs
  exactly as with the stock scheduler.
- The tick sleeps until the next review is due (at most ``DISPATCH_POLL_SECONDS``), so
  runs go out within a fraction of a second of their time.
- Leadership: each beat holds a PostgreSQL session-level advisory lock on a connection
  of its own. A second beat cannot take it and stands by, trying again every
  ``BEAT_STANDBY_POLL_SECONDS``; when the active beat dies its connection closes,
  PostgreSQL releases the lock and the standby takes over. A leader cut off by the
  network is noticed by keepalive probes the connection asks the server for, in
  ``keepalives_idle + keepalives_interval x keepalives_count`` (60 s by default). A beat
  that loses its connection stops dispatching until it holds the lock again.
- A broker that lost its messages (Redis restarted without persistence) is noticed by a
  marker key that vanished with them: the runs waiting on those messages are sent again
  (``runs_resend_after_broker_loss``).
"""

import contextlib
import logging
import signal
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any

import psycopg
from django.db import close_old_connections
from django_celery_beat.schedulers import DatabaseScheduler

from scheduling import conf
from scheduling.publishing import broker_marker_missing, broker_marker_set
from scheduling.services import (
    executions_publish,
    reviews_dispatch_due,
    runs_resend_after_broker_loss,
    seconds_until_next_due,
)
from scheduling.services.sync import FIRE_TASK

logger = logging.getLogger(__name__)


# libpq's keepalive parameters and the server settings that make PostgreSQL probe too.
_SERVER_KEEPALIVES = {
    "keepalives_idle": "tcp_keepalives_idle",
    "keepalives_interval": "tcp_keepalives_interval",
    "keepalives_count": "tcp_keepalives_count",
}
_PASSED_ON = {"host", "connect_timeout", "keepalives", "tcp_user_timeout", *_SERVER_KEEPALIVES}


def leadership_connection_options(options: dict[str, Any]) -> dict[str, Any]:
    """libpq parameters of the leadership connection, from the database's ``OPTIONS``.

    A leader cut off by the network (rather than dead) leaves its connection half-open,
    and PostgreSQL frees the lock only once it notices the client is gone: with the
    server's default keepalives (the kernel's, two hours on Linux) the standby would wait
    that long. So the connection asks the server to probe it with the client's keepalive
    settings (``tcp_keepalives_*``, settable per connection): the lock is freed
    ``keepalives_idle + keepalives_interval x keepalives_count`` seconds after the leader
    fell silent. ``tcp_user_timeout`` (the same bound unless set) makes a cut-off leader
    waiting for an answer give up too; keepalives do not cover a query in flight.
    Both sides ignore these on unix sockets.
    """
    params = {name: value for name, value in options.items() if name in _PASSED_ON}
    if not int(options.get("keepalives", 1)) or not all(
        name in options for name in _SERVER_KEEPALIVES
    ):
        return params
    params["options"] = " ".join(
        f"-c {setting}={int(options[name])}" for name, setting in _SERVER_KEEPALIVES.items()
    )
    silence = int(options["keepalives_idle"]) + int(options["keepalives_interval"]) * int(
        options["keepalives_count"]
    )
    params.setdefault("tcp_user_timeout", silence * 1000)
    return params


class BeatLeadership:
    """A PostgreSQL advisory lock held on a dedicated connection."""

    def __init__(self, key: int) -> None:
        self.key = key
        self._connection: psycopg.Connection | None = None
        # Why the last hold() failed: another beat holds the lock (True) or the database
        # could not be asked (False).
        self.refused = False

    def _connect(self) -> psycopg.Connection:
        db = conf.leadership_database()
        params: dict[str, Any] = {
            "dbname": db["NAME"],
            "user": db.get("USER") or None,
            "password": db.get("PASSWORD") or None,
            "host": db.get("HOST") or None,
            "port": db.get("PORT") or None,
            "autocommit": True,
            "application_name": "sergas-beat-leader",
        }
        params.update(leadership_connection_options(db.get("OPTIONS", {})))
        return psycopg.connect(**{k: v for k, v in params.items() if v is not None})

    def hold(self) -> bool:
        """True while this process holds the lock (acquiring it if free)."""
        try:
            if self._connection is not None and not self._connection.closed:
                self._connection.execute("SELECT 1")
                return True
            self._connection = self._connect()
            acquired = self._connection.execute(
                "SELECT pg_try_advisory_lock(%s)", [self.key]
            ).fetchone()[0]
        except psycopg.Error as exc:
            logger.warning("Beat leadership: database unavailable (%s); standing by", exc)
            self.release()
            self.refused = False
            return False
        if acquired:
            logger.info("Beat leadership acquired (advisory lock %s): dispatching", self.key)
            return True
        self.release()
        self.refused = True
        return False

    def release(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(psycopg.Error):
                self._connection.close()
        self._connection = None


@contextlib.contextmanager
def shutdown_signals_held() -> Iterator[list[int]]:
    """Hold SIGTERM and SIGINT for the duration; yields the list of those received.

    Only the main thread may set handlers (an embedded ``worker -B`` beat runs in a thread
    of its own): elsewhere this holds nothing.
    """
    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield received
        return

    def _hold(signum: int, _frame: FrameType | None) -> None:
        received.append(signum)

    previous = {signum: signal.signal(signum, _hold) for signum in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield received
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


class ReviewScheduler(DatabaseScheduler):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.leadership = BeatLeadership(conf.beat_lock_key())
        self._leading: bool | None = None  # None until the first tick decides
        self._refused = False  # the last tick found another beat leading
        # Celery's SIGTERM handler closes the scheduler, and builds it a second time when the
        # signal lands while this one is being built: a query runs inside another on the
        # same connection, the stock code logs the error, the SystemExit is lost and beat
        # runs on until a SIGKILL. Hold the signal until the build ends, then exit: nothing
        # has been dispatched, so there is nothing to save.
        with shutdown_signals_held() as received:
            super().__init__(*args, **kwargs)
        if received:
            logger.info("Beat stopped by %s while starting", signal.Signals(received[0]).name)
            raise SystemExit(0)

    def enabled_models_qs(self) -> Any:
        # Reviews are dispatched in bulk by tick(); keep them out of the stock heap.
        return super().enabled_models_qs().exclude(task=FIRE_TASK)

    def tick(self, *args: Any, **kwargs: Any) -> float:
        if not self.leadership.hold():
            # Said once per standby, also by a beat back from a database it could not reach
            # (its network was cut) that finds another beat has taken over meanwhile.
            if self.leadership.refused and not self._refused:
                logger.warning(
                    "Beat standing by: another beat holds advisory lock %s", self.leadership.key
                )
            self._leading, self._refused = False, self.leadership.refused
            return conf.beat_standby_poll_seconds()
        self._refused = False
        if not self._leading:
            self._leading = True
            self._heap = None  # rebuild the stock heap from the database on taking over
        close_old_connections()
        poll = conf.dispatch_poll_seconds()
        try:
            if broker_marker_missing():  # Redis restarted empty: send again what it held
                runs_resend_after_broker_loss()
                broker_marker_set()
            reviews_dispatch_due()
            executions_publish()
            wait = seconds_until_next_due()
        except Exception:
            # The dispatcher must outlive a database or broker outage: log and retry.
            logger.exception("Review dispatch failed; retrying in %.1f s", poll)
            close_old_connections()
            wait = poll
        stock_wait = super().tick(*args, **kwargs)
        candidates = [poll, stock_wait] + ([wait] if wait is not None else [])
        return max(0.0, min(candidates))

    def close(self) -> None:
        self.leadership.release()
        super().close()
