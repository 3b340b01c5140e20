"""Email address verification: a signed, expiring link (itsdangerous, HMAC-SHA1 over the payload).

The token names the user and the address it was sent to; it verifies only that pair, so a
link sent before the user changed their address verifies nothing. Email alerts go only to a
verified address (the outbox checks `verified_email = users.email`).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from urllib.parse import urlencode

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from sage.errors import SageError
from sage.notifications.email import SmtpMailer, compose

SALT = "sage.email-verify.v1"


class InvalidToken(SageError):
    status = 400
    code = "invalid_token"


@dataclass(frozen=True)
class VerifiedAddress:
    user_id: uuid.UUID
    email: str


class EmailVerifier:
    def __init__(self, secret: str, *, ttl_seconds: int, public_url: str, mailer: SmtpMailer | None) -> None:
        self.serializer = URLSafeTimedSerializer(secret, salt=SALT)
        self.ttl = ttl_seconds
        self.public_url = public_url.rstrip("/")
        self.mailer = mailer

    def token(self, user_id: uuid.UUID, email: str) -> str:
        return self.serializer.dumps({"u": str(user_id), "e": email})

    def check(self, token: str) -> VerifiedAddress:
        try:
            payload = self.serializer.loads(token, max_age=self.ttl)
            return VerifiedAddress(uuid.UUID(payload["u"]), str(payload["e"]))
        except SignatureExpired:
            raise InvalidToken("This verification link has expired; ask for a new one") from None
        except (BadSignature, KeyError, TypeError, ValueError):
            raise InvalidToken("This verification link is not valid") from None

    def link(self, token: str) -> str:
        return f"{self.public_url}/api/v1/users/me/email/verify?{urlencode({'token': token})}"

    async def send(self, user_id: uuid.UUID, email: str) -> None:
        if self.mailer is None:
            raise SageError("Email is not configured on this server")
        link = self.link(self.token(user_id, email))
        hours = self.ttl / 3600
        message = compose(
            sender=self.mailer.config.sender,
            to=email,
            subject="Confirm your email address for Sage alerts",
            text_body=f"Open this link to receive Sage alerts by email (valid {hours:g} h):\n\n{link}\n",
            html_body=(
                "<!doctype html><html><body><p>Confirm your email address to receive Sage alerts by email"
                f' (valid {hours:g} h):</p><p><a href="{link}">Confirm my address</a></p></body></html>'
            ),
        )
        await self.mailer.deliver(message)
