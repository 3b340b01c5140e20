"""A portfolio's derived state, computed once per version of its ledger and kept in memory.

Replaying 10,000 transactions at 80 digits and reading them from PostgreSQL is most of what a
summary or a performance series costs, and it gives the same answer until the ledger changes.
So one replay produces both the final `Ledger` and a `Timeline` (cash, net deposits and the
changed holding after every transaction: the ledger's state at any time, what a performance
point values), and `StateCache` keeps it keyed by the portfolio's `ledger_version`. That counter is bumped
by a trigger on every insert, update or delete of the portfolio's transactions (migration
`0011_portfolio_rollups`), in the writer's own database transaction, so whatever path
writes (booking, correction, deletion, CSV import, the deprecated positions API, a COPY) a
reader that sees the new rows sees the new version and replays again; a reader never mixes
a version with another version's rows. Several processes each keep their own cache and
check the version on every read.
"""

from __future__ import annotations

import bisect
import decimal
import uuid
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal

from sage.portfolio.ledger import PRECISION, ZERO, Entry, Ledger
from sage.portfolio.performance import Holdings

CHECKPOINT_EVERY = 256
CACHED_PORTFOLIOS = 256  # a 10,000-transaction ledger's state is ~5 MB of Python objects


@dataclass(frozen=True)
class Timeline:
    """After the i-th transaction (execution order): its time, the cash, the net deposits and
    the quantity then held of the symbol it traded (0: closed; None for deposit/withdraw)."""

    times: tuple[datetime, ...]
    cash: tuple[Decimal, ...]
    net_deposits: tuple[Decimal, ...]
    changes: tuple[tuple[str, Decimal] | None, ...]
    # the quantities held after every CHECKPOINT_EVERY-th transaction (the first: before any),
    # in the order a Ledger keeps its holdings: `held` jumps there instead of walking 10,000
    checkpoints: tuple[dict[str, Decimal], ...]

    def upto(self, t: datetime) -> int:
        """How many transactions were executed at or before `t`."""
        return bisect.bisect_right(self.times, t)

    def held(self, held: dict[str, Decimal], index: int, end: int) -> tuple[dict[str, Decimal], int]:
        """The quantities held after `end` transactions, from those after `index` (`held`,
        updated in place unless a checkpoint is nearer)."""
        if end <= index:
            return held, index
        nearest = end // CHECKPOINT_EVERY
        if nearest * CHECKPOINT_EVERY > index:
            held, index = dict(self.checkpoints[nearest]), nearest * CHECKPOINT_EVERY
        for change in self.changes[index:end]:
            if change is None:
                continue
            symbol, quantity = change
            if quantity > 0:
                held[symbol] = quantity  # a new position last, as a Ledger's holdings
            else:
                held.pop(symbol, None)
        return held, end

    def states_at(self, times: Sequence[datetime]) -> list[Holdings]:
        """The ledger's state after the transactions executed at or before each time (ascending)."""
        held: dict[str, Decimal] = {}
        index = 0
        out: list[Holdings] = []
        for t in times:
            held, index = self.held(held, index, self.upto(t))
            out.append(
                Holdings(self.cash[index - 1], self.net_deposits[index - 1], dict(held))
                if index
                else Holdings(ZERO, ZERO, {})
            )
        return out


@dataclass(frozen=True)
class LedgerState:
    version: int
    entries: tuple[Entry, ...]
    ledger: Ledger  # the final state; shared by readers: copy before applying anything to it
    timeline: Timeline

    def ledger_copy(self) -> Ledger:
        return replace(self.ledger, holdings=dict(self.ledger.holdings))

    def appended(self, entry: Entry, ledger: Ledger, version: int) -> LedgerState:
        """This state with `entry` (sorting after every entry) booked: `ledger` is the final
        state with it applied (book.check_appended), `version` the ledger_version it made."""
        held = ledger.holdings.get(entry.symbol) if entry.symbol is not None else None
        change = None if entry.symbol is None else (entry.symbol, held.quantity if held is not None else ZERO)
        timeline = Timeline(
            (*self.timeline.times, entry.executed_at),
            (*self.timeline.cash, ledger.cash),
            (*self.timeline.net_deposits, ledger.net_deposits),
            (*self.timeline.changes, change),
            self.timeline.checkpoints
            + ((ledger.quantities(),) if (len(self.entries) + 1) % CHECKPOINT_EVERY == 0 else ()),
        )
        return LedgerState(version, (*self.entries, entry), ledger, timeline)


def derive(
    entries: Sequence[Entry],
    version: int = 0,
    *,
    snapshots: tuple[int, list[tuple[int, Ledger]]] | None = None,
) -> LedgerState:
    """Replay `entries` (valid, in execution order) once: the final ledger and the timeline.
    The same arithmetic as `ledger.replay` (raises LedgerError where it would).
    `snapshots=(every, out)`: a copy of the ledger after every `every`-th transaction and
    after the last one is appended to `out`."""
    ledger = Ledger()
    cash: list[Decimal] = []
    net: list[Decimal] = []
    changes: list[tuple[str, Decimal] | None] = []
    checkpoints: list[dict[str, Decimal]] = [{}]
    with decimal.localcontext(prec=PRECISION):
        for entry in entries:
            ledger.apply_exact(entry)
            if len(cash) % CHECKPOINT_EVERY == CHECKPOINT_EVERY - 1:
                checkpoints.append(ledger.quantities())
            cash.append(ledger.cash)
            net.append(ledger.net_deposits)
            if entry.symbol is None:
                changes.append(None)
            else:
                held = ledger.holdings.get(entry.symbol)
                changes.append((entry.symbol, held.quantity if held is not None else ZERO))
            if snapshots is not None and (len(cash) % snapshots[0] == 0 or len(cash) == len(entries)):
                snapshots[1].append((len(cash), replace(ledger, holdings=dict(ledger.holdings))))
    timeline = Timeline(
        tuple(e.executed_at for e in entries), tuple(cash), tuple(net), tuple(changes), tuple(checkpoints)
    )
    return LedgerState(version, tuple(entries), ledger, timeline)


@dataclass(frozen=True)
class Tip:
    """A version's final ledger alone (shared by readers: copy before applying anything) and
    the time of its last transaction (None: no transaction)."""

    version: int
    ledger: Ledger
    last_at: datetime | None

    def appends(self, entry: Entry) -> bool:
        """Whether `entry` (not booked yet) sorts after the whole history."""
        return self.last_at is None or entry.executed_at >= self.last_at


class StateCache:
    """The latest derived state of the most recently read portfolios (LRU, in this process):
    the full state (ledger, timeline) of those this process wrote (a write that is not an
    append replays the whole history anyway; an append extends the state it checked), and the
    final ledger alone of those only summarized (read from a persisted checkpoint,
    sage.portfolio.checkpoints)."""

    def __init__(self, size: int = CACHED_PORTFOLIOS) -> None:
        self.size = size
        self._states: OrderedDict[uuid.UUID, LedgerState] = OrderedDict()
        self._ledgers: OrderedDict[uuid.UUID, Tip] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def get(self, portfolio_id: uuid.UUID, version: int) -> LedgerState | None:
        state = self._states.get(portfolio_id)
        if state is None or state.version != version:
            self.misses += 1
            return None
        self._states.move_to_end(portfolio_id)
        self.hits += 1
        return state

    def tip(self, portfolio_id: uuid.UUID, version: int) -> Tip | None:
        """The final ledger of `version` and the time of its last transaction, from the full
        state or the ledger kept alone."""
        state = self._states.get(portfolio_id)
        if state is not None and state.version == version:
            self._states.move_to_end(portfolio_id)
            self.hits += 1
            return Tip(version, state.ledger, state.entries[-1].executed_at if state.entries else None)
        kept = self._ledgers.get(portfolio_id)
        if kept is None or kept.version != version:
            self.misses += 1
            return None
        self._ledgers.move_to_end(portfolio_id)
        self.hits += 1
        return kept

    def put(self, portfolio_id: uuid.UUID, state: LedgerState) -> None:
        current = self._states.get(portfolio_id)
        if current is not None and current.version > state.version:
            return  # a slower reader of an older version must not replace a newer state
        self._states[portfolio_id] = state
        self._states.move_to_end(portfolio_id)
        while len(self._states) > self.size:
            self._states.popitem(last=False)

    def put_tip(self, portfolio_id: uuid.UUID, tip: Tip) -> None:
        current = self._ledgers.get(portfolio_id)
        if current is not None and current.version > tip.version:
            return
        self._ledgers[portfolio_id] = tip
        self._ledgers.move_to_end(portfolio_id)
        while len(self._ledgers) > self.size:
            self._ledgers.popitem(last=False)

    def forget(self, portfolio_id: uuid.UUID) -> None:
        self._states.pop(portfolio_id, None)
        self._ledgers.pop(portfolio_id, None)

    def clear(self) -> None:
        self._states.clear()
        self._ledgers.clear()
