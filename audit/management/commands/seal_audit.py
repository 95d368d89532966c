from typing import Any

from django.core.management.base import BaseCommand

from audit.services import audit_events_seal, audit_heads_publish


class Command(BaseCommand):
    help = (
        "Seal the audit events inserted since the last seal into the hash chain (beat does "
        "this every AUDIT_SEAL_INTERVAL_SECONDS), then publish the signed heads to the "
        "witnesses. Prints each new seal's hash and what each witness holds."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        seals = audit_events_seal()
        for seal in seals:
            self.stdout.write(
                f"Seal #{seal.number}: {seal.event_count} event(s), hash {bytes(seal.hash).hex()}"
            )
        if not seals:
            self.stdout.write("Nothing to seal: no finished transaction added events.")
        for outcome in audit_heads_publish(actor="command:seal_audit"):
            state = f"failed ({outcome.error})" if outcome.error else "ok"
            self.stdout.write(
                f"Witness {outcome.witness}: {outcome.published} head(s) sent, holds seal"
                f" #{outcome.head}: {state}"
            )
