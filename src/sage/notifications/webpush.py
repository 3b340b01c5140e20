"""Web Push (RFC 8030 delivery, RFC 8291 aes128gcm encryption, RFC 8292 VAPID).

Encryption and the VAPID signature come from `http_ece` and `py_vapid` (the libraries
pywebpush itself is built on); the request is sent with httpx so it stays async. A 404 or
410 from the push service means the browser unsubscribed: the subscription is deleted. A 429
or 5xx is temporary (Retry-After honoured by the worker); other 4xx are permanent. Every
message carries the notification id as its `Topic`, so a push service replaces an undelivered
duplicate (a retry after a partial failure) instead of showing it twice.
"""

from __future__ import annotations

import base64
import logging
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import http_ece
import httpx
import orjson
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid02
from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert

from sage.errors import NotFound
from sage.notifications.delivery import Claimed, PermanentFailure, TemporaryFailure
from sage.store.db import Database
from sage.store.notification_tables import PushSubscription

log = logging.getLogger(__name__)

JWT_LIFETIME_SECONDS = 12 * 3600  # RFC 8292: no more than 24 hours


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class VapidKeys:
    private_key: str  # base64url raw 32-byte scalar
    public_key: str  # base64url uncompressed point (65 bytes)

    @classmethod
    def generate(cls) -> VapidKeys:
        key = ec.generate_private_key(ec.SECP256R1())
        private = key.private_numbers().private_value.to_bytes(32, "big")
        public = key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return cls(b64url(private), b64url(public))

    @classmethod
    def load_or_create(cls, path: Path) -> VapidKeys:
        """Development only: a pair kept in the data directory, so subscriptions survive restarts."""
        if path.exists():
            data = orjson.loads(path.read_bytes())
            return cls(data["private_key"], data["public_key"])
        keys = cls.generate()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(orjson.dumps({"private_key": keys.private_key, "public_key": keys.public_key}))
        path.chmod(0o600)
        return keys


class Subscriptions:
    """Users' push subscriptions (one row per browser endpoint)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def add(self, user_id: uuid.UUID, *, endpoint: str, p256dh: str, auth: str) -> None:
        async with self.db.session() as session:
            await session.execute(
                insert(PushSubscription)
                .values(id=uuid.uuid4(), user_id=user_id, endpoint=endpoint, p256dh=p256dh, auth=auth)
                .on_conflict_do_update(
                    index_elements=[PushSubscription.endpoint],
                    set_={"user_id": user_id, "p256dh": p256dh, "auth": auth},
                )
            )
            await session.commit()

    async def remove(self, user_id: uuid.UUID, endpoint: str) -> None:
        async with self.db.session() as session:
            result = await session.execute(
                delete(PushSubscription).where(
                    PushSubscription.user_id == user_id, PushSubscription.endpoint == endpoint
                )
            )
            await session.commit()
        if result.rowcount == 0:  # type: ignore[attr-defined]
            raise NotFound("No such push subscription")

    async def of(self, user_id: uuid.UUID) -> list[PushSubscription]:
        async with self.db.session() as session:
            return list(await session.scalars(select(PushSubscription).where(PushSubscription.user_id == user_id)))

    async def gone(self, endpoint: str) -> None:
        async with self.db.session() as session:
            await session.execute(delete(PushSubscription).where(PushSubscription.endpoint == endpoint))
            await session.commit()


class WebPushSender:
    """The `web_push` channel of the delivery worker."""

    def __init__(
        self, subscriptions: Subscriptions, keys: VapidKeys, *, subject: str, ttl: int, timeout: float
    ) -> None:
        self.subscriptions = subscriptions
        self.vapid = Vapid02.from_string(keys.private_key)
        self.subject = subject
        self.ttl = ttl
        self.client = httpx.AsyncClient(timeout=timeout)

    async def close(self) -> None:
        await self.client.aclose()

    def _authorization(self, endpoint: str) -> str:
        parts = urlsplit(endpoint)
        claims = {
            "aud": f"{parts.scheme}://{parts.netloc}",
            "exp": int(time.time()) + JWT_LIFETIME_SECONDS,
            "sub": self.subject,
        }
        return str(self.vapid.sign(claims)["Authorization"])

    async def send(self, delivery: Claimed) -> None:
        subscriptions = await self.subscriptions.of(delivery.user_id)
        if not subscriptions:
            raise PermanentFailure("no browser is subscribed to push notifications")
        payload = orjson.dumps(
            {"id": delivery.notification_id, "title": delivery.title, "body": delivery.body, "data": delivery.data}
        )
        temporary: TemporaryFailure | None = None
        delivered = 0
        for sub in subscriptions:
            try:
                await self._push(sub, payload, topic=f"n{delivery.notification_id}")
                delivered += 1
            except TemporaryFailure as exc:
                temporary = exc
            except PermanentFailure as exc:
                log.info("push subscription refused a message", extra={"error": str(exc)})
        if temporary is not None:
            raise temporary
        if delivered == 0:
            raise PermanentFailure("every push subscription refused the message or is gone")

    async def _push(self, sub: PushSubscription, payload: bytes, *, topic: str) -> None:
        body = http_ece.encrypt(
            payload,
            private_key=ec.generate_private_key(ec.SECP256R1()),
            dh=unb64url(sub.p256dh),
            auth_secret=unb64url(sub.auth),
            version="aes128gcm",
        )
        headers = {
            "Authorization": self._authorization(sub.endpoint),
            "Content-Encoding": "aes128gcm",
            "Content-Type": "application/octet-stream",
            "TTL": str(self.ttl),
            "Topic": topic,
            "Urgency": "high",
        }
        try:
            response = await self.client.post(sub.endpoint, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise TemporaryFailure(f"push service unreachable: {type(exc).__name__}") from None
        status = response.status_code
        if status in (200, 201, 202):
            return
        if status in (404, 410):
            await self.subscriptions.gone(sub.endpoint)
            raise PermanentFailure(f"push subscription gone ({status})")
        if status == 429 or status >= 500:
            raise TemporaryFailure(f"push service answered {status}", retry_after=_retry_after(response))
        raise PermanentFailure(f"push service answered {status}")


def _retry_after(response: httpx.Response) -> float | None:
    raw = response.headers.get("retry-after")
    try:
        return float(raw) if raw is not None else None
    except ValueError:
        return None  # an HTTP date: fall back to our own backoff
