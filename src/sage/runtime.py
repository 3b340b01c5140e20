"""The composition root: everything one Sage process holds, built in dependency order.

`Runtime.start()` resolves the embedded default (embedded PostgreSQL with migrations
applied, in-process cache) or connects to the configured services, then builds each domain
from exactly what it needs, in the order their dependencies require:

    stores (PostgreSQL, cache, rate limiter, auth)
      -> observability (notifier, active users: every later domain may notify)
      -> market (service; the ingestor too in the embedded default)
      -> portfolio, notifications (inbox, live hub, delivery worker), price alerts (+ their checker loop), chat
      -> the alert-rule runner (its daily summary reads the portfolio and the market)

Cleanups go on one exit stack, so shutdown runs in reverse: the chat stops before the
market, and the notifier closes after everything that may still raise an alert. Nothing
else in the code base wires services together; routers read them through `sage.api.deps`.
"""

from __future__ import annotations

import logging
from contextlib import AsyncExitStack
from dataclasses import dataclass

from sage.alerts.checker import start_price_alert_checks
from sage.alerts.service import PriceAlertService
from sage.auth.service import AuthService
from sage.auth.tokens import TokenCodec
from sage.chat.providers import build_model
from sage.chat.service import ChatService
from sage.chat.tools.toolbox import build_toolbox
from sage.market.catalog import ListedSymbols, SymbolCatalog
from sage.market.history import CandleHistory
from sage.market.ingest import Ingestor
from sage.market.pipeline import ticks_channel
from sage.market.reader import MarketReader
from sage.market.service import MarketService
from sage.market.startup import start_market
from sage.notifications.delivery import ChannelSender, DeliveryWorker, RetryPolicy, start_delivery_worker
from sage.notifications.email import EmailSender, SmtpConfig, SmtpMailer
from sage.notifications.inbox import NotificationService
from sage.notifications.live import NotificationHub
from sage.notifications.outbox import EMAIL, WEB_PUSH
from sage.notifications.verification import EmailVerifier
from sage.notifications.webpush import Subscriptions, VapidKeys, WebPushSender
from sage.notify import Notifier
from sage.observability.active_users import ActiveUsers
from sage.observability.metrics import Metrics
from sage.observability.portfolio_summary import portfolio_source
from sage.observability.service import AlertRuleRunner, start_alert_rules, start_observability
from sage.portfolio.service import PortfolioService
from sage.settings import Settings
from sage.store.cache import Cache
from sage.store.cache_setup import build_cache
from sage.store.db import Database, create_engine
from sage.store.embedded_pg import EmbeddedPostgres, start_embedded_postgres
from sage.store.ratelimit import RateLimiter

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Services:
    """The domain services of one process, typed; routers reach them through `sage.api.deps`."""

    notifier: Notifier
    active_users: ActiveUsers
    market: MarketService
    catalog: SymbolCatalog  # which symbols exist: portfolio, alerts and chat validate against it
    ingestor: Ingestor | None  # only where ingestion runs in-process (the embedded default)
    portfolio: PortfolioService
    price_alerts: PriceAlertService
    chat: ChatService
    alert_rules: AlertRuleRunner
    notifications: NotificationService
    delivery: DeliveryWorker
    email_verifier: EmailVerifier
    push_subscriptions: Subscriptions
    vapid_public_key: str | None  # None: Web Push is off


@dataclass(frozen=True)
class Runtime:
    settings: Settings
    db: Database
    cache: Cache
    metrics: Metrics
    auth: AuthService
    limiter: RateLimiter
    database_url: str
    services: Services
    embedded_pg: EmbeddedPostgres | None = None

    @classmethod
    async def start(
        cls,
        settings: Settings,
        stack: AsyncExitStack,
        *,
        metrics: Metrics | None = None,
        market_reader: MarketReader | None = None,
    ) -> Runtime:
        """Build the process. `market_reader` replaces the market service as the source of
        prices for the portfolio, chat and alerts (tests that bring their own prices)."""
        metrics = metrics or Metrics()
        embedded: EmbeddedPostgres | None = None
        url = settings.database_url
        if url is None:
            embedded = start_embedded_postgres(settings.data_dir)
            stack.callback(embedded.stop)
            url = embedded.url
            log.info("embedded PostgreSQL started", extra={"pgdata": str(embedded.pgdata)})
            # Imported here: Alembic and Mako cost ~12 MB of RSS, and only the embedded default
            # migrates at start (deployments run `sage db upgrade` as a separate task).
            from sage.ops import schema

            await schema.upgrade(url)
        db = Database(create_engine(settings, url))
        stack.push_async_callback(db.dispose)
        cache = build_cache(settings, on_error=lambda: metrics.incr("ValkeyErrors"))
        stack.push_async_callback(cache.close)
        codec = TokenCodec(
            settings.secret_value("jwt_secret") or "",
            access_ttl=settings.jwt_access_ttl_seconds,
            refresh_ttl=settings.jwt_refresh_ttl_seconds,
        )
        limiter = RateLimiter(cache)

        observability = await start_observability(settings, cache, metrics, stack)
        market = await start_market(settings, cache, db, metrics, stack)
        prices: MarketReader = market_reader or market.service
        listed = ListedSymbols(market.catalog)  # one check of request bodies' symbols for every domain
        portfolio = PortfolioService(
            db,
            prices,
            listed,
            fee_rate=settings.portfolio_fee_rate,
            starting_cash=settings.portfolio_starting_cash,
        )
        notification_hub = NotificationHub(cache)
        stack.push_async_callback(notification_hub.close)
        mailer = smtp_mailer(settings)
        senders: dict[str, ChannelSender] = {}
        if mailer is not None:
            senders[EMAIL] = EmailSender(mailer, inbox_url=settings.public_url)
        push_subscriptions = Subscriptions(db)
        vapid = vapid_keys(settings)
        if vapid is not None:
            push = WebPushSender(
                push_subscriptions,
                vapid,
                subject=settings.vapid_subject,
                ttl=settings.web_push_ttl_seconds,
                timeout=settings.web_push_timeout_seconds,
            )
            stack.push_async_callback(push.close)
            senders[WEB_PUSH] = push
        notifications = NotificationService(
            db, notification_hub, keepalive=settings.sse_keepalive_seconds, available=frozenset(senders)
        )
        delivery = DeliveryWorker(
            db,
            senders,
            metrics,
            policy=RetryPolicy(
                max_attempts=settings.delivery_max_attempts,
                initial=settings.delivery_backoff_initial_seconds,
                maximum=settings.delivery_backoff_max_seconds,
            ),
            batch_size=settings.delivery_batch_size,
            concurrency=settings.delivery_concurrency,
            lease_seconds=settings.delivery_lease_seconds,
        )
        start_delivery_worker(delivery, poll=settings.delivery_poll_seconds, stack=stack)
        email_verifier = EmailVerifier(
            settings.secret_value("jwt_secret") or "",
            ttl_seconds=settings.email_verify_ttl_seconds,
            public_url=settings.public_url,
            mailer=mailer,
        )
        price_alerts = PriceAlertService(db, metrics, prices, listed, portfolios=portfolio)
        start_price_alert_checks(  # woken by the tick batches the market publishes
            price_alerts,
            notification_hub,
            interval=settings.market_alert_check_seconds,
            ticks=(cache, ticks_channel(cache)),
            stack=stack,
        )
        chat = ChatService(
            settings=settings,
            db=db,
            cache=cache,
            metrics=metrics,
            limiter=limiter,
            model=build_model(settings),
            market=prices,
            portfolio=portfolio,
            tools=build_toolbox(
                prices=prices,
                symbols=listed,
                candles=CandleHistory(db, market.service.exchanges),
                fear_greed=market.service,
                portfolio=portfolio,
                alerts=price_alerts,
                history_days=settings.candle_retention_days,
                timeout=settings.chat_tool_timeout_seconds,
            ),
        )
        stack.push_async_callback(chat.close)
        alert_rules = start_alert_rules(
            settings,
            db,
            cache,
            metrics,
            observability,
            {"portfolio": portfolio_source(portfolio)},
            stack,
        )
        services = Services(
            notifier=observability.notifier,
            active_users=observability.active_users,
            market=market.service,
            catalog=market.catalog,
            ingestor=market.ingestor,
            portfolio=portfolio,
            price_alerts=price_alerts,
            chat=chat,
            alert_rules=alert_rules,
            notifications=notifications,
            delivery=delivery,
            email_verifier=email_verifier,
            push_subscriptions=push_subscriptions,
            vapid_public_key=vapid.public_key if vapid is not None else None,
        )
        return cls(
            settings=settings,
            db=db,
            cache=cache,
            metrics=metrics,
            auth=AuthService(db, codec),
            limiter=limiter,
            database_url=url,
            services=services,
            embedded_pg=embedded,
        )


def smtp_mailer(settings: Settings) -> SmtpMailer | None:
    """The SMTP client when SAGE_SMTP_HOST is set (email alerts and verification), else None."""
    if not settings.smtp_host:
        return None
    return SmtpMailer(
        SmtpConfig(
            host=settings.smtp_host,
            port=settings.smtp_port,
            sender=settings.smtp_from,
            starttls=settings.smtp_starttls,
            tls=settings.smtp_tls,
            username=settings.smtp_username,
            password=settings.secret_value("smtp_password"),
            timeout=settings.smtp_timeout_seconds,
        )
    )


def vapid_keys(settings: Settings) -> VapidKeys | None:
    """The VAPID key pair when Web Push is on: from settings, or (development only, where
    Settings.check_production allows it) a pair generated once and kept in the data directory."""
    if not settings.web_push_enabled:
        return None
    private, public = settings.secret_value("vapid_private_key"), settings.vapid_public_key
    if private and public:
        return VapidKeys(private, public)
    return VapidKeys.load_or_create(settings.data_dir / "vapid.json")
