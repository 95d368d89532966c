"""Publishing signed seal heads to the witnesses, and what each witness has.

Runs after sealing (the beat task, ``manage.py seal_audit``), never on an event's write
path: a witness that is down delays nothing but itself. Each run asks every witness for
the newest head it holds and sends the signed heads after it, oldest first; a failure is
counted (``sergas_audit_witness_publish_failures_total``), logged, kept in
``WitnessStatus`` (shown by /healthz and the dashboard) and retried by the next run. A
witness that starts failing, and one that recovers, is an audit event.
"""

import logging
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from audit import conf
from audit.integrity.witnesses import Witness, WitnessError, configured_witnesses
from audit.metrics import WITNESS_PUBLISH_FAILURES
from audit.models import AuditEventType, AuditSeal, WitnessStatus
from audit.trail.services import SYSTEM_ACTOR, audit_event_record

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PublishOutcome:
    witness: str
    published: int  # heads sent this run
    head: int  # the newest seal the witness holds now (0: none)
    error: str = ""


def audit_heads_publish(*, actor: str = SYSTEM_ACTOR) -> list[PublishOutcome]:
    """Send every configured witness the signed heads it lacks; one outcome each."""
    return [_publish_to(witness, actor=actor) for witness in configured_witnesses()]


def _publish_to(witness: Witness, *, actor: str) -> PublishOutcome:
    sent = 0
    held = 0
    try:
        latest = witness.latest()
        held = latest.seal if latest is not None else 0
        while True:
            seals = list(
                AuditSeal.objects.filter(number__gt=held, signature__isnull=False)
                .order_by("number")
                .defer("members")[: conf.witness_publish_batch()]
            )
            heads = [head for head in (seal.head for seal in seals) if head is not None]
            if not heads:
                break
            witness.publish(heads)
            sent += len(heads)
            held = heads[-1].seal
    except WitnessError as exc:
        WITNESS_PUBLISH_FAILURES.labels(witness=witness.name).inc()
        logger.warning(
            "Audit witness %s: publishing failed (%s); retried next run", witness.name, exc
        )
        _record(witness.name, held, error=str(exc), actor=actor)
        return PublishOutcome(witness.name, sent, held, str(exc))
    _record(witness.name, held, error="", actor=actor)
    return PublishOutcome(witness.name, sent, held)


def _record(name: str, held: int, *, error: str, actor: str) -> None:
    now = timezone.now()
    with transaction.atomic():
        status, _ = WitnessStatus.objects.select_for_update().get_or_create(name=name)
        failing_before = status.failures > 0
        status.last_attempt_at = now
        status.published_seal = max(status.published_seal, held)
        if error:
            status.failures += 1
            status.last_error = error[:2000]
        else:
            status.failures = 0
            status.last_error = ""
            status.last_success_at = now
        status.save()
        if bool(error) != failing_before:
            audit_event_record(
                event_type=AuditEventType.SYSTEM,
                action="witness_failing" if error else "witness_recovered",
                actor=actor,
                resource=f"witness:{name}",
                metadata={"witness": name, "error": error[:1000], "seal": held},
            )
