"""Integrity: canonical forms, seals and their signed heads, witnesses, verification,
archives and inclusion proofs. ``canonical``, ``findings``, ``heads``, ``archive`` and
``proof`` import no Django: the offline checkers run them on any machine."""
