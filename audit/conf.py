"""Settings of the audit app, read lazily from ``settings.SERGAS_AUDIT`` (documented in
docs/audit.md; the environment variables are ``AUDIT_<KEY>``)."""

from pathlib import Path
from typing import Any

from django.conf import settings


def _get(name: str, default: Any) -> Any:
    return getattr(settings, "SERGAS_AUDIT", {}).get(name, default)


def _var() -> Path:
    return Path(settings.BASE_DIR) / "var"


def premake_months() -> int:
    """How many months after the current one get their partition ahead of time."""
    return int(_get("PREMAKE_MONTHS", 3))


def retention_months() -> int:
    """Whole months kept before the current one; older partitions are archived and
    dropped (84: seven years)."""
    return int(_get("RETENTION_MONTHS", 84))


def archive_dir() -> Path:
    """Where partitions past retention are archived before they are dropped."""
    return Path(_get("ARCHIVE_DIR", _var() / "audit-archive"))


ARCHIVE_STORAGE = "audit_archive"


def archive_storage() -> dict[str, Any] | None:
    """``STORAGES["audit_archive"]``: a Django storage that keeps the verified archives
    (docs/audit.md); None when they stay in ``archive_dir``."""
    return settings.STORAGES.get(ARCHIVE_STORAGE)


def maintenance_queue() -> str:
    """The Celery queue of the daily partition maintenance (DDL: the tables' owner's
    worker, docs/deployment.md "Roles"); the default queue unless set."""
    return str(_get("MAINTENANCE_QUEUE", settings.CELERY_TASK_DEFAULT_QUEUE))


def auto_repair_max_rows() -> int:
    """The daily maintenance moves rows out of the default partition by itself when
    there are at most this many (the move holds the table lock while it copies them);
    more wait for an operator's ``--repair`` in a quiet hour. 0: never by itself."""
    return int(_get("AUTO_REPAIR_MAX_ROWS", 100_000))


def seal_interval_seconds() -> int:
    """How often beat seals new events (the window in which a superuser could alter an
    event without breaking a seal)."""
    return int(_get("SEAL_INTERVAL_SECONDS", 60))


def seal_max_events() -> int:
    """The most events one seal lists; a larger backlog makes several seals. One
    transaction's events always share a seal, so a seal may exceed it."""
    return int(_get("SEAL_MAX_EVENTS", 50_000))


def ddl_lock_timeout_seconds() -> int:
    """How long detach, drop and repair wait for the table lock before giving up."""
    return int(_get("DDL_LOCK_TIMEOUT_SECONDS", 10))


def signing_key_path() -> Path | None:
    """The Ed25519 private key that signs seal heads, as a PEM file (never stored in the
    database); development's lives under var/. ``SIGNING_KEY`` (the PEM itself) wins
    when set; empty: none."""
    path = _get("SIGNING_KEY_FILE", _var() / "audit-signing-key.pem")
    return Path(path) if path else None


def signing_key_pem() -> str:
    return str(_get("SIGNING_KEY", "") or "")


def signing_key_autocreate() -> bool:
    """Development and tests: a missing key file is generated (with its .pub) on first
    use. Production never does (sergas.settings.production)."""
    return bool(_get("SIGNING_KEY_AUTOCREATE", True))


def verify_key_paths() -> list[Path]:
    """More public keys whose signatures verification accepts (keys rotated out)."""
    return [Path(path) for path in _get("VERIFY_KEY_FILES", [])]


def witnesses() -> list[dict]:
    """Where signed seal heads are published: ``[{"BACKEND": dotted path, "NAME": ...,
    "OPTIONS": {...}}]`` (audit.integrity.witnesses; checked by sergas.E007 to E009).
    ``WITNESSES`` when set; else a file witness per ``WITNESS_FILES`` (development: one
    under var/) and an HTTP witness per ``WITNESS_URLS``, sent ``WITNESS_TOKEN``."""
    configured = _get("WITNESSES", None)
    if configured is not None:
        return list(configured)
    files = _get("WITNESS_FILES", [str(_var() / "audit-witness.jsonl")])
    token = str(_get("WITNESS_TOKEN", ""))
    return [
        {
            "NAME": f"file:{path}",
            "BACKEND": "audit.integrity.witnesses.FileWitness",
            "OPTIONS": {"path": path},
        }
        for path in files
    ] + [
        {
            "NAME": f"http:{url}",
            "BACKEND": "audit.integrity.witnesses.HttpWitness",
            "OPTIONS": {"url": url, "token": token},
        }
        for url in _get("WITNESS_URLS", [])
    ]


def witness_opt_out() -> bool:
    """Production runs without a signing key or a witness only when this says so."""
    return bool(_get("WITNESS_OPT_OUT", False))


def witness_publish_batch() -> int:
    """Heads published to one witness per attempt (a witness far behind catches up)."""
    return int(_get("WITNESS_PUBLISH_BATCH", 1000))
