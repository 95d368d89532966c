"""Writes of integrity: sealing recorded events, publishing signed heads to witnesses."""

from audit.integrity.services.sealing import SEAL_LOCK_KEY, audit_events_seal
from audit.integrity.services.witnessing import PublishOutcome, audit_heads_publish

__all__ = ["SEAL_LOCK_KEY", "PublishOutcome", "audit_events_seal", "audit_heads_publish"]
