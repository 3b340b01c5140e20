"""Email over SMTP (aiosmtplib): the alert channel and the address-verification mail.

Works with any provider's SMTP interface (Amazon SES, Postmark, a local relay): host, port,
STARTTLS (587) or implicit TLS (465), optional login. SMTP 4xx replies and connection errors
are temporary (retried by the worker); 5xx replies are permanent (the delivery ends failed).
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import make_msgid

import aiosmtplib

from sage.notifications.delivery import Claimed, PermanentFailure, TemporaryFailure


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int
    sender: str
    starttls: bool = True
    tls: bool = False
    username: str | None = None
    password: str | None = None
    timeout: float = 10.0


def compose(
    *, sender: str, to: str, subject: str, text_body: str, html_body: str, message_id: str | None = None
) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = message_id or make_msgid(domain="sage.local")
    message.set_content(text_body)
    message.add_alternative(html_body, subtype="html")
    return message


def alert_email(sender: str, delivery: Claimed, to: str, inbox_url: str) -> EmailMessage:
    text_body = f"{delivery.body}\n\nSee all your notifications: {inbox_url}\n"
    html_body = (
        "<!doctype html><html><body>"
        f"<h2>{html.escape(delivery.title)}</h2><p>{html.escape(delivery.body)}</p>"
        f'<p><a href="{html.escape(inbox_url, quote=True)}">See all your notifications</a></p>'
        "</body></html>"
    )
    # One Message-ID per delivery: a resend after a crash is recognisable as the same message.
    return compose(
        sender=sender,
        to=to,
        subject=delivery.title,
        text_body=text_body,
        html_body=html_body,
        message_id=f"<delivery-{delivery.id}@sage.local>",
    )


class SmtpMailer:
    def __init__(self, config: SmtpConfig) -> None:
        self.config = config

    async def deliver(self, message: EmailMessage) -> None:
        c = self.config
        try:
            await aiosmtplib.send(
                message,
                hostname=c.host,
                port=c.port,
                use_tls=c.tls,
                start_tls=c.starttls and not c.tls,
                username=c.username,
                password=c.password,
                timeout=c.timeout,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            code = exc.recipients[0].code if exc.recipients else 550
            reason = f"SMTP {code}: recipient refused"
            raise (TemporaryFailure(reason) if 400 <= code < 500 else PermanentFailure(reason)) from None
        except aiosmtplib.SMTPResponseException as exc:
            reason = f"SMTP {exc.code}: {exc.message}"
            if 400 <= exc.code < 500:
                raise TemporaryFailure(reason) from None
            raise PermanentFailure(reason) from None
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise TemporaryFailure(f"SMTP connection failed: {type(exc).__name__}") from None


class EmailSender:
    """The `email` channel of the delivery worker."""

    def __init__(self, mailer: SmtpMailer, *, inbox_url: str) -> None:
        self.mailer = mailer
        self.inbox_url = inbox_url

    async def send(self, delivery: Claimed) -> None:
        if delivery.email is None:
            raise PermanentFailure("email address not verified")
        await self.mailer.deliver(alert_email(self.mailer.config.sender, delivery, delivery.email, self.inbox_url))
