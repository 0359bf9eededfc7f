"""Platform settings: one pydantic-settings object, read from ``FRAUDRISK_*`` variables.

Every production endpoint is a setting, never a code change. Nested groups are set with a
double underscore, e.g. ``FRAUDRISK_KAFKA__BOOTSTRAP_SERVERS=b-1.msk:9092`` or
``FRAUDRISK_LAKE__URI=s3://bucket/lake``. Embedded defaults live under ``FRAUDRISK_HOME``
(``./.fraudrisk`` by default). Nothing is read at import time: call :func:`get_settings`.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from fraudrisk.vocab import CANARY, CHAMPION_URI, MODEL_NAME, TrafficMode

_SECRET_MASK = "********"
_URL_PASSWORD = re.compile(r"(?P<head>[a-zA-Z][a-zA-Z0-9+.-]*://[^:/@\s]+:)(?P<pw>[^@\s]+)(?=@)")


class LakeSettings(BaseModel):
    """Where transactions are stored (Parquet, ``dt=`` day partitions)."""

    uri: str = Field(
        "", description="Lake root: a local path or s3://bucket/prefix; empty = HOME/lake."
    )
    s3_endpoint_url: str = Field(
        "", description="S3-compatible endpoint (MinIO, moto); empty = AWS."
    )
    s3_region: str = Field("us-east-1", description="S3 region.")
    s3_access_key_id: str = Field("", description="S3 access key id; empty = the boto/AWS chain.")
    s3_secret_access_key: SecretStr = Field(SecretStr(""), description="S3 secret access key.")
    epoch: str = Field("2018-04-01", description="Day 0 of tx_time_seconds for a new lake.")


class KafkaSettings(BaseModel):
    """Kafka brokers and topics (local KRaft broker by default; MSK/Strimzi in production)."""

    bootstrap_servers: str = Field("127.0.0.1:9092", description="Comma-separated brokers.")
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: str = Field("", description="e.g. SCRAM-SHA-512 or AWS_MSK_IAM.")
    sasl_username: str = ""
    sasl_password: SecretStr = SecretStr("")
    transactions_topic: str = "transactions"
    scores_topic: str = Field("scores", description="Scores and decisions, keyed by customer.")
    alerts_topic: str = Field("alerts", description="Alerts for analysts, keyed by customer.")
    labels_topic: str = Field("labels", description="Delayed fraud labels, keyed by customer.")
    dlq_topic: str = Field("transactions.dlq", description="Transactions that failed processing.")
    partitions: int = Field(6, ge=1, description="Partitions of the transactions topic.")
    replication_factor: int = Field(1, ge=1, description="3 on MSK.")


class KinesisSettings(BaseModel):
    """The Kinesis source: consumer (``fraudrisk stream kinesis``) and the Lambda handler.

    The endpoint and credentials default to AWS and the boto credential chain; set
    ``endpoint_url`` for a Kinesis-compatible server (moto, LocalStack).
    """

    stream_name: str = Field("transactions", description="The transactions stream.")
    region: str = Field("us-east-1", description="AWS region of the stream.")
    endpoint_url: str = Field("", description="Kinesis-compatible endpoint; empty = AWS.")
    access_key_id: str = Field("", description="Access key id; empty = the boto/AWS chain.")
    secret_access_key: SecretStr = Field(SecretStr(""), description="Secret access key.")
    dlq_uri: str = Field(
        "kinesis://transactions-dlq",
        description="Dead letters: kinesis://STREAM, s3://bucket/prefix (lake S3 settings) "
        "or a local directory.",
    )
    consumer_name: str = Field(
        "fraudrisk-scorer", description="Checkpoints are kept per consumer name, stream, shard."
    )
    batch_size: int = Field(1000, ge=1, le=10_000, description="GetRecords limit per call.")
    poll_interval_s: float = Field(
        1.0, ge=0, description="Pause after a round with no records (AWS: 5 reads/s/shard)."
    )
    start_position: Literal["TRIM_HORIZON", "LATEST"] = Field(
        "TRIM_HORIZON", description="Where a shard without checkpoint is read from."
    )
    online_state: bool = Field(
        True, description="Seed entity state from the Feast online store (else start empty)."
    )


class DatabaseSettings(BaseModel):
    """The alert store and Optuna study storage (SQLite by default, PostgreSQL in production)."""

    url: str = Field("", description="SQLAlchemy URL; empty = sqlite under HOME.")


#: A registry model URI: ``models:/<name>/<version>`` or ``models:/<name>@<alias>``.
MODEL_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:/(?P<version>\d+)|@(?P<alias>[\w-]+))$")


class MlflowSettings(BaseModel):
    """MLflow tracking server and model registry."""

    tracking_uri: str = Field("", description="Empty = sqlite + local artifacts under HOME.")
    registry_uri: str = Field("", description="Empty = same as tracking_uri.")
    model_name: str = MODEL_NAME


class FeastSettings(BaseModel):
    """Feast feature repository and online store."""

    repo_path: str = Field("", description="Feature repo directory; empty = HOME/feast.")
    online_store: Literal["sqlite", "redis"] = "sqlite"
    redis_connection_string: SecretStr = Field(
        SecretStr("127.0.0.1:6379"), description="host:port[,password=...] for Redis/ElastiCache."
    )


class FallbackRules(BaseModel):
    """Rules-only decisions when no model can be used (amount and velocity)."""

    review_amount: float = Field(220.0, ge=0, description="Review at or above this amount.")
    decline_amount: float = Field(1000.0, ge=0, description="Decline at or above this amount.")
    review_tx_per_hour: int = Field(
        5, ge=1, description="Review when the customer's transactions in the last hour reach this."
    )


class ServingSettings(BaseModel):
    """Where the KServe endpoint is, which model it serves, and how scores become decisions."""

    endpoint: str = Field("http://127.0.0.1:8080", description="Base URL of the inference service.")
    model_uri: str = Field(CHAMPION_URI, description="MLflow or storage URI.")
    model_name: str = Field(MODEL_NAME, description="Name the model is served under.")
    http_port: int = Field(8080, ge=1, le=65535)
    workers: int = Field(
        1,
        ge=1,
        le=64,
        description="Worker processes sharing the HTTP port (KServe ModelServer workers), each "
        "with its own copy of the model: one per core the pod may use.",
    )
    review_threshold: float | None = Field(
        None, ge=0, le=1, description="Overrides the model's stored review threshold."
    )
    decline_threshold: float | None = Field(
        None, ge=0, le=1, description="Overrides the model's stored decline threshold."
    )
    candidate_uri: str = Field(
        "", description="A second model in this process: A/B or shadow candidate (empty = none)."
    )
    traffic_mode: TrafficMode = Field(
        CANARY, description="How the candidate shares traffic with model_uri."
    )
    candidate_percent: int = Field(0, ge=0, le=100, description="Candidate's share (canary, ab).")
    ab_key: str = Field("customer_id", description="Transaction field A/B assignment sticks to.")
    reason_codes: int = Field(3, ge=0, le=20, description="Top reason codes returned per score.")
    reason_codes_for: Literal["all", "flagged"] = Field(
        "flagged",
        description="Explain only transactions sent to review or declined (approvals get no "
        "reasons: 0.5 ms less per request), or every transaction.",
    )
    fallback: FallbackRules = FallbackRules()


class CanarySettings(BaseModel):
    """The gates a canary must pass before promotion (``fraudrisk canary status|promote|watch``).

    Counted over the canary window (since ``fraudrisk canary start``); rates are shares of the
    variant's scored transactions, changes are absolute (canary minus champion).
    """

    min_requests: int = Field(
        200, ge=1, description="Requests each variant must have answered before any verdict."
    )
    max_error_rate: float = Field(
        0.01, ge=0, le=1, description="Highest share of the canary's requests that fail."
    )
    max_p99_latency_ms: float = Field(
        50.0, gt=0, description="Highest p99 scoring latency of the canary, milliseconds."
    )
    max_score_psi: float = Field(
        0.25,
        ge=0,
        description="Highest population stability index between the variants' risk-score "
        "histograms (0.1 = moderate, 0.25 = major shift).",
    )
    max_review_rate_change: float = Field(
        0.02, ge=0, le=1, description="Largest absolute change of the share sent to review."
    )
    max_decline_rate_change: float = Field(
        0.02, ge=0, le=1, description="Largest absolute change of the share declined."
    )
    max_fallback_rate_change: float = Field(
        0.01,
        ge=0,
        le=1,
        description="Largest increase of the share decided by the fallback rules (a canary "
        "whose model fails at run time falls back on every transaction).",
    )


#: The roles an identity provider's group may map to (``fraudrisk.identity.roles.Role``'s
#: values; a test keeps the two equal).
OidcRole = Literal["analyst", "senior-analyst", "risk-manager", "mlops-engineer", "admin"]


class OidcSettings(BaseModel):
    """Corporate login by OpenID Connect (Cognito in production); off unless enabled."""

    enabled: bool = Field(False, description="Offer `GET /v1/auth/oidc/login` on the case API.")
    issuer: str = Field(
        "",
        description="Issuer URL (discovery at <issuer>/.well-known/openid-configuration); "
        "https, or http on loopback only.",
    )
    client_id: str = Field("", description="The app client's id at the identity provider.")
    client_secret: SecretStr = Field(
        SecretStr(""), description="The app client's secret; empty = a public client (PKCE)."
    )
    redirect_url: str = Field(
        "",
        description="This API's callback as registered at the identity provider: "
        "https://<host>/v1/auth/oidc/callback.",
    )
    scopes: list[str] = Field(["openid", "email", "profile"], description="Scopes requested.")
    username_claim: str = Field(
        "preferred_username", description="Claim naming the user (Cognito: cognito:username)."
    )
    groups_claim: str = Field(
        "groups", description="Claim listing groups (Cognito: cognito:groups)."
    )
    group_roles: dict[str, OidcRole] = Field(
        {},
        description="Group → role. In several mapped groups, the first listed here wins; in "
        "none, the login is refused (403).",
    )
    login_minutes: float = Field(
        10.0, gt=0, le=60, description="How long a login started here may take at the provider."
    )
    leeway_s: int = Field(60, ge=0, le=300, description="Clock skew allowed on the ID token.")
    timeout_s: float = Field(10.0, gt=0, description="Timeout of each call to the provider.")


class IdentitySettings(BaseModel):
    """People: local users (Argon2id + TOTP), sessions, personal API tokens, lockout."""

    secret_key: SecretStr = Field(
        SecretStr(""),
        description="Fernet key sealing TOTP seeds; empty = HOME/identity.key, made once (0600).",
    )
    mfa_required: bool = Field(True, description="Every role logs in with a TOTP code.")
    max_failed_logins: int = Field(
        5, ge=1, description="Wrong passwords or codes allowed; the next one locks the account."
    )
    lockout_minutes: float = Field(15.0, gt=0, description="How long a locked account waits.")
    session_hours: float = Field(12.0, gt=0, description="Lifetime of a login session.")
    token_max_days: int = Field(90, ge=1, description="Longest lifetime of a personal API token.")
    totp_issuer: str = Field("fraudrisk", description="Issuer shown by authenticator apps.")
    oidc: OidcSettings = OidcSettings()


class CasesSettings(BaseModel):
    """Case management: grouping alerts into cases, priority, routing, the case API."""

    join_window_hours: float = Field(
        72.0, gt=0, description="An alert joins its customer's open case this recent."
    )
    routing_file: str = Field(
        "", description="Routing rules (YAML); empty = the bundled default (cases/routing.yaml)."
    )
    ingest_batch: int = Field(5000, ge=1, le=100_000, description="Alerts per ingest transaction.")
    auto_assign: bool = Field(
        False,
        description="Give each new case to the least-loaded member of its queue (off: "
        "analysts take cases with claim-next).",
    )
    port: int = Field(8090, ge=1, le=65535, description="Port of `fraudrisk cases serve`.")
    publish_labels_topic: bool = Field(
        False, description="Also send resolutions' labels to the Kafka labels topic."
    )
    baseline_days: int = Field(
        30,
        ge=1,
        le=365,
        description="Days before an alert whose transactions make the customer's baseline "
        "of each reason-code feature in the case view (from the feature table).",
    )


class MonitoringSettings(BaseModel):
    """Drift, delayed-label performance and the retraining trigger (``fraudrisk monitor``).

    Drift methods per feature follow Evidently's defaults unless ``stattest`` is set.
    """

    reports_dir: str = Field("", description="Report folder (empty = HOME/monitoring/reports).")
    workspace: str = Field(
        "", description="Evidently workspace folder or URL (empty = HOME/monitoring/workspace)."
    )
    reference_rows: int = Field(
        5000, ge=100, description="Training feature rows sampled into each model's reference."
    )
    max_window_rows: int = Field(
        100_000, ge=1000, description="Rows of a window above which a drift report samples."
    )
    drift_share: float = Field(
        0.3,
        gt=0,
        le=1,
        description="Share of drifted features (of the model's features) that means drift.",
    )
    drift_verdict: Literal["weighted", "columns"] = Field(
        "weighted",
        description="What dataset drift means: weighted = the drifted features hold at least "
        "weighted_drift_share of the model's importance (mean |SHAP| over its reference); "
        "columns = at least drift_share of its features drifted.",
    )
    weighted_drift_share: float = Field(
        0.2,
        gt=0,
        le=1,
        description="Share of the model's importance (mean |SHAP| over its reference) held by "
        "drifted features that means drift (the weighted verdict).",
    )
    stattest: str | None = Field(
        None, description="Evidently drift method for every feature (None = its defaults)."
    )
    stattest_threshold: float | None = Field(
        None, description="Threshold of that method (None = Evidently's default for it)."
    )
    score_drift_psi: float = Field(
        0.2, ge=0, description="Score-distribution PSI above which prediction drift is reported."
    )
    label_delay_days: int = Field(
        7, ge=0, description="Days until a transaction's fraud label is known."
    )
    alert_budget: int = Field(100, ge=1, description="Cards analysts can review per day.")
    max_performance_drop: float = Field(
        0.2,
        ge=0,
        le=1,
        description="Relative drop of the labelled average precision (versus the model's own "
        "test metrics) that triggers retraining.",
    )
    max_relative_calibration_error: float = Field(
        0.5,
        gt=0,
        description="Calibration alarm: the labelled window's expected calibration error "
        "(10 quantile bins) above this share of its fraud rate (the thresholds assume "
        "calibrated risk).",
    )
    cooldown_hours: float = Field(
        168.0, ge=0, description="At most one retraining per cause in this period."
    )
    watch_interval_s: float = Field(3600.0, gt=0, description="Seconds between watch checks.")
    metrics_port: int = Field(9108, ge=0, le=65535, description="Prometheus port of the watcher.")


class ApiKeySettings(BaseModel):
    """One API client: its name, the hash of its key (never the key) and its scopes."""

    client: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$", description="Client name (metrics).")
    key_hash: str = Field(
        pattern=r"^sha256:[0-9a-f]{64}$",
        description="'sha256:<hex>' of the key, from `fraudrisk api keys create`.",
    )
    scopes: list[str] = Field(
        ["transactions:write", "scores:read"], description="What the key may do."
    )


JwtAlgorithm = Literal[
    "HS256",
    "HS384",
    "HS512",
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
    "ES256",
    "ES384",
    "ES512",
    "EdDSA",
]


class ApiSettings(BaseModel):
    """The Transaction API (``fraudrisk api serve``): auth, limits, modes, card tokens."""

    host: str = Field("127.0.0.1", description="Address `fraudrisk api serve` binds.")
    port: int = Field(8000, ge=1, le=65535)
    default_mode: Literal["sync", "async"] = Field(
        "sync", description="sync = score inline; async = produce to Kafka (202)."
    )
    kafka_enabled: bool = Field(
        True, description="Async mode and relaying the stream scorer's results to WebSockets."
    )
    keys: list[ApiKeySettings] = Field([], description="API keys (X-API-Key), stored hashed.")
    jwt_issuer: str = Field("", description="Required `iss` of bearer tokens; empty = no JWT.")
    jwt_audience: str = Field("fraudrisk-api", description="Required `aud` of bearer tokens.")
    jwt_algorithms: list[JwtAlgorithm] = Field(["RS256"], description="Accepted `alg` values.")
    jwt_public_key: str = Field("", description="PEM public key for RS*/PS*/ES*/EdDSA tokens.")
    jwt_secret: SecretStr = Field(SecretStr(""), description="HMAC secret for HS* tokens.")
    jwt_leeway_s: int = Field(30, ge=0, le=300, description="Clock skew allowed on exp/nbf.")
    rate_per_s: float = Field(50.0, gt=0, description="Requests per second per client.")
    burst: int = Field(100, ge=1, description="Token bucket size per client.")
    max_batch: int = Field(1000, ge=1, le=10_000, description="Transactions per request.")
    max_body_bytes: int = Field(1_048_576, ge=1024, description="Largest request body.")
    pan_token_key: SecretStr = Field(
        SecretStr(""),
        description="HMAC-SHA256 key turning card numbers into card_token; empty = card "
        "numbers are refused (422).",
    )
    delivery_timeout_s: float = Field(10.0, gt=0, description="Async mode: wait for Kafka acks.")
    ws_queue_size: int = Field(1000, ge=1, description="Events buffered per WebSocket client.")
    ws_auth_timeout_s: float = Field(5.0, gt=0, description="Wait for a WebSocket auth message.")
    model_retry_s: float = Field(30.0, gt=0, description="Retry loading the model this often.")
    store_scores: bool = Field(
        True,
        description="Sync mode: write scores and alerts to the alert store (the settings' "
        "database) from a background writer, so that its alerts become cases.",
    )
    store_batch_size: int = Field(
        1000, ge=1, description="Sync mode: records per alert-store write (at most, roughly)."
    )
    store_flush_interval_s: float = Field(
        0.1, gt=0, le=60, description="Sync mode: longest wait for more records before a write."
    )
    store_queue_size: int = Field(
        100_000, ge=1, description="Records waiting for the writer at most; beyond, spooled."
    )
    store_retry_s: float = Field(
        5.0, gt=0, description="While the store is down, retry it (then replay the spool)."
    )
    store_spool_dir: str = Field(
        "", description="Records wait here while the store is down; empty = HOME/api-spool."
    )


class PolicySettings(BaseModel):
    """The decision policy the scorers apply live: the active stored version, and a shadow.

    Without an active stored version the model's thresholds decide (no rules), as before
    policies existed; decisions then record no policy version.
    """

    live: bool = Field(
        True,
        description="Apply the active policy version in the stream scorer, the Transaction "
        "API and the KServe scorer (off: the model's thresholds, no rules).",
    )
    database_url: str = Field(
        "", description="Database of the policy versions; empty = the platform database."
    )
    reload_seconds: float = Field(
        5.0, gt=0, description="How often the active version is checked for a change."
    )
    shadow_version: int | None = Field(
        None,
        ge=1,
        description="A stored version run in shadow beside the active one: its decisions are "
        "counted and stored (policy_shadow_decisions), never returned or acted on.",
    )


class Settings(BaseSettings):
    """All settings of the platform. Read with :func:`get_settings`."""

    model_config = SettingsConfigDict(
        env_prefix="FRAUDRISK_", env_nested_delimiter="__", extra="ignore"
    )

    home: Path = Field(Path(".fraudrisk"), description="Embedded defaults and local state.")
    lake: LakeSettings = LakeSettings()
    kafka: KafkaSettings = KafkaSettings()
    db: DatabaseSettings = DatabaseSettings()
    mlflow: MlflowSettings = MlflowSettings()
    feast: FeastSettings = FeastSettings()
    serving: ServingSettings = ServingSettings()
    canary: CanarySettings = CanarySettings()
    api: ApiSettings = ApiSettings()
    kinesis: KinesisSettings = KinesisSettings()
    monitoring: MonitoringSettings = MonitoringSettings()
    identity: IdentitySettings = IdentitySettings()
    cases: CasesSettings = CasesSettings()
    policy: PolicySettings = PolicySettings()

    @property
    def lake_uri(self) -> str:
        """The lake root, defaulting to ``HOME/lake``."""
        return self.lake.uri or str(self.home / "lake")

    @property
    def db_url(self) -> str:
        """The database URL, defaulting to SQLite under HOME."""
        return self.db.url or f"sqlite:///{(self.home / 'fraudrisk.db').resolve()}"

    @property
    def identity_key_file(self) -> Path:
        """Where the embedded mode keeps the key sealing TOTP seeds."""
        return self.home / "identity.key"

    @property
    def mlflow_tracking_uri(self) -> str:
        """MLflow tracking URI, defaulting to SQLite under HOME."""
        return self.mlflow.tracking_uri or f"sqlite:///{(self.home / 'mlflow.db').resolve()}"

    @property
    def feast_repo_path(self) -> Path:
        """The Feast feature repository directory."""
        return Path(self.feast.repo_path) if self.feast.repo_path else self.home / "feast"

    @property
    def monitoring_reports_dir(self) -> Path:
        """The monitoring report folder, defaulting to ``HOME/monitoring/reports``."""
        configured = self.monitoring.reports_dir
        return Path(configured) if configured else self.home / "monitoring" / "reports"

    @property
    def monitoring_workspace(self) -> str:
        """The Evidently workspace folder or URL, defaulting to ``HOME/monitoring/workspace``."""
        return self.monitoring.workspace or str(self.home / "monitoring" / "workspace")

    @property
    def monitoring_metrics_dir(self) -> Path:
        """The monitoring steps' Prometheus textfiles: ``HOME/monitoring/metrics``."""
        return self.home / "monitoring" / "metrics"

    @property
    def feature_table_uri(self) -> str:
        """The feature table ``fraudrisk features build`` writes by default: ``HOME/features``.

        Training, monitoring and the demo read it when no table is given.
        """
        return str(self.home / "features")

    @property
    def optuna_dir(self) -> Path:
        """The default folder of the Optuna study storage: ``HOME/optuna``."""
        return self.home / "optuna"

    @property
    def kfp_dir(self) -> Path:
        """Working folder of local (``kfp.local``) pipeline runs and their logs: ``HOME/kfp``."""
        return self.home / "kfp"

    @property
    def mlflow_artifacts_uri(self) -> str:
        """Artifact root (``file:`` URI) of a new experiment in a local store: HOME/mlartifacts."""
        return (self.home / "mlartifacts").resolve().as_uri()

    @property
    def serving_dir(self) -> Path:
        """Local serving state: the manifest, the canary record and its history, the serve log."""
        return self.home / "serving"

    @property
    def kafka_data_dir(self) -> Path:
        """Log and data folder of the local Kafka broker: ``HOME/kafka/data``."""
        return self.home / "kafka" / "data"

    @property
    def jars_dir(self) -> Path:
        """Default cache of resolved Maven jar sets: ``HOME/jars`` (``FRAUDRISK_JARS_DIR`` wins)."""
        return self.home / "jars"

    @property
    def bin_dir(self) -> Path:
        """Default cache of tool binaries (kustomize): ``HOME/bin`` (``FRAUDRISK_BIN_DIR`` wins)."""
        return self.home / "bin"

    def masked(self) -> dict[str, Any]:
        """The effective settings as plain data, secrets and URL passwords masked."""
        data = self.model_dump(mode="python")
        data["effective"] = {
            "lake_uri": self.lake_uri,
            "db_url": self.db_url,
            "mlflow_tracking_uri": self.mlflow_tracking_uri,
            "feast_repo_path": str(self.feast_repo_path),
        }
        masked: dict[str, Any] = _mask(data)
        return masked


def _mask(value: Any) -> Any:
    if isinstance(value, SecretStr):
        return _SECRET_MASK if value.get_secret_value() else ""
    if isinstance(value, dict):
        return {key: _mask(item) for key, item in value.items()}
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, str):
        return _URL_PASSWORD.sub(lambda m: m.group("head") + _SECRET_MASK, value)
    return value


@functools.cache
def get_settings() -> Settings:
    """Build the settings once, on first use (no import side effects)."""
    return Settings()
