"""Unverified figures travel from the check to the `done` event, the stored message and the API."""

from __future__ import annotations

from tests.chat.fake_anthropic import Reply
from tests.chat.support import ask, new_chat, register


async def test_a_figure_bound_to_the_wrong_coin_is_marked_in_done_and_in_the_messages_api(
    chat_settings, live_server, fake_anthropic
):
    answer = "BTC/USDT is at $3,456.78, up 2.31% today."  # ETH's price, BTC's move
    fake_anthropic.queue(Reply(chunks=[answer]))
    server = await live_server(chat_settings())
    async with server.client() as client:
        headers = await register(client)
        chat_id = await new_chat(client, headers)
        stream = await ask(client, headers, chat_id, "How are BTC and ETH doing?")
        listed = await client.get(f"/api/v1/chats/{chat_id}/messages", headers=headers)
    (figure,) = stream.last.data["unverified"]
    assert {k: figure[k] for k in ("start", "end", "text", "reason")} == {
        "start": 15,
        "end": 24,
        "text": "$3,456.78",
        "reason": "wrong_subject",
    }
    assert answer[figure["start"] : figure["end"]] == "$3,456.78"
    assert listed.status_code == 200
    assistant = next(m for m in listed.json()["items"] if m["role"] == "assistant")
    assert [(f["start"], f["end"], f["reason"]) for f in assistant["unverified"]] == [(15, 24, "wrong_subject")]
    user = next(m for m in listed.json()["items"] if m["role"] == "user")
    assert user["unverified"] == []


async def test_a_grounded_answer_has_no_unverified_figures(chat_settings, live_server, fake_anthropic):
    fake_anthropic.queue(Reply(chunks=["ETH/USDT is at $3,456.78, down 1.25% over 24 hours."]))
    server = await live_server(chat_settings())
    async with server.client() as client:
        headers = await register(client)
        stream = await ask(client, headers, await new_chat(client, headers), "eth?")
    assert stream.last.data["unverified"] == []
    assert stream.last.data["grounding"]["claims"] == 2
