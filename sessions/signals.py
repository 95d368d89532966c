"""Signals other apps use to follow sessions without the sessions app knowing them.

``session_transitioned`` is sent inside the transaction of every lifecycle transition
(after the row and its audit event are written) with ``session_id``, ``action``,
``previous`` and ``status`` (the new status) and ``actor``. Receivers that start work
elsewhere must do so with ``transaction.on_commit``.
"""

from django.dispatch import Signal

session_transitioned = Signal()
