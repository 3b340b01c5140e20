"""Event ids and the SSE wire form."""

from __future__ import annotations

from sage.api.sse import OPENING
from sage.chat.sse import ResumePoint, StreamEvent, parse_last_event_id


def test_events_encode_with_id_name_and_one_data_line():
    event = StreamEvent(seq=3, event="delta", data={"text": "two\nlines"}, chars=17)
    assert event.encode() == b'id: 3-17\nevent: delta\ndata: {"text":"two\\nlines"}\n\n'


def test_events_round_trip_through_the_buffer_form():
    event = StreamEvent(seq=9, event="done", data={"status": "complete"}, chars=120)
    assert StreamEvent.load(event.dump()) == event


def test_last_event_ids_parse_or_are_ignored():
    assert parse_last_event_id("12-345") == ResumePoint(12, 345)
    assert parse_last_event_id(" 4-0 ") == ResumePoint(4, 0)
    for junk in (None, "", "abc", "1-", "-1-2", "1-2-3", "9" * 20 + "-1"):
        assert parse_last_event_id(junk) is None


def test_the_stream_opens_with_a_keepalive_comment_and_a_retry_hint():
    assert OPENING.startswith(b": keepalive\n")
    assert b"retry: " in OPENING and OPENING.endswith(b"\n\n")
