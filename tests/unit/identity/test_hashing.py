"""Password hashes (Argon2id, the real parameters), token hashes and sealed seeds."""

from __future__ import annotations

import hashlib
import re
import stat
from pathlib import Path

import pytest
from argon2 import extract_parameters
from cryptography.fernet import Fernet

from fraudrisk.identity import hashing
from fraudrisk.identity.sealing import Sealer, SealError

PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="module")
def stored() -> str:
    """One hash with the platform's parameters (the only real-cost hash of the module)."""
    return hashing.hash_password(PASSWORD)


def test_a_password_is_hashed_with_argon2id_and_rfc9106_parameters(stored: str) -> None:
    assert stored.startswith("$argon2id$v=19$")
    parameters = extract_parameters(stored)
    assert (parameters.memory_cost, parameters.time_cost, parameters.parallelism) == (
        65536,
        3,
        4,
    )
    assert PASSWORD not in stored


def test_only_the_right_password_verifies(stored: str) -> None:
    assert hashing.verify_password(stored, PASSWORD)
    assert not hashing.verify_password(stored, PASSWORD.upper())
    assert not hashing.verify_password("not a hash", PASSWORD)
    assert not hashing.verify_password(None, PASSWORD)  # no hash: never (after the same work)


def test_the_same_password_hashes_differently(stored: str, monkeypatch) -> None:
    from argon2 import PasswordHasher

    monkeypatch.setattr(hashing, "_HASHER", PasswordHasher(1, 1024, 1))
    again = hashing.hash_password(PASSWORD)
    assert again != stored and again.split("$")[4] != stored.split("$")[4]  # fresh salt
    assert hashing.verify_password(again, PASSWORD)


def test_a_short_password_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 12 characters"):
        hashing.hash_password("x" * 11)


def test_tokens_are_random_prefixed_and_stored_as_sha256() -> None:
    tokens = {hashing.new_token(hashing.SESSION_PREFIX) for _ in range(100)}
    assert len(tokens) == 100
    assert all(t.startswith("frs_") and len(t) == 4 + 43 for t in tokens)
    token = hashing.new_token(hashing.API_TOKEN_PREFIX)
    assert token.startswith("frp_")
    assert hashing.token_hash(token) == hashlib.sha256(token.encode()).hexdigest()
    assert re.fullmatch(r"[0-9a-f]{64}", hashing.token_hash(token))


def test_recovery_codes() -> None:
    codes = hashing.new_recovery_codes()
    assert len(codes) == len(set(codes)) == 10
    assert all(
        re.fullmatch(r"[a-hjkmnp-z2-9]{4}-[a-hjkmnp-z2-9]{4}-[a-hjkmnp-z2-9]{4}", c) for c in codes
    )
    assert len(hashing.new_recovery_codes(3)) == 3


def test_a_sealed_secret_opens_only_with_its_key() -> None:
    sealer = Sealer(Fernet.generate_key())
    sealed = sealer.seal("JBSWY3DPEHPK3PXP")
    assert "JBSWY3DPEHPK3PXP" not in sealed and sealed != sealer.seal("JBSWY3DPEHPK3PXP")
    assert sealer.open(sealed) == "JBSWY3DPEHPK3PXP"
    with pytest.raises(SealError, match="does not open with this key"):
        Sealer(Fernet.generate_key()).open(sealed)
    with pytest.raises(SealError):
        sealer.open(sealed[:-4] + "AAAA")


def test_the_embedded_key_file_is_made_once_readable_by_the_owner_only(tmp_path: Path) -> None:
    key_file = tmp_path / "home" / "identity.key"
    first = Sealer.from_key_file(key_file)
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    key = key_file.read_bytes()
    second = Sealer.from_key_file(key_file)
    assert key_file.read_bytes() == key
    assert second.open(first.seal("seed")) == "seed"
