"""Settings of the audit app, read lazily (defaults documented in docs/audit.md)."""

from pathlib import Path

from django.conf import settings


def premake_months() -> int:
    """How many months after the current one get their partition ahead of time."""
    return int(getattr(settings, "AUDIT_PREMAKE_MONTHS", 3))


def retention_months() -> int:
    """Whole months kept before the current one; older partitions are archived and
    dropped (84: seven years)."""
    return int(getattr(settings, "AUDIT_RETENTION_MONTHS", 84))


def archive_dir() -> Path:
    """Where partitions past retention are archived before they are dropped."""
    return Path(getattr(settings, "AUDIT_ARCHIVE_DIR", settings.BASE_DIR / "var" / "audit-archive"))


def auto_repair_max_rows() -> int:
    """The daily maintenance moves rows out of the default partition by itself when
    there are at most this many (the move holds the table lock while it copies them);
    more wait for an operator's ``--repair`` in a quiet hour. 0: never by itself."""
    return int(getattr(settings, "AUDIT_AUTO_REPAIR_MAX_ROWS", 100_000))


def seal_interval_seconds() -> int:
    """How often beat seals new events (the window in which a superuser could alter an
    event without breaking a seal)."""
    return int(getattr(settings, "AUDIT_SEAL_INTERVAL_SECONDS", 60))


def seal_max_events() -> int:
    """The most events one seal lists; a larger backlog makes several seals. One
    transaction's events always share a seal, so a seal may exceed it."""
    return int(getattr(settings, "AUDIT_SEAL_MAX_EVENTS", 50_000))


def ddl_lock_timeout_seconds() -> int:
    """How long detach, drop and repair wait for the table lock before giving up."""
    return int(getattr(settings, "AUDIT_DDL_LOCK_TIMEOUT_SECONDS", 10))


def signing_key_path() -> Path | None:
    """The Ed25519 private key that signs seal heads, as a PEM file (never stored in the
    database). ``AUDIT_SIGNING_KEY`` (the PEM itself) wins when set."""
    path = getattr(settings, "AUDIT_SIGNING_KEY_FILE", None)
    return Path(path) if path else None


def signing_key_pem() -> str:
    return str(getattr(settings, "AUDIT_SIGNING_KEY", "") or "")


def signing_key_autocreate() -> bool:
    """Development and tests: a missing key file is generated (with its .pub) on first use."""
    return bool(getattr(settings, "AUDIT_SIGNING_KEY_AUTOCREATE", False))


def verify_key_paths() -> list[Path]:
    """More public keys whose signatures verification accepts (keys rotated out)."""
    return [Path(path) for path in getattr(settings, "AUDIT_VERIFY_KEY_FILES", [])]


def witnesses() -> list[dict]:
    """Where signed seal heads are published: ``[{"BACKEND": dotted path, "NAME": ...,
    "OPTIONS": {...}}]`` (audit.integrity.witnesses)."""
    return list(getattr(settings, "AUDIT_WITNESSES", []))


def witness_opt_out() -> bool:
    """Production runs without a signing key or a witness only when this says so."""
    return bool(getattr(settings, "AUDIT_WITNESS_OPT_OUT", False))


def witness_publish_batch() -> int:
    """Heads published to one witness per attempt (a witness far behind catches up)."""
    return int(getattr(settings, "AUDIT_WITNESS_PUBLISH_BATCH", 1000))
