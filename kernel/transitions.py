"""The row of a lifecycle table (sessions, approvals, runs, batches): the statuses a move
may start from and the status it leads to. Each app keeps its own table and the one
function that applies it."""

from dataclasses import dataclass
from typing import Generic, TypeVar

Status = TypeVar("Status", bound=str)


@dataclass(frozen=True)
class Transition(Generic[Status]):
    sources: frozenset[Status]
    target: Status
