"""Inclusion proofs: one event, shown to be in a seal whose signed head a witness holds,
checkable offline by anyone with the public key.

    python -m audit.proof proof.json --public-key audit-signing-key.pem.pub

needs Python 3.11 with ``cryptography`` and the files ``audit/__init__.py``,
``audit/proof.py``, ``audit/integrity/__init__.py``, ``canonical.py``, ``heads.py``,
``findings.py``, ``archive.py`` of ``audit/integrity/`` and this one: no Django, no
database. A proof (``sergas-audit-proof/1``, JSON) holds:

- ``event``: the event's canonical text (``sha256`` of it is its content hash);
- ``leaf``: its 56-byte seal member (event id, timestamp, content hash) and its index;
- ``path``: the RFC 6962 audit path from that leaf to the seal's Merkle root;
- ``seal``: the seal's header and hash (the hash covers the Merkle root);
- ``head``: the seal's signed head.

The check recomputes each link: content hash from the text, the member from the event,
the root from the member and the path, the seal hash from its header, and the head's
signature with the public key. Compare the head with the one a witness holds to know
the database still agrees.
"""

import argparse
import json
import struct
import sys
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID

from audit.integrity.archive import seal_header_from_json
from audit.integrity.canonical import (
    content_hash,
    merkle_root_from_path,
    seal_hash,
    timestamp_micros,
)
from audit.integrity.heads import SealHead, head_signature_valid, key_id, public_key_load

PROOF_FORMAT = "sergas-audit-proof/1"
_MEMBER = struct.Struct(">16sq32s")


def proof_problems(document: dict[str, Any], public_keys: dict[str, Any]) -> list[str]:
    """What is wrong with a proof document (nothing: it holds)."""
    if document.get("format") != PROOF_FORMAT:
        return [f"not an inclusion proof: format {document.get('format')!r}"]
    try:
        return _check(document, public_keys)
    except (KeyError, TypeError, ValueError) as exc:
        return [f"the proof is malformed: {exc!r}"]


def _check(document: dict[str, Any], public_keys: dict[str, Any]) -> list[str]:
    problems = []
    event = document["event"]
    canonical = event["canonical"]
    digest = content_hash(canonical)
    if digest.hex() != event["content_hash"]:
        problems.append("the event's text does not hash to its content hash")
    fields = json.loads(canonical)
    moment = datetime.fromisoformat(fields["timestamp"].replace("Z", "+00:00"))
    member = _MEMBER.pack(UUID(fields["event_id"]).bytes, timestamp_micros(moment), digest)
    if member.hex() != document["leaf"]["member"]:
        problems.append("the seal member is not this event's (id, timestamp, content hash)")
    header = seal_header_from_json(document["seal"])
    head = SealHead.from_json(document["head"])
    index, size = int(document["leaf"]["index"]), int(document["tree_size"])
    path = [bytes.fromhex(node) for node in document["path"]]
    try:
        root = merkle_root_from_path(bytes.fromhex(document["leaf"]["member"]), index, size, path)
    except ValueError as exc:
        problems.append(f"the audit path does not fit the tree: {exc}")
        root = b""
    if root and root != head.merkle_root:
        problems.append("the audit path does not lead to the signed Merkle root")
    if header.merkle_root != head.merkle_root or header.event_count != size:
        problems.append("the seal's header does not match the signed head (root, size)")
    stated = document["seal"]["hash"]
    if seal_hash(header).hex() != stated or head.hash.hex() != stated:
        problems.append("the seal's hash does not cover its header, or is not the signed one")
    if head.seal != header.number:
        problems.append("the signed head is another seal's")
    if not head_signature_valid(head, public_keys):
        problems.append(
            f"the head's signature does not verify with the public key(s) given"
            f" (it names key {head.key_id})"
        )
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("proof", type=Path, help="The proof's JSON file.")
    parser.add_argument(
        "--public-key",
        type=Path,
        action="append",
        required=True,
        help="The signing key's public half (PEM); repeatable for rotated keys.",
    )
    options = parser.parse_args(argv)
    keys = {}
    for path in options.public_key:
        public = public_key_load(path.read_bytes())
        keys[key_id(public)] = public
    document = json.loads(options.proof.read_text())
    problems = proof_problems(document, keys)
    for problem in problems:
        print(f"FAILED: {problem}", file=sys.stderr)  # noqa: T201
    if problems:
        return 1
    head = document["head"]
    print(  # noqa: T201
        f"OK: event {json.loads(document['event']['canonical'])['event_id']} is in seal"
        f" #{head['seal']} ({head['events']} events), Merkle root {head['merkle_root']},"
        f" signed by key {head['key_id']} at {head['time']}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
