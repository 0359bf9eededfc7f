"""What the case service refuses (each maps to one HTTP status in the case API)."""

from __future__ import annotations


class CaseError(RuntimeError):
    """Base of the case errors."""


class CaseNotFoundError(CaseError):
    """No such case, or one the person may not see (the same answer: no existence leak)."""


class VersionConflictError(CaseError):
    """The case changed since the person read it (their version is stale)."""

    def __init__(self, case_id: int, expected: int, found: int) -> None:
        super().__init__(
            f"case {case_id} changed since version {expected} (now {found}): reload it and retry"
        )
        self.found = found


class NothingToClaimError(CaseError):
    """No unassigned case is waiting in the queue."""
