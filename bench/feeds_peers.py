"""The peers' ticker parsers, run by `bench.bench_market_pipeline` inside the benchmark's own
environment (`bench/.venv-peers`, made by `bench/peers.sh`; cryptofeed and ccxt are not Sage
dependencies). Standard library and the peers only: this file never imports Sage.

Protocol (one line per request on stdin, one answer per line on stdout):
    frames <path>            -> "ok"          load {"binance": [frame, ...], "gateio": [...]} (JSON)
    run <peer> <exchange>    -> "<seconds> <n>"  one pass over that exchange's frames, in CPU
                                                seconds of this thread (time.thread_time);
                                                n = tickers the in-memory callback received
    versions                 -> {"cryptofeed": "...", "ccxt": "..."}
Peers: `cryptofeed` (its own exchange classes, `Decimal` bid/ask `Ticker` objects) and `ccxt`
(ccxt.pro's `handle_message`, which parses every field of the ticker to floats).

Each peer runs the code it runs on a live connection, from the frame text to its callback:
- cryptofeed Gate.io: `Gateio.message_handler(frame, conn, timestamp)` as is.
- cryptofeed Binance: `Binance.message_handler` dispatches tickers by the `bookTicker` shape
  (no `e` field) and logs a 24 h `24hrTicker` event as unexpected, so the pass runs the
  handler's own steps for a combined-stream frame (cryptofeed's `json.loads(frame,
  parse_float=Decimal)`, the stream-name split) and then `Binance._ticker`, the ticker parser,
  on the event: the same work it does for a ticker on a live connection.
- ccxt.pro: what its WebSocket client does per text frame (`orjson.loads`, ccxt's own choice
  when orjson is importable) and then `exchange.handle_message(client, message)`; the client's
  `resolve` is the in-memory callback.
Symbols and markets are set from fixed lists, so no peer reads an exchange's REST API.
"""

from __future__ import annotations

import asyncio
import gc
import json
import sys
import time
from decimal import Decimal
from importlib.metadata import version
from typing import Any

BASES = ["BTC", "ETH", "SOL", "XRP", "BNB", "DOGE"]


class Sink:
    """The in-memory callback: counts and keeps the last ticker (so nothing is optimised away)."""

    def __init__(self) -> None:
        self.count = 0
        self.last: Any = None

    async def cryptofeed(self, ticker: Any, receipt_timestamp: float) -> None:
        self.count += 1
        self.last = ticker


class CcxtClient:
    """The part of ccxt's WebSocket `Client` a ticker handler touches; `resolve` is the callback."""

    def __init__(self, url: str, sink: Sink) -> None:
        self.url = url
        self.subscriptions: dict[str, Any] = {}
        self.futures: dict[str, Any] = {}
        self.sink = sink

    def resolve(self, result: Any, message_hash: Any = None) -> Any:
        if type(result) is dict and "symbol" in result:  # a ticker (Binance also resolves the batch dict)
            self.sink.count += 1
            self.sink.last = result
        return result


def cryptofeed_feeds(sink: Sink) -> dict[str, Any]:
    from cryptofeed.defines import TICKER
    from cryptofeed.exchanges import Binance, Gateio
    from cryptofeed.symbols import Symbols

    listing = [
        {
            "symbol": b + "USDT",
            "baseAsset": b,
            "quoteAsset": "USDT",
            "status": "TRADING",
            "filters": [{"tickSize": "0.01"}],
        }
        for b in BASES
    ]
    Symbols.set(Binance.id, *Binance._parse_symbol_data({"symbols": listing}))
    pairs = [{"id": b + "_USDT", "base": b, "quote": "USDT", "trade_status": "tradable"} for b in BASES]
    Symbols.set(Gateio.id, *Gateio._parse_symbol_data(pairs))
    symbols = [b + "-USDT" for b in BASES]
    callbacks = {TICKER: sink.cryptofeed}
    return {
        "binance": Binance(symbols=symbols, channels=[TICKER], callbacks=callbacks),
        "gateio": Gateio(symbols=symbols, channels=[TICKER], callbacks=callbacks),
    }


def ccxt_exchanges() -> dict[str, Any]:
    import ccxt.pro

    def markets(separator: str) -> list[dict[str, Any]]:
        return [
            {
                "id": b + separator + "USDT",
                "symbol": b + "/USDT",
                "base": b,
                "quote": "USDT",
                "baseId": b,
                "quoteId": "USDT",
                "type": "spot",
                "spot": True,
                "margin": False,
                "swap": False,
                "future": False,
                "option": False,
                "contract": False,
                "linear": None,
                "inverse": None,
                "contractSize": None,
                "active": True,
                "precision": {},
                "limits": {},
                "info": {},
            }
            for b in BASES
        ]

    binance = ccxt.pro.binance()
    binance.set_markets(markets(""))
    gate = ccxt.pro.gate()
    gate.set_markets(markets("_"))
    return {"binance": binance, "gateio": gate}


async def cryptofeed_pass(exchange: str, feed: Any, frames: list[str]) -> float:
    from cryptofeed.exchanges import binance as cf_binance

    loads = cf_binance.json.loads  # the JSON module cryptofeed's Binance class parses with (yapic)
    timestamp = time.time()
    started = time.thread_time()
    if exchange == "binance":
        ticker = feed._ticker
        for frame in frames:
            msg = loads(frame, parse_float=Decimal)
            _pair = msg["stream"].split("@", 1)[0].upper()  # message_handler's step; _ticker reads `s`
            await ticker(msg["data"], timestamp)
    else:
        handler = feed.message_handler
        for frame in frames:
            await handler(frame, None, timestamp)
    return time.thread_time() - started


def ccxt_pass(exchange: Any, client: CcxtClient, frames: list[str]) -> float:
    from ccxt.async_support.base.ws.client import json_parser

    loads = json_parser.loads
    handle = exchange.handle_message
    started = time.thread_time()
    for frame in frames:
        handle(client, loads(frame))
    return time.thread_time() - started


def main() -> None:
    frames: dict[str, list[str]] = {}
    sink = Sink()
    feeds = cryptofeed_feeds(sink)
    exchanges = ccxt_exchanges()
    urls = {"binance": "wss://stream.binance.com:9443/stream", "gateio": "wss://api.gateio.ws/ws/v4/"}
    loop = asyncio.new_event_loop()
    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        if words[0] == "frames":
            with open(words[1], encoding="utf-8") as fh:
                frames = json.load(fh)
            answer = "ok"
        elif words[0] == "versions":
            answer = json.dumps({name: version(name) for name in ("cryptofeed", "ccxt", "orjson")})
        elif words[0] == "run":
            peer, exchange = words[1], words[2]
            sink.count = 0
            gc.collect()
            if peer == "cryptofeed":
                seconds = loop.run_until_complete(cryptofeed_pass(exchange, feeds[exchange], frames[exchange]))
            else:
                seconds = ccxt_pass(exchanges[exchange], CcxtClient(urls[exchange], sink), frames[exchange])
            answer = f"{seconds!r} {sink.count}"
        else:
            answer = f"error unknown request {words[0]!r}"
        print(answer, flush=True)
    loop.close()


if __name__ == "__main__":
    main()
