"""The only module that reads the environment.

Every other module receives a `Settings` instance. Spec names are kept for the four
variables the original platform used (`DATABASE_URL`, `VALKEY_URL`, `ANTHROPIC_API_KEY`,
`SENTRY_DSN`); everything else is `SAGE_*`. The README's configuration table lists each
field below with its default; keep the two in step (a test checks they match).
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class Environment(StrEnum):
    DEVELOPMENT = "development"
    PRODUCTION = "production"


class MarketSource(StrEnum):
    LIVE = "live"
    REPLAY = "replay"
    OFF = "off"


class LLMProvider(StrEnum):
    ANTHROPIC = "anthropic"
    OFFLINE = "offline"


# Values that mark a secret as "not really set". `.env.example` uses `change-me`.
PLACEHOLDER_SECRETS = frozenset(
    {
        "",
        "change-me",
        "changeme",
        "change_me",
        "changethis",
        "placeholder",
        "secret",
        "password",
        "dev",
        "todo",
    }
)
DEV_JWT_SECRET = "dev-only-insecure-jwt-secret-change-me"

DEFAULT_SYMBOLS = ("BTC/USDT", "ETH/USDT", "SOL/USDT", "XRP/USDT", "BNB/USDT", "DOGE/USDT")


class ConfigurationError(RuntimeError):
    """Raised when the configuration is unusable; its message is one line naming the variable."""


def _split_csv(value: Any) -> Any:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


def default_data_dir() -> Path:
    return Path.home() / ".sage"


def default_frontend_dir() -> Path | None:
    """The built web app (frontend/dist) when Sage runs from a source checkout; an installed
    wheel (the container image) has none, and the front end is then served by CloudFront.
    `python3 dev.py serve` builds it when missing or stale."""
    checkout = Path(__file__).resolve().parents[2] / "frontend"
    return checkout / "dist" if (checkout / "package.json").is_file() else None


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="SAGE_",
        env_file=None,
        extra="ignore",
        populate_by_name=True,
        case_sensitive=False,
    )

    # --- service -----------------------------------------------------------------------
    env: Environment = Environment.DEVELOPMENT
    host: str = "127.0.0.1"
    port: int = Field(default=3000, ge=1, le=65535)
    # 0.5 vCPU cannot run two Python processes in parallel; one async worker saturates it.
    workers: int = Field(default=1, ge=1, le=64)
    data_dir: Path = Field(default_factory=default_data_dir)
    release: str = "dev"
    log_level: str = "INFO"
    # JSON lines everywhere by default (what CloudWatch and `docker logs` read); false for a console.
    log_json: bool = True
    shutdown_grace_seconds: float = Field(default=30.0, ge=0)
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["http://localhost:5173", "http://127.0.0.1:5173", "http://127.0.0.1:3000"]
    )
    # The static web app `sage serve` also serves at "/" (API routes win); empty disables it.
    frontend_dir: Path | None = Field(default_factory=default_frontend_dir)

    # --- PostgreSQL ------------------------------------------------------------------
    database_url: str | None = Field(default=None, validation_alias=AliasChoices("DATABASE_URL"))
    db_pool_size: int = Field(default=5, ge=1, le=100)
    db_max_overflow: int = Field(default=2, ge=0, le=100)
    ingest_db_pool_size: int = Field(default=2, ge=1, le=100)
    db_pool_timeout_seconds: float = Field(default=10.0, gt=0)
    db_statement_timeout_ms: int = Field(default=15_000, ge=0)
    db_connect_timeout_seconds: float = Field(default=5.0, gt=0)

    # --- Valkey ------------------------------------------------------------------------
    valkey_url: str | None = Field(default=None, validation_alias=AliasChoices("VALKEY_URL"))
    valkey_timeout_seconds: float = Field(default=1.0, gt=0)
    cache_ttl_market_price: int = Field(default=300, ge=1)
    cache_ttl_fear_greed: int = Field(default=1800, ge=1)
    cache_ttl_user_chat_list: int = Field(default=30, ge=1)
    cache_ttl_ai_response: int = Field(default=300, ge=1)

    # --- auth ----------------------------------------------------------------------------
    jwt_secret: SecretStr = SecretStr(DEV_JWT_SECRET)
    jwt_access_ttl_seconds: int = Field(default=900, ge=30)
    jwt_refresh_ttl_seconds: int = Field(default=14 * 24 * 3600, ge=60)
    auth_rate_limit_per_ip: int = Field(default=20, ge=1)  # attempts per window per client IP
    auth_rate_limit_per_email: int = Field(default=5, ge=1)  # attempts per window per email
    auth_rate_limit_window_seconds: int = Field(default=60, ge=1)
    trusted_proxy_hops: int = Field(default=0, ge=0)  # 2 behind CloudFront + the ALB (infra/), 1 behind one proxy

    # --- market data ----------------------------------------------------------------------
    market_source: MarketSource = Field(
        default_factory=lambda d: MarketSource.LIVE if d["env"] is Environment.PRODUCTION else MarketSource.REPLAY
    )
    symbols: Annotated[list[str], NoDecode] = Field(default_factory=lambda: list(DEFAULT_SYMBOLS))
    binance_ws_url: str = "wss://stream.binance.com:9443"
    gateio_ws_url: str = "wss://api.gateio.ws/ws/v4/"
    fng_url: str = "https://api.alternative.me/fng/"
    fng_poll_seconds: float = Field(default=300.0, ge=1.0)
    feed_watchdog_seconds: float = Field(default=30.0, gt=0)
    ticker_stale_seconds: float = Field(default=60.0, gt=0)
    divergence_percent: float = Field(default=1.0, gt=0)
    candle_retention_days: int = Field(default=30, ge=1)
    replay_file: Path | None = None  # default: the recording shipped inside the package
    replay_speed: float = Field(default=1.0, gt=0)
    # On when VALKEY_URL is unset (the embedded default has no separate ingestor).
    ingest_in_process: bool = Field(default_factory=lambda d: d["valkey_url"] is None)
    market_alert_check_seconds: float = Field(default=15.0, gt=0)  # the full pass; ticks wake the checker at once
    feed_backoff_initial_seconds: float = Field(default=1.0, gt=0)  # first reconnect delay
    feed_backoff_max_seconds: float = Field(default=60.0, gt=0)  # reconnect delays never exceed this
    feed_backoff_reset_seconds: float = Field(default=60.0, gt=0)  # healthy this long: backoff starts over
    feed_queue_size: int = Field(
        default=10_000, ge=10
    )  # keys with an update waiting for Valkey; beyond: oldest dropped
    feed_lease_seconds: float = Field(default=15.0, gt=0)  # ingestor lease per feed; a standby waits this long
    binance_streams_per_connection: int = Field(default=1024, ge=1, le=1024)
    binance_connection_max_seconds: float = Field(default=84_600.0, gt=0)  # reconnect before Binance's 24 h cut
    gateio_ping_seconds: float = Field(default=15.0, gt=0)  # spot.ping interval (Gate drops idle connections)
    market_stream_queue_size: int = Field(default=40, ge=1)  # SSE: flushes' frames queued per client before dropping it
    market_stream_flush_seconds: float = Field(default=0.25, gt=0, le=5)  # SSE: updates coalesced per symbol this long
    # Symbol catalog, on-demand subscriptions, REST snapshots and backfill (issue 13)
    binance_rest_url: str = "https://api.binance.com"
    gateio_rest_url: str = "https://api.gateio.ws/api/v4"
    catalog_refresh_seconds: float = Field(default=86_400.0, ge=60)  # exchanges' market lists re-read (live)
    catalog_reload_seconds: float = Field(default=300.0, gt=0)  # API processes re-read the stored catalog
    demand_ttl_seconds: int = Field(default=900, ge=10)  # a demanded symbol stays live this long after its last use
    max_live_symbols: int = Field(default=200, ge=0, le=1000)  # on-demand live symbols beyond SAGE_SYMBOLS
    binance_rest_weight_per_minute: int = Field(default=3000, ge=10, le=6000)  # our share of Binance's 6000/min
    gateio_rest_requests_per_second: float = Field(default=10.0, gt=0, le=20)  # per endpoint (Gate: 200 per 10 s)
    rest_timeout_seconds: float = Field(default=10.0, gt=0)

    # --- chat / LLM ------------------------------------------------------------------------
    anthropic_api_key: SecretStr | None = Field(default=None, validation_alias=AliasChoices("ANTHROPIC_API_KEY"))
    # None: the SDK's own default (https://api.anthropic.com); tests point it at a local fake.
    anthropic_base_url: str | None = Field(default=None, validation_alias=AliasChoices("ANTHROPIC_BASE_URL"))
    llm_provider: LLMProvider = Field(
        default_factory=lambda d: LLMProvider.ANTHROPIC if d["anthropic_api_key"] else LLMProvider.OFFLINE
    )
    # claude-sonnet-4-5 reaches end of life on 2026-11-30 (anthropic SDK DEPRECATED_MODELS).
    llm_model: str = "claude-sonnet-5-5"
    llm_max_tokens: int = Field(default=1024, ge=1)
    llm_timeout_seconds: float = Field(default=60.0, gt=0)  # read timeout between streamed bytes
    llm_connect_timeout_seconds: float = Field(default=5.0, gt=0)
    llm_max_retries: int = Field(default=2, ge=0)
    llm_max_concurrency: int = Field(default=64, ge=1)
    llm_queue_size: int = Field(default=1000, ge=0)
    llm_queue_timeout_seconds: float = Field(default=10.0, gt=0)
    chat_request_deadline_seconds: float = Field(default=120.0, gt=0)
    chat_daily_token_budget: int = Field(default=200_000, ge=1)
    chat_rate_per_minute: int = Field(default=10, ge=1)
    chat_history_messages: int = Field(default=20, ge=0)  # earlier turns sent to the model with a question
    chat_max_tool_rounds: int = Field(default=6, ge=0)  # model rounds that may call tools per answer
    chat_tool_timeout_seconds: float = Field(default=5.0, gt=0)  # one tool call (also bounded by the deadline)
    chat_orphan_grace_seconds: float = Field(default=60.0, ge=0)  # an answer whose readers left keeps running
    sse_keepalive_seconds: float = Field(default=15.0, gt=0)
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)  # request bodies, every route but uploads
    max_upload_bytes: int = Field(default=2 * 1024 * 1024, ge=1024)  # routes in sage.api.body_limit.UPLOAD_ROUTES
    # Pause between the offline model's chunks: 0 answers at once; a few ms shows streaming
    # as a real model does (the browser tests use it to stop and reload mid-answer).
    llm_offline_chunk_delay_ms: float = Field(default=0.0, ge=0, le=5000)
    # How long an answer's buffer outlives its deadline: reconnects resume from it, and its
    # write to PostgreSQL is retried through an outage for this long before it counts as lost.
    chat_buffer_keep_seconds: float = Field(default=120.0, gt=0)

    # --- observability and alerting --------------------------------------------------------
    sentry_dsn: SecretStr | None = Field(default=None, validation_alias=AliasChoices("SENTRY_DSN"))
    sentry_traces_sample_rate: float = Field(default=0.1, ge=0, le=1)
    metrics_emf: bool = Field(default_factory=lambda d: d["env"] is Environment.PRODUCTION)
    metrics_token: SecretStr | None = None
    # On in development; in production only behind a token.
    metrics_prometheus: bool = Field(
        default_factory=lambda d: d["env"] is not Environment.PRODUCTION or d["metrics_token"] is not None
    )
    discord_webhook_errors: SecretStr | None = None
    discord_webhook_performance: SecretStr | None = None
    discord_webhook_business: SecretStr | None = None
    metrics_flush_seconds: float = Field(default=10.0, gt=0)  # EMF: one line per dimension set per flush
    discord_timeout_seconds: float = Field(default=10.0, gt=0)
    discord_max_attempts: int = Field(default=5, ge=1, le=20)  # 5xx / timeouts; 429s wait and do not count
    discord_repeat_window_seconds: float = Field(default=60.0, ge=0)  # 0 = never group repeats
    discord_queue_size: int = Field(default=10_000, ge=10)  # per webhook
    alerts_enabled: bool = True  # in-app alert rules (spec 9.3); the Discord channels still work when off
    alert_eval_seconds: float = Field(default=15.0, gt=0)
    alert_error_rate_percent: float = Field(default=5.0, gt=0)
    alert_error_rate_window_seconds: float = Field(default=300.0, gt=0)
    alert_error_rate_min_requests: int = Field(default=20, ge=1)
    alert_db_pool_percent: float = Field(default=90.0, gt=0)
    alert_api_p95_ms: float = Field(default=500.0, gt=0)
    alert_api_p95_window_seconds: float = Field(default=600.0, gt=0)
    alert_api_p95_min_requests: int = Field(default=20, ge=1)
    alert_first_token_ms: float = Field(default=5000.0, gt=0)
    alert_first_token_window_seconds: float = Field(default=300.0, gt=0)
    alert_valkey_memory_percent: float = Field(default=80.0, gt=0)
    alert_hallucination_percent: float = Field(default=1.0, gt=0)
    alert_llm_queue_size: float = Field(default=1000.0, gt=0)
    alert_daily_summary_hour: int = Field(default=0, ge=0, le=23)  # UTC hour the previous day's summary is sent
    alert_dau_milestones: Annotated[list[int], NoDecode] = Field(default_factory=lambda: [10, 100, 1000, 10_000])
    alert_market_digest_seconds: float = Field(default=300.0, ge=0)  # 0: off; fired and delivered counts per channel
    alert_rules_off: Annotated[list[str], NoDecode] = Field(default_factory=list)  # rule keys, e.g. first_token

    # --- user notifications (alerts that reach the user) -----------------------------------
    public_url: str = "http://127.0.0.1:3000"  # where links in emails point (the web app's origin)
    delivery_poll_seconds: float = Field(default=1.0, gt=0)  # outbox polling interval of the delivery worker
    delivery_batch_size: int = Field(default=100, ge=1)  # deliveries claimed per round
    delivery_concurrency: int = Field(default=10, ge=1)  # sends in flight per worker
    delivery_max_attempts: int = Field(default=5, ge=1)  # then the delivery ends `failed`
    delivery_backoff_initial_seconds: float = Field(default=5.0, gt=0)  # doubles per attempt (Retry-After wins)
    delivery_backoff_max_seconds: float = Field(default=900.0, gt=0)
    delivery_lease_seconds: float = Field(default=60.0, gt=0)  # a claimed delivery is retaken after this
    smtp_host: str | None = None  # unset: email delivery off
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_starttls: bool = True  # STARTTLS on a plain connection (port 587)
    smtp_tls: bool = False  # implicit TLS (port 465); wins over STARTTLS
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_from: str = "Sage <alerts@localhost>"
    smtp_timeout_seconds: float = Field(default=10.0, gt=0)
    email_verify_ttl_seconds: int = Field(default=24 * 3600, ge=60)  # lifetime of an email verification link
    # Web Push: on in development (a generated VAPID pair); in production opt-in, with real keys.
    web_push_enabled: bool = Field(default_factory=lambda d: d["env"] is not Environment.PRODUCTION)
    vapid_private_key: SecretStr | None = None  # base64url raw P-256 private key (32 bytes)
    vapid_public_key: str | None = None  # base64url uncompressed P-256 point (the browser's applicationServerKey)
    vapid_subject: str = "mailto:alerts@localhost"  # contact the push services may use (RFC 8292 `sub`)
    web_push_timeout_seconds: float = Field(default=10.0, gt=0)
    web_push_ttl_seconds: int = Field(default=24 * 3600, ge=0)  # how long a push service keeps an undelivered message

    # --- backups ---------------------------------------------------------------------------
    backup_url: str = Field(default_factory=lambda d: (d["data_dir"] / "backups").resolve().as_uri())
    backup_retention: int = Field(default=7, ge=1)
    pg_bin_dir: Path | None = None  # pg_dump/pg_restore/psql; default: the wheel's PostgreSQL 18, then PATH

    # --- database roles (`sage db bootstrap-roles`, run with the master user's DATABASE_URL) -----
    db_owner_password: SecretStr | None = None  # sage_owner: migrations, verify-backup
    db_app_password: SecretStr | None = None  # sage_app: the API and the ingestor (DML only)
    db_readonly_password: SecretStr | None = None  # sage_readonly: sage db backup
    # --- shadow portfolio ------------------------------------------------------------------
    portfolio_fee_rate: Decimal = Field(default=Decimal("0.001"), ge=0, lt=1)  # of notional, in base currency
    portfolio_starting_cash: Decimal = Field(default=Decimal("10000"), ge=0, max_digits=38, decimal_places=18)

    # ------------------------------------------------------------------------------------------
    @field_validator("cors_origins", "symbols", "alert_dau_milestones", "alert_rules_off", mode="before")
    @classmethod
    def _csv(cls, value: Any) -> Any:
        return _split_csv(value)

    @field_validator("frontend_dir", mode="before")
    @classmethod
    def _empty_frontend_dir_disables(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("symbols")
    @classmethod
    def _normalise_symbols(cls, value: list[str]) -> list[str]:
        out: list[str] = []
        for raw in value:
            symbol = raw.strip().upper().replace("_", "/").replace("-", "/")
            if "/" not in symbol:
                raise ValueError(f"SAGE_SYMBOLS entry {raw!r} must be BASE/QUOTE, e.g. BTC/USDT")
            out.append(symbol)
        if not out:
            raise ValueError("SAGE_SYMBOLS must name at least one symbol")
        return out

    @model_validator(mode="after")
    def _check_provider_key(self) -> Settings:
        if self.llm_provider is LLMProvider.ANTHROPIC and not self.secret_value("anthropic_api_key"):
            raise ValueError("SAGE_LLM_PROVIDER=anthropic needs ANTHROPIC_API_KEY (or use SAGE_LLM_PROVIDER=offline)")
        return self

    @property
    def is_production(self) -> bool:
        return self.env is Environment.PRODUCTION

    @cached_property
    def embedded_database(self) -> bool:
        return self.database_url is None

    def secret_value(self, name: str) -> str | None:
        value = getattr(self, name)
        if value is None:
            return None
        return value.get_secret_value() if isinstance(value, SecretStr) else str(value)

    def check_production(self) -> None:
        """Refuse to run in production with a missing or placeholder secret.

        Raises ConfigurationError whose message is one line naming the variable.
        """
        if not self.is_production:
            return
        required: list[tuple[str, str]] = [
            ("SAGE_JWT_SECRET", "jwt_secret"),
            ("DATABASE_URL", "database_url"),
            ("VALKEY_URL", "valkey_url"),
        ]
        if self.llm_provider is LLMProvider.ANTHROPIC:
            required.append(("ANTHROPIC_API_KEY", "anthropic_api_key"))
        for env_name, field in required:
            value = self.secret_value(field)
            if value is None or not value.strip():
                raise ConfigurationError(f"{env_name} is required when SAGE_ENV=production")
            if _is_placeholder(value):
                raise ConfigurationError(f"{env_name} is a development placeholder; set a real value")
        jwt = self.secret_value("jwt_secret") or ""
        if len(jwt) < 32:
            raise ConfigurationError("SAGE_JWT_SECRET must be at least 32 characters in production")
        if self.smtp_host and not (self.secret_value("smtp_password") or "").strip():
            # email on (SAGE_SMTP_HOST set): an unauthenticated relay would be refused mid-alert
            raise ConfigurationError(
                "SAGE_SMTP_PASSWORD is required when SAGE_ENV=production and SAGE_SMTP_HOST is set"
            )
        if self.web_push_enabled:
            for env_name, field in (
                ("SAGE_VAPID_PRIVATE_KEY", "vapid_private_key"),
                ("SAGE_VAPID_PUBLIC_KEY", "vapid_public_key"),
            ):
                if not (self.secret_value(field) or "").strip():
                    raise ConfigurationError(
                        f"{env_name} is required when SAGE_ENV=production and SAGE_WEB_PUSH_ENABLED=true"
                    )


def env_name(field: str) -> str:
    """The environment variable that sets a Settings field."""
    info = Settings.model_fields.get(field)
    alias = getattr(info, "validation_alias", None) if info else None
    if isinstance(alias, AliasChoices):
        return str(alias.choices[0])
    return f"SAGE_{field.upper()}"


def _is_placeholder(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in PLACEHOLDER_SECRETS or value == DEV_JWT_SECRET:
        return True
    return "change-me" in lowered or "changeme" in lowered or "placeholder" in lowered


def load_settings(**overrides: Any) -> Settings:
    """Read the environment (and explicit overrides, used by tests and the CLI)."""
    return Settings(**overrides)
