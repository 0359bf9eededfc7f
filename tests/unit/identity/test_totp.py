"""TOTP codes: valid one step either side of now, each step usable once."""

from __future__ import annotations

import datetime as dt
from urllib.parse import parse_qs, urlparse

import pyotp
import pytest

from fraudrisk.identity import totp

SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
NOW = dt.datetime(2026, 3, 2, 9, 0, 1)  # one second into its step
STEP = int(NOW.replace(tzinfo=dt.UTC).timestamp()) // totp.STEP_SECONDS


def code_at_step(offset: int) -> str:
    return totp.code_at(SECRET, NOW + dt.timedelta(seconds=offset * totp.STEP_SECONDS))


def test_a_new_secret_is_160_bits_of_base32() -> None:
    secrets = {totp.new_secret() for _ in range(20)}
    assert len(secrets) == 20
    assert all(len(s) == 32 and set(s) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") for s in secrets)


def test_the_provisioning_uri_names_user_issuer_and_secret() -> None:
    uri = totp.provisioning_uri(SECRET, "ana", "fraudrisk")
    parsed = urlparse(uri)
    assert (parsed.scheme, parsed.netloc, parsed.path) == ("otpauth", "totp", "/fraudrisk:ana")
    assert parse_qs(parsed.query) == {"secret": [SECRET], "issuer": ["fraudrisk"]}


def test_code_at_is_the_rfc_6238_code() -> None:
    expected = pyotp.TOTP(SECRET).at(NOW.replace(tzinfo=dt.UTC))
    assert totp.code_at(SECRET, NOW) == expected
    assert totp.code_at(SECRET, NOW.replace(tzinfo=dt.UTC)) == expected


@pytest.mark.parametrize(
    ("offset", "accepted"), [(-2, False), (-1, True), (0, True), (1, True), (2, False)]
)
def test_a_code_is_valid_one_step_either_side(offset: int, accepted: bool) -> None:
    step = totp.accepted_step(SECRET, code_at_step(offset), NOW, None)
    assert step == (STEP + offset if accepted else None)


def test_a_step_is_used_once() -> None:
    current = code_at_step(0)
    assert totp.accepted_step(SECRET, current, NOW, STEP - 1) == STEP
    assert totp.accepted_step(SECRET, current, NOW, STEP) is None  # replayed
    assert totp.accepted_step(SECRET, code_at_step(-1), NOW, STEP) is None  # older than used
    assert totp.accepted_step(SECRET, code_at_step(1), NOW, STEP) == STEP + 1


@pytest.mark.parametrize("malformed", ["", "12345", "1234567", "12a456", "abcdef"])
def test_malformed_codes_are_refused(malformed: str) -> None:
    assert totp.accepted_step(SECRET, malformed, NOW, None) is None


def test_spaces_around_and_inside_a_code_are_ignored() -> None:
    current = code_at_step(0)
    assert totp.accepted_step(SECRET, f" {current[:3]} {current[3:]} ", NOW, None) == STEP


def test_another_seeds_code_is_refused() -> None:
    other = totp.code_at("KRSXG5CTMVRXEZLUKRSXG5CTMVRXEZLU", NOW)  # fixed: no chance agreement
    assert other not in {code_at_step(offset) for offset in (-1, 0, 1)}
    assert totp.accepted_step(SECRET, other, NOW, None) is None
