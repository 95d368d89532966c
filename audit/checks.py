"""System checks of the audit app: signed heads and witnesses, unless opted out."""

from typing import Any

from django.core.checks import CheckMessage, Error, register

from audit import conf
from audit.integrity.keys import signing_key
from kernel.plugins import missing_options, plugin_problems

WITNESS_HINT = (
    'Each witness is {"NAME": ..., "BACKEND": a subclass of audit.integrity.witnesses.Witness,'
    ' "OPTIONS": {...}} (docs/audit.md, "Witnessed heads").'
)
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


@register()
def check_witness_backends(app_configs: Any, **kwargs: Any) -> list[CheckMessage]:
    """Each witness names a ``Witness`` class and gives the options it requires."""
    from audit.integrity.witnesses import Witness

    problems: list[CheckMessage] = []
    for index, entry in enumerate(conf.witnesses()):
        setting = f'SERGAS_AUDIT["WITNESSES"][{index}]'
        if "BACKEND" not in entry:
            problems.append(
                Error(f"{setting} has no BACKEND.", hint=WITNESS_HINT, id="sergas.E009")
            )
            continue
        backend, errors = plugin_problems(
            entry["BACKEND"],
            Witness,
            setting=f"{setting}['BACKEND']",
            import_id="sergas.E007",
            subclass_id="sergas.E008",
            hint=WITNESS_HINT,
        )
        problems += errors
        if backend is None:
            continue
        if missing := missing_options(backend, entry.get("OPTIONS", {})):
            problems.append(
                Error(
                    f"{setting} ({entry['BACKEND']}) lacks the option(s) {', '.join(missing)}.",
                    hint=WITNESS_HINT,
                    id="sergas.E009",
                )
            )
    return problems


@register()
def check_archive_storage(app_configs: Any, **kwargs: Any) -> list[CheckMessage]:
    """``STORAGES["audit_archive"]``, when set, names a Django ``Storage``."""
    from django.core.files.storage import Storage

    config = conf.archive_storage()
    if config is None:
        return []
    return plugin_problems(
        str(config.get("BACKEND", "")),
        Storage,
        setting=f'STORAGES["{conf.ARCHIVE_STORAGE}"]["BACKEND"]',
        import_id="sergas.E010",
        subclass_id="sergas.E011",
        hint="Any Django storage (django-storages' S3, another filesystem): docs/audit.md,"
        ' "Retention and archives".',
    )[1]
