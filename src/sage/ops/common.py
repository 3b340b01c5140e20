"""What the database operations share: their error type, their step log, their failure alert.

The ops commands run as one-off ECS tasks whose only record is the log stream, so every
step is a timestamped line on stderr (the spec's `[YYYY-mm-dd HH:MM:SS] message` format,
in UTC). Errors the operator can act on are `OpsError`: the CLI prints their message as
one line and exits with their code, never a traceback.
"""

from __future__ import annotations

import logging
import sys
import time
from datetime import UTC, datetime
from typing import Any, TextIO

from rich.console import Console

from sage.notify import Alert, Channel, Notifier
from sage.observability.metrics import Metrics
from sage.settings import Settings

log = logging.getLogger(__name__)

EXIT_FAILURE = 1
EXIT_LOCK_TIMEOUT = 3  # another task holds the lock: retry later, nothing was changed


class OpsError(Exception):
    """A failure the operator can act on; `str()` is one line, free of secrets."""

    def __init__(self, message: str, code: int = EXIT_FAILURE) -> None:
        super().__init__(message)
        self.code = code


def utcnow() -> datetime:
    return datetime.now(UTC)


def one_line(text: str, limit: int = 300) -> str:
    """The first meaningful line of a tool's error output, shortened."""
    for line in text.strip().splitlines():
        line = line.strip()
        if line:
            return line if len(line) <= limit else line[: limit - 1] + "…"
    return ""


class StepLog:
    """Timestamped step lines on stderr; the lines are kept for the failure alert and tests."""

    def __init__(self, stream: TextIO | None = None, *, quiet: bool = False) -> None:
        self._stream = stream
        self.quiet = quiet
        self.lines: list[str] = []
        self.console: Console | None = None
        target = stream if stream is not None else sys.stderr
        if target.isatty():
            self.console = Console(file=target, highlight=False, soft_wrap=True)

    def __call__(self, message: str) -> None:
        line = f"[{utcnow():%Y-%m-%d %H:%M:%S}Z] {message}"
        self.lines.append(line)
        if self.quiet:
            return
        if self.console is not None:
            # Through the console so a live progress bar is redrawn below the line.
            self.console.print(line, markup=False)
        else:
            stream = self._stream if self._stream is not None else sys.stderr
            stream.write(line + "\n")
            stream.flush()


async def alert_failure(
    settings: Settings,
    metrics: Metrics,
    *,
    title: str,
    message: str,
    fields: dict[str, str],
    service: str = "ops",
) -> bool:
    """Post to the Discord errors channel. An alert that cannot be delivered is logged and
    never masks the original failure. Returns whether the alert was handed to the notifier.
    """
    try:
        notifier = Notifier.from_settings(settings, metrics, service=service)
        await notifier.start()
        try:
            notifier.send(Channel.ERRORS, Alert(title=title, message=message, fields=fields))
        finally:
            await notifier.aclose(10.0)
    except Exception as exc:  # the alert is secondary: report it, keep the original error
        log.warning("could not post the failure alert: %s", type(exc).__name__)
        return False
    return True


class ByteProgress:
    """Bytes moved so far: a rich progress bar on a terminal, a log line every interval otherwise."""

    def __init__(self, log: StepLog, description: str, *, total: int | None = None, interval: float = 15.0) -> None:
        self._log = log
        self._description = description
        self._total = total
        self._interval = interval
        self._done = 0
        self._started = 0.0
        self._last = 0.0
        self._progress: Any = None
        self._task: Any = None

    def __enter__(self) -> ByteProgress:
        self._started = self._last = time.monotonic()
        if self._log.console is not None and not self._log.quiet:
            from rich.progress import (
                BarColumn,
                DownloadColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TransferSpeedColumn,
            )

            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                DownloadColumn(),
                TransferSpeedColumn(),
                TimeElapsedColumn(),
                console=self._log.console,
                transient=True,
            )
            self._progress.start()
            self._task = self._progress.add_task(self._description, total=self._total)
        return self

    def advance(self, amount: int) -> None:
        self._done += amount
        if self._progress is not None:
            self._progress.update(self._task, completed=self._done)
            return
        now = time.monotonic()
        if now - self._last >= self._interval:
            self._last = now
            rate = self._done / max(now - self._started, 1e-6) / MB
            self._log(f"{self._description}: {self._done / MB:.1f} MB so far ({rate:.1f} MB/s)")

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()


MB = 1_000_000


def human_bytes(size: float) -> str:
    """1234567 -> '1.2 MB' (decimal units, as the benchmarks report)."""
    for unit in ("B", "kB", "MB", "GB"):
        if abs(size) < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} TB"  # pragma: no cover
