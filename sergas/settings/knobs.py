"""Environment variables into the apps' ``SERGAS_<APP>`` dicts, without their defaults.

Each app's ``conf.py`` holds the default of every knob it reads, once. The settings
only say where a value comes from: a key is put in the dict when its environment
variable is set, cast with django-environ's types, and left out otherwise, so the
app's default applies.
"""

from collections.abc import Callable, Mapping
from typing import Any

import environ


def knobs_from_env(
    env: environ.Env, variables: Mapping[str, tuple[str, Callable[[str], Any]]]
) -> dict[str, Any]:
    """``{KEY: cast(VARIABLE)}`` for each ``KEY: (VARIABLE, cast)`` whose variable is set.

    ``cast`` is one of ``env``'s readers (``env.int``, ``env.bool``, ``env.list``...).
    """
    return {
        key: cast(variable)
        for key, (variable, cast) in variables.items()
        if variable in env.ENVIRON
    }
