"""Regenerate, edit (versions of a turn) and full-text search over the user's chats."""

from __future__ import annotations

import uuid

from sqlalchemy import text

from sage.chat.repository import search_statement
from tests.chat.fake_anthropic import Reply
from tests.chat.support import ask, iter_sse, new_chat, read_all, register


async def _post_stream(client, url: str, headers, json=None):
    async with client.stream("POST", url, json=json, headers=headers) as response:
        if response.status_code != 200:
            await response.aread()
            return response, None
        return response, await read_all(response)


async def _messages(client, headers, chat_id: str) -> list[dict]:
    return (await client.get(f"/api/v1/chats/{chat_id}/messages", headers=headers)).json()["items"]


async def test_regenerate_answers_the_last_question_again_bypassing_the_cache_and_keeps_the_old_answer(
    chat_settings, live_server, fake_anthropic
):
    fake_anthropic.queue(Reply(chunks=["First answer."]), Reply(chunks=["Second answer."]))
    server = await live_server(chat_settings())
    async with server.client() as client:
        headers = await register(client)
        chat_id = await new_chat(client, headers)
        first = await ask(client, headers, chat_id, "What is a candle?")
        answer_id = first.named("message")[0].data["assistant_message_id"]
        question_id = first.named("message")[0].data["user_message_id"]
        _, again = await _post_stream(client, f"/api/v1/chats/{chat_id}/messages/{answer_id}/regenerate", headers)
        current = await _messages(client, headers, chat_id)
        versions = (await client.get(f"/api/v1/chats/{chat_id}/messages/{answer_id}/versions", headers=headers)).json()[
            "items"
        ]
    assert again is not None and again.text == "Second answer." and again.last.data["cached"] is False
    assert len(fake_anthropic.requests) == 2  # the model was asked again, not the answer cache
    assert again.named("message")[0].data["user_message_id"] == question_id
    assert [(m["role"], m["content"]) for m in current] == [
        ("user", "What is a candle?"),
        ("assistant", "Second answer."),
    ]
    assert current[1]["usage"]["output_tokens"] >= 1
    assert [(m["content"], m["superseded_at"] is None) for m in versions] == [
        ("What is a candle?", True),
        ("First answer.", False),
        ("Second answer.", True),
    ]
    # the model saw the question once, without the superseded answer
    assert [m["role"] for m in fake_anthropic.requests[1].body["messages"]] == ["user"]


async def test_only_the_latest_answer_can_be_regenerated(chat_settings, live_server, fake_anthropic):
    server = await live_server(chat_settings())
    async with server.client() as client:
        headers = await register(client)
        chat_id = await new_chat(client, headers)
        first = await ask(client, headers, chat_id, "one")
        await ask(client, headers, chat_id, "two")
        old_answer = first.named("message")[0].data["assistant_message_id"]
        response, _ = await _post_stream(client, f"/api/v1/chats/{chat_id}/messages/{old_answer}/regenerate", headers)
        other = await register(client)
        foreign, _ = await _post_stream(client, f"/api/v1/chats/{chat_id}/messages/{old_answer}/regenerate", other)
    assert response.status_code == 409 and "latest answer" in response.json()["error"]["message"]
    assert foreign.status_code == 404


async def test_editing_the_last_question_reruns_it_and_keeps_the_previous_exchange_as_a_version(
    chat_settings, live_server, fake_anthropic
):
    fake_anthropic.queue(Reply(chunks=["About BTC."]), Reply(chunks=["About ETH."]), Reply(chunks=["Next."]))
    server = await live_server(chat_settings())
    async with server.client() as client:
        headers = await register(client)
        chat_id = await new_chat(client, headers)
        first = await ask(client, headers, chat_id, "Tell me about BTC")
        question_id = first.named("message")[0].data["user_message_id"]
        _, edited = await _post_stream(
            client,
            f"/api/v1/chats/{chat_id}/messages/{question_id}/edit",
            headers,
            json={"content": "Tell me about ETH"},
        )
        current = await _messages(client, headers, chat_id)
        versions = (
            await client.get(f"/api/v1/chats/{chat_id}/messages/{question_id}/versions", headers=headers)
        ).json()["items"]
        await ask(client, headers, chat_id, "and then?")
        stale, _ = await _post_stream(
            client, f"/api/v1/chats/{chat_id}/messages/{question_id}/edit", headers, json={"content": "x"}
        )
        blank, _ = await _post_stream(
            client, f"/api/v1/chats/{chat_id}/messages/{question_id}/edit", headers, json={"content": "  "}
        )
    assert edited is not None and edited.text == "About ETH."
    assert [(m["role"], m["content"]) for m in current] == [("user", "Tell me about ETH"), ("assistant", "About ETH.")]
    assert current[0]["metadata"]["edited_from"] == question_id
    assert [(m["content"], m["superseded_at"] is None) for m in versions] == [
        ("Tell me about BTC", False),
        ("About BTC.", False),
        ("Tell me about ETH", True),
        ("About ETH.", True),
    ]
    # the follow-up question's history holds only the current version of the turn
    history = fake_anthropic.requests[2].body["messages"]
    assert [m["content"] for m in history] == ["Tell me about ETH", "About ETH.", "and then?"]
    assert stale.status_code == 409 and blank.status_code == 422


async def test_search_finds_the_users_own_chats_by_title_and_message_content(
    chat_settings, live_server, fake_anthropic
):
    fake_anthropic.queue(Reply(chunks=["Solana validators are fast."]), Reply(chunks=["Nothing here."]))
    server = await live_server(chat_settings())
    async with server.client() as client:
        alice = await register(client)
        bob = await register(client)
        titled = await new_chat(client, alice, title="Staking plans")
        chat_id = await new_chat(client, alice)
        await ask(client, alice, chat_id, "How do validators work?")
        bob_chat = await new_chat(client, bob, title="My validators notes")

        async def search(headers, q: str) -> list[dict]:
            response = await client.get("/api/v1/chats/search", params={"q": q}, headers=headers)
            assert response.status_code == 200, response.text
            return response.json()["items"]

        by_content = await search(alice, "validators")
        by_title = await search(alice, "staking")
        nothing = await search(alice, "dogecoin")
        odd = await search(alice, '"unbalanced -(quote')
        for_bob = await search(bob, "validators")
        empty = await client.get("/api/v1/chats/search", params={"q": ""}, headers=alice)
    # the untitled chat was named after its first question, so its title matches too (and ranks first)
    assert (by_content[0]["chat_id"], by_content[0]["role"]) == (chat_id, None)
    assert {(h["chat_id"], h["role"]) for h in by_content} == {
        (chat_id, None),
        (chat_id, "user"),
        (chat_id, "assistant"),
    }
    assert any("<b>validators</b>" in h["snippet"] for h in by_content)
    assert [(h["chat_id"], h["message_id"]) for h in by_title] == [(titled, None)]
    assert nothing == [] and odd == []
    assert [h["chat_id"] for h in for_bob] == [bob_chat]  # never another user's chat
    assert empty.status_code == 422


async def test_search_uses_the_full_text_indexes(chat_settings, live_server):
    server = await live_server(chat_settings())
    statement = search_statement(user_id=uuid.uuid4(), query="validators", limit=20)
    async with server.runtime.db.session() as session:
        # in a transaction that is rolled back: without the per-user indexes (which win on
        # a near-empty table) and without sequential scans, only the full-text indexes are left
        await session.execute(text("SET LOCAL enable_seqscan = off"))
        await session.execute(text("DROP INDEX ix_chats_user_id_updated_at"))
        await session.execute(text("DROP INDEX ix_chat_messages_chat_id_seq"))
        compiled = statement.compile(compile_kwargs={"literal_binds": True})
        plan = "\n".join(row[0] for row in await session.execute(text(f"EXPLAIN {compiled}")))
        await session.rollback()
    assert "ix_chat_messages_search" in plan and "ix_chats_title_search" in plan


async def test_a_question_being_answered_on_another_task_cannot_be_edited(chat_settings, live_server, fake_anthropic):
    fake_anthropic.queue(Reply(chunks=["a ", "b ", "c"], hold_after_chunks=1))
    settings = chat_settings()
    task_a = await live_server(settings)
    task_b = await live_server(settings)
    async with task_a.client() as asking, task_b.client() as other:
        headers = await register(asking)
        chat_id = await new_chat(asking, headers)
        async with asking.stream(
            "POST", f"/api/v1/chats/{chat_id}/messages", json={"content": "go"}, headers=headers
        ) as response:
            async for item in iter_sse(response):
                if getattr(item, "event", None) == "message":
                    question_id = item.data["user_message_id"]
                    break
            edited, _ = await _post_stream(
                other, f"/api/v1/chats/{chat_id}/messages/{question_id}/edit", headers, json={"content": "x"}
            )
    assert edited.status_code == 409 and "still being written" in edited.json()["error"]["message"]
