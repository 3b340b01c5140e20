"""A local Web Push service on 127.0.0.1 that checks what a real one checks.

Each request must carry `Authorization: vapid t=<JWT>,k=<key>` (RFC 8292) where `k` is the
application server key the subscription was made with, the JWT is ES256-signed by that key,
`aud` is this service's origin and `exp` is in the future and at most 24 h away. The body
must be `aes128gcm` (RFC 8188/8291) and is decrypted with the subscription's private key and
auth secret, as the browser would. Subscriptions can be made gone (410) or rate limited (429).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from dataclasses import dataclass, field
from typing import Any

import http_ece
import jwt
import orjson
import uvicorn
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sage.notifications.webpush import b64url, unb64url
from tests.support.servers import free_port


@dataclass
class Browser:
    """One subscription: the browser's key pair and auth secret."""

    token: str
    key: ec.EllipticCurvePrivateKey = field(default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))
    auth: bytes = field(default_factory=lambda: os.urandom(16))
    received: list[dict[str, Any]] = field(default_factory=list)

    def subscription(self, origin: str) -> dict[str, Any]:
        public = self.key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return {
            "endpoint": f"{origin}/push/{self.token}",
            "expirationTime": None,
            "keys": {"p256dh": b64url(public), "auth": b64url(self.auth)},
        }


@dataclass
class FakePushService:
    application_server_key: str  # the VAPID public key Sage must sign with
    browsers: dict[str, Browser] = field(default_factory=dict)
    gone: set[str] = field(default_factory=set)
    rate_limited: int = 0  # the next N requests get 429 with Retry-After
    refusals: list[str] = field(default_factory=list)  # why requests were refused
    port: int = 0
    _server: uvicorn.Server | None = None
    _task: asyncio.Task[None] | None = None

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def browser(self) -> Browser:
        b = Browser(token=os.urandom(8).hex())
        self.browsers[b.token] = b
        return b

    def _refuse(self, status: int, why: str) -> Response:
        self.refusals.append(why)
        return Response(status_code=status, content=why)

    async def push(self, request: Request) -> Response:
        token = request.path_params["token"]
        if token in self.gone or token not in self.browsers:
            return Response(status_code=410)
        if self.rate_limited > 0:
            self.rate_limited -= 1
            return Response(status_code=429, headers={"Retry-After": "0"})
        scheme, _, params = request.headers.get("authorization", "").partition(" ")
        fields = dict(part.split("=", 1) for part in params.split(",") if "=" in part)
        if scheme != "vapid" or "t" not in fields or "k" not in fields:
            return self._refuse(401, "no vapid authorization")
        if fields["k"] != self.application_server_key:
            return self._refuse(403, "wrong application server key")
        public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), unb64url(fields["k"]))
        try:
            claims = jwt.decode(fields["t"], public, algorithms=["ES256"], audience=self.origin)
        except jwt.PyJWTError as exc:
            return self._refuse(403, f"bad vapid jwt: {exc}")
        if claims["exp"] > time.time() + 24 * 3600 or not str(claims.get("sub", "")).startswith("mailto:"):
            return self._refuse(403, "vapid claims out of bounds")
        if request.headers.get("content-encoding") != "aes128gcm" or "ttl" not in request.headers:
            return self._refuse(400, "not aes128gcm or no TTL")
        browser = self.browsers[token]
        plain = http_ece.decrypt(
            await request.body(), private_key=browser.key, auth_secret=browser.auth, version="aes128gcm"
        )
        browser.received.append({"payload": orjson.loads(plain), "topic": request.headers.get("topic")})
        return Response(status_code=201)

    async def start(self) -> FakePushService:
        app = Starlette(routes=[Route("/push/{token}", self.push, methods=["POST"])])
        self.port = free_port()
        self._server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self._task = asyncio.create_task(self._server.serve())
        async with asyncio.timeout(20):
            while not self._server.started:
                await asyncio.sleep(0.01)
        return self

    async def stop(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            with contextlib.suppress(Exception):
                async with asyncio.timeout(10):
                    await self._task
