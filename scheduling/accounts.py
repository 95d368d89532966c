"""Resolving a review's ``account_filter`` to account ids.

The CRM is outside this system, so the source is pluggable (``SERGAS_ACCOUNT_SOURCE``).
The default ``SyntheticAccountSource`` needs no CRM: it honours explicit ids and
otherwise derives stable ids from the filter, so demos, tests and benchmarks are
reproducible.
"""

import hashlib
import json
from functools import cache
from typing import Any

from django.utils.module_loading import import_string

from scheduling import conf
from scheduling.exceptions import InvalidSchedule


class AccountSource:
    """Base class of account sources.

    ``resolve(owner_id, account_filter)`` returns the ids of the accounts a run reviews,
    in a stable order. It is called once per run, by the worker, just before the session
    is created; it may be slow (a CRM call) and may raise to fail the attempt (retried).
    ``validate(account_filter)`` raises ``InvalidSchedule`` for a filter it can never
    satisfy; it is called when a review is saved.
    """

    def resolve(self, owner_id: str, account_filter: dict[str, Any]) -> list[str]:
        raise NotImplementedError

    def validate(self, account_filter: dict[str, Any]) -> None:
        if not isinstance(account_filter, dict):
            raise InvalidSchedule("account_filter must be an object", field="account_filter")


class SyntheticAccountSource(AccountSource):
    """``{"account_ids": [...]}`` is taken as is; any other filter yields ``count``
    (default ``DEFAULT_ACCOUNT_COUNT``) ids derived from the owner and the filter."""

    def resolve(self, owner_id: str, account_filter: dict[str, Any]) -> list[str]:
        if "account_ids" in account_filter:
            return [str(account) for account in account_filter["account_ids"]]
        count = int(account_filter.get("count", conf.default_account_count()))
        seed = json.dumps({"owner": owner_id, **account_filter}, sort_keys=True).encode()
        prefix = hashlib.sha256(seed).hexdigest()[:6]
        return [f"acct_{prefix}_{index:05d}" for index in range(count)]

    def validate(self, account_filter: dict[str, Any]) -> None:
        super().validate(account_filter)
        ids = account_filter.get("account_ids")
        if ids is not None and (
            not isinstance(ids, list) or not all(isinstance(i, str) and i for i in ids)
        ):
            raise InvalidSchedule(
                "account_filter.account_ids must be a list of account ids",
                field="account_filter",
            )
        count = account_filter.get("count")
        if count is not None and (
            not isinstance(count, int) or isinstance(count, bool) or not 0 < count <= 100_000
        ):
            raise InvalidSchedule(
                "account_filter.count must be a whole number from 1 to 100000",
                field="account_filter",
            )


@cache
def account_source() -> AccountSource:
    return import_string(conf.account_source_path())()
