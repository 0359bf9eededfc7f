"""Card numbers (PANs) become keyed tokens at the edge: HMAC-SHA256 under a secret key.

A PAN is checked (digits, length, Luhn) and turned into ``card_token`` before anything else
sees the transaction; the clear number is never stored, logged, produced or echoed. The same
PAN under the same key always gives the same token (so features can group by card); another
key gives unrelated tokens, and without the key a token cannot be linked back to a PAN by
enumerating card numbers.
"""

from __future__ import annotations

import hashlib
import hmac
import re

from pydantic import SecretStr

#: Token prefix: the scheme and its version, so a change of scheme is visible in the data.
TOKEN_PREFIX = "ct1_"
#: Card numbers are 12 to 19 digits (ISO/IEC 7812); spaces and dashes between digits are allowed.
PAN_LENGTHS = range(12, 20)
_SEPARATORS = re.compile(r"[ -]")
_LUHN_LIKE = re.compile(r"(?<!\d)\d(?:[ -]?\d){11,18}(?!\d)")
_REDACTED = "<redacted>"


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


def normalise_pan(text: str) -> str:
    """The digits of a card number as sent (spaces and dashes removed).

    Raises:
        ValueError: If it is not 12-19 digits or fails the Luhn check (the message never
            contains the number).
    """
    digits = _SEPARATORS.sub("", text)
    if not digits.isascii() or not digits.isdigit():
        raise ValueError("must be 12-19 digits (spaces and dashes allowed)")
    if len(digits) not in PAN_LENGTHS:
        raise ValueError("must be 12-19 digits long")
    if not luhn_valid(digits):
        raise ValueError("is not a valid card number (Luhn check failed)")
    return digits


def redact_card_numbers(text: str) -> str:
    """``text`` with every run of 12-19 digits that passes the Luhn check replaced.

    Defence in depth for messages built from client input (e.g. a field name).
    """

    def replace(match: re.Match[str]) -> str:
        digits = _SEPARATORS.sub("", match.group(0))
        return _REDACTED if luhn_valid(digits) else match.group(0)

    return _LUHN_LIKE.sub(replace, text)


class PanTokenizer:
    """Keyed tokens of card numbers: ``ct1_`` + hex HMAC-SHA256(key, digits)."""

    def __init__(self, key: SecretStr) -> None:
        """Bind the tokenizer to its key.

        Raises:
            ValueError: If the key is shorter than 16 bytes.
        """
        secret = key.get_secret_value().encode()
        if len(secret) < 16:
            raise ValueError("the card token key must be at least 16 bytes")
        self._key = secret

    def __repr__(self) -> str:
        return "PanTokenizer(key=********)"

    def token(self, pan: SecretStr) -> str:
        """The token of a card number (validated and normalised first).

        Raises:
            ValueError: If it is not a valid card number.
        """
        digits = normalise_pan(pan.get_secret_value())
        digest = hmac.new(self._key, digits.encode(), hashlib.sha256).hexdigest()
        return TOKEN_PREFIX + digest
