"""Secrets the platform must read back (TOTP seeds) are sealed with its key (Fernet).

The key is the ``identity.secret_key`` setting (production: from the secret store); in embedded
mode it is made once in ``FRAUDRISK_HOME/identity.key`` (mode 0600). A database dump alone
therefore reveals no TOTP seed.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken


class SealError(RuntimeError):
    """A sealed value cannot be opened (wrong or rotated key)."""


class Sealer:
    """Seal and open short secrets with one Fernet key."""

    def __init__(self, key: str | bytes) -> None:
        self._fernet = Fernet(key)

    @classmethod
    def from_key_file(cls, path: Path) -> Sealer:
        """The sealer of the key in ``path``, made there (0600) if missing."""
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "wb") as out:
                out.write(Fernet.generate_key())
        return cls(path.read_bytes().strip())

    def seal(self, secret: str) -> str:
        """The sealed form of a secret."""
        return self._fernet.encrypt(secret.encode()).decode()

    def open(self, sealed: str) -> str:
        """The secret of a sealed value.

        Raises:
            SealError: If the value was sealed with another key or altered.
        """
        try:
            return self._fernet.decrypt(sealed.encode()).decode()
        except InvalidToken:
            raise SealError("a sealed secret does not open with this key") from None
