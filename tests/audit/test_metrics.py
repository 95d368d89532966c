"""The audit trail's metrics read from PostgreSQL at each scrape: how long events wait to
be sealed, when the last seal was made, what each witness lacks, and the rows that
landed in the default partition."""

from datetime import UTC, datetime

import pytest

from audit.selectors import audit_seal_head
from audit.services import audit_event_record
from tests.audit.support import record, seal_everything
from tests.scrape import scrape, value


@pytest.mark.django_db(transaction=True)  # sealing passes only committed transactions
def test_unsealed_events_show_their_age_until_they_are_sealed():
    seal_everything()
    assert value(scrape(), "sergas_audit_unsealed_age_seconds") == 0

    record(3)
    samples = scrape()
    assert ("sergas_audit_unsealed_age_seconds", frozenset()) in samples
    assert value(samples, "sergas_audit_unsealed_age_seconds") >= 0

    seal_everything()
    samples = scrape()
    assert value(samples, "sergas_audit_unsealed_age_seconds") == 0
    head = audit_seal_head()
    assert value(samples, "sergas_audit_last_seal_timestamp_seconds") == pytest.approx(
        head.sealed_at.timestamp()
    )
    # The test's witness (tests/conftest.py) was given every head.
    assert value(samples, "sergas_audit_witness_seals_behind", witness="test-file") == 0


@pytest.mark.django_db
def test_rows_in_the_default_partition_are_counted():
    assert value(scrape(), "sergas_audit_default_partition_rows") == 0
    for month in (1, 2):
        audit_event_record(  # no partition this far ahead: the default one takes it
            event_type="system",
            action="probe",
            actor="t",
            resource="r",
            timestamp=datetime(2090, month, 1, tzinfo=UTC),
        )
    assert value(scrape(), "sergas_audit_default_partition_rows") == 2
