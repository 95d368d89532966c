import argparse
from datetime import UTC, datetime, time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.dateparse import parse_date, parse_datetime

from audit.integrity.verification import audit_trail_verify
from audit.management.progress import ProgressBars
from audit.selectors import audit_events_count


def moment(value: str) -> datetime:
    """An ISO date (midnight UTC) or date-time (UTC unless it names an offset)."""
    try:
        parsed = parse_datetime(value)
        if parsed is None and (day := parse_date(value)) is not None:
            parsed = datetime.combine(day, time())
    except ValueError:
        parsed = None
    if parsed is None:
        raise argparse.ArgumentTypeError(f"{value!r} is not an ISO date or date-time")
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def anchor(value: str) -> tuple[int, bytes]:
    number, _, digest = value.partition(":")
    try:
        parsed = int(number), bytes.fromhex(digest)
    except ValueError:
        parsed = (0, b"")
    if parsed[0] < 1 or len(parsed[1]) != 32:
        raise argparse.ArgumentTypeError(f"{value!r} is not SEAL_NUMBER:SHA256_HEX")
    return parsed


class Command(BaseCommand):
    help = (
        "Verify the audit trail: recompute every event's hash, reconcile every seal with "
        "the events it lists, check the seal chain, its signed heads against the witnesses, "
        "the partitions and the append-only and DDL guards. Exits non-zero naming each "
        "modified, deleted or inserted event, broken seal and missing guard or partition."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--from", dest="start", type=moment, help="First instant checked (ISO, UTC)."
        )
        parser.add_argument(
            "--to", dest="end", type=moment, help="Instant the check stops before (ISO, UTC)."
        )
        parser.add_argument(
            "--anchor",
            type=anchor,
            action="append",
            default=[],
            metavar="N:HASH",
            help="A seal hash recorded outside the database (repeatable): a rewritten chain"
            " is consistent with itself but not with it.",
        )

    def handle(
        self,
        *args: Any,
        start: datetime | None,
        end: datetime | None,
        anchor: list[tuple[int, bytes]],
        **options: Any,
    ) -> None:
        if start is not None and end is not None and start >= end:
            raise CommandError("--from must be before --to.")
        with ProgressBars(self.stdout) as progress:
            report = audit_trail_verify(
                start=start,
                end=end,
                anchors=dict(anchor),
                on_progress=progress.counter(
                    "Verifying audit events", audit_events_count(start=start, end=end)
                ),
            )
        for problem in report.problems:
            self.stderr.write(str(problem))
        self.stdout.write(
            f"Checked {report.events} event(s) ({report.unsealed} not sealed yet,"
            f" {report.retired} more retired by retention) against {report.seals} seal(s)."
        )
        self.stdout.write(f"Signed heads verified: {report.signed} of {report.seals} seal(s).")
        for name, seal in report.witnesses.items():
            self.stdout.write(f"Witness {name}: holds heads through seal #{seal}.")
        for note in report.notes:
            self.stdout.write(self.style.WARNING(note))
        if report.head is not None:
            number, digest = report.head
            self.stdout.write(
                f"Chain head: seal #{number} {digest.hex()} (keep it outside the database and"
                f" pass it as --anchor {number}:{digest.hex()} to later runs)"
            )
        if report.problems:
            raise CommandError(f"Verification failed: {len(report.problems)} problem(s).")
        self.stdout.write(self.style.SUCCESS("Audit trail verified: no problem found."))
