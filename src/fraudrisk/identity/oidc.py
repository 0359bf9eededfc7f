"""Corporate login by OpenID Connect (Cognito in production): authorization code with PKCE.

:meth:`OidcLogin.begin` (``GET /v1/auth/oidc/login``) makes a fresh ``state``, ``nonce`` and
PKCE verifier, seals them with the platform key into a short-lived cookie of the browser that
starts the login (HttpOnly, SameSite=Lax, sent to the callback only) and redirects to the
authorization endpoint of the provider (discovered at
``<issuer>/.well-known/openid-configuration``, whose ``issuer`` must be the configured one).

:meth:`OidcLogin.finish` (``GET /v1/auth/oidc/callback``) checks that the cookie opens, is
recent and holds the ``state`` returned (a callback this browser did not start is refused:
no login CSRF), exchanges the code with the verifier (and the client secret, HTTP Basic), and
verifies the ID token: its signature by the JWKS key its ``kid`` names (asymmetric algorithms
only — ``none``, HMAC or a key of another type never verify), ``iss`` the issuer, ``aud`` the
client id (and ``azp`` when there are several audiences), ``exp``/``iat``/``nbf`` within the
leeway, ``nonce`` the cookie's. A username or groups claim missing from the ID token is read
from the userinfo endpoint (same ``sub`` only).

**Groups → role.** The mapping (``identity.oidc.group_roles``) is ordered: a person in several
mapped groups gets the role of the group listed first — the way Cognito's group precedence
picks one role — and a person in none is refused (403). The role is set again on every login.
The user is then provisioned or brought up to date and given a normal session by
:meth:`~fraudrisk.identity.sessions.Sessions.login_external` (a disabled user stays refused;
MFA is the provider's). Every login and every refusal is audited; no code, token or secret is
logged or audited.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import re
import secrets
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import httpx
import jwt

from fraudrisk.config import OidcSettings
from fraudrisk.identity.accounts import ExternalIdentity
from fraudrisk.identity.errors import IdentityError
from fraudrisk.identity.roles import Role
from fraudrisk.identity.sealing import SealError
from fraudrisk.identity.sessions import ExternalLoginRefusedError, IssuedToken, Sessions
from fraudrisk.io.network import is_loopback

#: The cookie carrying the sealed state, nonce and PKCE verifier of a login in progress.
COOKIE = "fraudrisk_oidc"
VIA = "oidc"
#: ID token signature algorithms accepted: asymmetric only (the provider's JWKS keys).
ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
_REQUIRED_CLAIMS = ["iss", "sub", "aud", "exp", "iat"]
_MAX_USERNAME = 64
_MAX_EXTERNAL_ID = 255
_DISCOVERY = "/.well-known/openid-configuration"


class OidcError(IdentityError):
    """An OIDC login that cannot go on; ``status`` and ``title`` are its Problem's."""

    status = 401
    title = "Unauthorized"


class OidcDisabledError(OidcError):
    """Corporate login is off (``identity.oidc.enabled``)."""

    status = 404
    title = "Not Found"


class OidcCallbackError(OidcError):
    """The callback does not prove a login: state, code, or ID token refused."""


class OidcProviderError(OidcError):
    """The identity provider cannot be reached or answers nonsense."""

    status = 502
    title = "Bad Gateway"


@dataclass(frozen=True)
class ProviderMetadata:
    """What discovery says about the provider (the endpoints the flow uses)."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    userinfo_endpoint: str | None = None


@dataclass(frozen=True)
class LoginStart:
    """Where to send the browser, and the cookie to set on it (sealed; HttpOnly, Lax)."""

    url: str
    cookie: str
    cookie_path: str
    secure: bool
    max_age: int


@dataclass(frozen=True)
class Callback:
    """The query of the provider's redirect back to us."""

    code: str = ""
    state: str = ""
    error: str = ""
    iss: str = ""


@dataclass(frozen=True)
class _Pending:
    state: str
    nonce: str
    verifier: str


def check_url(url: str, what: str) -> str:
    """The URL if it is https, or http on a loopback host.

    Raises:
        ValueError: Otherwise, naming the setting.
    """
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return url
    if parts.scheme == "http" and is_loopback(parts.hostname or ""):
        return url
    raise ValueError(f"{what} must be an https URL (http only on loopback), not {url!r}")


def groups_of(claims: Mapping[str, Any], claim: str) -> list[str]:
    """The groups a claim lists (a list of names, or one name)."""
    value = claims.get(claim)
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [group for group in value if isinstance(group, str)]
    return []


def role_for(groups: Sequence[str], mapping: Mapping[str, str]) -> tuple[Role, str] | None:
    """The role of the first group of the mapping the person is in, and that group."""
    held = set(groups)
    for group, role in mapping.items():
        if group in held:
            return Role(role), group
    return None


def _challenge(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _basic_auth(client_id: str, secret: str) -> str:
    """RFC 6749 §2.3.1: both form-encoded, then Base64."""
    pair = f"{quote(client_id, safe='')}:{quote(secret, safe='')}"
    return "Basic " + base64.b64encode(pair.encode()).decode("ascii")


class OidcLogin:
    """The OIDC login of one provider and client, over the platform's sessions."""

    def __init__(
        self, settings: OidcSettings, sessions: Sessions, http: httpx.Client | None = None
    ) -> None:
        """Check the settings (no network call: discovery waits for the first login).

        Raises:
            ValueError: For a missing issuer, client id or redirect URL, a URL neither https
                nor loopback, or a group mapped to an unknown role.
        """
        for name in ("issuer", "client_id", "redirect_url"):
            if not getattr(settings, name):
                raise ValueError(f"identity.oidc.{name} is required when OIDC login is on")
        check_url(settings.issuer, "identity.oidc.issuer")
        check_url(settings.redirect_url, "identity.oidc.redirect_url")
        for group, role in settings.group_roles.items():
            if role not in {r.value for r in Role}:
                raise ValueError(f"identity.oidc.group_roles[{group!r}]: unknown role {role!r}")
        self.settings, self.sessions = settings, sessions
        self.http = http or httpx.Client(timeout=settings.timeout_s, follow_redirects=False)
        self._lock, self._keys_lock = threading.Lock(), threading.Lock()
        self._metadata: ProviderMetadata | None = None
        self._keys: dict[str, dict[str, Any]] = {}

    # --- the two halves of the flow ------------------------------------------------------

    def begin(self) -> LoginStart:
        """Start a login: the provider's authorization URL and the cookie binding it here.

        Raises:
            OidcProviderError: If discovery fails.
        """
        metadata = self.metadata()
        pending = _Pending(
            secrets.token_urlsafe(32), secrets.token_urlsafe(32), secrets.token_urlsafe(48)
        )
        scopes = list(dict.fromkeys(["openid", *self.settings.scopes]))
        query = urlencode(
            {
                "response_type": "code",
                "client_id": self.settings.client_id,
                "redirect_uri": self.settings.redirect_url,
                "scope": " ".join(scopes),
                "state": pending.state,
                "nonce": pending.nonce,
                "code_challenge": _challenge(pending.verifier),
                "code_challenge_method": "S256",
            }
        )
        glue = "&" if "?" in metadata.authorization_endpoint else "?"
        sealed = self.sessions.sealer.seal(
            json.dumps({**pending.__dict__, "at": self.sessions.clock().isoformat()})
        )
        return LoginStart(
            url=f"{metadata.authorization_endpoint}{glue}{query}",
            cookie=sealed,
            cookie_path=self.cookie_path,
            secure=urlsplit(self.settings.redirect_url).scheme == "https",
            max_age=int(self.settings.login_minutes * 60),
        )

    @property
    def cookie_path(self) -> str:
        """The cookie goes to the callback only (the redirect URL's path)."""
        return urlsplit(self.settings.redirect_url).path or "/"

    def finish(self, callback: Callback, cookie: str | None, source: str = "") -> IssuedToken:
        """End a login: check the callback, verify the ID token, open a session.

        Raises:
            OidcCallbackError: The state, the code or the ID token is refused (401).
            ExternalLoginRefusedError: No mapped group, a disabled user, a username held by
                another account (403).
            OidcProviderError: The provider cannot be reached (502).
        """
        username = "unknown"
        try:
            claims = self._verified_claims(callback, cookie)
            username = self._username(claims)
            person = self._person(claims, username)
        except (OidcError, ExternalLoginRefusedError) as error:
            self.sessions.refuse_external(username, VIA, str(error), source)
            raise
        return self.sessions.login_external(person, source)  # audits its own refusals

    # --- the callback's checks -----------------------------------------------------------

    def _verified_claims(self, callback: Callback, cookie: str | None) -> dict[str, Any]:
        if callback.error:  # an OAuth error code; shown (and audited) as such, nothing else
            code = re.sub(r"[^A-Za-z0-9_.-]", "", callback.error)[:64] or "an error"
            raise OidcCallbackError(f"the identity provider ended the login: {code}")
        pending = self._pending(cookie)
        if not hmac.compare_digest(callback.state.encode(), pending.state.encode()):
            raise OidcCallbackError("the state does not match the login this browser started")
        metadata = self.metadata()
        if callback.iss and callback.iss != metadata.issuer:  # RFC 9207: no mix-up
            raise OidcCallbackError("the callback comes from another issuer")
        if not callback.code:
            raise OidcCallbackError("the callback carries no authorization code")
        tokens = self._exchange(callback.code, pending.verifier)
        claims = self.verify_id_token(str(tokens["id_token"]), pending.nonce)
        return self._with_userinfo(claims, tokens.get("access_token"))

    def _pending(self, cookie: str | None) -> _Pending:
        again = "start again at /v1/auth/oidc/login"
        try:
            saved = json.loads(self.sessions.sealer.open(cookie or ""))
            started = dt.datetime.fromisoformat(saved.pop("at"))
            pending = _Pending(**saved)
        except (SealError, ValueError, TypeError, KeyError, AttributeError):
            raise OidcCallbackError(f"no login was started from this browser: {again}") from None
        age = (self.sessions.clock() - started).total_seconds()
        if not 0 <= age <= self.settings.login_minutes * 60:
            minutes = f"{self.settings.login_minutes:g}"
            raise OidcCallbackError(f"the login took longer than {minutes} minutes: {again}")
        return pending

    def _exchange(self, code: str, verifier: str) -> dict[str, Any]:
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": self.settings.redirect_url,
            "code_verifier": verifier,
        }
        headers = {"Accept": "application/json"}
        secret = self.settings.client_secret.get_secret_value()
        if secret:
            headers["Authorization"] = _basic_auth(self.settings.client_id, secret)
        else:
            form["client_id"] = self.settings.client_id  # a public client: PKCE alone
        answer = self._call("POST", self.metadata().token_endpoint, data=form, headers=headers)
        body = _json(answer)
        if answer.status_code != 200:
            error = body.get("error", f"HTTP {answer.status_code}")
            raise OidcCallbackError(f"the identity provider refused the code ({error})")
        if not isinstance(body.get("id_token"), str):
            raise OidcCallbackError("the identity provider returned no ID token")
        return body

    def verify_id_token(self, token: str, nonce: str) -> dict[str, Any]:
        """The claims of an ID token this client asked for with ``nonce``.

        Raises:
            OidcCallbackError: If any check fails, saying which.
        """
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise OidcCallbackError("the ID token is not a JWT") from None
        algorithm = header.get("alg")
        if algorithm not in ALGORITHMS:
            raise OidcCallbackError(f"the ID token's algorithm {algorithm!r} is not accepted")
        metadata = self.metadata()
        key = self._key(header.get("kid"), str(algorithm))
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[str(algorithm)],
                audience=self.settings.client_id,
                issuer=metadata.issuer,
                leeway=self.settings.leeway_s,
                options={"require": _REQUIRED_CLAIMS},
            )
        except jwt.PyJWTError as error:
            raise OidcCallbackError(f"the ID token is refused: {_reason(error)}") from None
        audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        if len(audiences) > 1 and claims.get("azp") != self.settings.client_id:
            raise OidcCallbackError("the ID token is refused: azp is not this client")
        if not hmac.compare_digest(str(claims.get("nonce", "")).encode(), nonce.encode()):
            raise OidcCallbackError("the ID token is refused: its nonce is not this login's")
        return claims

    def _with_userinfo(self, claims: dict[str, Any], access_token: Any) -> dict[str, Any]:
        """The ID token's claims, completed from userinfo when the username or groups lack."""
        wanted = (self.settings.username_claim, self.settings.groups_claim)
        endpoint = self.metadata().userinfo_endpoint
        if all(name in claims for name in wanted) or not endpoint or not access_token:
            return claims
        answer = self._call("GET", endpoint, headers={"Authorization": f"Bearer {access_token}"})
        info = _json(answer) if answer.status_code == 200 else {}
        if info.get("sub") != claims["sub"]:
            return claims  # another subject's (or none): ignore it
        return {**info, **claims}

    def _username(self, claims: Mapping[str, Any]) -> str:
        name = self.settings.username_claim
        value = claims.get(name)
        if not isinstance(value, str) or not value.strip():
            raise OidcCallbackError(
                f"the ID token has no {name!r} claim (identity.oidc.username_claim)"
            )
        value = value.strip()
        if len(value) > _MAX_USERNAME:
            raise OidcCallbackError(f"the {name!r} claim is longer than {_MAX_USERNAME}")
        return value

    def _person(self, claims: Mapping[str, Any], username: str) -> ExternalIdentity:
        subject = str(claims["sub"])
        if len(subject) > _MAX_EXTERNAL_ID or len(claims["iss"]) > _MAX_EXTERNAL_ID:
            raise OidcCallbackError(f"the ID token's sub or iss is longer than {_MAX_EXTERNAL_ID}")
        groups = groups_of(claims, self.settings.groups_claim)
        found = role_for(groups, self.settings.group_roles)
        if found is None:
            shown = ", ".join(sorted(groups)[:10]) or "none"
            raise ExternalLoginRefusedError(
                f"none of your groups at the identity provider ({shown}) gives a role here: "
                "ask an admin to map one (identity.oidc.group_roles)"
            )
        role, group = found
        name = claims.get("name")
        return ExternalIdentity(
            issuer=str(claims["iss"]),
            subject=subject,
            username=username,
            role=role,
            display_name=name if isinstance(name, str) else "",
            via=VIA,
            evidence={"group": group},
        )

    # --- the provider: discovery and keys ------------------------------------------------

    def metadata(self) -> ProviderMetadata:
        """The provider's endpoints, discovered once.

        Raises:
            OidcProviderError: If discovery fails or names another issuer.
        """
        with self._lock:
            if self._metadata is None:
                self._metadata = self._discover()
            return self._metadata

    def _discover(self) -> ProviderMetadata:
        issuer = self.settings.issuer
        answer = self._call("GET", issuer.rstrip("/") + _DISCOVERY)
        document = _json(answer)
        if answer.status_code != 200 or document.get("issuer") != issuer:
            raise OidcProviderError(
                f"discovery at {issuer}{_DISCOVERY} did not describe the issuer {issuer!r}"
            )
        try:
            endpoints = {
                name: check_url(str(document[name]), name)
                for name in ("authorization_endpoint", "token_endpoint", "jwks_uri")
            }
        except (KeyError, ValueError) as error:
            raise OidcProviderError(f"the provider's discovery is unusable: {error}") from None
        userinfo = document.get("userinfo_endpoint")
        return ProviderMetadata(
            issuer, **endpoints, userinfo_endpoint=str(userinfo) if userinfo else None
        )

    def _key(self, kid: Any, algorithm: str) -> jwt.PyJWK:
        """The provider's verification key ``kid`` names (the key set re-read once on a miss)."""
        jwk = self._find_key(kid, refresh=False) or self._find_key(kid, refresh=True)
        if jwk is None:
            raise OidcCallbackError("the ID token is signed by a key the provider does not list")
        if jwk.get("kty") == "oct" or jwk.get("use", "sig") != "sig":
            raise OidcCallbackError("the ID token is signed by a key that is not for signatures")
        if jwk.get("alg", algorithm) != algorithm:
            raise OidcCallbackError("the ID token's algorithm is not its key's")
        try:
            return jwt.PyJWK(jwk, algorithm)
        except (jwt.PyJWTError, ValueError, KeyError):
            raise OidcCallbackError("the ID token's key does not fit its algorithm") from None

    def _find_key(self, kid: Any, *, refresh: bool) -> dict[str, Any] | None:
        jwks_uri = self.metadata().jwks_uri
        with self._keys_lock:
            if refresh or not self._keys:
                self._keys = self._fetch_keys(jwks_uri)
            if kid is None and len(self._keys) == 1:
                return next(iter(self._keys.values()))
            return self._keys.get(str(kid))

    def _fetch_keys(self, jwks_uri: str) -> dict[str, dict[str, Any]]:
        answer = self._call("GET", jwks_uri)
        keys = _json(answer).get("keys")
        if answer.status_code != 200 or not isinstance(keys, list):
            raise OidcProviderError("the provider's key set (jwks_uri) is unusable")
        found = [key for key in keys if isinstance(key, dict)]
        return {str(key.get("kid", index)): key for index, key in enumerate(found)}

    def _call(self, method: str, url: str, **options: Any) -> httpx.Response:
        try:
            answer = self.http.request(method, url, **options)
        except httpx.HTTPError as error:
            host = urlsplit(url).netloc
            reason = f"{type(error).__name__}: {error}"
            raise OidcProviderError(
                f"the identity provider ({host}) is unreachable ({reason})"
            ) from None
        if answer.status_code >= 500:
            raise OidcProviderError(f"the identity provider answered HTTP {answer.status_code}")
        return answer


def _json(answer: httpx.Response) -> dict[str, Any]:
    try:
        body = answer.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _reason(error: jwt.PyJWTError) -> str:
    """What a PyJWT refusal means, in a person's words."""
    reasons: list[tuple[type[jwt.PyJWTError], str]] = [
        (jwt.ExpiredSignatureError, "it has expired"),
        (jwt.InvalidAudienceError, "it is for another client (aud)"),
        (jwt.InvalidIssuerError, "it is from another issuer (iss)"),
        (jwt.ImmatureSignatureError, "it is not valid yet"),
        (jwt.InvalidSignatureError, "its signature does not verify"),
        (jwt.MissingRequiredClaimError, str(error)),
    ]
    for kind, reason in reasons:
        if isinstance(error, kind):
            return reason
    return str(error)


def oidc_login_for(sessions: Sessions, http: httpx.Client | None = None) -> OidcLogin | None:
    """The OIDC login of the identity settings, or ``None`` when it is off.

    Raises:
        ValueError: If it is on but not fully configured.
    """
    settings = sessions.settings.oidc
    return OidcLogin(settings, sessions, http) if settings.enabled else None
