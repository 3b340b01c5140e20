"""The notifier against the local fake Discord: delivery, rate limits, retries, grouping."""

from __future__ import annotations

import asyncio
import logging
import threading

import httpx

from sage.notify import Alert, Channel, Notifier
from sage.notify.discord import Origin
from sage.observability.metrics import Metrics
from tests.notify.fake_discord import FakeDiscord, discord_problems, would_ping


class RecordingSleep:
    """Real (short) sleeps, recorded, so a test can see what the notifier chose to wait."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)
        await asyncio.sleep(min(seconds, 2.0))


def make(discord: FakeDiscord, **kwargs) -> Notifier:
    hooks = kwargs.pop("hooks", {Channel.ERRORS: discord.url("errors")})
    options = {"metrics": Metrics(), "origin": Origin(environment="test"), "backoff_base": 0.01, "backoff_cap": 0.05}
    options.update(kwargs)
    return Notifier(hooks, **options)


async def test_an_alert_arrives_as_an_embed_in_the_spec_format(discord):
    notifier = make(discord)
    await notifier.start()
    notifier.send(Channel.ERRORS, Alert(title="Production Error Detected", message="boom", fields={"Route": "/x"}))
    await notifier.aclose(10)
    [payload] = discord.accepted("errors")
    [embed] = payload["embeds"]
    assert embed["title"] == "🔴 CRITICAL Production Error Detected"
    assert embed["color"] == 0xFF0000
    assert {f["name"] for f in embed["fields"]} >= {"Error", "Route", "Service", "Environment", "Timestamp"}
    assert payload["allowed_mentions"] == {"parse": []}
    assert notifier.metrics.value("DiscordAlertsSent", channel="errors") == 1


async def test_a_webhook_asking_to_wait_gets_the_message_back_and_counts_as_delivered(discord):
    notifier = make(discord, hooks={Channel.BUSINESS: discord.url("biz", wait=True)})
    await notifier.start()
    notifier.send(Channel.BUSINESS, Alert(title="DAU", message="100 users"))
    await notifier.aclose(10)
    assert discord.statuses("biz") == [200]
    assert notifier.sender(Channel.BUSINESS).delivered == 1


async def test_a_429_is_retried_after_the_json_retry_after(discord):
    discord.script("errors", ("429", 0.25))
    sleep = RecordingSleep()
    notifier = make(discord, sleep=sleep)
    await notifier.start()
    notifier.send(Channel.ERRORS, Alert(title="t", message="m"))
    await notifier.aclose(10)
    assert discord.statuses("errors") == [429, 204]
    assert 0.25 in sleep.calls  # the body's float seconds, not the rounded Retry-After header (1)
    assert len(discord.accepted("errors")) == 1


async def test_the_rate_limit_headers_are_honoured_so_discord_never_has_to_say_429(discord):
    discord.rate_limit("errors", limit=2, window=0.3)
    notifier = make(discord)
    await notifier.start()
    for i in range(5):
        notifier.send(Channel.ERRORS, Alert(title=f"alert {i}", message="m" * 2000))  # 2 per message at most
        await notifier.flush(10)
    await notifier.aclose(10)
    assert 429 not in discord.statuses("errors")
    assert len(discord.embeds("errors")) == 5


async def test_a_burst_loses_no_alert(discord):
    discord.rate_limit("errors", limit=3, window=0.2)
    notifier = make(discord, repeat_window=60)
    await notifier.start()
    for i in range(300):
        notifier.send(Channel.ERRORS, Alert(title=f"alert {i}", message=f"detail {i} " + "x" * (i % 7) * 300))
    await notifier.aclose(60)
    titles = sorted(int(e["title"].rsplit(" ", 1)[1]) for e in discord.embeds("errors"))
    assert titles == list(range(300))
    assert 400 not in discord.statuses("errors")
    assert len(discord.accepted("errors")) < 300  # packed: several alerts per message


async def test_server_errors_are_retried_until_delivered(discord):
    discord.script("errors", ("status", 500), ("status", 502), ("status", 503))
    notifier = make(discord)
    await notifier.start()
    notifier.send(Channel.ERRORS, Alert(title="t", message="m"))
    await notifier.aclose(10)
    assert discord.statuses("errors") == [500, 502, 503, 204]


async def test_a_timeout_is_retried(discord):
    discord.script("errors", ("slow", 1.0))
    notifier = make(discord, timeout=0.2)
    await notifier.start()
    notifier.send(Channel.ERRORS, Alert(title="t", message="m"))
    await notifier.aclose(10)
    assert len(discord.accepted("errors")) == 2  # the slow one answered after the client gave up
    assert notifier.metrics.value("DiscordRetries", channel="errors") == 1


async def test_an_alert_that_cannot_be_delivered_is_logged_with_the_reason(discord, caplog):
    discord.script("errors", *[("status", 503)] * 3)
    notifier = make(discord, max_attempts=3)
    await notifier.start()
    with caplog.at_level(logging.ERROR, logger="sage.notify"):
        notifier.send(Channel.ERRORS, Alert(title="lost alert", message="m"))
        await notifier.aclose(10)
    [record] = [r for r in caplog.records if r.getMessage() == "alert undeliverable"]
    assert record.title == "lost alert"
    assert "gave up after 3 attempts" in record.reason
    assert notifier.metrics.value("DiscordAlertsDropped", channel="errors") == 1
    assert "t0ken-SECRET" not in caplog.text


async def test_a_404_disables_the_webhook_and_reports_it_on_the_errors_channel(discord, caplog):
    discord.remove("perf")
    notifier = make(discord, hooks={Channel.ERRORS: discord.url("errors"), Channel.PERFORMANCE: discord.url("perf")})
    await notifier.start()
    with caplog.at_level(logging.ERROR, logger="sage.notify"):
        notifier.send(Channel.PERFORMANCE, Alert(title="slow", message="m"))
        await notifier.flush(10)
        notifier.send(Channel.PERFORMANCE, Alert(title="slow again", message="m"))
        await notifier.aclose(10)
    assert discord.statuses("perf") == [404]  # the second alert never hit Discord
    assert not notifier.is_configured(Channel.PERFORMANCE)
    [report] = discord.embeds("errors")
    assert "performance" in report["title"]
    reasons = [r.reason for r in caplog.records if r.getMessage() == "alert undeliverable"]
    assert len(reasons) == 2 and all("webhook disabled" in r for r in reasons)
    assert "t0ken-SECRET" not in caplog.text


async def test_repeats_of_an_alert_become_one_message_with_the_count(discord):
    notifier = make(discord, repeat_window=0.3)
    await notifier.start()
    for _ in range(48):
        notifier.send(Channel.ERRORS, Alert(title="DB error", message="too many connections"))
    await asyncio.sleep(0.6)
    await notifier.aclose(10)
    embeds = discord.embeds("errors")
    assert len(embeds) == 2
    error_values = [next(f["value"] for f in e["fields"] if f["name"] == "Error") for e in embeds]
    assert error_values[0] == "too many connections"
    assert error_values[1].startswith("Repeated 47 times")


async def test_pending_repeats_are_sent_on_close(discord):
    notifier = make(discord, repeat_window=3600)
    await notifier.start()
    for _ in range(3):
        notifier.send(Channel.ERRORS, Alert(title="x", message="y"))
    await notifier.aclose(10)
    assert len(discord.embeds("errors")) == 2


async def test_mentions_never_ping(discord):
    notifier = make(discord)
    await notifier.start()
    notifier.send(Channel.ERRORS, Alert(title="@everyone look", message="<@123> @here", fields={"@everyone": "@here"}))
    await notifier.aclose(10)
    [payload] = discord.accepted("errors")
    assert not would_ping(payload)
    assert "@everyone" not in payload["content"]


async def test_oversized_alerts_are_truncated_not_rejected(discord):
    notifier = make(discord)
    await notifier.start()
    fields = {f"field {i} " + "n" * 300: "v" * 2000 for i in range(40)}
    notifier.send(Channel.ERRORS, Alert(title="T" * 1000, message="M" * 10_000, fields=fields))
    await notifier.aclose(10)
    assert discord.statuses("errors") == [204]
    assert discord_problems(discord.accepted("errors")[0]) == []


async def test_send_before_start_is_delivered_after_start(discord):
    notifier = make(discord)
    notifier.send(Channel.ERRORS, Alert(title="early", message="m"))
    await notifier.start()
    await notifier.aclose(10)
    assert [e["title"] for e in discord.embeds("errors")] == ["🔴 CRITICAL early"]


async def test_send_from_another_thread_is_delivered(discord):
    notifier = make(discord)
    await notifier.start()
    thread = threading.Thread(target=notifier.send, args=(Channel.ERRORS, Alert(title="threaded", message="m")))
    thread.start()
    thread.join()
    await asyncio.sleep(0)
    await notifier.flush(10)
    await notifier.aclose(10)
    assert [e["title"] for e in discord.embeds("errors")] == ["🔴 CRITICAL threaded"]


async def test_send_returns_at_once_while_discord_is_slow(discord):
    discord.script("errors", ("slow", 0.5))
    notifier = make(discord)
    await notifier.start()
    notifier.send(Channel.ERRORS, Alert(title="first", message="m"))
    await asyncio.sleep(0.05)  # the worker is now waiting on the slow answer
    notifier.send(Channel.ERRORS, Alert(title="second", message="m"))
    assert notifier.sender(Channel.ERRORS).pending == 1  # queued, not sent inline
    await notifier.aclose(10)
    assert len(discord.embeds("errors")) == 2


async def test_an_unconfigured_channel_logs_the_alert_instead(discord, caplog):
    notifier = make(discord)
    await notifier.start()
    with caplog.at_level(logging.INFO, logger="sage.notify"):
        notifier.send(Channel.BUSINESS, Alert(title="DAU", message="42"))
    await notifier.aclose(10)
    assert any(r.getMessage().startswith("alert not sent") and r.title == "DAU" for r in caplog.records)


async def test_send_after_close_is_dropped_with_a_reason(discord, caplog):
    notifier = make(discord)
    await notifier.start()
    await notifier.aclose(10)
    with caplog.at_level(logging.ERROR, logger="sage.notify"):
        notifier.send(Channel.ERRORS, Alert(title="late", message="m"))
    assert any(getattr(r, "reason", "") == "notifier closed" for r in caplog.records)
    assert discord.accepted() == []


async def test_the_fake_refuses_what_discord_refuses(discord):
    async with httpx.AsyncClient() as client:
        too_long = await client.post(discord.url("errors"), json={"content": "x" * 2001})
        empty = await client.post(discord.url("errors"), json={"embeds": [{"fields": [{"name": "", "value": "v"}]}]})
        fine = await client.post(discord.url("errors"), json={"content": "ok"})
    assert (too_long.status_code, empty.status_code, fine.status_code) == (400, 400, 204)
    assert too_long.json()["code"] == 50035


async def test_a_rejected_message_is_retried_once_as_plain_text(discord):
    discord.script("errors", ("status", 400))
    notifier = make(discord)
    await notifier.start()
    notifier.send(Channel.ERRORS, Alert(title="odd", message="payload Discord did not like"))
    await notifier.aclose(10)
    assert discord.statuses("errors") == [400, 204]
    [payload] = discord.accepted("errors")
    assert "embeds" not in payload
    assert "payload Discord did not like" in payload["content"]
