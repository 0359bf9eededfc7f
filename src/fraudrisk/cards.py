"""Card numbers (PANs): the Luhn check, and redaction of anything that looks like one.

Every edge that may see client bytes uses these (the API's errors, dead letters, quarantine):
a run of 12-19 digits (spaces or dashes allowed between them) that passes the Luhn check is
replaced, so a card number is never forwarded, stored or logged in clear.
"""

from __future__ import annotations

import re

SEPARATORS = re.compile(r"[ -]")
_DIGIT_RUN = re.compile(r"(?<!\d)\d(?:[ -]?\d){11,18}(?!\d)")
_DIGIT_RUN_BYTES = re.compile(rb"(?<!\d)\d(?:[ -]?\d){11,18}(?!\d)")
REDACTED = "<redacted card number>"


def luhn_valid(digits: str) -> bool:
    """Whether a string of digits passes the Luhn (mod 10) check."""
    if not digits.isdigit():
        return False
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def redact_card_numbers(text: str) -> str:
    """``text`` with every Luhn-valid run of 12-19 digits replaced."""

    def replace(match: re.Match[str]) -> str:
        digits = SEPARATORS.sub("", match.group(0))
        return REDACTED if luhn_valid(digits) else match.group(0)

    return _DIGIT_RUN.sub(replace, text)


def redact_card_numbers_bytes(payload: bytes) -> bytes:
    """The same for raw message bytes (which need not be valid UTF-8)."""

    def replace(match: re.Match[bytes]) -> bytes:
        digits = SEPARATORS.sub("", match.group(0).decode("ascii"))
        return REDACTED.encode() if luhn_valid(digits) else match.group(0)

    return _DIGIT_RUN_BYTES.sub(replace, payload)
