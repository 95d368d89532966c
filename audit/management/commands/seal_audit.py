from typing import Any

from django.core.management.base import BaseCommand

from audit.services import audit_events_seal


class Command(BaseCommand):
    help = (
        "Seal the audit events inserted since the last seal into the hash chain (beat does "
        "this every AUDIT_SEAL_INTERVAL_SECONDS). Prints each new seal's hash."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        seals = audit_events_seal()
        for seal in seals:
            self.stdout.write(
                f"Seal #{seal.number}: {seal.event_count} event(s), hash {bytes(seal.hash).hex()}"
            )
        if not seals:
            self.stdout.write("Nothing to seal: no finished transaction added events.")
