"""The key that signs seal heads, and the public keys verification accepts.

The private key comes from ``AUDIT_SIGNING_KEY`` (PEM text) or ``AUDIT_SIGNING_KEY_FILE``;
it never enters the database. Development and test settings generate the file on first
use (``AUDIT_SIGNING_KEY_AUTOCREATE``); production creates it with ``manage.py
audit_keygen`` and keeps the public half where verifiers can read it.
"""

import logging
import threading
from functools import cache

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from audit import conf
from audit.integrity.heads import (
    key_id,
    key_pair_write,
    private_key_load,
    public_key_load,
    public_path,
)

logger = logging.getLogger(__name__)
_create_lock = threading.Lock()


def signing_key() -> Ed25519PrivateKey | None:
    """The configured private key, or None when none is configured."""
    pem = conf.signing_key_pem()
    path = conf.signing_key_path()
    return _load(pem, str(path) if path else "")


@cache
def _load(pem: str, path: str) -> Ed25519PrivateKey | None:
    if pem:
        return private_key_load(pem.encode())
    if not path:
        return None
    from pathlib import Path

    file = Path(path)
    with _create_lock:
        if not file.exists() and conf.signing_key_autocreate():
            try:
                key_pair_write(file)
                logger.warning("Generated an audit signing key at %s (development)", file)
            except FileExistsError:  # another process made it first
                pass
    if not file.exists():
        return None
    return private_key_load(file.read_bytes())


def verification_keys() -> dict[str, Ed25519PublicKey]:
    """The public keys, by key id, whose signed heads verification accepts: the signing
    key's, and those of ``AUDIT_VERIFY_KEY_FILES`` (keys rotated out)."""
    keys: dict[str, Ed25519PublicKey] = {}
    private = signing_key()
    if private is not None:
        keys[key_id(private.public_key())] = private.public_key()
    for path in conf.verify_key_paths():
        public = public_key_load(path.read_bytes())
        keys[key_id(public)] = public
    return keys


def keys_cache_clear() -> None:
    _load.cache_clear()


__all__ = ["keys_cache_clear", "public_path", "signing_key", "verification_keys"]
