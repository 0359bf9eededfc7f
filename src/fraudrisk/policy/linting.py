"""The real lint of stored versions: what may be drafted is what ``fraudrisk policy lint`` accepts.

:class:`~fraudrisk.policy.versions.PolicyVersions` takes its lint as a function (its tests use
a stand-in); :func:`policy_lint` is the one the CLI and the case API give it: the policy is
parsed and type-checked (:func:`~fraudrisk.policy.loader.lint_text`) against an environment of
the transaction fields, the features and the queue names a ``route`` rule may name.

The queue names come from the case routing file, which this package does not read (policy sits
below cases): the caller reads it and passes the names to :func:`policy_environment`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence

import yaml
from sqlalchemy.engine import Engine

from fraudrisk.features.definitions import ALL_FEATURES, Feature
from fraudrisk.io.database import utcnow
from fraudrisk.policy.loader import lint_text
from fraudrisk.policy.tables import POLICY_VERSIONS
from fraudrisk.policy.types import Environment
from fraudrisk.policy.versions import Lint, PolicyVersions

#: The longest version name the table holds.
NAME_LENGTH: int = getattr(POLICY_VERSIONS.c.name.type, "length", None) or 64


def policy_environment(
    queues: Iterable[str] | None = None, features: Sequence[Feature] = ALL_FEATURES
) -> Environment:
    """Every transaction field, the features, ``risk`` and ``reasons``; routes to ``queues``.

    Args:
        queues: The queue names a ``route`` rule may use (those of the case routing file);
            None accepts any name.
        features: The features rules may read (default: every defined feature).
    """
    return Environment.standard(features=features, queues=queues)


def policy_lint(environment: Environment) -> Lint:
    """A :data:`~fraudrisk.policy.versions.Lint` checking texts against ``environment``.

    Each error is ``source:line:column: message``, as ``fraudrisk policy lint`` prints it.
    """

    def lint(text: str, source: str) -> list[str]:
        return [str(problem) for problem in lint_text(text, source, environment)]

    return lint


def policy_versions(
    engine: Engine,
    environment: Environment | None = None,
    clock: Callable[[], dt.datetime] = utcnow,
) -> PolicyVersions:
    """The versions of ``engine``'s database, linted against ``environment`` [any queue]."""
    return PolicyVersions(engine, policy_lint(environment or policy_environment()), clock)


def name_of(text: str, fallback: str) -> str:
    """The ``name`` a policy text gives itself (``fallback`` when it has none it can give)."""
    try:
        data = yaml.safe_load(text)
    except (yaml.YAMLError, RecursionError):  # not YAML (the lint says why)
        return fallback[:NAME_LENGTH]
    name = data.get("name") if isinstance(data, dict) else None
    return (name if isinstance(name, str) and name else fallback)[:NAME_LENGTH]
