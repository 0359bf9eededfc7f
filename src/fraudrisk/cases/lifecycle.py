"""The life of a case: statuses, the actions that move it, and which moves are legal.

::

    new ──assign/claim──► assigned ──start──► investigating ──escalate──► escalated
     │                      │                     │                          │
     └─────────── resolve (confirmed-fraud | legitimate | inconclusive) ───┘──► resolved
    resolved ──reopen──► investigating
    snooze (with a wake-up time) keeps the status; comments are allowed in every status.

An illegal move is refused naming the moves that are allowed from where the case is.
"""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    """Where a case is in its life."""

    NEW = "new"
    ASSIGNED = "assigned"
    INVESTIGATING = "investigating"
    ESCALATED = "escalated"
    RESOLVED = "resolved"


class Action(StrEnum):
    """What a person does to a case."""

    ASSIGN = "assign"
    CLAIM = "claim"
    START = "start"
    ESCALATE = "escalate"
    RESOLVE = "resolve"
    REOPEN = "reopen"
    SNOOZE = "snooze"
    UNASSIGN = "unassign"


class Disposition(StrEnum):
    """How a case was resolved; it decides the label the resolution publishes."""

    CONFIRMED_FRAUD = "confirmed-fraud"
    LEGITIMATE = "legitimate"
    INCONCLUSIVE = "inconclusive"


#: The label a disposition publishes (inconclusive publishes none).
LABEL_OF: dict[Disposition, int | None] = {
    Disposition.CONFIRMED_FRAUD: 1,
    Disposition.LEGITIMATE: 0,
    Disposition.INCONCLUSIVE: None,
}

_OPEN = (Status.NEW, Status.ASSIGNED, Status.INVESTIGATING, Status.ESCALATED)
#: status → action → the status after it.
TRANSITIONS: dict[Status, dict[Action, Status]] = {
    Status.NEW: {
        Action.ASSIGN: Status.ASSIGNED,
        Action.CLAIM: Status.ASSIGNED,
        Action.RESOLVE: Status.RESOLVED,
        Action.SNOOZE: Status.NEW,
        Action.ESCALATE: Status.ESCALATED,
    },
    Status.ASSIGNED: {
        Action.ASSIGN: Status.ASSIGNED,
        Action.START: Status.INVESTIGATING,
        Action.ESCALATE: Status.ESCALATED,
        Action.RESOLVE: Status.RESOLVED,
        Action.SNOOZE: Status.ASSIGNED,
        Action.UNASSIGN: Status.NEW,
    },
    Status.INVESTIGATING: {
        Action.ASSIGN: Status.ASSIGNED,
        Action.ESCALATE: Status.ESCALATED,
        Action.RESOLVE: Status.RESOLVED,
        Action.SNOOZE: Status.INVESTIGATING,
        Action.UNASSIGN: Status.NEW,
    },
    Status.ESCALATED: {
        Action.ASSIGN: Status.ESCALATED,
        Action.CLAIM: Status.ESCALATED,
        Action.START: Status.INVESTIGATING,
        Action.RESOLVE: Status.RESOLVED,
        Action.SNOOZE: Status.ESCALATED,
    },
    Status.RESOLVED: {Action.REOPEN: Status.INVESTIGATING},
}
OPEN_STATUSES: tuple[str, ...] = tuple(s.value for s in _OPEN)


class IllegalTransitionError(ValueError):
    """An action that is not allowed from the case's status (the API's 409)."""

    def __init__(self, status: Status, action: str) -> None:
        self.status = status
        self.allowed = sorted(a.value for a in TRANSITIONS[status])
        super().__init__(
            f"cannot {action} a case that is {status.value}: allowed are {', '.join(self.allowed)}"
        )


def next_status(status: str, action: str) -> Status:
    """The status after an action.

    Raises:
        IllegalTransitionError: If the action is not allowed from ``status``.
        ValueError: For an unknown action.
    """
    current = Status(status)
    try:
        chosen = Action(action)
    except ValueError:
        raise ValueError(
            f"unknown action {action!r}: one of {', '.join(a.value for a in Action)}"
        ) from None
    after = TRANSITIONS[current].get(chosen)
    if after is None:
        raise IllegalTransitionError(current, chosen.value)
    return after
