"""Witnesses: places outside the database that keep the signed seal heads.

A witness is chosen by dotted path (Django's backend pattern) in ``AUDIT_WITNESSES``:

    AUDIT_WITNESSES = [
        {"NAME": "disk-b", "BACKEND": "audit.integrity.witnesses.FileWitness",
         "OPTIONS": {"path": "/mnt/witness/sergas-heads.jsonl"}},
        {"NAME": "notary", "BACKEND": "audit.integrity.witnesses.HttpWitness",
         "OPTIONS": {"url": "https://notary.example/heads/sergas", "token": "..."}},
    ]

After each seal the heads it lacks are published to every witness
(``audit.services.audit_heads_publish``); ``verify_audit`` reads them back: a chain
shorter than a witness saw, or with another hash at a seal it saw, is named.
"""

import json
import os
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import httpx
from django.utils.module_loading import import_string

from audit import conf
from audit.integrity.heads import SealHead


class WitnessError(Exception):
    """A witness could not take or give heads (unreachable, refused, unreadable)."""


class Witness:
    """Base class of witnesses.

    ``publish(heads)`` hands over heads in seal order and raises ``WitnessError`` if it
    could not (it is retried with the next seal run); publishing a head the witness
    already has must be harmless. ``latest()`` is the newest head it holds (None if
    none); ``heads()`` every head it can give back, oldest first (at least the latest).
    """

    def __init__(self, name: str, **options: Any) -> None:
        self.name = name

    def publish(self, heads: list[SealHead]) -> None:
        raise NotImplementedError

    def latest(self) -> SealHead | None:
        raise NotImplementedError

    def heads(self) -> Iterator[SealHead]:
        latest = self.latest()
        if latest is not None:
            yield latest


class FileWitness(Witness):
    """An append-only JSON Lines file, one head per line, fsynced: meant for another
    disk or host (a network mount, a directory synced elsewhere, append-only storage)."""

    def __init__(self, name: str, *, path: str | Path, **options: Any) -> None:
        super().__init__(name)
        self.path = Path(path)

    def publish(self, heads: list[SealHead]) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a", encoding="utf-8") as file:
                for head in heads:
                    file.write(json.dumps(head.to_json(), sort_keys=True) + "\n")
                file.flush()
                os.fsync(file.fileno())
        except OSError as exc:
            raise WitnessError(f"{self.path}: {exc}") from exc

    def latest(self) -> SealHead | None:
        """The last line, read from the end (the file grows by a line per seal)."""
        try:
            with open(self.path, "rb") as file:
                file.seek(0, os.SEEK_END)
                position, tail = file.tell(), b""
                while position > 0 and tail.count(b"\n") < 2:
                    step = min(4096, position)
                    position -= step
                    file.seek(position)
                    tail = file.read(step) + tail
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise WitnessError(f"{self.path}: {exc}") from exc
        lines = [line for line in tail.splitlines() if line.strip()]
        if not lines:
            return None
        try:
            return SealHead.from_json(json.loads(lines[-1]))
        except (ValueError, KeyError) as exc:
            raise WitnessError(f"{self.path}: its last line is not a seal head ({exc})") from exc

    def heads(self) -> Iterator[SealHead]:
        try:
            with open(self.path, encoding="utf-8") as file:
                lines = list(file)
        except FileNotFoundError:
            return
        except OSError as exc:
            raise WitnessError(f"{self.path}: {exc}") from exc
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                yield SealHead.from_json(json.loads(line))
            except (ValueError, KeyError) as exc:
                raise WitnessError(f"{self.path}, line {number}: not a seal head ({exc})") from exc


class HttpWitness(Witness):
    """An HTTP endpoint: each head is POSTed to ``url`` as JSON; ``GET url`` answers the
    latest head (204 or 404 when it holds none). ``token`` is sent as a bearer token."""

    def __init__(
        self, name: str, *, url: str, token: str = "", timeout: float = 5.0, **options: Any
    ) -> None:
        super().__init__(name)
        self.url = url
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.timeout = timeout

    def publish(self, heads: list[SealHead]) -> None:
        try:
            with httpx.Client(timeout=self.timeout, headers=self.headers) as client:
                for head in heads:
                    response = client.post(self.url, json=head.to_json())
                    if response.status_code >= 300:
                        raise WitnessError(f"{self.url} answered {response.status_code}")
        except httpx.HTTPError as exc:
            raise WitnessError(f"{self.url}: {exc}") from exc

    def latest(self) -> SealHead | None:
        try:
            response = httpx.get(self.url, headers=self.headers, timeout=self.timeout)
        except httpx.HTTPError as exc:
            raise WitnessError(f"{self.url}: {exc}") from exc
        if response.status_code in (204, 404):
            return None
        if response.status_code != 200:
            raise WitnessError(f"{self.url} answered {response.status_code}")
        try:
            return SealHead.from_json(response.json())
        except (ValueError, KeyError) as exc:
            raise WitnessError(f"{self.url}: not a seal head ({exc})") from exc


def configured_witnesses() -> list[Witness]:
    return list(_build(json.dumps(conf.witnesses(), sort_keys=True, default=str)))


@cache
def _build(config: str) -> tuple[Witness, ...]:
    built = []
    for index, entry in enumerate(json.loads(config)):
        backend = import_string(entry["BACKEND"])
        name = entry.get("NAME") or f"witness-{index + 1}"
        built.append(backend(name, **entry.get("OPTIONS", {})))
    return tuple(built)
