"""SAGE_MARKET_SOURCE=replay: a recorded session played through the live parsers.

The session file (gzip JSON lines `[offset_ms, exchange, frame]`, frames in the
exchanges' own formats) is played at SAGE_REPLAY_SPEED and loops. Each update is
stamped with the time it is replayed, so prices move and are never served as stale;
the Fear & Greed answer recorded beside it is re-dated to end today. No network.
"""

from __future__ import annotations

import asyncio
import gzip
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

from sage.market.feeds.base import ExchangeFeed, MalformedMessage
from sage.market.feeds.fear_greed import parse_fng
from sage.market.live import FeedFrameHandler
from sage.market.models import FearGreedReading
from sage.market.pipeline import MarketPipeline
from sage.observability.metrics import Metrics

log = logging.getLogger(__name__)

DATA_DIR = Path(__file__).resolve().parent / "replay_data"
DEFAULT_SESSION = DATA_DIR / "session.jsonl.gz"
DEFAULT_FEAR_GREED = DATA_DIR / "fear_greed.json"


class ReplayFileError(ValueError):
    """The session file is missing or unreadable; the message names the file."""


def load_session(path: Path) -> list[tuple[int, str, str]]:
    opener = gzip.open if path.suffix == ".gz" else open
    frames: list[tuple[int, str, str]] = []
    try:
        with opener(path, "rb") as fh:
            for number, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    offset, exchange, frame = orjson.loads(line)
                except (orjson.JSONDecodeError, ValueError, TypeError):
                    raise ReplayFileError(f"{path}: line {number} is not [offset_ms, exchange, frame]") from None
                frames.append((int(offset), str(exchange), str(frame)))
    except OSError as exc:
        raise ReplayFileError(f"cannot read replay file {path}: {exc.strerror or exc}") from None
    if not frames:
        raise ReplayFileError(f"replay file {path} has no frames")
    frames.sort(key=lambda item: item[0])
    return frames


def redate_fear_greed(readings: list[FearGreedReading], today: datetime) -> list[FearGreedReading]:
    """Shift a recorded history so its newest reading is dated today 00:00 UTC."""
    if not readings:
        return []
    newest = max(r.as_of for r in readings)
    midnight = today.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    shift: timedelta = midnight - newest
    return [replace(r, as_of=r.as_of + shift) for r in readings]


class ReplaySource:
    def __init__(
        self,
        feeds: Mapping[str, ExchangeFeed],
        pipeline: MarketPipeline,
        metrics: Metrics,
        *,
        path: Path | None = None,
        fear_greed_path: Path | None = DEFAULT_FEAR_GREED,
        fear_greed_sink: Callable[[list[FearGreedReading]], Awaitable[None]] | None = None,
        speed: float = 1.0,
        loop: bool = True,
    ) -> None:
        self.path = path or DEFAULT_SESSION
        self.fear_greed_path = fear_greed_path
        self.fear_greed_sink = fear_greed_sink
        self.speed = speed
        self.loop = loop
        self.handlers = {name: FeedFrameHandler(feed, pipeline, metrics, retime=True) for name, feed in feeds.items()}
        self.loops = 0
        self.frames_played = 0

    async def run(self) -> None:
        frames = load_session(self.path)
        clock = asyncio.get_running_loop().time
        while True:
            await self._fear_greed()
            started = clock()
            for offset, exchange, frame in frames:
                delay = started + offset / 1000 / self.speed - clock()
                if delay > 0:
                    await asyncio.sleep(delay)
                handler = self.handlers.get(exchange)
                if handler is not None:
                    handler.handle(frame, time.time())  # a recorded shutdown notice means nothing here
                    self.frames_played += 1
            self.loops += 1
            if not self.loop:
                return
            await asyncio.sleep(0)

    async def _fear_greed(self) -> None:
        if self.fear_greed_sink is None or self.fear_greed_path is None:
            return
        try:
            readings = parse_fng(self.fear_greed_path.read_bytes())
        except (OSError, MalformedMessage) as exc:
            log.warning(
                "replayed fear & greed file unusable", extra={"path": str(self.fear_greed_path), "error": str(exc)}
            )
            return
        await self.fear_greed_sink(redate_fear_greed(readings, datetime.now(UTC)))
