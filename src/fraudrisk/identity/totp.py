"""TOTP (RFC 6238) second factor, each code usable once.

A code is accepted for the current 30-second step or one step either side (clock skew), and
only for a step later than the last one accepted: a code seen once (shoulder-surfed,
replayed from a log) cannot log in again.
"""

from __future__ import annotations

import datetime as dt

import pyotp

STEP_SECONDS = 30
SKEW_STEPS = 1


def new_secret() -> str:
    """A fresh base32 TOTP seed (160 bits)."""
    return pyotp.random_base32(32)


def provisioning_uri(secret: str, username: str, issuer: str) -> str:
    """The ``otpauth://`` URI an authenticator app enrols (shown once, as text or QR code)."""
    return pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=issuer)


def accepted_step(secret: str, code: str, now: dt.datetime, last_step: int | None) -> int | None:
    """The time step a code belongs to, if it is valid now and newer than ``last_step``.

    Returns:
        The step to remember as the last used, or ``None`` to refuse the code.
    """
    code = code.strip().replace(" ", "")
    if not (code.isdigit() and len(code) == 6):
        return None
    totp = pyotp.TOTP(secret)
    current = int(now.replace(tzinfo=dt.UTC).timestamp()) // STEP_SECONDS
    for step in range(current - SKEW_STEPS, current + SKEW_STEPS + 1):
        if totp.verify(code, for_time=step * STEP_SECONDS) and (
            last_step is None or step > last_step
        ):
            return step
    return None


def code_at(secret: str, when: dt.datetime) -> str:
    """The code of a seed at a time (for tests and the demo's scripted analyst)."""
    return pyotp.TOTP(secret).at(when.replace(tzinfo=dt.UTC))
