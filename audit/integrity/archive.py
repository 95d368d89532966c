"""Archives of audit partitions, written before a partition is dropped, and their
offline verification.

Pure Python: ``python -m audit.archive ARCHIVE...`` verifies archives on any machine
with Python 3.11 and four small files of this project (``audit/__init__.py``,
``canonical.py``, ``integrity.py`` and this one): no database, no Django, no package.

An archive ``audit_event_YYYY_mon.jsonl.gz`` is gzip-compressed UTF-8 JSON lines:

1. a header: ``{"format": "sergas-audit-archive/1", "partition": ..., "from": ...,
   "to": ..., "events": N, "seals": M, "hash_format": 1, "created_at": ...}``;
2. ``M`` seal lines ``{"seal": {...}}``: every seal listing an event of the month, with
   its header fields, its hash and its full member list (base64);
3. ``N`` event lines, sorted by (timestamp, event id), each exactly the event's
   canonical text, so ``sha256(line)`` is its content hash.

Next to it, ``<archive>.sha256`` holds the file's digest in ``sha256sum`` format; the
``partition_archived`` audit event records the same digest inside the sealed trail.
"""

import argparse
import base64
import gzip
import hashlib
import json
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO, TextIO
from uuid import UUID

from audit.integrity.canonical import HASH_FORMAT, SealHeader, timestamp_micros, timestamp_text
from audit.integrity.findings import (
    EventKey,
    Problem,
    ProblemKind,
    check_link,
    check_members,
    check_seal,
    deleted,
    members_in_scope,
    reconcile,
)

FORMAT = "sergas-audit-archive/1"
SUFFIX = ".jsonl.gz"
_TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


class ArchiveUnreadable(Exception):
    """The file is not an archive this module can read (missing, truncated, not ours)."""


def archive_path(directory: Path, partition: str) -> Path:
    return directory / f"{partition}{SUFFIX}"


def digest_path(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def _parse_timestamp(text: str) -> datetime:
    return datetime.strptime(text, _TIMESTAMP_FORMAT).replace(tzinfo=UTC)


@dataclass(frozen=True)
class ArchivedSeal:
    header: SealHeader
    hash: bytes
    members: bytes

    def to_json(self) -> dict[str, Any]:
        return {
            **seal_header_json(self.header, self.hash),
            "members": base64.b64encode(self.members).decode(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "ArchivedSeal":
        header = seal_header_from_json(data)
        return cls(header, bytes.fromhex(data["hash"]), base64.b64decode(data["members"]))


def seal_header_json(header: SealHeader, digest: bytes) -> dict[str, Any]:
    """A seal's header and hash as JSON (archives, inclusion proofs)."""
    return {
        "number": header.number,
        "previous_hash": header.previous_hash.hex(),
        "hash": digest.hex(),
        "xact_from": header.xact_from,
        "xact_to": header.xact_to,
        "event_count": header.event_count,
        "first_timestamp": timestamp_text(header.first_timestamp),
        "last_timestamp": timestamp_text(header.last_timestamp),
        "sealed_at": timestamp_text(header.sealed_at),
        "members_digest": header.members_digest.hex(),
        **({"merkle_root": header.merkle_root.hex()} if header.merkle_root else {}),
    }


def seal_header_from_json(data: dict[str, Any]) -> SealHeader:
    return SealHeader(
        number=int(data["number"]),
        previous_hash=bytes.fromhex(data["previous_hash"]),
        xact_from=int(data["xact_from"]),
        xact_to=int(data["xact_to"]),
        event_count=int(data["event_count"]),
        first_timestamp=_parse_timestamp(data["first_timestamp"]),
        last_timestamp=_parse_timestamp(data["last_timestamp"]),
        sealed_at=_parse_timestamp(data["sealed_at"]),
        members_digest=bytes.fromhex(data["members_digest"]),
        merkle_root=bytes.fromhex(data["merkle_root"]) if data.get("merkle_root") else None,
    )


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _fsync_directory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def write_archive(
    path: Path,
    *,
    partition: str,
    start: datetime,
    end: datetime,
    seals: Sequence[ArchivedSeal],
    events: Iterable[str],
    event_count: int,
    on_event: Callable[[int], None] | None = None,
) -> str:
    """Write the archive atomically (a temporary file, fsync, rename) with its digest
    file, and return the archive's sha256. ``events`` are canonical texts in order."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    header = {
        "format": FORMAT,
        "partition": partition,
        "from": timestamp_text(start),
        "to": timestamp_text(end),
        "events": event_count,
        "seals": len(seals),
        "hash_format": HASH_FORMAT,
        "created_at": timestamp_text(datetime.now(UTC)),
    }
    written = 0
    with partial.open("wb") as raw:
        with gzip.GzipFile(filename=path.name, mode="wb", fileobj=raw, mtime=0) as stream:
            _write_line(stream, json.dumps(header, sort_keys=True))
            for seal in seals:
                _write_line(stream, json.dumps({"seal": seal.to_json()}, sort_keys=True))
            for text in events:
                _write_line(stream, text)
                written += 1
                if on_event is not None and written % 1000 == 0:
                    on_event(written)
        raw.flush()
        os.fsync(raw.fileno())
    if written != event_count:
        partial.unlink()
        raise ValueError(f"expected {event_count} events for {partition}, wrote {written}")
    os.replace(partial, path)
    sha256 = file_sha256(path)
    sidecar = digest_path(path)
    sidecar_partial = sidecar.with_name(sidecar.name + ".partial")
    sidecar_partial.write_text(f"{sha256}  {path.name}\n")
    os.replace(sidecar_partial, sidecar)
    _fsync_directory(path.parent)
    if on_event is not None:
        on_event(written)
    return sha256


def _write_line(stream: BinaryIO, text: str) -> None:
    stream.write(text.encode())
    stream.write(b"\n")


@dataclass
class ArchiveReport:
    path: Path
    partition: str = ""
    start: datetime | None = None
    end: datetime | None = None
    events: int = 0
    seals: list[ArchivedSeal] = field(default_factory=list)
    sha256: str = ""
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_archive(path: Path, *, on_event: Callable[[int], None] | None = None) -> ArchiveReport:
    """Check an archive on its own: its digest file, every seal (hash, member list,
    links between consecutive seals), and every event against the seals listing it:
    none modified, none missing, none added.

    A self-consistent archive is only as trustworthy as its seal hashes: compare them
    (``report.seals``) with the chain in the database or with a copy kept elsewhere.
    Raises :class:`ArchiveUnreadable` when the file cannot be read as an archive.
    """
    report = ArchiveReport(path=path)
    if not path.is_file():
        raise ArchiveUnreadable(f"{path} does not exist or is not a file")
    report.sha256 = file_sha256(path)
    sidecar = digest_path(path)
    if sidecar.is_file():
        recorded = sidecar.read_text().split()[0] if sidecar.read_text().strip() else ""
        if recorded != report.sha256:
            report.problems.append(
                Problem(
                    ProblemKind.MODIFIED,
                    f"{path.name}: the file's sha256 differs from {sidecar.name}",
                )
            )
    try:
        with gzip.open(path, "rb") as stream:
            _verify_stream(stream, report, on_event)
    except (OSError, EOFError, ValueError, KeyError, TypeError) as exc:
        raise ArchiveUnreadable(f"{path} is not a readable audit archive: {exc}") from exc
    return report


def _verify_stream(
    stream: BinaryIO, report: ArchiveReport, on_event: Callable[[int], None] | None
) -> None:
    header = json.loads(stream.readline())
    if header.get("format") != FORMAT:
        raise ValueError(f"unknown format {header.get('format')!r}")
    report.partition = header["partition"]
    report.start, report.end = _parse_timestamp(header["from"]), _parse_timestamp(header["to"])
    start_micros, end_micros = timestamp_micros(report.start), timestamp_micros(report.end)

    sealed: dict[int, dict[EventKey, bytes]] = {}  # seal number -> its members in the month
    seal_of: dict[EventKey, int] = {}
    previous: tuple[SealHeader, bytes] | None = None
    for _ in range(int(header["seals"])):
        seal = ArchivedSeal.from_json(json.loads(stream.readline())["seal"])
        report.seals.append(seal)
        report.problems += check_seal(seal.header, seal.hash)
        report.problems += check_members(seal.header, seal.members)
        if previous is not None and previous[0].number + 1 == seal.header.number:
            report.problems += check_link(previous, seal.header)
        previous = (seal.header, seal.hash)
        members = members_in_scope(seal.members, start_micros, end_micros)
        sealed[seal.header.number] = members
        seal_of.update(dict.fromkeys(members, seal.header.number))

    found: dict[int, dict[EventKey, bytes]] = {}
    for line in stream:
        text = line.rstrip(b"\n")
        event = json.loads(text)
        key = (UUID(event["event_id"]), timestamp_micros(_parse_timestamp(event["timestamp"])))
        report.events += 1
        if on_event is not None and report.events % 1000 == 0:
            on_event(report.events)
        digest = hashlib.sha256(text).digest()
        if not start_micros <= key[1] < end_micros:
            report.problems.append(
                Problem(
                    ProblemKind.INSERTED,
                    f"{event['event_id']}: its timestamp {event['timestamp']} lies outside"
                    f" the archived month",
                    event_id=key[0],
                )
            )
            continue
        seal_number = seal_of.get(key, 0)
        bucket = found.setdefault(seal_number, {})
        if key in bucket:
            report.problems.append(
                Problem(ProblemKind.INSERTED, f"{event['event_id']}: appears twice", key[0])
            )
        bucket[key] = digest
    if report.events != int(header["events"]):
        report.problems.append(
            Problem(
                ProblemKind.DELETED if report.events < header["events"] else ProblemKind.INSERTED,
                f"the header promises {header['events']} events, the file holds {report.events}",
            )
        )
    # An event found under no seal may be a sealed one whose timestamp was changed:
    # reconcile each seal with the unsealed events that carry one of its ids.
    strays = found.pop(0, {})
    for seal in report.seals:
        number = seal.header.number
        candidates = dict(found.pop(number, {}))
        ids = {key[0] for key in sealed[number]}
        candidates.update({key: digest for key, digest in strays.items() if key[0] in ids})
        for key in candidates.keys() & strays.keys():
            del strays[key]
        problems, missing = reconcile(number, sealed[number], candidates)
        report.problems += problems + deleted(number, missing)
    for key in strays:
        report.problems.append(
            Problem(
                ProblemKind.INSERTED,
                f"{key[0]}: listed by none of the archive's seals",
                event_id=key[0],
            )
        )


def _print_report(report: ArchiveReport, out: TextIO) -> None:
    span = f"{timestamp_text(report.start)} .. {timestamp_text(report.end)}" if report.start else ""
    out.write(f"{report.path}: {report.partition} {span}\n")
    out.write(f"  sha256 {report.sha256}\n  {report.events} events, {len(report.seals)} seals\n")
    if report.seals:
        first, last = report.seals[0], report.seals[-1]
        out.write(f"  first seal #{first.header.number} {first.hash.hex()}\n")
        out.write(f"  last seal  #{last.header.number} {last.hash.hex()}\n")
    for problem in report.problems:
        out.write(f"  {problem}\n")
    out.write("  OK\n" if report.ok else f"  FAILED: {len(report.problems)} problem(s)\n")


def main(argv: Sequence[str] | None = None) -> int:
    arguments = argparse.ArgumentParser(
        prog="python -m audit.archive",
        description="Verify Sergas audit archives offline (no database needed).",
    )
    arguments.add_argument("archives", nargs="+", type=Path, metavar="ARCHIVE")
    options = arguments.parse_args(argv)
    failed = False
    for path in options.archives:
        try:
            report = verify_archive(path)
        except ArchiveUnreadable as exc:
            sys.stderr.write(f"{exc}\n")
            failed = True
            continue
        _print_report(report, sys.stdout)
        failed = failed or not report.ok
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
