"""The lock order is enforced: a lock taken against it raises at once (kernel.locking)."""

import pytest
from django.db import transaction

from kernel.locking import LockOrderViolation, LockRank, rows_locked
from scheduling.services import _locks
from sessions import services as session_services
from tests.factories import make_session
from tests.scheduling.factories import make_review

pytestmark = pytest.mark.django_db


def test_locks_in_the_documented_order_pass():
    with transaction.atomic():
        rows_locked(LockRank.REVIEW, [1])
        rows_locked(LockRank.SESSION, ["s"])
        rows_locked(LockRank.RUN, ["r"])
        rows_locked(LockRank.BATCH, [1, 2])
        rows_locked(LockRank.SESSION, ["s"])  # held already: no new lock


def test_a_session_locked_after_a_batch_is_refused():
    with transaction.atomic():
        rows_locked(LockRank.BATCH, [1])
        with pytest.raises(LockOrderViolation, match="session 's' is locked after batch 1"):
            rows_locked(LockRank.SESSION, ["s"])


def test_rows_the_transaction_created_may_be_locked_in_any_order():
    with transaction.atomic():
        rows_locked(LockRank.RUN, ["r"])
        rows_locked(LockRank.SESSION, ["new"], created=True)
        rows_locked(LockRank.SESSION, ["new"])


def test_each_transaction_starts_with_no_locks():
    with transaction.atomic():
        rows_locked(LockRank.BATCH, [1])
    with transaction.atomic():
        rows_locked(LockRank.REVIEW, [1])


def test_a_service_that_locks_a_batch_then_its_session_is_caught():
    """The deadlock of the old batch record (batch, then session) is refused outright."""
    review = make_review()
    session = make_session("running")
    with transaction.atomic():
        _locks.review_lock_shared(review.pk)
        rows_locked(LockRank.BATCH, [1])
        with pytest.raises(LockOrderViolation):
            session_services.lock_session(session.session_id)


def test_the_check_is_off_unless_configured(settings):
    settings.SERGAS_CHECK_LOCK_ORDER = False
    with transaction.atomic():
        rows_locked(LockRank.BATCH, [1])
        rows_locked(LockRank.REVIEW, [1])
