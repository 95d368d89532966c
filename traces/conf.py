"""Settings of the traces app, read lazily from ``settings.SERGAS_TRACES`` (docs/api.md,
"OpenTelemetry traces"; docs/operations.md, "Traces")."""

from decimal import Decimal
from typing import Any

from django.conf import settings

DEFAULTS: dict[str, Any] = {
    # Days a span is kept; its day's partition is dropped after that. Shorter than the
    # audit trail's years: spans are diagnostics, their tool and task facts are audited.
    "RETENTION_DAYS": 30,
    # Daily partitions made ahead of today.
    "PREMAKE_DAYS": 7,
    # A request body's size once decompressed (the compressed size is the API's limit).
    "MAX_DECODED_BYTES": 16 * 1024 * 1024,
    # Spans starting further ahead than this (clock skew) are refused.
    "MAX_FUTURE_SECONDS": 300,
    # How long partition DDL waits for its lock before giving up until the next run.
    "DDL_LOCK_TIMEOUT_SECONDS": 10,
    # USD per million tokens, by model: {"model": {"input": "3.00", "output": "15.00"}}.
    "MODEL_PRICES": {},
}


def _get(name: str) -> Any:
    return getattr(settings, "SERGAS_TRACES", {}).get(name, DEFAULTS[name])


def retention_days() -> int:
    return int(_get("RETENTION_DAYS"))


def premake_days() -> int:
    return int(_get("PREMAKE_DAYS"))


def max_decoded_bytes() -> int:
    return int(_get("MAX_DECODED_BYTES"))


def max_future_seconds() -> int:
    return int(_get("MAX_FUTURE_SECONDS"))


def ddl_lock_timeout_seconds() -> int:
    return int(_get("DDL_LOCK_TIMEOUT_SECONDS"))


def model_prices() -> dict[str, tuple[Decimal, Decimal]]:
    """Model -> (input, output) USD per million tokens."""
    return {
        model: (Decimal(str(price.get("input", 0))), Decimal(str(price.get("output", 0))))
        for model, price in (_get("MODEL_PRICES") or {}).items()
    }
