"""The outbox: a fired alert's email is sent once, retried when the server says so, failed
visibly when it never can be, and neither lost nor doubled when a worker dies mid-batch."""

from __future__ import annotations

import asyncio

import httpx
from sqlalchemy import text

from sage.notifications.delivery import Claimed, DeliveryWorker, RetryPolicy
from sage.notifications.email import EmailSender
from tests.alerts.support import create, inbox, move, services, tick
from tests.chat.support import FakeMarket, eventually
from tests.notifications.fake_smtp import FakeSmtp
from tests.notifications.support import email_user


async def _fire(client: httpx.AsyncClient, headers: dict[str, str], market: FakeMarket, count: int = 1) -> None:
    for i in range(count):
        response = await create(client, headers, kind="price_above", symbol="BTC/USDT", threshold=str(98000 + i))
        assert response.status_code == 201, response.text
    move(market, "BTC/USDT", "120000")
    assert await tick(client) == count


async def test_a_fired_alert_is_emailed_once_with_text_and_html(
    app_client: httpx.AsyncClient, market_reader: FakeMarket, smtp: FakeSmtp
) -> None:
    headers, address = await email_user(app_client, smtp)
    await _fire(app_client, headers, market_reader)
    worker = services(app_client).delivery
    assert await worker.drain() == 1
    assert await worker.drain() == 0
    [message] = smtp.to(address)
    assert message["Subject"] == "Alert: BTC/USDT above 98,000"
    assert message["From"] == "Sage Alerts <alerts@sage.test>"
    plain = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert plain is not None and "now 120,000" in plain.get_content()
    assert html is not None and "<h2>Alert: BTC/USDT above 98,000</h2>" in html.get_content()
    [note] = await inbox(app_client, headers)
    assert [(d["channel"], d["status"], d["attempts"]) for d in note["deliveries"]] == [("email", "sent", 1)]


async def test_email_alerts_wait_for_a_verified_address(
    app_client: httpx.AsyncClient, auth_headers: dict[str, str], market_reader: FakeMarket, smtp: FakeSmtp
) -> None:
    enabled = await app_client.put("/api/v1/users/me/notification-settings", json={"email": True}, headers=auth_headers)
    assert enabled.json() == {
        "in_app": True,
        "email": True,
        "web_push": False,
        "email_verified": False,
        "available": ["email", "web_push"],
    }
    await _fire(app_client, auth_headers, market_reader)
    assert await services(app_client).delivery.drain() == 0
    [note] = await inbox(app_client, auth_headers)
    assert note["deliveries"] == [] and smtp.received == []


async def test_temporary_smtp_failures_are_retried_until_sent(
    app_client: httpx.AsyncClient, market_reader: FakeMarket, smtp: FakeSmtp
) -> None:
    headers, address = await email_user(app_client, smtp)
    await _fire(app_client, headers, market_reader)
    smtp.temporary_failures = 2
    worker = services(app_client).delivery

    async def sent() -> bool:
        await worker.run_once()
        return len(smtp.to(address)) == 1

    await eventually(sent)
    [note] = await inbox(app_client, headers)
    assert [(d["status"], d["attempts"]) for d in note["deliveries"]] == [("sent", 3)]


async def test_a_permanently_refused_address_ends_failed_and_the_user_sees_why(
    app_client: httpx.AsyncClient, market_reader: FakeMarket, smtp: FakeSmtp
) -> None:
    headers, address = await email_user(app_client, smtp)
    smtp.reject.add(address)
    await _fire(app_client, headers, market_reader)
    assert await services(app_client).delivery.drain() == 1
    [note] = await inbox(app_client, headers)
    [delivery] = note["deliveries"]
    assert (delivery["status"], delivery["attempts"]) == ("failed", 1)
    assert delivery["last_error"].startswith("SMTP 550")


async def test_retries_are_bounded(app_client: httpx.AsyncClient, market_reader: FakeMarket, smtp: FakeSmtp) -> None:
    headers, _ = await email_user(app_client, smtp)
    await _fire(app_client, headers, market_reader)
    smtp.temporary_failures = 1000
    worker = services(app_client).delivery

    async def settled() -> list[dict[str, object]] | None:
        await worker.run_once()
        [note] = await inbox(app_client, headers)
        return note["deliveries"] if note["deliveries"][0]["status"] != "pending" else None

    [delivery] = await eventually(settled)
    assert (delivery["status"], delivery["attempts"]) == ("failed", 5)
    assert str(delivery["last_error"]).startswith("gave up after 5 attempts: SMTP 451")


class Hangs:
    """Sends `before` emails through the real sender, then hangs (the process is being killed)."""

    def __init__(self, real: EmailSender, before: int) -> None:
        self.real = real
        self.left = before
        self.hung = asyncio.Event()

    async def send(self, delivery: Claimed) -> None:
        if self.left == 0:
            self.hung.set()
            await asyncio.Event().wait()
        self.left -= 1
        await self.real.send(delivery)


async def test_a_worker_killed_mid_batch_loses_nothing_and_sends_nothing_twice(
    app_client: httpx.AsyncClient, market_reader: FakeMarket, smtp: FakeSmtp
) -> None:
    headers, address = await email_user(app_client, smtp)
    await _fire(app_client, headers, market_reader, count=5)
    runtime_worker = services(app_client).delivery
    real = runtime_worker.senders["email"]
    assert isinstance(real, EmailSender)
    db, metrics = runtime_worker.db, runtime_worker.metrics
    policy = RetryPolicy(max_attempts=5, initial=0.01)
    hanging = Hangs(real, before=2)
    doomed = DeliveryWorker(db, {"email": hanging}, metrics, policy=policy, concurrency=1, lease_seconds=600)
    task = asyncio.create_task(doomed.run_once())
    await asyncio.wait_for(hanging.hung.wait(), 20)
    task.cancel()  # killed after claiming all five and sending two
    await asyncio.gather(task, return_exceptions=True)

    successor = DeliveryWorker(db, {"email": real}, metrics, policy=policy, lease_seconds=1)
    assert await successor.run_once() == 0  # the dead worker's lease still holds
    async with db.session() as session:  # ten minutes pass: the lease runs out
        await session.execute(
            text(
                "UPDATE notification_deliveries SET lease_until = now() - interval '1 second'"
                " WHERE lease_until IS NOT NULL"
            )
        )
        await session.commit()
    assert await successor.drain() == 3
    assert await successor.drain() == 0
    ids = sorted(str(m["Message-ID"]) for m in smtp.to(address))
    assert len(ids) == 5 and len(set(ids)) == 5
    notes = await inbox(app_client, headers)
    attempts = sorted(d["attempts"] for n in notes for d in n["deliveries"] if d["status"] == "sent")
    assert attempts == [1, 1, 2, 2, 2]
