"""Policy versions and four eyes: draft → pending → approved → active → retired.

Every version of the decision policy is kept (its YAML text, its digest, who wrote it, who
approved it, when each step happened) in the application database (``policy_versions``, made by
the migrations). A version is numbered in order of drafting. Its life:

::

    draft ──submit──► pending ──approve (another risk manager)──► approved ──activate──► active
      │                  └──reject──► rejected                                            │
      └──(a new draft is another version)                     the next activation ──► retired
    rollback --to N: a retired version becomes active again (the current one retires)

**Four eyes**: approving needs ``policy:approve`` and is refused to the version's author, so a
policy goes live only when two people agreed. Activation and rollback need ``policy:approve``
too. A text that does not lint (parse and type-check) is never stored, so it can never become
active. Every step is an entry of the audit log, written in the step's own transaction, and at
most one version is active (a unique partial index; every step takes the database's write lock
on SQLite, an advisory lock on PostgreSQL, so racing activations queue up).
"""

from __future__ import annotations

import datetime as dt
import difflib
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from fraudrisk.identity import audit
from fraudrisk.identity.principal import Principal
from fraudrisk.identity.roles import Permission
from fraudrisk.io.database import inserted_id, lock_for_write, utcnow
from fraudrisk.policy.tables import POLICY_VERSIONS

_PG_POLICY_LOCK = 7_310_003  # advisory lock: policy steps one at a time
#: Lints a policy text (the file name for messages): its errors, ``file:line:col: message``.
Lint = Callable[[str, str], Sequence[str]]


class VersionStatus(StrEnum):
    """Where a policy version is in its life."""

    DRAFT = "draft"
    PENDING = "pending"
    APPROVED = "approved"
    ACTIVE = "active"
    RETIRED = "retired"
    REJECTED = "rejected"


class PolicyError(Exception):
    """A policy step that cannot be done (the API maps each kind to its status)."""


class UnknownVersionError(PolicyError):
    """No such version (404)."""


class InvalidPolicyError(PolicyError, ValueError):
    """The text does not lint (422); ``errors`` are ``file:line:col: message``."""

    def __init__(self, errors: Sequence[str]) -> None:
        self.errors = list(errors)
        shown = "; ".join(self.errors[:5]) + (" …" if len(self.errors) > 5 else "")
        super().__init__(f"the policy has {len(self.errors)} error(s): {shown}")


class StepNotAllowedError(PolicyError):
    """The step is not allowed from the version's status (409); ``allowed`` names those that are."""

    def __init__(self, version: int, status: VersionStatus, step: str) -> None:
        self.status = status
        self.allowed = sorted(step for step, (before, _) in _STEPS.items() if status in before)
        super().__init__(
            f"cannot {step} version {version}: it is {status.value}"
            + (f" (allowed: {', '.join(self.allowed)})" if self.allowed else "")
        )


class FourEyesError(PolicyError):
    """The author tried to approve their own version (403)."""


#: step → (the statuses it starts from, the status it leads to).
_STEPS: dict[str, tuple[frozenset[VersionStatus], VersionStatus]] = {
    "submit": (frozenset({VersionStatus.DRAFT}), VersionStatus.PENDING),
    "approve": (frozenset({VersionStatus.PENDING}), VersionStatus.APPROVED),
    "reject": (frozenset({VersionStatus.PENDING}), VersionStatus.REJECTED),
    "activate": (frozenset({VersionStatus.APPROVED}), VersionStatus.ACTIVE),
    "rollback": (frozenset({VersionStatus.RETIRED}), VersionStatus.ACTIVE),
}


@dataclass(frozen=True)
class PolicyVersion:
    """One stored version."""

    number: int
    name: str
    status: VersionStatus
    digest: str
    text: str
    based_on: int | None
    author: str
    created_at: dt.datetime
    note: str
    submitted_at: dt.datetime | None
    approver: str | None
    approved_at: dt.datetime | None
    activated_by: str | None
    activated_at: dt.datetime | None
    retired_at: dt.datetime | None

    @classmethod
    def of_row(cls, row: Any) -> PolicyVersion:
        """The version of a ``policy_versions`` row."""
        values = dict(row._mapping)
        values["number"] = values.pop("id")
        values["status"] = VersionStatus(values["status"])
        values["text"] = values.pop("document")
        return cls(**values)


def digest_of(text: str) -> str:
    """The SHA-256 of a policy text (what the scorer records with each decision)."""
    return hashlib.sha256(text.encode()).hexdigest()


class PolicyVersions:
    """The versions of the decision policy in one application database."""

    def __init__(self, engine: Engine, lint: Lint, clock: Callable[[], dt.datetime] = utcnow):
        """Versions in ``engine``'s database; ``lint`` decides what may be stored."""
        self.engine, self.lint, self.clock = engine, lint, clock

    def draft(
        self,
        principal: Principal,
        name: str,
        text: str,
        note: str = "",
        based_on: int | None = None,
        source: str | None = None,
    ) -> PolicyVersion:
        """Store a new draft (``policy:author``).

        Args:
            principal: Who writes it (the author).
            name: The policy's name.
            text: Its YAML.
            note: Why (kept with the version).
            based_on: The version it changes, if any.
            source: What lint errors start with (default: ``name``), e.g. the file's path.

        Raises:
            InvalidPolicyError: If the text does not lint.
            UnknownVersionError: If ``based_on`` is no version.
        """
        principal.require(Permission.POLICY_AUTHOR)
        errors = list(self.lint(text, source or name))
        if errors:
            raise InvalidPolicyError(errors)
        now = self.clock()
        row = {
            "name": name,
            "status": VersionStatus.DRAFT.value,
            "digest": digest_of(text),
            "document": text,
            "based_on": based_on,
            "author": principal.username,
            "created_at": now,
            "note": note,
        }
        with self.engine.begin() as connection:
            if based_on is not None:
                self._row(connection, based_on)
            number = inserted_id(connection.execute(POLICY_VERSIONS.insert().values(**row)))
            change = {"name": name, "digest": row["digest"], "based_on": based_on}
            audit.record(connection, principal.actor, "policy.draft", "policy", number, change)
        return self.get(number)

    def submit(self, principal: Principal, number: int, note: str = "") -> PolicyVersion:
        """Ask for approval of a draft (``policy:author``)."""
        principal.require(Permission.POLICY_AUTHOR)
        return self._step(principal, number, "submit", {"submitted_at": self.clock()}, note)

    def approve(self, principal: Principal, number: int, note: str = "") -> PolicyVersion:
        """Approve a pending version: the second pair of eyes (``policy:approve``, not the author).

        Raises:
            FourEyesError: If the approver wrote the version.
        """
        principal.require(Permission.POLICY_APPROVE)
        if self.get(number).author == principal.username:
            raise FourEyesError(
                f"{principal.username} wrote version {number} and may not approve it (four "
                "eyes): ask another risk manager to approve it"
            )
        values = {"approver": principal.username, "approved_at": self.clock()}
        return self._step(principal, number, "approve", values, note)

    def reject(self, principal: Principal, number: int, note: str = "") -> PolicyVersion:
        """Send a pending version back (``policy:approve``; an author may withdraw their own)."""
        if not principal.can(Permission.POLICY_APPROVE) and not self._withdraws(principal, number):
            principal.require(Permission.POLICY_APPROVE)
        return self._step(principal, number, "reject", {}, note)

    def _withdraws(self, principal: Principal, number: int) -> bool:
        """Whether an author rejects their own version (looked up only for an author)."""
        author = principal.can(Permission.POLICY_AUTHOR)
        return author and self.get(number).author == principal.username

    def activate(self, principal: Principal, number: int) -> PolicyVersion:
        """Make an approved version the active one (``policy:approve``); the active one retires."""
        principal.require(Permission.POLICY_APPROVE)
        return self._step(principal, number, "activate", self._activation(principal), "")

    def rollback(self, principal: Principal, to: int, note: str = "") -> PolicyVersion:
        """Re-activate an earlier, retired version (``policy:approve``; audited)."""
        principal.require(Permission.POLICY_APPROVE)
        return self._step(principal, to, "rollback", self._activation(principal), note)

    def _activation(self, principal: Principal) -> dict[str, Any]:
        return {
            "activated_by": principal.username,
            "activated_at": self.clock(),
            "retired_at": None,
        }

    def _step(
        self, principal: Principal, number: int, step: str, values: dict[str, Any], note: str
    ) -> PolicyVersion:
        before, after = _STEPS[step]
        with self.engine.begin() as connection:
            lock_for_write(connection, _PG_POLICY_LOCK)  # one step at a time: one active version
            row = self._row(connection, number)
            status = VersionStatus(row.status)
            if status not in before:
                raise StepNotAllowedError(number, status, step)
            if after is VersionStatus.ACTIVE:
                self._retire_active(connection)
            update = {"status": after.value, **values}
            if note:
                update["note"] = note
            connection.execute(
                POLICY_VERSIONS.update().where(POLICY_VERSIONS.c.id == number).values(**update)
            )
            change = {"from": status.value, "to": after.value, "digest": row.digest}
            if note:
                change["note"] = note
            audit.record(connection, principal.actor, f"policy.{step}", "policy", number, change)
        return self.get(number)

    def _retire_active(self, connection: Connection) -> None:
        active = POLICY_VERSIONS.c.status == VersionStatus.ACTIVE.value
        connection.execute(
            POLICY_VERSIONS.update()
            .where(active)
            .values(status=VersionStatus.RETIRED.value, retired_at=self.clock())
        )

    def _row(self, connection: Connection, number: int) -> Any:
        query = sa.select(POLICY_VERSIONS).where(POLICY_VERSIONS.c.id == number)
        row = connection.execute(query).one_or_none()
        if row is None:
            raise UnknownVersionError(f"no policy version {number}")
        return row

    def get(self, number: int) -> PolicyVersion:
        """One version.

        Raises:
            UnknownVersionError: If there is none of that number.
        """
        with self.engine.connect() as connection:
            return PolicyVersion.of_row(self._row(connection, number))

    def active(self) -> PolicyVersion | None:
        """The active version, or None before the first activation."""
        query = sa.select(POLICY_VERSIONS).where(
            POLICY_VERSIONS.c.status == VersionStatus.ACTIVE.value
        )
        with self.engine.connect() as connection:
            row = connection.execute(query).one_or_none()
        return PolicyVersion.of_row(row) if row is not None else None

    def list(self, status: VersionStatus | None = None) -> list[PolicyVersion]:
        """Every version (or those of one status), newest first."""
        query = sa.select(POLICY_VERSIONS).order_by(POLICY_VERSIONS.c.id.desc())
        if status is not None:
            query = query.where(POLICY_VERSIONS.c.status == status.value)
        with self.engine.connect() as connection:
            return [PolicyVersion.of_row(row) for row in connection.execute(query)]

    def diff(self, old: int, new: int) -> str:
        """The unified diff of two versions' texts (``v<old>`` → ``v<new>``)."""
        return text_diff(self.get(old).text, self.get(new).text, f"v{old}", f"v{new}")


def text_diff(before: str, after: str, before_label: str, after_label: str) -> str:
    """The unified diff of two policy texts (empty when they are the same)."""
    lines = difflib.unified_diff(
        before.splitlines(keepends=True),
        after.splitlines(keepends=True),
        fromfile=before_label,
        tofile=after_label,
    )
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)
