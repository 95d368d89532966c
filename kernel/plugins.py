"""System checks of pluggable parts: a class chosen by dotted path in a setting (Django's
backend pattern) must import, subclass its documented base, and get the options its
constructor requires. Each app's checks.py calls these with its own ids."""

import inspect
from collections.abc import Mapping
from typing import Any

from django.core.checks import CheckMessage, Error
from django.utils.module_loading import import_string


def plugin_problems(
    path: str,
    base: type,
    *,
    setting: str,
    import_id: str,
    subclass_id: str,
    hint: str | None = None,
) -> tuple[type | None, list[CheckMessage]]:
    """The class ``path`` names, or None with the error that says why it cannot be used."""
    try:
        found = import_string(path)
    except Exception as exc:  # a module that fails to import, for any reason, is reported
        return None, [
            Error(
                f"{setting} names {path!r}, which cannot be imported: {exc}",
                hint=hint,
                id=import_id,
            )
        ]
    if not (isinstance(found, type) and issubclass(found, base)):
        return None, [
            Error(
                f"{setting} names {path!r}, which is not a subclass of"
                f" {base.__module__}.{base.__qualname__}.",
                hint=hint,
                id=subclass_id,
            )
        ]
    return found, []


def missing_options(cls: type, options: Mapping[str, Any]) -> list[str]:
    """The keyword-only arguments without a default of ``cls``'s constructor that
    ``options`` lacks."""
    return [
        parameter.name
        for parameter in inspect.signature(cls).parameters.values()
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY
        and parameter.default is inspect.Parameter.empty
        and parameter.name not in options
    ]
