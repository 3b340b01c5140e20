"""The anthropic provider against the fake Messages API."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime
from email.utils import format_datetime

import pytest

from sage.chat.context import ChatContext
from sage.chat.providers import build_model
from sage.chat.providers.anthropic import AnthropicModel, parse_retry_after
from sage.chat.providers.base import (
    ChatTurn,
    Finished,
    ModelRequest,
    ProviderError,
    TextDelta,
    ToolCall,
    ToolResult,
    ToolRound,
    ToolSpec,
    ToolUse,
    UsageUpdate,
)
from sage.chat.providers.offline import OfflineModel
from sage.settings import LLMProvider, Settings
from tests.chat.fake_anthropic import FakeAnthropic, Reply, ToolUseScript


def _request(deadline_in: float = 30.0) -> ModelRequest:
    return ModelRequest(
        system="You are a test.",
        turns=[ChatTurn("user", "hi"), ChatTurn("assistant", "hello"), ChatTurn("user", "price?")],
        max_tokens=64,
        context=ChatContext(generated_at=datetime.now(UTC)),
        deadline=asyncio.get_running_loop().time() + deadline_in,
        metadata_user_id="opaque-user",
    )


@pytest.fixture
async def model(fake_anthropic: FakeAnthropic):
    provider = AnthropicModel(
        api_key="sk-test", model="claude-sonnet-5-5", base_url=fake_anthropic.base_url, max_retries=2
    )
    yield provider
    await provider.aclose()


async def _collect(model: AnthropicModel) -> list:
    return [event async for event in model.stream(_request())]


async def test_the_request_carries_model_system_turns_and_an_opaque_user(model, fake_anthropic):
    await _collect(model)
    body = fake_anthropic.requests[0].body
    assert fake_anthropic.requests[0].path == "/v1/messages"
    assert body["model"] == "claude-sonnet-5-5" and body["stream"] is True and body["max_tokens"] == 64
    assert body["system"] == [{"type": "text", "text": "You are a test."}]
    assert [m["role"] for m in body["messages"]] == ["user", "assistant", "user"]
    assert body["metadata"] == {"user_id": "opaque-user"}


async def test_text_and_cumulative_usage_come_through(model, fake_anthropic):
    fake_anthropic.queue(
        Reply(chunks=["a", "b"], input_tokens=10, output_tokens=7, cache_read_tokens=3, stop_reason="max_tokens")
    )
    events = await _collect(model)
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["a", "b"]
    final = events[-1]
    assert isinstance(final, Finished) and final.stop_reason == "max_tokens"
    assert (final.usage.input_tokens, final.usage.output_tokens, final.usage.cache_read_tokens) == (10, 7, 3)


async def test_tokens_of_a_failed_attempt_are_carried_into_the_retry(model, fake_anthropic):
    fake_anthropic.queue(Reply(input_tokens=10, drop_after_chunks=0), Reply(input_tokens=10, output_tokens=2))
    events = await _collect(model)
    final = events[-1]
    assert isinstance(final, Finished)
    assert final.usage.input_tokens == 20 and final.usage.output_tokens == 3  # 1 from the dropped message_start
    assert len(fake_anthropic.requests) == 2 and model.retries == 1


async def test_an_error_event_after_text_is_not_retried(model, fake_anthropic):
    fake_anthropic.queue(Reply(chunks=["x", "y", "z"], error_after_chunks=1, error_type="api_error"))
    seen = []
    with pytest.raises(ProviderError) as failure:
        async for event in model.stream(_request()):
            seen.append(event)
    assert [e.text for e in seen if isinstance(e, TextDelta)] == ["x"]
    assert failure.value.code == "upstream_error" and not failure.value.before_first_token
    assert len(fake_anthropic.requests) == 1


async def test_an_error_event_before_any_text_is_retried(model, fake_anthropic):
    fake_anthropic.queue(Reply(error_after_chunks=0, error_type="overloaded_error"), Reply(chunks=["fine"]))
    events = await _collect(model)
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["fine"]
    assert len(fake_anthropic.requests) == 2


async def test_bad_credentials_are_not_retried_and_say_nothing_secret(model, fake_anthropic):
    fake_anthropic.queue(Reply(status=401, error_type="authentication_error"))
    with pytest.raises(ProviderError) as failure:
        await _collect(model)
    assert failure.value.code == "upstream_auth" and not failure.value.retryable
    assert "sk-test" not in failure.value.message
    assert len(fake_anthropic.requests) == 1


async def test_cancelling_the_consumer_closes_the_upstream_connection(model, fake_anthropic):
    fake_anthropic.queue(Reply(chunks=["a", "b", "c"], hold_after_chunks=1))
    first_text = asyncio.Event()

    async def consume() -> None:
        async for event in model.stream(_request()):
            if isinstance(event, TextDelta):
                first_text.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(first_text.wait(), 20)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.wait_for(fake_anthropic.requests[0].client_closed.wait(), 20)


async def test_a_slow_first_token_is_waited_for(model, fake_anthropic):
    fake_anthropic.queue(Reply(chunks=["late"], first_token_delay=0.5))
    events = await _collect(model)
    assert isinstance(events[0], UsageUpdate)  # message_start arrives before the first token
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["late"]


def test_retry_after_headers_are_read_in_every_form():
    assert parse_retry_after({"retry-after-ms": "1500"}) == 1.5
    assert parse_retry_after({"retry-after": "7"}) == 7.0
    later = datetime.now(UTC).replace(microsecond=0)
    in_a_minute = later.timestamp() + 60
    header = format_datetime(datetime.fromtimestamp(in_a_minute, UTC), usegmt=True)
    assert 55 <= (parse_retry_after({"retry-after": header}) or 0) <= 61
    assert parse_retry_after({"retry-after": "soon"}) is None
    assert parse_retry_after({}) is None


def test_the_default_model_is_a_current_sonnet():
    from anthropic.resources.messages.messages import DEPRECATED_MODELS

    default = Settings.model_fields["llm_model"].default
    assert default.startswith("claude-sonnet-") and default not in DEPRECATED_MODELS


def test_anthropic_base_url_is_honoured(monkeypatch, make_settings):
    monkeypatch.setenv("ANTHROPIC_BASE_URL", "http://127.0.0.1:9/")
    settings = make_settings(llm_provider="anthropic", anthropic_api_key="sk-test")
    provider = build_model(settings)
    assert isinstance(provider, AnthropicModel)
    assert str(provider.client.base_url).startswith("http://127.0.0.1:9")


def test_the_offline_provider_is_the_default_without_a_key(tmp_path):
    settings = Settings(data_dir=tmp_path, anthropic_api_key=None)
    assert settings.llm_provider is LLMProvider.OFFLINE
    assert isinstance(build_model(settings), OfflineModel)


def test_backoff_honours_retry_after_and_caps_it():
    from sage.chat.providers.anthropic import MAX_RETRY_AFTER, backoff_delay

    assert backoff_delay(0, 2.5) == 2.5
    assert backoff_delay(3, 7200) == MAX_RETRY_AFTER
    assert 0.375 <= backoff_delay(0, None) <= 0.5  # 0.5 s minus up to 25 % jitter
    assert 3.0 <= backoff_delay(3, None) <= 4.0


async def test_streamed_tool_use_blocks_become_tool_calls_and_the_last_round_forbids_tools(model, fake_anthropic):
    fake_anthropic.queue(
        Reply(
            chunks=["Looking."],
            tool_calls=[
                ToolUseScript("get_price", {"symbols": ["BTC", "ETH"]}, id="toolu_a"),
                ToolUseScript("calculate", raw='{"expression": "1 +', id="toolu_b"),
            ],
        )
    )
    spec = ToolSpec("get_price", "prices", {"type": "object", "properties": {}})
    request = dataclasses.replace(_request(), tools=[spec], instructions="Static rules.")
    events = [event async for event in model.stream(request)]
    calls = [e.call for e in events if isinstance(e, ToolUse)]
    assert calls == [
        ToolCall("toolu_a", "get_price", '{"symbols":["BTC","ETH"]}'),
        ToolCall("toolu_b", "calculate", '{"expression": "1 +'),  # passed on raw: the tool box refuses it
    ]
    assert events[-1] == Finished("tool_use", events[-1].usage)
    body = fake_anthropic.requests[0].body
    assert body["tools"][-1]["cache_control"] == {"type": "ephemeral"} and "tool_choice" not in body
    assert body["system"][0] == {"type": "text", "text": "Static rules.", "cache_control": {"type": "ephemeral"}}

    last = dataclasses.replace(
        request,
        allow_tools=False,
        rounds=[ToolRound("Looking.", tuple(calls), (ToolResult("toolu_a", "{}"), ToolResult("toolu_b", "{}", True)))],
    )
    [event async for event in model.stream(last)]
    body = fake_anthropic.requests[1].body
    assert body["tool_choice"] == {"type": "none"}
    assistant, results = body["messages"][-2:]
    assert [b["type"] for b in assistant["content"]] == ["text", "tool_use", "tool_use"]
    assert assistant["content"][2]["input"] == {}  # malformed arguments go back as an object
    assert [(r["tool_use_id"], r["is_error"]) for r in results["content"]] == [("toolu_a", False), ("toolu_b", True)]
