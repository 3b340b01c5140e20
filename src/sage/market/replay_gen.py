"""Generates the replay session shipped in replay_data/ (run: python -m sage.market.replay_gen).

Frames are in the exchanges' own formats (Binance combined-stream `24hrTicker`
events, Gate.io `spot.tickers` updates) so a replay exercises the same parsers as a
live feed. Prices follow a correlated random walk (one market factor plus a per-coin
component, volatility per coin), pinned so the session ends where it began: the replay
loops without a jump. Gate.io tracks Binance with a small mean-reverting basis.
"""

from __future__ import annotations

import gzip
import math
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import orjson

from sage.market.feeds.binance import exchange_symbol, stream_name
from sage.market.feeds.gateio import currency_pair

DATA_DIR = Path(__file__).resolve().parent / "replay_data"
SESSION_FILE = DATA_DIR / "session.jsonl.gz"
FEAR_GREED_FILE = DATA_DIR / "fear_greed.json"
SECONDS_PER_YEAR = 365 * 86_400


@dataclass(frozen=True)
class Coin:
    symbol: str
    price: float
    tick: Decimal  # price step
    annual_vol: float
    beta: float  # exposure to the market factor
    change_24h: float  # percent at the start of the session
    base_volume: float  # rolling 24 h base volume at the start


COINS = (
    Coin("BTC/USDT", 97_250.0, Decimal("0.01"), 0.55, 1.0, 1.84, 18_500.0),
    Coin("ETH/USDT", 3_410.0, Decimal("0.01"), 0.70, 1.2, 2.61, 310_000.0),
    Coin("SOL/USDT", 192.4, Decimal("0.01"), 0.90, 1.4, -0.93, 2_900_000.0),
    Coin("XRP/USDT", 2.318, Decimal("0.0001"), 0.95, 1.1, 4.12, 210_000_000.0),
    Coin("BNB/USDT", 688.5, Decimal("0.01"), 0.50, 0.8, 0.47, 420_000.0),
    Coin("DOGE/USDT", 0.3215, Decimal("0.00001"), 1.05, 1.3, -2.35, 1_150_000_000.0),
)


def _bridge(steps: int, sigma: float, rng: random.Random, common: list[float], beta: float) -> list[float]:
    """Log-price path of `steps` seconds that starts and ends at 0."""
    path = [0.0]
    for i in range(steps):
        idio = rng.gauss(0.0, sigma * 0.6)
        jump = rng.gauss(0.0, sigma * 6) if rng.random() < 0.002 else 0.0
        path.append(path[-1] + beta * common[i] * sigma + idio + jump)
    drift = path[-1] / steps
    return [x - drift * i for i, x in enumerate(path)]


def _q(value: float, step: Decimal) -> Decimal:
    return Decimal(str(value)).quantize(step)


def _binance_frame(coin: Coin, stats: dict[str, Decimal], event_ms: int, seq: int) -> str:
    last = stats["last"]
    open_24h = stats["open"]
    data = {
        "e": "24hrTicker",
        "E": event_ms,
        "s": exchange_symbol(coin.symbol),
        "p": f"{last - open_24h:.8f}",
        "P": f"{(last / open_24h - 1) * 100:.3f}",
        "w": f"{(stats['high'] + stats['low'] + last) / 3:.8f}",
        "x": f"{open_24h:.8f}",
        "c": f"{last:.8f}",
        "Q": f"{stats['qty']:.8f}",
        "b": f"{last - coin.tick:.8f}",
        "B": f"{stats['qty'] * 3:.8f}",
        "a": f"{last:.8f}",
        "A": f"{stats['qty'] * 2:.8f}",
        "o": f"{open_24h:.8f}",
        "h": f"{stats['high']:.8f}",
        "l": f"{stats['low']:.8f}",
        "v": f"{stats['volume']:.8f}",
        "q": f"{stats['volume'] * last:.8f}",
        "O": event_ms - 86_400_000,
        "C": event_ms,
        "F": 3_100_000_000 + seq * 7,
        "L": 3_100_000_000 + seq * 7 + 6_000_000,
        "n": 6_000_001 + seq,
    }
    return orjson.dumps({"stream": stream_name(coin.symbol), "data": data}).decode()


def _gate_frame(coin: Coin, stats: dict[str, Decimal], event_ms: int) -> str:
    last = stats["last"]
    result = {
        "currency_pair": currency_pair(coin.symbol),
        "last": _plain(last),
        "lowest_ask": _plain(last + coin.tick),
        "highest_bid": _plain(last),
        "change_percentage": f"{(last / stats['open'] - 1) * 100:.4f}",
        "base_volume": f"{stats['volume']:.6f}",
        "quote_volume": f"{stats['volume'] * last:.4f}",
        "high_24h": _plain(stats["high"]),
        "low_24h": _plain(stats["low"]),
    }
    frame = {
        "time": event_ms // 1000,
        "time_ms": event_ms,
        "channel": "spot.tickers",
        "event": "update",
        "result": result,
    }
    return orjson.dumps(frame).decode()


def _plain(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return text


def generate_session(minutes: int = 20, *, seed: int = 20_251_122) -> list[tuple[int, str, str]]:
    rng = random.Random(seed)
    steps = minutes * 60
    common = [rng.gauss(0.0, 1.0) for _ in range(steps)]
    frames: list[tuple[int, str, str]] = [
        (0, "binance", orjson.dumps({"result": None, "id": 1}).decode()),
        (
            0,
            "gateio",
            orjson.dumps(
                {
                    "time": 1_763_800_000,
                    "time_ms": 1_763_800_000_000,
                    "channel": "spot.tickers",
                    "event": "subscribe",
                    "error": None,
                    "result": {"status": "success"},
                }
            ).decode(),
        ),
    ]
    start_ms = 1_763_800_000_000
    for index, coin in enumerate(COINS):
        sigma = coin.annual_vol * 2.0 / math.sqrt(SECONDS_PER_YEAR)  # intraday runs hotter than the annual average
        path = _bridge(steps, sigma, rng, common, coin.beta)
        open_24h = coin.price / (1 + coin.change_24h / 100)
        high = max(coin.price, open_24h) * (1 + rng.uniform(0.004, 0.02))
        low = min(coin.price, open_24h) * (1 - rng.uniform(0.004, 0.02))
        volume = coin.base_volume
        basis = 0.0
        phase_b = rng.randint(0, 999)
        phase_g = rng.randint(0, 999)
        for second in range(steps):
            price = coin.price * math.exp(path[second])
            high = max(high, price)
            low = min(low, price)
            traded = coin.base_volume / 86_400 * rng.lognormvariate(0.0, 0.8)
            volume = volume + traded - coin.base_volume / 86_400 * 0.97
            stats = {
                "last": _q(price, coin.tick),
                "open": _q(open_24h, coin.tick),
                "high": _q(high, coin.tick),
                "low": _q(low, coin.tick),
                "volume": Decimal(str(round(volume, 6))),
                "qty": Decimal(str(round(traded / 20 + 0.001, 6))),
            }
            offset_b = second * 1000 + phase_b + rng.randint(-40, 40)
            frames.append((max(0, offset_b), "binance", _binance_frame(coin, stats, start_ms + offset_b, second)))
            basis = 0.92 * basis + rng.gauss(0.0, 0.00006)
            gate_stats = dict(stats)
            gate_stats["last"] = _q(price * (1 + basis), coin.tick)
            gate_stats["volume"] = Decimal(str(round(volume * 0.31, 6)))
            offset_g = second * 1000 + phase_g + rng.randint(-60, 60) + 25 * index
            frames.append((max(0, offset_g), "gateio", _gate_frame(coin, gate_stats, start_ms + offset_g)))
    frames.sort(key=lambda item: item[0])
    return frames


def generate_fear_greed(days: int = 30, *, seed: int = 7) -> bytes:
    rng = random.Random(seed)
    today = datetime(2025, 11, 22, tzinfo=UTC)
    value = 52.0
    data = []
    for day in range(days):
        value = min(95.0, max(5.0, value + rng.gauss(0, 6)))
        v = round(value)
        data.append(
            {
                "value": str(v),
                "value_classification": classify(v),
                "timestamp": str(int((today - timedelta(days=day)).timestamp())),
                **({"time_until_update": "43200"} if day == 0 else {}),
            }
        )
    return orjson.dumps(
        {"name": "Fear and Greed Index", "data": data, "metadata": {"error": None}}, option=orjson.OPT_INDENT_2
    )


def classify(value: int) -> str:
    if value <= 24:
        return "Extreme Fear"
    if value <= 46:
        return "Fear"
    if value <= 54:
        return "Neutral"
    if value <= 75:
        return "Greed"
    return "Extreme Greed"


def write(path: Path = SESSION_FILE, fng_path: Path = FEAR_GREED_FILE, minutes: int = 20) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wb", compresslevel=9) as out:
        for offset, exchange, frame in generate_session(minutes):
            out.write(orjson.dumps([offset, exchange, frame]) + b"\n")
    fng_path.write_bytes(generate_fear_greed())


if __name__ == "__main__":
    write()
