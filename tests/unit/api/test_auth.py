"""Authentication (API keys, JWT) and authorisation (scopes): 401 with a challenge, 403."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac

import httpx2 as httpx
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from tests.unit.api.conftest import AppFactory
from tests.unit.api.helpers import (
    READER_KEY,
    WRITER_KEY,
    RsaKeys,
    api_settings,
    claims,
    forged,
    token,
    transaction,
)

from fraudrisk.api.auth import Authenticator, hash_api_key, new_api_key

HS_SECRET = "an-hmac-secret-of-at-least-32-bytes!!"


def post(client: TestClient, headers: dict[str, str]) -> httpx.Response:
    return client.post("/v1/transactions", json=transaction(), headers=headers)


def bearer(jwt_token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {jwt_token}"}


def test_api_keys(make_client: AppFactory) -> None:
    with make_client() as client:
        good = post(client, {"X-API-Key": WRITER_KEY})
        bad = post(client, {"X-API-Key": WRITER_KEY + "x"})
        missing = post(client, {})
    assert good.status_code == 200
    for response in (bad, missing):
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"].startswith('Bearer realm="fraudrisk"')
    assert bad.json()["detail"] == "invalid API key"
    assert WRITER_KEY not in bad.text


def test_new_keys_are_random_and_stored_hashed() -> None:
    key = new_api_key()
    assert key.startswith("frk_") and len(key) > 40 and key != new_api_key()
    assert hash_api_key(key) == "sha256:" + hashlib.sha256(key.encode()).hexdigest()


def test_a_valid_identity_without_the_scope_is_403(make_client: AppFactory, keys: RsaKeys) -> None:
    with make_client() as client:
        reader = post(client, {"X-API-Key": READER_KEY})
        jwt_reader = post(client, bearer(token(keys, scope="scores:read")))
    for response in (reader, jwt_reader):
        assert response.status_code == 403
        assert 'error="insufficient_scope"' in response.headers["WWW-Authenticate"]
        assert "transactions:write" in response.json()["detail"]


def test_a_good_jwt_is_accepted(make_client: AppFactory, keys: RsaKeys) -> None:
    with make_client() as client:
        scope = post(client, bearer(token(keys)))
        scp_list = post(client, bearer(token(keys, scope=None, scp=["transactions:write"])))
        metrics = client.get("/metrics").text
    assert scope.status_code == 200 and scp_list.status_code == 200
    assert 'client="jwt:svc-1"' in metrics


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"exp": dt.timedelta(minutes=-5)}, "expired"),  # offsets from the test's own now
        ({"nbf": dt.timedelta(minutes=5)}, "not valid yet"),
        ({"aud": "someone-else"}, "wrong audience"),
        ({"iss": "https://evil.test"}, "wrong issuer"),
        ({"sub": None}, "required claim"),
        ({"exp": None}, "required claim"),
    ],
    ids=["expired", "not-before", "audience", "issuer", "no-sub", "no-exp"],
)
def test_bad_claims_are_401(
    make_client: AppFactory, keys: RsaKeys, change: dict, reason: str
) -> None:
    now = dt.datetime.now(dt.UTC)
    claims = {k: now + v if isinstance(v, dt.timedelta) else v for k, v in change.items()}
    with make_client() as client:
        response = post(client, bearer(token(keys, **claims)))
    assert response.status_code == 401
    assert reason in response.json()["detail"]
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


def test_a_token_signed_by_another_key_is_401(make_client: AppFactory, keys: RsaKeys) -> None:
    from tests.unit.api.helpers import rsa_keys

    with make_client() as client:
        response = post(client, bearer(token(rsa_keys())))
    assert response.status_code == 401 and "bad signature" in response.json()["detail"]


def test_alg_none_is_401(make_client: AppFactory) -> None:
    unsigned = forged({"alg": "none", "typ": "JWT"}, claims(), None)
    with make_client(jwt_algorithms=["RS256", "HS256"], jwt_secret=SecretStr(HS_SECRET)) as client:
        response = post(client, bearer(unsigned))
    assert response.status_code == 401
    assert "algorithm not accepted" in response.json()["detail"]


@pytest.mark.parametrize("algorithms", [["RS256"], ["RS256", "HS256"]])
def test_key_confusion_is_401(make_client: AppFactory, keys: RsaKeys, algorithms: list) -> None:
    """HS256 "signed" with the RS256 public key as the HMAC secret must not pass."""
    confused = forged({"alg": "HS256", "typ": "JWT"}, claims(), keys.public_pem.encode())
    with make_client(jwt_algorithms=algorithms, jwt_secret=SecretStr(HS_SECRET)) as client:
        response = post(client, bearer(confused))
    assert response.status_code == 401


def test_negative_control_the_confused_token_is_a_valid_hmac_of_the_public_key(
    keys: RsaKeys,
) -> None:
    """A verifier keyed by the public key for every algorithm would accept it."""
    confused = forged({"alg": "HS256", "typ": "JWT"}, claims(), keys.public_pem.encode())
    signing_input, _, signature = confused.rpartition(".")
    expected = hmac.new(keys.public_pem.encode(), signing_input.encode(), hashlib.sha256).digest()
    assert base64.urlsafe_b64decode(signature + "==") == expected


def test_hs256_with_the_configured_secret_is_accepted(make_client: AppFactory) -> None:
    good = forged({"alg": "HS256", "typ": "JWT"}, claims(), HS_SECRET.encode())
    with make_client(jwt_algorithms=["HS256"], jwt_secret=SecretStr(HS_SECRET)) as client:
        response = post(client, bearer(good))
    assert response.status_code == 200


def test_bearer_tokens_are_refused_when_jwt_is_not_configured(
    make_client: AppFactory, keys: RsaKeys
) -> None:
    with make_client(jwt_issuer="") as client:
        response = post(client, bearer(token(keys)))
    assert response.status_code == 401 and "not accepted" in response.json()["detail"]


def test_unusable_jwt_settings_refuse_to_start() -> None:
    with pytest.raises(ValueError, match="JWT_SECRET"):
        Authenticator(api_settings(None, jwt_issuer="i", jwt_algorithms=["HS256"]))
    with pytest.raises(ValueError, match="JWT_PUBLIC_KEY"):
        Authenticator(api_settings(None, jwt_issuer="i", jwt_algorithms=["RS256"]))
