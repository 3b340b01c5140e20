"""The events of an answer: ids, encoding, resume points (the response is sage.api.sse's).

Every event of an answer gets an id `<seq>-<chars>`: `seq` counts the answer's events
from 1 and `chars` is how many characters of answer text were sent up to and including
it. A reconnect with `Last-Event-ID` resumes after `seq` from the live buffer, or, once
the answer is stored, from character `chars` of the stored text, so neither path repeats
or skips text.
"""

from __future__ import annotations

import re
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Any

import orjson

MESSAGE = "message"
DELTA = "delta"
TOOL = "tool"  # one executed tool call: name, arguments, a short result summary, duration
DONE = "done"
ERROR = "error"
TERMINAL = frozenset({DONE, ERROR})

_LAST_EVENT_ID = re.compile(r"^(\d{1,9})-(\d{1,12})$")


@dataclass(frozen=True)
class StreamEvent:
    seq: int
    event: str
    data: dict[str, Any]
    chars: int

    @property
    def id(self) -> str:
        return f"{self.seq}-{self.chars}"

    @property
    def terminal(self) -> bool:
        return self.event in TERMINAL

    def encode(self) -> bytes:
        # orjson escapes newlines inside strings, so the payload is always one data line
        return b"id: %s\nevent: %s\ndata: %s\n\n" % (self.id.encode(), self.event.encode(), orjson.dumps(self.data))

    def dump(self) -> bytes:
        return orjson.dumps({"s": self.seq, "e": self.event, "d": self.data, "c": self.chars})

    @classmethod
    def load(cls, raw: bytes | str) -> StreamEvent:
        item = orjson.loads(raw)
        return cls(seq=int(item["s"]), event=str(item["e"]), data=dict(item["d"]), chars=int(item["c"]))


# An answer's events as one reader gets them; None: nothing happened for a keep-alive interval.
StreamItems = AsyncGenerator[StreamEvent | None, None]


@dataclass(frozen=True)
class ResumePoint:
    seq: int
    chars: int


def parse_last_event_id(raw: str | None) -> ResumePoint | None:
    """The point a client got to, or None to start from the beginning (absent or malformed)."""
    if not raw:
        return None
    match = _LAST_EVENT_ID.match(raw.strip())
    if match is None:
        return None
    return ResumePoint(int(match.group(1)), int(match.group(2)))
