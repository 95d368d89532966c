"""The periodic audit tasks run on a real worker; beat schedules them."""

import time

import pytest

from audit.models import AuditSeal
from audit.partitions.partitioning import partitions
from audit.tasks import maintain_audit_partitions, seal_audit_events
from tests.audit.support import record, unsealed_count


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("drop_new_partitions")
def test_the_maintenance_and_seal_tasks_run_on_a_real_worker(celery_worker_thread):
    maintain_audit_partitions.delay()
    deadline = time.monotonic() + 60
    while len(partitions()) < 5:  # the default partition and four months
        assert time.monotonic() < deadline, "the maintenance task created no partition"
        time.sleep(0.1)

    record(3)
    deadline = time.monotonic() + 60
    while unsealed_count():  # beat would send it again a minute later; so do we, sooner
        assert time.monotonic() < deadline, "the seal task never sealed the events"
        seal_audit_events.delay()
        time.sleep(0.2)
    assert AuditSeal.objects.exists()


def test_beat_seals_on_the_configured_interval_and_maintains_daily(settings):
    seal = settings.CELERY_BEAT_SCHEDULE["audit-seal-events"]
    assert seal["task"] == seal_audit_events.name
    assert seal["schedule"] == float(settings.AUDIT_SEAL_INTERVAL_SECONDS) == 60.0
    maintain = settings.CELERY_BEAT_SCHEDULE["audit-maintain-partitions"]
    assert maintain["task"] == maintain_audit_partitions.name
    assert maintain["schedule"] == 24 * 3600.0


def test_the_audit_settings_have_their_documented_defaults(settings):
    from audit import conf

    assert conf.retention_months() == 84
    assert conf.premake_months() == 3
    assert conf.seal_interval_seconds() == 60
    assert conf.seal_max_events() == 50_000
    assert conf.archive_dir() == settings.BASE_DIR / "var" / "audit-archive"
