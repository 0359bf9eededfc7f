"""The lifecycle: every (status, action) pair moves as TRANSITIONS says or is refused by name."""

from __future__ import annotations

import itertools

import pytest

from fraudrisk.cases.lifecycle import (
    LABEL_OF,
    OPEN_STATUSES,
    TRANSITIONS,
    Action,
    Disposition,
    IllegalTransitionError,
    Status,
    next_status,
)


@pytest.mark.parametrize(
    ("status", "action"), list(itertools.product(Status, Action)), ids=lambda v: v.value
)
def test_every_status_and_action_moves_or_names_the_allowed_ones(
    status: Status, action: Action
) -> None:
    allowed = TRANSITIONS[status]
    if action in allowed:
        assert next_status(status.value, action.value) is allowed[action]
        return
    with pytest.raises(IllegalTransitionError) as refused:
        next_status(status.value, action.value)
    assert refused.value.status is status
    assert refused.value.allowed == sorted(a.value for a in allowed)
    message = str(refused.value)
    assert f"cannot {action.value} a case that is {status.value}" in message
    assert message.endswith("allowed are " + ", ".join(sorted(a.value for a in allowed)))


def test_the_table_covers_every_status_and_ends_only_in_known_statuses() -> None:
    assert set(TRANSITIONS) == set(Status)
    assert {after for moves in TRANSITIONS.values() for after in moves.values()} <= set(Status)
    assert TRANSITIONS[Status.RESOLVED] == {Action.REOPEN: Status.INVESTIGATING}
    assert set(OPEN_STATUSES) == {s.value for s in Status} - {Status.RESOLVED.value}
    # every open case can be resolved and snoozed (snoozing keeps the status)
    for status in OPEN_STATUSES:
        moves = TRANSITIONS[Status(status)]
        assert moves[Action.RESOLVE] is Status.RESOLVED
        assert moves[Action.SNOOZE] is Status(status)


def test_an_unknown_action_is_a_value_error_naming_the_known_ones() -> None:
    with pytest.raises(ValueError, match="unknown action 'delete': one of assign, claim") as error:
        next_status("new", "delete")
    assert not isinstance(error.value, IllegalTransitionError)
    with pytest.raises(ValueError):
        next_status("archived", "start")  # an unknown status is refused too


def test_each_disposition_publishes_its_label() -> None:
    assert LABEL_OF == {
        Disposition.CONFIRMED_FRAUD: 1,
        Disposition.LEGITIMATE: 0,
        Disposition.INCONCLUSIVE: None,
    }
