"""uvicorn options for `sage serve`, in one place so tests run the server exactly as production does."""

from __future__ import annotations

import asyncio
import gc
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

from sage.api.sse import StreamDrain
from sage.settings import Settings


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    behind_proxy = settings.trusted_proxy_hops > 0
    return {
        "proxy_headers": behind_proxy,
        "forwarded_allow_ips": "*" if behind_proxy else None,
        # On SIGTERM uvicorn stops accepting connections and lets in-flight requests finish for up
        # to this long: the ALB's deregistration delay (30 s), so no request is cut off mid-deploy.
        "timeout_graceful_shutdown": int(settings.shutdown_grace_seconds),
        "timeout_keep_alive": 75,  # longer than the ALB's idle timeout (60 s), as AWS advises
        # Connections the kernel queues until the loop accepts them (capped by net.core.somaxconn).
        # 10,000 market streams reconnecting at once overflowed uvicorn's 2,048 while the loop was
        # busy, and the kernel reset what it could not queue (bench_market_stream counts those).
        "backlog": 4096,
        "access_log": False,
        "log_config": None,
        "server_header": False,
    }


_heap_settled = False


def settle_heap() -> None:
    """Once per process, when start-up is done: collect, then move everything alive into the
    collector's permanent generation (`gc.freeze`).

    Start-up leaves a large heap that lives as long as the process (modules, the app, its
    routes, SQLAlchemy's and pydantic's tables). Without this every full collection walks all
    of it: measured in the chat benchmark, 50-350 ms pauses of the event loop, landing on
    whichever streams were writing then. Frozen objects are still freed by reference counting;
    they are only never traversed again. Later calls do nothing (tests start many apps in one
    process; the first froze what they share)."""
    global _heap_settled
    if _heap_settled:
        return
    _heap_settled = True
    gc.collect()
    gc.freeze()


@contextmanager
def streams_end_on_sigterm(drain: StreamDrain) -> Iterator[None]:
    """Start `drain` the moment SIGTERM (or Ctrl-C) arrives, then let uvicorn handle it.

    uvicorn gives the app no notice of a signal before its graceful shutdown: it waits for
    open responses for the whole grace period and then cuts them. Event streams never end
    on their own, so while the app runs this chains a handler in front of the one uvicorn
    installed; streams end at once with their last words and clients move to another task.
    Outside uvicorn's signal handling (no handler of its to chain to) it does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    loop = asyncio.get_running_loop()
    chained: dict[int, Callable[[int, FrameType | None], Any]] = {}

    def handler(signum: int, frame: FrameType | None) -> None:
        loop.call_soon_threadsafe(drain.start)
        chained[signum](signum, frame)

    for sig in (signal.SIGTERM, signal.SIGINT):
        previous = signal.getsignal(sig)
        if callable(previous) and previous is not signal.default_int_handler:
            chained[sig] = previous
            signal.signal(sig, handler)
    try:
        yield
    finally:
        for signum, original in chained.items():
            if signal.getsignal(signum) is handler:
                signal.signal(signum, original)
