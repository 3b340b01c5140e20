"""The live notification stream: across API tasks through Valkey, resumable with Last-Event-ID."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import valkey.asyncio as valkey

from sage.alerts.checker import check_once
from sage.notifications.outbox import NewNotification, record
from sage.settings import Settings
from tests.alerts.support import create, move, user_id_of
from tests.chat.support import FakeMarket, LiveServer, SSEEvent, eventually, iter_sse, register, start_live_server


async def _next_events(stream: AsyncIterator[SSEEvent | str], count: int) -> list[SSEEvent]:
    events: list[SSEEvent] = []
    async with asyncio.timeout(20):
        async for item in stream:
            if isinstance(item, SSEEvent):
                events.append(item)
                if len(events) == count:
                    return events
    raise AssertionError("stream ended")


async def _live(stream: AsyncIterator[SSEEvent | str]) -> None:
    """Wait until the stream is past its catch-up and waiting for live items: the first
    keep-alive after the opening one is sent from the live loop."""
    comments = 0
    async with asyncio.timeout(20):
        async for item in stream:
            if isinstance(item, str) and item.startswith(": keepalive"):
                comments += 1
                if comments == 2:
                    return
    raise AssertionError("stream ended")


async def _fire(server: LiveServer) -> int:
    services = server.runtime.services
    return await check_once(services.price_alerts, services.notifications.hub)


async def test_a_notification_fired_on_one_task_reaches_a_stream_open_on_another(
    settings: Settings, market_reader: FakeMarket
) -> None:
    a = await start_live_server(settings, market=market_reader)
    b = await start_live_server(settings, market=market_reader)
    try:
        async with a.client() as on_a, b.client() as on_b:
            headers = await register(on_a)
            await create(on_a, headers, kind="price_above", symbol="BTC/USDT", threshold="98000")
            async with on_a.stream("GET", "/api/v1/notifications/stream", headers=headers) as response:
                assert response.status_code == 200
                await _live(events := iter_sse(response))
                move(market_reader, "BTC/USDT", "99000")
                assert await _fire(b) == 1
                [event] = await _next_events(events, 1)
                hub = a.runtime.services.notifications.hub

                async def carried_by_valkey() -> bool:  # (the inbox catch-up may have won the race)
                    return hub.dispatched == 1

                await eventually(carried_by_valkey)
            listed = (await on_b.get("/api/v1/notifications", headers=headers)).json()["items"]
        assert event.event == "notification"
        assert event.id == f"{listed[0]['id']}-0"
        assert event.data["title"] == "Alert: BTC/USDT above 98,000"
    finally:
        await a.stop()
        await b.stop()


async def test_a_reconnect_with_last_event_id_gets_exactly_what_it_missed(
    settings: Settings, market_reader: FakeMarket
) -> None:
    server = await start_live_server(settings, market=market_reader)
    try:
        async with server.client() as client:
            headers = await register(client)
            for level in ("98000", "99000", "100000"):
                await create(client, headers, kind="price_above", symbol="BTC/USDT", threshold=level)
            move(market_reader, "BTC/USDT", "98500")
            assert await _fire(server) == 1
            first = (await client.get("/api/v1/notifications", headers=headers)).json()["items"][0]["id"]
            move(market_reader, "BTC/USDT", "100500")  # two more while the client is away
            assert await _fire(server) == 2
            resume = {**headers, "Last-Event-ID": str(first)}
            async with client.stream("GET", "/api/v1/notifications/stream", headers=resume) as response:
                events = await _next_events(iter_sse(response), 2)
        assert [e.data["title"] for e in events] == ["Alert: BTC/USDT above 99,000", "Alert: BTC/USDT above 100,000"]
        assert [int(e.id.split("-")[0]) for e in events if e.id] == sorted(e.data["id"] for e in events)
        assert all(e.data["id"] > first for e in events)
    finally:
        await server.stop()


async def test_a_missed_publish_is_caught_up_from_the_inbox(settings: Settings, market_reader: FakeMarket) -> None:
    server = await start_live_server(settings, market=market_reader)
    try:
        async with server.client() as client:
            headers = await register(client)
            await create(client, headers, kind="price_above", symbol="BTC/USDT", threshold="98000")
            async with client.stream("GET", "/api/v1/notifications/stream", headers=headers) as response:
                await _live(events := iter_sse(response))
                move(market_reader, "BTC/USDT", "99000")
                # fire without publishing, as if the task died between the commit and the publish
                assert len((await server.runtime.services.price_alerts.evaluate()).fired) == 1
                [event] = await _next_events(events, 1)
        assert event.data["title"] == "Alert: BTC/USDT above 98,000"
        assert server.runtime.services.notifications.hub.dispatched == 0  # it came from the inbox
    finally:
        await server.stop()


async def test_a_publish_missed_between_two_subscriptions_is_shown_when_the_hub_resubscribes(
    settings: Settings, market_reader: FakeMarket
) -> None:
    # keep-alives (and their inbox re-reads) an hour apart: only the resync can deliver it
    server = await start_live_server(settings.model_copy(update={"sse_keepalive_seconds": 3600}), market=market_reader)

    async def unpublished(title: str) -> None:  # committed, never published
        async with server.runtime.db.session() as session:
            await record(session, [NewNotification(user_id=user, kind="alert", title=title, body=title, data={})])
            await session.commit()

    try:
        async with server.client() as client:
            headers = await register(client)
            user = user_id_of(headers["Authorization"].removeprefix("Bearer "))
            await unpublished("Before")
            stream_headers = headers | {"Last-Event-ID": "0"}
            async with client.stream("GET", "/api/v1/notifications/stream", headers=stream_headers) as response:
                assert response.status_code == 200
                events = iter_sse(response)
                [before] = await _next_events(events, 1)  # the catch-up is done: the stream waits live
                await unpublished("Missed")
                killer = valkey.from_url(settings.valkey_url or "")
                try:  # drop the hub's subscription, as a Valkey blip does
                    await killer.execute_command("CLIENT", "KILL", "TYPE", "pubsub")
                finally:
                    await killer.aclose()
                [missed] = await _next_events(events, 1)
        assert [before.data["title"], missed.data["title"]] == ["Before", "Missed"]
    finally:
        await server.stop()
