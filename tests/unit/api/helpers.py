"""Shared pieces of the API tests: settings, keys, JWTs, a fake Kafka producer, an app client."""

from __future__ import annotations

import atexit
import base64
import datetime as dt
import functools
import hashlib
import hmac
import json
import shutil
import tempfile
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import SecretStr

from fraudrisk.api.auth import SCOPE_STREAM, SCOPE_WRITE, hash_api_key
from fraudrisk.config import ApiKeySettings, ApiSettings, KafkaSettings, Settings
from fraudrisk.scoring.state_reader import MemoryStateReader
from fraudrisk.serving.variants import ServedVariants, ServiceSpec

#: A well-known test card number (Visa test PAN), the only kind the tests use.
TEST_PAN = "4111111111111111"
WRITER_KEY = "frk_writer-test-key"
READER_KEY = "frk_reader-test-key"
TOKEN_KEY = "unit-test-card-token-key-0123456789"
ISSUER = "https://issuer.test"
AUDIENCE = "fraudrisk-api"


@dataclass(frozen=True)
class RsaKeys:
    """An RSA key pair for signing test JWTs."""

    private_pem: bytes
    public_pem: str


def rsa_keys() -> RsaKeys:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return RsaKeys(private, public.decode())


def api_settings(rsa: RsaKeys | None = None, **overrides: Any) -> ApiSettings:
    """API settings with a writer key, a read-only key, a card token key, Kafka off."""
    base: dict[str, Any] = {
        "kafka_enabled": False,
        "keys": [
            ApiKeySettings(
                client="writer",
                key_hash=hash_api_key(WRITER_KEY),
                scopes=[SCOPE_WRITE, SCOPE_STREAM],
            ),
            ApiKeySettings(
                client="reader", key_hash=hash_api_key(READER_KEY), scopes=[SCOPE_STREAM]
            ),
        ],
        "pan_token_key": SecretStr(TOKEN_KEY),
        "rate_per_s": 1000.0,
        "burst": 1000,
    }
    if rsa is not None:
        base |= {"jwt_issuer": ISSUER, "jwt_audience": AUDIENCE, "jwt_public_key": rsa.public_pem}
    return ApiSettings(**(base | overrides))


def settings_with(api: ApiSettings, kafka: KafkaSettings | None = None, **more: Any) -> Settings:
    """Settings of these API settings; HOME a scratch folder unless given (sync mode's alert
    store and spool live there: never the checkout's ``.fraudrisk``)."""
    more.setdefault("home", scratch_home())
    return Settings(api=api, kafka=kafka or KafkaSettings(), **more)


@functools.cache
def scratch_home() -> Path:
    """One temporary HOME per test process, removed at its exit."""
    home = Path(tempfile.mkdtemp(prefix="fraudrisk-api-tests-"))
    atexit.register(shutil.rmtree, home, ignore_errors=True)
    return home


def rules_only(settings: Settings, state: MemoryStateReader | None = None) -> ServedVariants:
    """Served variants deciding by the fallback rules (no model), over an in-memory state."""
    reader = state or MemoryStateReader()
    variants = ServedVariants(
        ServiceSpec("models:/absent@champion"), settings, states=lambda _s: reader
    )
    variants.serve_rules_only()
    return variants


def transaction(transaction_id: int = 1, **fields: Any) -> dict[str, Any]:
    """A valid transaction body (no card number unless given)."""
    return {
        "transaction_id": transaction_id,
        "tx_datetime": "2024-05-01T12:00:00",
        "customer_id": 42,
        "terminal_id": 7,
        "tx_amount": 25.0,
    } | fields


def token(keys: RsaKeys, **claims: Any) -> str:
    """An RS256 JWT from the test issuer, valid for 5 minutes, with the write scope."""
    now = dt.datetime.now(dt.UTC)
    payload = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "svc-1",
        "iat": now,
        "exp": now + dt.timedelta(minutes=5),
        "scope": f"{SCOPE_WRITE} {SCOPE_STREAM}",
    }
    payload = {k: v for k, v in (payload | claims).items() if v is not None}
    return jwt.encode(payload, keys.private_pem, algorithm="RS256")


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forged(header: dict[str, Any], payload: dict[str, Any], secret: bytes | None) -> str:
    """A JWT signed by hand (HMAC-SHA256 with ``secret``, or unsigned when None)."""
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}"
    if secret is None:
        return signing_input + "."
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(signature)}"


def claims(**more: Any) -> dict[str, Any]:
    now = int(dt.datetime.now(dt.UTC).timestamp())
    return {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "mallory",
        "exp": now + 300,
        "scope": SCOPE_WRITE,
    } | more


@dataclass
class FakeProducer:
    """A Kafka producer double: records messages, reports delivery (or ``fail`` it)."""

    fail: str | None = None
    silent: bool = False  # never report (an unreachable broker)
    refuse: bool = False  # BufferError on produce (local queue full)
    messages: list[tuple[str, bytes, bytes]] = field(default_factory=list)
    _pending: list[Callable[[], None]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def produce(
        self, topic: str, value: bytes, key: bytes, on_delivery: Any = None, **_: Any
    ) -> None:
        if self.refuse:
            raise BufferError("Local: Queue full")
        with self._lock:
            if self.fail is None:
                self.messages.append((topic, key, value))
            if not self.silent:
                self._pending.append(lambda: on_delivery(self.fail, None))

    def poll(self, timeout: float = 0) -> int:
        with self._lock:
            pending, self._pending = self._pending, []
        for report in pending:
            report()
        return len(pending)

    def flush(self, timeout: float = 0) -> int:
        self.poll()
        return 0

    def list_topics(self, topic: str | None = None, timeout: float = -1) -> Any:
        if self.silent:
            raise RuntimeError("no broker")
        return {}


def receive_within(session: Any, seconds: float) -> dict[str, Any]:
    """The next WebSocket message of a TestClient session, failing after ``seconds``."""
    pool = ThreadPoolExecutor(max_workers=1)
    try:
        message: dict[str, Any] = pool.submit(session.receive).result(timeout=seconds)
    finally:
        pool.shutdown(wait=False)  # a receive still blocked ends when the session closes
    return message
