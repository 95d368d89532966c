"""Staff browse events, seals and archives in the admin, and can change none of them."""

import pytest
from django.urls import reverse

from audit.models import AuditArchive, AuditEventRecord, AuditSeal
from tests.audit.support import record, seal_everything

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def staff_client(client, django_user_model):
    user = django_user_model.objects.create_superuser("auditor", "a@example.com", "pw-auditor")
    client.force_login(user)
    return client


def test_events_seals_and_archives_are_listed_and_shown_read_only(staff_client):
    (event,) = record(1)
    seal_everything()
    seal = AuditSeal.objects.first()
    archive = AuditArchive.objects.create(
        partition="audit_event_2018_jan",
        range_start=event.timestamp,
        range_end=event.timestamp,
        event_count=1,
        path="/archive/audit_event_2018_jan.jsonl.gz",
        sha256="ab" * 32,
        dropped_at=event.timestamp,
    )
    pages = {
        AuditEventRecord: event.event_id,
        AuditSeal: seal.number,
        AuditArchive: archive.pk,
    }
    for model, key in pages.items():
        opts = model._meta
        listing = staff_client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"))
        assert listing.status_code == 200, opts.model_name
        detail = staff_client.get(
            reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[key])
        )
        assert detail.status_code == 200, opts.model_name
        assert b'name="_save"' not in detail.content
        add = staff_client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_add"))
        assert add.status_code == 403
    detail = staff_client.get(reverse("admin:audit_auditseal_change", args=[seal.number]))
    assert bytes(seal.hash).hex().encode() in detail.content
