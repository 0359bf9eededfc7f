"""Hashes of what people present: passwords (Argon2id) and random tokens (SHA-256).

A password is guessable, so it gets a slow, memory-hard hash (Argon2id, argon2-cffi's
RFC 9106 low-memory profile). A session token, API token or recovery code is 256 (codes: 60)
random bits, so one SHA-256 is the right hash: nothing to guess, and lookup stays an index hit.
"""

from __future__ import annotations

import hashlib
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_HASHER = PasswordHasher()  # Argon2id, t=3, m=64 MiB, p=4 (argon2-cffi's defaults)
#: Token prefixes say what a leaked secret is (secret scanners match them).
SESSION_PREFIX = "frs_"
API_TOKEN_PREFIX = "frp_"
MIN_PASSWORD_LENGTH = 12


def hash_password(password: str) -> str:
    """The Argon2id hash of a password.

    Raises:
        ValueError: If the password is shorter than :data:`MIN_PASSWORD_LENGTH`.
    """
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"a password has at least {MIN_PASSWORD_LENGTH} characters")
    return _HASHER.hash(password)


def verify_password(stored_hash: str | None, password: str) -> bool:
    """Whether the password matches the stored hash (no hash: never)."""
    if not stored_hash:
        _HASHER.hash(password)  # the same work either way: no user enumeration by timing
        return False
    try:
        return _HASHER.verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def new_token(prefix: str) -> str:
    """A fresh random token (256 bits) with its prefix."""
    return prefix + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    """The stored form of a random token or recovery code."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_recovery_codes(count: int = 10) -> list[str]:
    """One-time recovery codes, ``xxxx-xxxx-xxxx`` (60 random bits each)."""
    alphabet = "abcdefghjkmnpqrstuvwxyz23456789"
    return [
        "-".join("".join(secrets.choice(alphabet) for _ in range(4)) for _ in range(3))
        for _ in range(count)
    ]
