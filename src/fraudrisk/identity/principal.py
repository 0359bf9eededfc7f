"""Who is acting: an authenticated person, their role and effective permissions."""

from __future__ import annotations

from dataclasses import dataclass

from fraudrisk.identity.audit import Actor
from fraudrisk.identity.errors import PermissionDeniedError
from fraudrisk.identity.roles import Permission, Role


@dataclass(frozen=True)
class Principal:
    """A person authenticated by a session or a personal API token."""

    user_id: int
    username: str
    role: Role
    permissions: frozenset[Permission]
    token_id: int
    token_kind: str
    source: str = ""

    def can(self, permission: Permission) -> bool:
        """Whether the role (and the token's scopes) allow it."""
        return permission in self.permissions

    def require(self, permission: Permission) -> None:
        """Raise unless allowed.

        Raises:
            PermissionDeniedError: Naming the permission and the role.
        """
        if not self.can(permission):
            raise PermissionDeniedError(
                f"{self.username} ({self.role.value}) may not do this: it needs {permission.value}"
            )

    @property
    def actor(self) -> Actor:
        """The audit log's actor for this person."""
        return Actor(self.username, self.source or self.token_kind)
