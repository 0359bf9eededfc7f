"""Names used everywhere, defined once: decisions, traffic modes, variants, the model name.

Every layer may import this module; it imports nothing of the package. A name that more than
one part of the platform must spell the same way (a decision written to the alert store and
read by the canary gates, a traffic mode in a manifest annotation and in the settings) lives
here and nowhere else.
"""

from __future__ import annotations

from typing import Final, Literal, get_args

#: The three decisions a scored transaction gets.
APPROVE: Final = "approve"
REVIEW: Final = "review"
DECLINE: Final = "decline"
DECISIONS: Final = (APPROVE, REVIEW, DECLINE)
#: The type of a decision (the same three names; a ``Literal`` must spell them out).
Decision = Literal["approve", "review", "decline"]
#: Decisions that make an alert: an analyst must see the transaction.
ALERT_DECISIONS: Final = frozenset({REVIEW, DECLINE})

#: How a candidate model shares traffic with the stable one (KServe's split, A/B, shadow).
CANARY: Final = "canary"
AB: Final = "ab"
SHADOW: Final = "shadow"
#: The type of a traffic mode (the same three names; a ``Literal`` must spell them out).
TrafficMode = Literal["canary", "ab", "shadow"]
TRAFFIC_MODES: Final[tuple[TrafficMode, ...]] = get_args(TrafficMode)
#: The variant name of the stable model, and of the candidate in each traffic mode.
STABLE: Final = "champion"
VARIANT_NAMES: Final[dict[TrafficMode, str]] = {
    CANARY: "canary",
    AB: "challenger",
    SHADOW: "shadow",
}

#: The registered (and served) model name by default.
MODEL_NAME: Final = "fraud-risk"
#: MLflow registry aliases of that model. Not variant names: the served stable variant is
#: :data:`STABLE` whichever version holds the champion alias, and an A/B candidate is the
#: ``challenger`` variant whether or not its version holds the challenger alias.
CHAMPION_ALIAS: Final = "champion"
CHALLENGER_ALIAS: Final = "challenger"
#: The model served and monitored by default: the registry's champion.
CHAMPION_URI: Final = f"models:/{MODEL_NAME}@{CHAMPION_ALIAS}"
