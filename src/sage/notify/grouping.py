"""Grouping of repeated alerts, as a pure state machine driven by the caller's clock.

The first alert of a kind goes out at once and opens a window. Repeats inside the window
are only counted; when the window ends with repeats, one "Repeated N times" message
stands for them and a new window opens (a storm yields one message per window). A window
that ends without repeats closes, so the next occurrence again goes out at once.
"""

from __future__ import annotations

from dataclasses import dataclass

from sage.notify.channels import Alert, Channel


@dataclass
class _Group:
    opened: float
    repeats: int
    latest: Alert


@dataclass(frozen=True)
class Repeats:
    channel: Channel
    alert: Alert  # the latest of the repeats
    count: int


class RepeatGrouper:
    def __init__(self, window_seconds: float) -> None:
        self.window = window_seconds
        self._groups: dict[tuple[Channel, str], _Group] = {}

    def offer(self, channel: Channel, alert: Alert, now: float) -> bool:
        """True when the alert should be sent now; False when it was counted as a repeat."""
        if self.window <= 0:
            return True
        key = (channel, alert.group_key)
        group = self._groups.get(key)
        if group is not None and now - group.opened < self.window:
            group.repeats += 1
            group.latest = alert
            return False
        if group is not None and group.repeats:
            # The window ended but nobody called due() yet: this alert replaces the summary.
            group.repeats += 1
            group.latest = alert
            return False
        self._groups[key] = _Group(opened=now, repeats=0, latest=alert)
        return True

    def due(self, now: float) -> list[Repeats]:
        """Summaries for windows that ended with repeats; forgets windows that ended quietly."""
        out: list[Repeats] = []
        for key, group in list(self._groups.items()):
            if now - group.opened < self.window:
                continue
            if group.repeats:
                out.append(Repeats(key[0], group.latest, group.repeats))
                self._groups[key] = _Group(opened=now, repeats=0, latest=group.latest)
            else:
                del self._groups[key]
        return out

    def drain(self) -> list[Repeats]:
        """Every pending summary, at once (shutdown)."""
        out = [Repeats(key[0], g.latest, g.repeats) for key, g in self._groups.items() if g.repeats]
        self._groups.clear()
        return out

    def __len__(self) -> int:
        return len(self._groups)
