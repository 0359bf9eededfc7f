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

from pydantic import SecretStr

from fraudrisk.cards import SEPARATORS, luhn_valid, redact_card_numbers

__all__ = ["luhn_valid", "redact_card_numbers"]

#: Token prefix: the scheme and its version, so a change of scheme is visible in the data.
TOKEN_PREFIX = "ct1_"
#: Card numbers are 12 to 19 digits (ISO/IEC 7812); spaces and dashes between digits are allowed.
PAN_LENGTHS = range(12, 20)


def normalise_pan(text: str) -> str:
    """The digits of a card number as sent (spaces and dashes removed).

    Raises:
        ValueError: If it is not 12-19 digits or fails the Luhn check (the message never
            contains the number).
    """
    digits = SEPARATORS.sub("", text)
    if not digits.isascii() or not digits.isdigit():
        raise ValueError("must be 12-19 digits (spaces and dashes allowed)")
    if len(digits) not in PAN_LENGTHS:
        raise ValueError("must be 12-19 digits long")
    if not luhn_valid(digits):
        raise ValueError("is not a valid card number (Luhn check failed)")
    return digits


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
