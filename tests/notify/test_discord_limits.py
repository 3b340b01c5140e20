"""The pure Discord rules: truncation, mentions, packing, response classification."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sage.notify import Alert, Channel
from sage.notify import discord_limits as limits
from sage.notify.discord import Origin, alert_embed, alerts_message, repeated_alert
from tests.notify.fake_discord import discord_problems, units, would_ping

texts = st.text(
    alphabet=st.characters(codec=None, exclude_categories=()),
    max_size=7000,
)
short_texts = st.text(max_size=300)


def test_truncate_keeps_text_within_the_limit_and_marks_the_cut():
    out = limits.truncate("x" * 300, 256)
    assert units(out) == 256
    assert out.endswith("…")


def test_truncate_leaves_short_text_alone():
    assert limits.truncate("short", 256) == "short"


def test_truncate_counts_astral_characters_as_two_units():
    out = limits.truncate("😀" * 200, 256)
    assert units(out) <= 256
    assert out.startswith("😀")
    assert "\ud83d" not in out  # no half of a surrogate pair


def test_mentions_in_content_are_broken_so_they_render_as_text():
    out = limits.neutralise_mentions("hey @everyone and @here and <@123> and <@&456>")
    assert "@everyone" not in out
    assert "@here" not in out
    assert "<@123>" not in out
    assert "<@&456>" not in out
    assert "everyone" in out


def test_every_message_forbids_mentions():
    payload = limits.build_message("@everyone look", [{"title": "t"}])
    assert payload["allowed_mentions"] == {"parse": []}
    assert not would_ping(payload)


def test_an_empty_message_still_has_something_to_send():
    payload = limits.build_message("", [{"title": "   "}])
    assert discord_problems(payload) == []


def test_blank_field_names_and_values_get_a_placeholder():
    payload = limits.build_message(None, [{"title": "t", "fields": [{"name": " ", "value": ""}]}])
    assert payload["embeds"][0]["fields"] == [{"name": "-", "value": "-", "inline": False}]


def test_too_many_fields_are_cut_to_twenty_five():
    embed = {"title": "t", "fields": [{"name": f"n{i}", "value": "v"} for i in range(60)]}
    payload = limits.build_message(None, [embed])
    assert len(payload["embeds"][0]["fields"]) == 25


def test_the_total_across_embeds_stays_within_six_thousand():
    embeds = [{"title": "t" * 300, "description": "d" * 5000} for _ in range(12)]
    payload = limits.build_message("c", embeds)
    assert discord_problems(payload) == []
    assert len(payload["embeds"]) <= 10


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    content=texts,
    embeds=st.lists(
        st.fixed_dictionaries(
            {
                "title": texts,
                "description": texts,
                "fields": st.lists(st.fixed_dictionaries({"name": short_texts, "value": texts}), max_size=40),
                "footer": st.fixed_dictionaries({"text": texts}),
                "color": st.integers(min_value=-5, max_value=0x1FFFFFF),
            }
        ),
        max_size=14,
    ),
)
def test_any_message_fits_discords_limits(content, embeds):
    payload = limits.build_message(content, embeds)
    json.dumps(payload)  # encodable
    assert discord_problems(payload) == []
    assert not would_ping(payload)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    title=texts,
    message=texts,
    fields=st.dictionaries(short_texts, texts, max_size=40),
    channel=st.sampled_from(list(Channel)),
    resolved=st.booleans(),
    count=st.integers(min_value=1, max_value=10),
)
def test_any_batch_of_alerts_fits_discords_limits(title, message, fields, channel, resolved, count):
    alert = Alert(title=title, message=message, fields=fields, resolved=resolved, link="https://sentry.example/1")
    payload = alerts_message(channel, [alert] * count, Origin())
    assert discord_problems(payload) == []
    assert not would_ping(payload)
    grouped = alerts_message(channel, [repeated_alert(alert, 47, 60)], Origin())
    assert discord_problems(grouped) == []


def test_alert_embed_follows_the_spec_format_on_the_errors_channel():
    stamp = datetime(2024, 1, 15, 10, 30, 15, tzinfo=UTC)
    alert = Alert(
        title="Production Error Detected",
        message="too many connections",
        link="https://sentry.io/issues/?query=abc",
        timestamp=stamp,
    )
    embed = alert_embed(Channel.ERRORS, alert, Origin(service="api", environment="production", release="abc123"))
    assert embed["title"] == "🔴 CRITICAL Production Error Detected"
    assert embed["color"] == 0xFF0000
    names = [f["name"] for f in embed["fields"]]
    assert names == ["Error", "Service", "Environment", "Timestamp", "Sentry Link"]
    values = {f["name"]: f["value"] for f in embed["fields"]}
    assert values["Error"] == "too many connections"
    assert values["Environment"] == "production"
    assert values["Timestamp"] == "2024-01-15T10:30:15+00:00"


def test_performance_and_business_alerts_carry_their_severity_and_colour():
    perf = alert_embed(Channel.PERFORMANCE, Alert(title="slow", message="m"), Origin())
    business = alert_embed(Channel.BUSINESS, Alert(title="dau", message="m"), Origin())
    assert (perf["title"], perf["color"]) == ("🟠 WARNING slow", 0xFFA500)
    assert (business["title"], business["color"]) == ("🟢 INFO dau", 0x00FF00)


def test_a_resolved_alert_is_green_and_says_so():
    embed = alert_embed(Channel.ERRORS, Alert(title="pool", message="ok now", resolved=True), Origin())
    assert embed["title"].startswith("✅ RESOLVED")
    assert embed["color"] == limits.RESOLVED_STYLE.colour


def test_repeated_alert_says_how_many_times():
    alert = repeated_alert(Alert(title="db", message="too many connections"), 47, 60)
    assert "Repeated 47 times" in alert.message
    assert alert.fields["Repeats"] == "47"


# -- responses ------------------------------------------------------------------------------------
def test_429_waits_for_the_json_retry_after_in_seconds():
    body = json.dumps({"message": "You are being rate limited.", "retry_after": 0.318, "global": False}).encode()
    outcome = limits.classify_response(429, {"Retry-After": "1", "X-RateLimit-Reset-After": "0.5"}, body)
    assert outcome.kind == limits.RATE_LIMITED
    assert outcome.delay == 0.318


def test_429_without_a_body_falls_back_to_the_headers():
    outcome = limits.classify_response(429, {"x-ratelimit-reset-after": "2.5"}, b"")
    assert outcome.delay == 2.5
    assert limits.classify_response(429, {"Retry-After": "3"}, b"not json").delay == 3.0


def test_a_success_that_empties_the_bucket_asks_to_wait_for_its_reset():
    outcome = limits.classify_response(204, {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset-After": "1.25"}, b"")
    assert outcome.kind == limits.DELIVERED
    assert outcome.delay == 1.25
    assert limits.classify_response(204, {"X-RateLimit-Remaining": "3"}, b"").delay == 0.0


def test_a_missing_webhook_disables_it():
    assert limits.classify_response(404, {}, b'{"message": "Unknown Webhook", "code": 10015}').kind == limits.DISABLED
    assert limits.classify_response(401, {}, b'{"message": "Invalid Webhook Token"}').kind == limits.DISABLED


def test_server_errors_and_no_answer_are_retried_and_bad_requests_are_not():
    assert limits.classify_response(503, {}, b"").kind == limits.RETRY
    assert limits.classify_response(0, {}, b"").kind == limits.RETRY
    assert limits.classify_response(400, {}, b'{"code": 50035}').kind == limits.REJECTED


def test_backoff_grows_and_is_bounded():
    delays = [limits.backoff_delay(n, base=1, cap=30, jitter=1.0) for n in range(1, 10)]
    assert delays[:5] == [1, 2, 4, 8, 16]
    assert max(delays) == 30
    assert limits.backoff_delay(3, base=1, cap=30, jitter=0.0) == 2.0
