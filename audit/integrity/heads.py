"""Signed seal heads: what a witness keeps, and what anyone can check with the public key.

A head states, for one seal: its number, its chain hash, the Merkle root of its events,
how many events it lists, when it was made, and which key signed it; the signature is
Ed25519 over the head's canonical text (:func:`head_text`). A head is the seal's receipt
outside the database: a chain rewritten or cut short no longer matches the heads the
witnesses hold, and without the private key nobody can sign new ones.

No Django import: the offline proof checker (``python -m audit.proof``) uses this module.
"""

import base64
import hashlib
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from audit.integrity.canonical import timestamp_text

HEAD_FORMAT = "sergas-audit-head/1"


def key_id(public_key: Ed25519PublicKey) -> str:
    """16 hex digits naming a key: the start of the sha256 of its raw 32 bytes."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


@dataclass(frozen=True)
class SealHead:
    seal: int
    hash: bytes  # the seal's chain hash
    merkle_root: bytes
    events: int
    time: datetime  # when the seal was made
    key_id: str
    signature: bytes = b""

    def text(self) -> str:
        return head_text(self)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": HEAD_FORMAT,
            "seal": self.seal,
            "hash": self.hash.hex(),
            "merkle_root": self.merkle_root.hex(),
            "events": self.events,
            "time": timestamp_text(self.time),
            "key_id": self.key_id,
            "signature": base64.b64encode(self.signature).decode(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "SealHead":
        if data.get("format") != HEAD_FORMAT:
            raise ValueError(f"not a seal head: format {data.get('format')!r}")
        return cls(
            seal=int(data["seal"]),
            hash=bytes.fromhex(data["hash"]),
            merkle_root=bytes.fromhex(data["merkle_root"]),
            events=int(data["events"]),
            time=datetime.fromisoformat(data["time"].replace("Z", "+00:00")),
            key_id=str(data["key_id"]),
            signature=base64.b64decode(data["signature"]),
        )


def head_text(head: SealHead) -> str:
    """What the signature covers (each line ends with a newline)."""
    return (
        f"{HEAD_FORMAT}\n"
        f"seal={head.seal}\n"
        f"hash={head.hash.hex()}\n"
        f"merkle={head.merkle_root.hex()}\n"
        f"events={head.events}\n"
        f"time={timestamp_text(head.time)}\n"
        f"key={head.key_id}\n"
    )


def head_sign(head: SealHead, private_key: Ed25519PrivateKey) -> SealHead:
    unsigned = SealHead(**{**head.__dict__, "key_id": key_id(private_key.public_key())})
    return SealHead(
        **{**unsigned.__dict__, "signature": private_key.sign(head_text(unsigned).encode())}
    )


def head_signature_valid(head: SealHead, public_keys: dict[str, Ed25519PublicKey]) -> bool:
    """True if one of ``public_keys`` (by key id) signed ``head``."""
    public_key = public_keys.get(head.key_id)
    if public_key is None:
        return False
    try:
        public_key.verify(head.signature, head_text(head).encode())
    except InvalidSignature:
        return False
    return True


# --- keys ------------------------------------------------------------------------------


def private_key_generate() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def private_key_pem(private_key: Ed25519PrivateKey) -> bytes:
    return private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def public_key_pem(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def private_key_load(pem: bytes) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError("the audit signing key must be an Ed25519 private key")
    return key


def public_key_load(pem: bytes) -> Ed25519PublicKey:
    key = serialization.load_pem_public_key(pem)
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("an audit verification key must be an Ed25519 public key")
    return key


def key_pair_write(private_path: Path) -> Ed25519PrivateKey:
    """Write a new key pair: the private key to ``private_path`` (owner-only, never
    overwritten: ``FileExistsError``) and the public key beside it (``.pub``). The
    private key appears whole or not at all (written aside, then hard-linked into
    place), so a process racing to make it reads a complete key or makes none."""
    private_key = private_key_generate()
    private_path.parent.mkdir(parents=True, exist_ok=True)
    aside = private_path.with_name(f".{private_path.name}.{os.getpid()}.tmp")
    descriptor = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(private_key_pem(private_key))
            file.flush()
            os.fsync(file.fileno())
        os.link(aside, private_path)  # FileExistsError if another process made one
    finally:
        aside.unlink(missing_ok=True)
    public_aside = aside.with_suffix(".pub.tmp")
    public_aside.write_bytes(public_key_pem(private_key.public_key()))
    os.replace(public_aside, public_path(private_path))
    return private_key


def public_path(private_path: Path) -> Path:
    return private_path.with_name(private_path.name + ".pub")
