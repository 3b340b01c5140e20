"""CSV import and export of transactions (pure).

Import reads Binance's spot trade-history export (`Date(UTC),Pair,Side,Price,Executed,Amount,Fee`,
e.g. `2024-03-01 10:15:30,BTCUSDT,BUY,62000.5,0.01000000BTC,620.005USDT,0.62000500USDT`) or our
own export (`executed_at,kind,symbol,quantity,price,fee,note,id`), told apart by the header.
Every row is checked before anything is written; a bad row rejects the whole file with its
row number (the file's line, the header being row 1) and the reason.

Fees are in the portfolio's base currency: a Binance fee charged in the quote currency is
taken as is, one charged in the bought asset is converted at the trade's price, and any
other asset (BNB) cannot be converted without a price of that time, so the row is refused.
"""

from __future__ import annotations

import csv
import decimal
import hashlib
import io
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

from sage.market.symbols import SymbolError, parse_symbol, split_symbol
from sage.portfolio.ledger import PRECISION, TransactionLike, to_places

BINANCE_HEADER = ("Date(UTC)", "Pair", "Side", "Price", "Executed", "Amount", "Fee")
EXPORT_HEADER = ("executed_at", "kind", "symbol", "quantity", "price", "fee", "note", "id")
MAX_ROWS = 10_000
MAX_INTEGER_DIGITS = 20
MAX_DECIMAL_PLACES = 18
LIMIT = Decimal("1e20")  # NUMERIC(38, 18) holds 20 integer digits
_AMOUNT = re.compile(r"^([0-9][0-9,]*(?:\.[0-9]+)?)([A-Z0-9]*)$")


class CsvError(ValueError):
    def __init__(self, problems: list[tuple[int, str]]) -> None:
        super().__init__("; ".join(f"row {row}: {reason}" for row, reason in problems))
        self.problems = problems


@dataclass(frozen=True)
class CsvRow:
    row: int
    kind: str
    symbol: str | None
    quantity: Decimal
    price: Decimal | None
    fee: Decimal
    executed_at: datetime
    note: str | None
    key: str  # idempotency key: re-importing the same file books nothing twice


CsvRowParts = tuple[str, str | None, Decimal, Decimal | None, Decimal, datetime, str | None]


class _Bad(ValueError):
    pass


def decimal_in_bounds(raw: str, what: str, *, allow_zero: bool = False) -> Decimal:
    try:
        value = Decimal(raw.replace(",", "").strip())
    except InvalidOperation as exc:
        raise _Bad(f"{what} {raw!r} is not a number") from exc
    if not value.is_finite() or value < 0 or (value == 0 and not allow_zero):
        raise _Bad(f"{what} must be {'zero or more' if allow_zero else 'positive'}, got {raw!r}")
    exponent = value.as_tuple().exponent
    places = -exponent if isinstance(exponent, int) and exponent < 0 else 0
    if places > MAX_DECIMAL_PLACES:
        raise _Bad(f"{what} has more than {MAX_DECIMAL_PLACES} decimal places")
    if value.adjusted() >= MAX_INTEGER_DIGITS:
        raise _Bad(f"{what} has more than {MAX_INTEGER_DIGITS} integer digits")
    return value


def _amount(raw: str, what: str) -> tuple[Decimal, str]:
    match = _AMOUNT.match(raw.strip().upper())
    if match is None:
        raise _Bad(f"{what} {raw!r} is not an amount like 0.01BTC")
    return decimal_in_bounds(match.group(1), what, allow_zero=what == "Fee"), match.group(2)


def _time(raw: str, now: datetime) -> datetime:
    text = raw.strip()
    try:
        when = datetime.fromisoformat(text)
    except ValueError as exc:
        raise _Bad(f"date {raw!r} is not YYYY-MM-DD HH:MM:SS") from exc
    when = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    if when > now:
        raise _Bad(f"date {raw!r} is in the future")
    return when


def _binance(
    cells: list[str], base_currency: str, now: datetime
) -> tuple[str, str, Decimal, Decimal, Decimal, datetime]:
    date, pair, side, price_raw, executed, _amount_cell, fee_raw = (c.strip() for c in cells)
    try:
        symbol = parse_symbol(pair)
    except SymbolError as exc:
        raise _Bad(f"pair {pair!r} is not a symbol") from exc
    base, quote = split_symbol(symbol)
    if quote != base_currency:
        raise _Bad(f"pair {symbol} is not quoted in the portfolio's base currency {base_currency}")
    kind = side.lower()
    if kind not in ("buy", "sell"):
        raise _Bad(f"side {side!r} is not BUY or SELL")
    price = decimal_in_bounds(price_raw, "Price")
    quantity, asset = _amount(executed, "Executed")
    if asset and asset != base:
        raise _Bad(f"Executed is in {asset}, not {base}")
    fee, fee_asset = _amount(fee_raw, "Fee")
    if fee_asset in ("", quote):
        fee_in_base = fee
    elif fee_asset == base:
        fee_in_base = to_places(fee * price)  # stored at 18 places
    else:
        raise _Bad(f"the fee is in {fee_asset}, which cannot be converted to {base_currency} (edit the row)")
    with decimal.localcontext(prec=PRECISION):
        too_large = quantity * price >= LIMIT or fee_in_base >= LIMIT
    if too_large:
        raise _Bad("the trade's amount is too large")
    return kind, symbol, quantity, price, fee_in_base, _time(date, now)


def _ours(cells: list[str], now: datetime) -> CsvRowParts:
    executed_at, kind, symbol_raw, quantity_raw, price_raw, fee_raw, note = (c.strip() for c in cells[:7])
    kind = kind.lower()
    if kind not in ("buy", "sell", "deposit", "withdraw"):
        raise _Bad(f"kind {kind!r} is not buy, sell, deposit or withdraw")
    quantity = decimal_in_bounds(quantity_raw, "quantity")
    fee = decimal_in_bounds(fee_raw or "0", "fee", allow_zero=True)
    symbol: str | None = None
    price: Decimal | None = None
    if kind in ("buy", "sell"):
        try:
            symbol = parse_symbol(symbol_raw)
        except SymbolError as exc:
            raise _Bad(f"symbol {symbol_raw!r} is not a symbol") from exc
        price = decimal_in_bounds(price_raw, "price")
    elif symbol_raw or price_raw:
        raise _Bad(f"a {kind} has no symbol or price")
    with decimal.localcontext(prec=PRECISION):
        too_large = price is not None and quantity * price >= LIMIT
    if too_large:
        raise _Bad("the trade's amount is too large")
    return kind, symbol, quantity, price, fee, _time(executed_at, now), note[:500] or None


def parse_transactions(text: str, *, base_currency: str, now: datetime) -> list[CsvRow]:
    """Rows in file order; raises CsvError listing every bad row (up to 20)."""
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    header = next(reader, None)
    if header is None:
        raise CsvError([(1, "the file is empty")])
    names = tuple(h.strip() for h in header)
    if names[: len(BINANCE_HEADER)] == BINANCE_HEADER:
        binance = True
    elif names[: len(EXPORT_HEADER) - 1] == EXPORT_HEADER[:-1]:
        binance = False
    else:
        raise CsvError(
            [(1, f"unknown header; expected {','.join(BINANCE_HEADER)} (Binance) or {','.join(EXPORT_HEADER)}")]
        )
    rows: list[CsvRow] = []
    problems: list[tuple[int, str]] = []
    seen: Counter[str] = Counter()
    for cells in reader:
        line = reader.line_num
        if not any(c.strip() for c in cells):
            continue
        if len(rows) + len(problems) >= MAX_ROWS:
            problems.append((line, f"more than {MAX_ROWS:,} rows; split the file"))
            break
        expected = len(BINANCE_HEADER) if binance else len(EXPORT_HEADER) - 1
        try:
            if len(cells) < expected:
                raise _Bad(f"{len(cells)} columns, expected {expected}")
            if binance:
                kind, sym, quantity, price, fee, when = _binance(cells[:expected], base_currency, now)
                parts: CsvRowParts = (kind, sym, quantity, price, fee, when, "Imported from a Binance export")
            else:
                parts = _ours(cells, now)
        except _Bad as exc:
            problems.append((line, str(exc)))
            if len(problems) >= 20:
                break
            continue
        material = "|".join(str(p) for p in parts[:6])
        seen[material] += 1
        key = "csv:" + hashlib.sha256(f"{material}#{seen[material]}".encode()).hexdigest()[:40]
        rows.append(CsvRow(line, *parts, key=key))
    if problems:
        raise CsvError(problems)
    if not rows:
        raise CsvError([(2, "the file has no transactions")])
    return rows


def format_transactions(rows: Iterable[TransactionLike]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(EXPORT_HEADER)
    for row in rows:
        writer.writerow(
            [
                row.executed_at.astimezone(UTC).isoformat(),
                row.kind,
                row.symbol or "",
                _plain(row.quantity),
                "" if row.price is None else _plain(row.price),
                _plain(row.fee),
                _cell(row.note or ""),
                str(row.id),
            ]
        )
    return out.getvalue()


def _cell(text: str) -> str:
    """A user's text made inert for spreadsheets: a leading = + - @ would run as a formula
    when the export is opened (OWASP "CSV injection"), so it gets a leading apostrophe."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _plain(value: Decimal) -> str:
    return f"{value.normalize():f}"
