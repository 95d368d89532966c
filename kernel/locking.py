"""The one order in which rows are locked, written down once and checked.

Two transactions that lock the same rows in opposite orders deadlock. Every service
therefore locks rows in this order (docs/architecture.md, "Lock order"):

    review -> session -> run -> batch -> approval

A review is locked first (``FOR KEY SHARE`` by the paths that may finish a run, since
finishing inserts the retry and stamps ``last_run_at``; ``FOR NO KEY UPDATE`` by the
review's own services), then the session, then its run, then the run's batches. A
service that already holds a row lower in the order never goes back for one higher up.

Each locking helper reports what it locked with ``rows_locked``. With
``SERGAS_CHECK_LOCK_ORDER`` on (the test settings, and ``DEBUG``), taking a lock that
comes earlier in the order than one the transaction already holds raises
``LockOrderViolation`` at once, instead of deadlocking one day in production. Rows the
transaction created itself (``created=True``) are nobody else's yet and may be locked
in any order.
"""

from collections.abc import Iterable
from enum import IntEnum
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections


class LockRank(IntEnum):
    REVIEW = 10
    SESSION = 20
    RUN = 30
    BATCH = 40
    # A session's approvals: locked after the session (a decision, its cancellation when
    # the session ends, after the run and batches that ending closes).
    APPROVAL = 50


class LockOrderViolation(AssertionError):
    """A lock was requested against the documented order (a deadlock waiting to happen)."""


def checking() -> bool:
    return bool(getattr(settings, "SERGAS_CHECK_LOCK_ORDER", settings.DEBUG))


class _Held:
    """The locks one transaction holds, by rank. ``key`` identifies the transaction: the
    savepoint of its outermost block when a test case wraps it in atomic blocks of its
    own, else this object itself, registered as an on-commit hook that Django drops when
    the transaction commits or rolls back (so a missing hook means a new transaction)."""

    def __init__(self, key: object) -> None:
        self.key = key
        self.rows: dict[LockRank, set[object]] = {}

    def __call__(self) -> None:  # the on-commit marker does nothing
        return None


def rows_locked(
    rank: LockRank, keys: Iterable[object], *, created: bool = False, using: str = DEFAULT_DB_ALIAS
) -> None:
    """Record that the current transaction locked these rows of ``rank``; raise
    ``LockOrderViolation`` if one of them comes before a lock already held."""
    if not checking():
        return
    connection = connections[using]
    if not connection.in_atomic_block:
        return  # one statement in autocommit holds its locks only while it runs
    held = _held(connection)
    keys = list(keys)
    new = [key for key in keys if key not in held.rows.get(rank, set())]
    if new and not created:
        later = [other for other, rows in held.rows.items() if other > rank and rows]
        if later:
            blocking = max(later)
            raise LockOrderViolation(
                f"{rank.name.lower()} {new[0]!r} is locked after {blocking.name.lower()} "
                f"{next(iter(held.rows[blocking]))!r}; the order is "
                f"{' -> '.join(r.name.lower() for r in LockRank)} (kernel.locking)"
            )
    held.rows.setdefault(rank, set()).update(new)


def _held(connection: Any) -> _Held:
    key = _transaction_key(connection)
    held: _Held | None = getattr(connection, "_sergas_locks_held", None)
    if (
        held is not None
        and held.key == key
        and (key is not None or any(hook[1] is held for hook in connection.run_on_commit))
    ):
        return held
    held = _Held(key)
    if key is None:
        connection.on_commit(held)
    connection._sergas_locks_held = held
    return held


def _transaction_key(connection: Any) -> object:
    """The savepoint that opened the service's transaction inside a test case's atomic
    blocks (Django marks those ``_from_testcase``), or None outside tests."""
    for index, block in enumerate(connection.atomic_blocks):
        if not getattr(block, "_from_testcase", False):
            return connection.savepoint_ids[index - 1] if index else None
    return None
