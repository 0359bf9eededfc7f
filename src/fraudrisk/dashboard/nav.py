"""The pages of the dashboard, each with the permission it needs: the nav and the page guards.

One table decides both what the navigation shows a person and what a page refuses (403), so
a link is never shown for a page that would refuse, nor a page reachable that its link hides.
The rule of who may do what stays in the identity and case services: a page only asks them.
"""

from __future__ import annotations

from dataclasses import dataclass

from fraudrisk.identity.principal import Principal
from fraudrisk.identity.roles import Permission


@dataclass(frozen=True)
class Link:
    """A page in the navigation."""

    key: str
    label: str
    path: str
    permission: Permission


LINKS: tuple[Link, ...] = (
    Link("my-queue", "My queue", "/queue", Permission.CASES_READ),
    Link("queues", "Team queues", "/queues", Permission.CASES_READ),
    Link("policies", "Policies", "/policies", Permission.POLICY_READ),
    Link("live", "Live monitor", "/live", Permission.MONITORING_READ),
    Link("users", "Users", "/admin/users", Permission.USERS_MANAGE),
)
PAGES = {link.key: link for link in LINKS}
#: The steps of the policy pages and the permission each needs. It decides which buttons a
#: person sees; :class:`~fraudrisk.policy.versions.PolicyVersions` checks again (and four eyes).
POLICY_STEPS: dict[str, Permission] = {
    "draft": Permission.POLICY_AUTHOR,
    "submit": Permission.POLICY_AUTHOR,
    "approve": Permission.POLICY_APPROVE,
    "reject": Permission.POLICY_APPROVE,
    "activate": Permission.POLICY_APPROVE,
}


def links_for(principal: Principal) -> list[Link]:
    """The links the person's role permits, in the navigation's order."""
    return [link for link in LINKS if principal.can(link.permission)]


def guard(principal: Principal, key: str) -> None:
    """Refuse a page the person's role does not permit.

    Raises:
        PermissionDeniedError: Naming the permission the page needs.
    """
    principal.require(PAGES[key].permission)


def may(principal: Principal, step: str) -> bool:
    """Whether the person's role permits a policy step (:data:`POLICY_STEPS`)."""
    return principal.can(POLICY_STEPS[step])


def guard_step(principal: Principal, step: str) -> None:
    """Refuse a policy step (or its form) the person's role does not permit.

    Raises:
        PermissionDeniedError: Naming the permission the step needs.
    """
    principal.require(POLICY_STEPS[step])
