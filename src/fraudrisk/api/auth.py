"""Who is calling, and may they: API keys (stored hashed) and JWT bearer tokens.

* **API keys** (``X-API-Key``): random 256-bit secrets made by ``fraudrisk api keys create``;
  the settings hold only ``sha256:<hex>`` of each. A key is high-entropy, so one SHA-256 is
  the right hash (a slow password hash protects guessable secrets, which these are not). The
  presented key's hash is compared with *every* stored hash in constant time.
* **JWT** (``Authorization: Bearer``): the ``alg`` of the header must be one of the configured
  algorithms (``none`` never is); HS* tokens are checked with the HMAC secret only and every
  other algorithm with the public key only, so a token "signed" with the public key as an HMAC
  secret (key confusion) fails. ``iss``, ``aud``, ``exp`` and ``sub`` are required, ``nbf`` is
  honoured, with the configured leeway. Scopes come from ``scope`` (space separated) or ``scp``.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Any, Literal

import jwt
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from fraudrisk.config import ApiSettings

SCOPE_WRITE = "transactions:write"
SCOPE_STREAM = "scores:read"
API_KEY_HEADER = "X-API-Key"
KEY_PREFIX = "frk_"
HASH_PREFIX = "sha256:"
#: The challenge of every 401 (RFC 9110 §11.6.1): a bearer token or an API key.
CHALLENGE = 'Bearer realm="fraudrisk", ApiKey realm="fraudrisk" header="X-API-Key"'
_MIN_HMAC_SECRET = 32


@dataclass(frozen=True)
class Principal:
    """An authenticated caller: a client id (rate limits, metrics) and its scopes."""

    client: str
    scopes: frozenset[str]
    method: Literal["api_key", "jwt"]


class AuthError(Exception):
    """No valid identity (HTTP 401); the message says why without echoing credentials."""

    def __init__(self, reason: str, challenge: str = CHALLENGE) -> None:
        super().__init__(reason)
        self.reason = reason
        self.challenge = challenge


class ScopeError(Exception):
    """A valid identity without the scope an operation needs (HTTP 403)."""

    def __init__(self, principal: Principal, scope: str) -> None:
        super().__init__(f"client {principal.client!r} lacks the scope {scope!r}")
        self.scope = scope
        self.challenge = f'Bearer realm="fraudrisk", error="insufficient_scope", scope="{scope}"'


def new_api_key() -> str:
    """A fresh API key: ``frk_`` + 43 URL-safe characters (256 random bits)."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_api_key(key: str) -> str:
    """The stored form of a key: ``sha256:<hex>``."""
    return HASH_PREFIX + hashlib.sha256(key.encode()).hexdigest()


class Authenticator:
    """Checks API keys and bearer tokens against the API settings."""

    def __init__(self, api: ApiSettings) -> None:
        """Prepare the keys and JWT verification keys.

        Raises:
            ValueError: If JWT is enabled with an algorithm whose key is missing or invalid.
        """
        self._keys = [
            (
                bytes.fromhex(entry.key_hash.removeprefix(HASH_PREFIX)),
                entry.client,
                frozenset(entry.scopes),
            )
            for entry in api.keys
        ]
        self._api = api
        self._algorithms = [a for a in api.jwt_algorithms if a.lower() != "none"]
        self._public_key: Any = None
        self._secret = api.jwt_secret.get_secret_value().encode()
        if api.jwt_issuer:
            self._check_jwt_keys()

    @property
    def jwt_enabled(self) -> bool:
        """Whether bearer tokens are accepted (an issuer is configured)."""
        return bool(self._api.jwt_issuer)

    def _check_jwt_keys(self) -> None:
        symmetric = [a for a in self._algorithms if a.startswith("HS")]
        if symmetric and len(self._secret) < _MIN_HMAC_SECRET:
            raise ValueError(
                f"{symmetric} allowed: set FRAUDRISK_API__JWT_SECRET "
                f"(at least {_MIN_HMAC_SECRET} bytes)"
            )
        if len(symmetric) < len(self._algorithms):
            if not self._api.jwt_public_key.strip():
                raise ValueError(
                    "asymmetric JWT algorithms allowed: set FRAUDRISK_API__JWT_PUBLIC_KEY"
                )
            self._public_key = load_pem_public_key(self._api.jwt_public_key.encode())

    def authenticate(self, api_key: str | None, bearer: str | None) -> Principal:
        """The caller of a request carrying these credentials.

        Raises:
            AuthError: If none is given or the given one is not valid.
        """
        if api_key:
            return self._by_api_key(api_key)
        if bearer:
            return self._by_token(bearer)
        raise AuthError("missing credentials: send X-API-Key or Authorization: Bearer <JWT>")

    @staticmethod
    def authorize(principal: Principal, scope: str) -> None:
        """Check a scope.

        Raises:
            ScopeError: If the principal does not have it.
        """
        if scope not in principal.scopes:
            raise ScopeError(principal, scope)

    def _by_api_key(self, key: str) -> Principal:
        digest = hashlib.sha256(key.encode(errors="replace")).digest()
        found: tuple[str, frozenset[str]] | None = None
        for stored, client, scopes in self._keys:  # no early exit: same time for every key
            if hmac.compare_digest(digest, stored) and found is None:
                found = (client, scopes)
        if found is None:
            raise AuthError("invalid API key")
        return Principal(found[0], found[1], "api_key")

    def _by_token(self, token: str) -> Principal:
        bearer = 'Bearer realm="fraudrisk", error="invalid_token"'
        if not self.jwt_enabled:
            raise AuthError("bearer tokens are not accepted by this server", bearer)
        try:
            alg = jwt.get_unverified_header(token).get("alg")
        except jwt.InvalidTokenError:
            raise AuthError("malformed bearer token", bearer) from None
        if alg not in self._algorithms:
            raise AuthError(f"token algorithm not accepted (allowed: {self._algorithms})", bearer)
        key = self._secret if str(alg).startswith("HS") else self._public_key
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[str(alg)],
                audience=self._api.jwt_audience,
                issuer=self._api.jwt_issuer,
                leeway=self._api.jwt_leeway_s,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except jwt.InvalidTokenError as error:
            raise AuthError(f"invalid bearer token: {_why(error)}", bearer) from None
        return Principal(f"jwt:{str(claims['sub'])[:128]}", _scopes(claims), "jwt")


def _why(error: jwt.InvalidTokenError) -> str:
    reasons: list[tuple[type[Exception], str]] = [
        (jwt.ExpiredSignatureError, "expired"),
        (jwt.ImmatureSignatureError, "not valid yet (nbf/iat)"),
        (jwt.InvalidAudienceError, "wrong audience"),
        (jwt.InvalidIssuerError, "wrong issuer"),
        (jwt.MissingRequiredClaimError, "a required claim (exp, iss, aud, sub) is missing"),
        (jwt.InvalidSignatureError, "bad signature"),
    ]
    for kind, text in reasons:
        if isinstance(error, kind):
            return text
    return "cannot be verified"


def _scopes(claims: dict[str, Any]) -> frozenset[str]:
    scope = claims.get("scope", claims.get("scp", ""))
    if isinstance(scope, str):
        return frozenset(scope.split())
    if isinstance(scope, list):
        return frozenset(str(s) for s in scope)
    return frozenset()
