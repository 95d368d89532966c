import json
from typing import Any
from uuid import UUID

from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.selectors import audit_event_proof
from kernel.errors import DomainError


class Command(BaseCommand):
    help = (
        "Print an audit event's inclusion proof (JSON): its canonical text, the audit path"
        " to its seal's Merkle root and the seal's signed head. Check it anywhere with"
        " `python -m audit.proof FILE --public-key KEY.pub`."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("event_id", type=UUID, help="The event's id.")

    def handle(self, *args: Any, event_id: UUID, **options: Any) -> None:
        try:
            proof = audit_event_proof(event_id)
        except DomainError as exc:
            raise CommandError(exc.detail) from exc
        self.stdout.write(json.dumps(proof, indent=2, sort_keys=True))
