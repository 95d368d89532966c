"""The run and batch lifecycle tables: what each action allows, and the refusals."""

import pytest

from scheduling.exceptions import InvalidBatchTransition, InvalidRunTransition
from scheduling.models import BatchStatus, ExecutionStatus
from scheduling.transitions import (
    BATCH_TRANSITIONS,
    RUN_TRANSITIONS,
    BatchAction,
    RunAction,
    batch_transition_target,
    run_transition_target,
)


def test_every_run_and_batch_action_has_a_row():
    assert set(RUN_TRANSITIONS) == set(RunAction)
    assert set(BATCH_TRANSITIONS) == set(BatchAction)


@pytest.mark.parametrize(
    ("status", "action", "target"),
    [
        ("queued", RunAction.START, "running"),
        ("queued", RunAction.HOLD, "queued"),
        ("queued", RunAction.SKIP, "skipped_overlap"),
        ("queued", RunAction.FAIL, "failed"),
        ("running", RunAction.SUCCEED, "succeeded"),
        ("running", RunAction.RETRY, "retrying"),
        ("running", RunAction.HAND_OVER, "running"),
    ],
)
def test_allowed_run_moves(status, action, target):
    assert run_transition_target("r1", status, action) == target


def test_a_finished_run_cannot_move_and_the_refusal_names_its_status():
    for status in ("succeeded", "failed", "retrying", "skipped_overlap", "missed"):
        for action in RunAction:
            with pytest.raises(InvalidRunTransition) as refused:
                run_transition_target("r1", status, action)
            assert refused.value.context["status"] == status
    with pytest.raises(InvalidRunTransition, match="it is running; start is allowed only"):
        run_transition_target("r1", ExecutionStatus.RUNNING, RunAction.START)


@pytest.mark.parametrize(
    ("status", "action", "target"),
    [
        ("pending", BatchAction.CLAIM, "running"),
        ("running", BatchAction.RENEW, "running"),
        ("running", BatchAction.RECORD, "done"),
        ("running", BatchAction.EXPIRE, "pending"),
        ("running", BatchAction.RELEASE, "pending"),
        ("running", BatchAction.RETRY, "pending"),
        ("running", BatchAction.FAIL, "failed"),
        ("pending", BatchAction.CANCEL, "cancelled"),
        ("running", BatchAction.CANCEL, "cancelled"),
    ],
)
def test_allowed_batch_moves(status, action, target):
    assert batch_transition_target(7, status, action) == target


def test_a_recorded_batch_is_never_recorded_again_nor_claimed():
    for action in BatchAction:
        for status in (BatchStatus.DONE, BatchStatus.CANCELLED, BatchStatus.FAILED):
            with pytest.raises(InvalidBatchTransition):
                batch_transition_target(7, status, action)
    with pytest.raises(InvalidBatchTransition, match="Cannot claim batch 7: it is running"):
        batch_transition_target(7, BatchStatus.RUNNING, BatchAction.CLAIM)
