"""System checks of the audit app: signed heads and witnesses, unless opted out."""

from typing import Any

from django.core.checks import CheckMessage, Error, register

from audit import conf
from audit.integrity.keys import signing_key

OPT_OUT_HINT = (
    "Or, knowingly, set AUDIT_WITNESS_OPT_OUT=true: a superuser could then cut or rewrite the"
    " chain with only --anchor to catch it (docs/audit.md)."
)


@register()
def check_signed_and_witnessed(app_configs: Any, **kwargs: Any) -> list[CheckMessage]:
    if conf.witness_opt_out():
        return []
    errors: list[CheckMessage] = []
    try:
        key = signing_key()
    except (OSError, ValueError) as exc:
        errors.append(
            Error(
                f"The audit signing key cannot be read: {exc}",
                hint="Point AUDIT_SIGNING_KEY_FILE at the PEM `manage.py audit_keygen` wrote.",
                id="audit.E001",
            )
        )
        key = None
    else:
        if key is None:
            errors.append(
                Error(
                    "No audit signing key: seal heads would not be signed.",
                    hint="Run `manage.py audit_keygen PATH` and set AUDIT_SIGNING_KEY_FILE=PATH"
                    " (or AUDIT_SIGNING_KEY to the PEM). " + OPT_OUT_HINT,
                    id="audit.E001",
                )
            )
    if not conf.witnesses():
        errors.append(
            Error(
                "No audit witness: signed seal heads would be kept nowhere outside the database.",
                hint="Set AUDIT_WITNESS_FILES (a file on another disk or host) or"
                " AUDIT_WITNESS_URLS. " + OPT_OUT_HINT,
                id="audit.E002",
            )
        )
    return errors
