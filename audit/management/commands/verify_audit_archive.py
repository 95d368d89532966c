from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.integrity.archive import ArchiveUnreadable, verify_archive
from audit.integrity.verification import archive_seals_check


class Command(BaseCommand):
    help = (
        "Verify audit archives written by partition maintenance: the file's digest, every "
        "seal in it, every event against its seal, and (unless --offline) the seals against "
        "the chain in the database. `python -m audit.archive PATH` does the offline part "
        "without Django or a database."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("paths", nargs="+", type=Path, metavar="PATH")
        parser.add_argument(
            "--offline",
            action="store_true",
            help="Do not compare the archive's seals with the database's seal chain.",
        )

    def handle(self, *args: Any, paths: list[Path], offline: bool, **options: Any) -> None:
        failed = 0
        for path in paths:
            try:
                report = verify_archive(path)
            except ArchiveUnreadable as exc:
                self.stderr.write(str(exc))
                failed += 1
                continue
            problems = list(report.problems)
            if not offline:
                problems += archive_seals_check(report.seals)
            self.stdout.write(
                f"{path}: {report.partition}, {report.events} event(s), {len(report.seals)}"
                f" seal(s), sha256 {report.sha256}"
            )
            for problem in problems:
                self.stderr.write(f"  {problem}")
            if problems:
                failed += 1
            else:
                checked = "offline" if offline else "and against the database's seal chain"
                self.stdout.write(self.style.SUCCESS(f"  verified {checked}"))
        if failed:
            raise CommandError(f"{failed} archive(s) failed verification.")
