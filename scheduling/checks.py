"""System checks of the scheduling app (``manage.py check``; ``migrate`` and
``runserver`` run them too, and production processes at start: sergas.startup)."""

from typing import Any

from django.core.checks import CheckMessage, Error, register

from kernel.plugins import plugin_problems
from scheduling import conf

SIMULATED_RUNNER = "scheduling.runners.SimulatedReviewRunner"
SYNTHETIC_SOURCE = "scheduling.accounts.SyntheticAccountSource"

SIMULATION_REFUSED = (
    "{setting} is {path}, which makes up {what}: in production reviews would record "
    "invented results."
)
SIMULATION_HINT = (
    "Set {setting} to your own class, {alternative}or, for a demonstration or a staging "
    "system, allow the simulation with SCHEDULING_ALLOW_SIMULATION=true."
)


@register()
def check_no_simulation_in_production(app_configs: Any, **kwargs: Any) -> list[CheckMessage]:
    """Refuse the simulated runner and the synthetic account source unless allowed."""
    if conf.allow_simulation():
        return []
    errors: list[CheckMessage] = []
    if conf.review_runner_path() == SIMULATED_RUNNER:
        errors.append(
            Error(
                SIMULATION_REFUSED.format(
                    setting="SERGAS_REVIEW_RUNNER",
                    path=SIMULATED_RUNNER,
                    what="the reviews of worker-executed runs",
                ),
                hint=SIMULATION_HINT.format(
                    setting="SERGAS_REVIEW_RUNNER",
                    alternative="set it empty when agents do all the work "
                    "(reviews then need executor 'queue:<name>'), ",
                ),
                id="scheduling.E001",
            )
        )
    if conf.account_source_path() == SYNTHETIC_SOURCE:
        errors.append(
            Error(
                SIMULATION_REFUSED.format(
                    setting="SERGAS_ACCOUNT_SOURCE",
                    path=SYNTHETIC_SOURCE,
                    what="the accounts of every review from its filter",
                ),
                hint=SIMULATION_HINT.format(setting="SERGAS_ACCOUNT_SOURCE", alternative=""),
                id="scheduling.E002",
            )
        )
    return errors


@register()
def check_review_runner(app_configs: Any, **kwargs: Any) -> list[CheckMessage]:
    """``SERGAS_REVIEW_RUNNER`` names a ``ReviewRunner`` (or is empty: agents do the work)."""
    from scheduling.runners import ReviewRunner

    path = conf.review_runner_path()
    if not path:
        return []
    return plugin_problems(
        path,
        ReviewRunner,
        setting="SERGAS_REVIEW_RUNNER",
        import_id="sergas.E001",
        subclass_id="sergas.E002",
        hint="A subclass of scheduling.runners.ReviewRunner (docs/scheduling.md), or empty"
        " when agents do all the work.",
    )[1]


@register()
def check_account_source(app_configs: Any, **kwargs: Any) -> list[CheckMessage]:
    """``SERGAS_ACCOUNT_SOURCE`` names an ``AccountSource``."""
    from scheduling.accounts import AccountSource

    return plugin_problems(
        conf.account_source_path(),
        AccountSource,
        setting="SERGAS_ACCOUNT_SOURCE",
        import_id="sergas.E003",
        subclass_id="sergas.E004",
        hint="A subclass of scheduling.accounts.AccountSource (docs/scheduling.md).",
    )[1]
