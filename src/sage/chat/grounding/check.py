"""Checks every figure of an answer against the facts it was given.

A *claim* is a number the answer asserts about a subject (a price, a move, a volume, an
index value, a P&L, a quantity), a Fear & Greed label, or a date/time. Counts, list markers,
durations ("24h", "7 days"), years in prose and the index's 0-100 scale are not claims.
A number the user typed is checked like any other when the answer asserts it about a fact
Sage has ("I heard BTC is at 150,000" -> "BTC is at $150,000" is flagged), and left alone
when the answer only quotes it ("you said 150,000") or uses it as a hypothesis ("if BTC
reaches 150,000"), or when Sage has no fact to check it against (the user's own holdings).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

from sage.chat.grounding.binding import Binding, bind, coin_after, is_index_value
from sage.chat.grounding.dates import DateMention, find_dates
from sage.chat.grounding.facts import (
    CLOCK,
    FEAR_GREED,
    Fact,
    Facts,
    Field,
    Subject,
    SubjectKind,
)
from sage.chat.grounding.labels import LabelMention, classes_for, find_labels
from sage.chat.grounding.numbers import NumberMention, find_numbers
from sage.chat.grounding.result import Claim, GroundingResult
from sage.chat.grounding.text import SubjectMention, sentences, subject_mentions
from sage.chat.grounding.verify import CLASS_MISMATCH, NO_MATCHING_FACT, TIME_MISMATCH, Verdict, verify
from sage.chat.mentions import COIN_ALIASES, WELL_KNOWN_TICKERS

_UNIT_AFTER = re.compile(
    r"^[\s\-]?(?:h|hr|hrs|hours?|d|days?|w|wks?|weeks?|mo|months?|y|yrs?|years?|mins?|minutes?|m|s|secs?|seconds?"
    r"|x|st|nd|rd|th|candles?|bars?|times?)(?![A-Za-z])"
    r"|^\s\d+[mhdw]\s(?:candles?|bars?)\b"  # "48 1h bars": a count of bars of an interval
    r"|^\s?(?:시간|일|주|개월|달|년|분|초|개|명|건|회|가지|위|번|종목?|배|차례)",
    re.IGNORECASE,
)
# A bare number followed by one of these still states a figure ("at 72 today", "91000 now")
_AFTER_A_FIGURE = re.compile(
    r"^\s?(?:today|now|right|currently|at|as|on|this|and|or|with|while|which|after|before|points?|pts|"
    r"level|mark|area|zone|territory|for|in|but|so|yesterday|earlier|though|according|vs|versus|against|compared|per|each|from|to|up|down|over"
    r"|a|an|one|two|three|four|five|six|seven|eight|nine|ten|several|few)\b",
    re.IGNORECASE,
)
_TICKER_BEFORE = re.compile(r"(?:\b[A-Z][A-Za-z0-9]{1,9}|Layer|Web)\s$")
_WORD_AFTER = re.compile(r"^\s?[A-Za-z]")
_SCALE_LABEL = r"(?:\s?\([^)]{0,20}\))?"
_INDEX_SCALE = re.compile(
    rf"\b0{_SCALE_LABEL}\s?(?:-|–|to|and|~)\s?100\b{_SCALE_LABEL}|out\sof\s100|/\s?100\b|0{_SCALE_LABEL}\s?(?:부터|에서)\s?100{_SCALE_LABEL}"
    r"|100\s?점\s?만점",
    re.IGNORECASE,
)
_QUOTED_OR_HYPOTHETICAL = re.compile(
    r"\byou(?:'ve)?\s(?:said|mentioned|heard|wrote|asked|read|saw|quoted|suggested|think|thought|expect)|\byour\s(?:figure|number|target|estimate|guess)"
    r"|\bif\b|\bwhen(?:ever)?\b|\bonce\b|\bshould\b|\bwould\b|\bcould\b|\bmight\b|\btarget\b|\balert\b|\bwere\s(?:to|at)\b|\bsuppose\b|\bassum"
    r"|\bclaims?\b|\brumou?r|\bnot\s(?:at|near|trading)|\bisn't\b|\bis\snot\b"
    r"|말씀하신|언급하신|들으신|만약|가정|알림|목표",
    re.IGNORECASE,
)
_PAST = re.compile(
    r"\b(?:was|were|had|ago|yesterday|earlier|last|previous|past|window|since|peaked|bottomed|closed|opened|hit|days?|weeks?|months?)\b"
    r"|어제|전날|지난|전에|였|었",
    re.IGNORECASE,
)
_ALERT = re.compile(r"\balerts?\b|알림", re.IGNORECASE)
_TARGET_BEFORE = re.compile(
    r"(?:\bto\s(?:reach|hit|get\sto|break(?:\sthrough)?|touch|retake|reclaim|return\sto|climb\sto|fall\sto|drop\sto)"
    r"|\btarget(?:\sof)?|\bgoal\sof)\s*(?:the\s)?$",
    re.IGNORECASE,
)
_GENERIC = re.compile(r"\b(?:can|may|might|could|typically|usually|often|tends?\sto|historically)\b", re.IGNORECASE)
_PRESENT = re.compile(r"\b(?:today|now|currently|at\spresent)\b|현재|지금|오늘", re.IGNORECASE)
_HYPOTHETICAL_AFTER = re.compile(
    r"^\s?(?:that\s)?you(?:'ve)?\s(?:mentioned|said|heard|quoted|asked\sabout|expect)|^[^.!?\n]{0,15}?(?:되면|가면|오면|넘으면|떨어지면|이라면|라면|면\s|면,|일\s때|라고|이라고|는\s아닙|가\s아닙|이\s아닙)"
)


@dataclass(frozen=True)
class _Bound:
    binding: Binding
    verdict: Verdict
    sentence: int


def _coins(facts: Facts) -> dict[str, Subject]:
    coins = {t: Subject.symbol(f"{t}/USDT") for t in WELL_KNOWN_TICKERS}
    for symbol in facts.symbols():
        coins[symbol.split("/")[0]] = Subject.symbol(symbol)
    for alias, base in COIN_ALIASES.items():
        if base in coins:
            coins[alias] = coins[base]
    return coins


def _not_a_claim(number: NumberMention, text: str, coins: dict[str, Subject]) -> bool:
    after = text[number.end : number.end + 16]
    if number.percent or number.currency:
        return False
    if _UNIT_AFTER.match(after):
        return True
    line_start = text.rfind("\n", 0, number.start) + 1
    if text[line_start : number.start].strip() in ("", "-", "*", "•") and after.startswith((".", ")")):
        return True  # "1." / "2)" list markers
    if number.scaled:
        return False
    named = text[max(0, number.start - 8) : number.start]
    if (
        _WORD_AFTER.match(after)
        and not _AFTER_A_FIGURE.match(after)
        and _TICKER_BEFORE.search(named)
        and not coin_after(text, number.end, coins)
    ):
        return True  # part of a name: "ETH 2.0 upgrades", "Layer 2 tokens"
    if number.bare_integer:
        if 1900 <= number.value <= 2100:
            return True  # a year in prose
        if _WORD_AFTER.match(after) and not _AFTER_A_FIGURE.match(after) and not coin_after(text, number.end, coins):
            return True  # a count: "3 things", "top 5 coins" (but "3 ETH" is a quantity)
    return False


def _user_match(number: NumberMention, typed: list[NumberMention]) -> bool:
    return any(
        number.percent == u.percent and abs(abs(number.value) - abs(u.value)) <= max(number.unit, u.unit) for u in typed
    )


def _premises(
    numbers: list[NumberMention], text: str, spans: list[tuple[int, int]], coins: dict[str, Subject]
) -> list[NumberMention]:
    """Quantities an answer supposes ("0.1 BTC would be worth ..."): premises, not claims."""
    found = []
    for start, end in spans:
        if not _QUOTED_OR_HYPOTHETICAL.search(text, start, end):
            continue
        found += [
            n
            for n in numbers
            if start <= n.start < end and not (n.percent or n.currency) and coin_after(text, n.end, coins) is not None
        ]
    return found


def _levels(numbers: list[NumberMention], text: str, spans: list[tuple[int, int]]) -> list[NumberMention]:
    """Price levels an answer sets as a target or an alert ("to reach $100,000"): premises."""
    found = []
    for start, end in spans:
        alert = _ALERT.search(text, start, end) is not None
        for number in numbers:
            if not start <= number.start < end or number.percent:
                continue
            before = text[max(start, number.start - 30) : number.start]
            if (alert and (number.currency or number.grouped_or_decimal)) or _TARGET_BEFORE.search(before):
                found.append(number)
    return found


def _distances(levels: list[NumberMention], subjects: set[Subject], facts: Facts) -> list[Fact]:
    """How far a coin's price is from a target level, in percent and in quote currency."""
    derived = []
    for subject in subjects:
        for price in facts.about(subject):
            if price.field is not Field.PRICE or price.subject.kind is not SubjectKind.SYMBOL or not price.number:
                continue
            for level in levels:
                target = abs(level.value)
                derived.append(
                    Fact(subject, Field.RELATIVE_PCT, (target / price.number - 1) * 100, price.time, "target", True)
                )
                derived.append(Fact(subject, Field.CHANGE_ABS, target - price.number, price.time, "target", True))
    return derived


def _cross_rates(mentions: list[SubjectMention], facts: Facts) -> list[Fact]:
    """BTC/ETH from BTC/USDT and ETH/USDT, when the answer names a pair Sage has no price for."""
    derived = []
    for mention in mentions:
        subject = mention.subject
        if subject.kind is not SubjectKind.SYMBOL or facts.about(subject):
            continue
        base, _, quote = subject.key.partition("/")
        legs = [_usdt_price(facts, coin) for coin in (base, quote)]
        if legs[0] is not None and legs[1]:
            derived.append(Fact(subject, Field.PRICE, legs[0] / legs[1], None, "cross rate", True))
    return derived


def _usdt_price(facts: Facts, coin: str) -> Decimal | None:
    if coin in ("USDT", "USD", "USDC"):
        return Decimal(1)
    return next(
        (f.number for f in facts.about(Subject.symbol(f"{coin}/USDT")) if f.field is Field.PRICE and f.number),
        None,
    )


def _gaps(subjects: set[Subject], facts: Facts) -> list[Fact]:
    """Percentage points between the 24 h moves of the coins a sentence names."""
    moves = [
        f
        for s in subjects
        if s.kind is SubjectKind.SYMBOL
        for f in facts.about(s)
        if f.field is Field.CHANGE_PCT and f.subject.kind is SubjectKind.SYMBOL and f.number is not None
    ]
    gaps = []
    for a in moves:
        for b in moves:
            if a.subject.key < b.subject.key and a.number is not None and b.number is not None:
                for subject in (a.subject, b.subject):
                    gaps.append(Fact(subject, Field.GAP_PCT, abs(a.number - b.number), a.time, "gap", True))
    return gaps


def _derived_from_user(typed: list[NumberMention], facts: Facts) -> list[Fact]:
    """The user's (or a supposed) quantity x a price ("what are my 0.5 BTC worth?") is a correct derived figure."""
    prices = [f for f in facts if f.field is Field.PRICE and f.subject.kind is SubjectKind.SYMBOL and f.number]
    derived = []
    for quantity in typed:
        if quantity.percent or quantity.currency or quantity.value <= 0:
            continue
        for price in prices:
            assert price.number is not None
            derived.append(
                Fact(price.subject, Field.VALUE, quantity.value * price.number, price.time, "user x price", True)
            )
    return derived


def _kind(binding: Binding) -> str:
    number = binding.number
    if number.percent:
        return "percent"
    if binding.subject == FEAR_GREED and Field.INDEX_VALUE in binding.fields:
        return "index"
    return "amount" if number.currency or number.scaled or number.grouped_or_decimal else "number"


def check_answer(answer: str, facts: Facts, *, question: str = "") -> GroundingResult:
    """Every claim in `answer`, each verified against the facts of what it is about."""
    typed = find_numbers(question)
    coins = _coins(facts)
    mentions = subject_mentions(answer, facts)
    numbers = find_numbers(answer)
    scale_spans = [(m.start(), m.end()) for m in _INDEX_SCALE.finditer(answer)]
    scale_spans += _restated_expressions(answer, facts)
    spans = sentences(answer)
    supposed = _premises(numbers, answer, spans, coins)
    levels = _levels(numbers, answer, spans)
    extra = [*_derived_from_user([*typed, *supposed], facts), *_cross_rates(mentions, facts)]
    year = _year(facts.timed())
    claims: list[Claim] = []
    bound: list[_Bound] = []
    ignored = 0
    carried: Subject | None = None
    for index, (s_start, s_end) in enumerate(spans):
        window_start = s_start
        in_time = _scope(facts, answer[s_start:s_end], year)
        inside_mentions = [m for m in mentions if s_start <= m.start < s_end]
        named = {m.subject for m in inside_mentions}
        here = [n for n in levels if s_start <= n.start < s_end]
        derived = [
            *extra,
            *_gaps(named, in_time),
            *_distances(here, named | ({carried} if carried else set()), in_time),
        ]
        for number in (n for n in numbers if s_start <= n.start < s_end):
            start_of_window, window_start = window_start, number.end
            if _not_a_claim(number, answer, coins) or any(a <= number.start < b for a, b in scale_spans):
                continue
            if number in supposed or number in levels:
                continue
            previous = bound[-1].binding if bound and bound[-1].sentence == index else None
            binding = bind(number, answer, (s_start, s_end), start_of_window, mentions, carried, coins, previous)
            if binding.subject is None and (number.bare_integer or _GENERIC.search(answer, s_start, s_end)):
                continue  # "prices can move 5-10% in a day" states nothing about a fact
            if binding.subject == FEAR_GREED and number.bare_integer and not is_index_value(number):
                continue
            user = _user_match(number, typed)
            if user and _quoted_or_hypothetical(answer, s_start, number):
                ignored += 1
                continue
            verdict = verify(binding, in_time, derived)
            if user and (verdict.reason == NO_MATCHING_FACT or Field.QUANTITY in binding.fields):
                ignored += 1  # the user's own premise, about nothing Sage knows
                continue
            bound.append(_Bound(binding, verdict, index))
            claims.append(_claim(binding, verdict, user))
        last = [b.binding.subject for b in bound if b.sentence == index and b.binding.subject is not None]
        if last:
            carried = last[-1]
        elif inside_mentions:
            carried = inside_mentions[-1].subject
    claims += _label_claims(answer, spans, mentions, bound, facts, scale_spans)
    claims += _date_claims(answer, spans, mentions, facts)
    return GroundingResult(claims=tuple(sorted(claims, key=lambda c: c.start)), user_numbers_ignored=ignored)


def _restated_expressions(answer: str, facts: Facts) -> list[tuple[int, int]]:
    """Where the answer writes out a `calculate` expression as it was evaluated: its operands
    are inputs the result was computed from, and the result itself is checked on its own."""
    found: list[tuple[int, int]] = []
    for fact in facts.calculations():
        expression = fact.subject.key
        start = answer.find(expression)
        while expression and start >= 0:
            found.append((start, start + len(expression)))
            start = answer.find(expression, start + 1)
    return found


def _scope(facts: Facts, sentence: str, year: int | None) -> Facts:
    """The facts a sentence can be about: those at the dates it names, all of them when it
    speaks of the past, else the current ones ("the index reads 40" is not last week's 40)."""
    dated = find_dates(sentence, default_year=year)
    if dated:
        then = facts.at(dated)
        # "from 40 on Nov 20 to 72 today": a sentence may name a past date and the present
        return Facts([*then, *facts.current()]) if _PRESENT.search(sentence) else then
    return facts if _PAST.search(sentence) else facts.current()


def _quoted_or_hypothetical(text: str, sentence_start: int, number: NumberMention) -> bool:
    return bool(_QUOTED_OR_HYPOTHETICAL.search(text[sentence_start : number.start])) or bool(
        _HYPOTHETICAL_AFTER.match(text[number.end : number.end + 20])
    )


def _claim(binding: Binding, verdict: Verdict, user: bool) -> Claim:
    number = binding.number
    matched = verdict.fact
    field = matched.field.value if matched is not None else ",".join(sorted(f.value for f in binding.fields)) or None
    return Claim(
        text=number.text,
        start=number.start,
        end=number.end,
        value=str(number.value),
        kind=_kind(binding),
        verified=verdict.verified,
        reason=verdict.reason,
        subject=str(binding.subject) if binding.subject is not None else None,
        field=field,
        matched=matched.label if matched is not None else None,
        user_supplied=user,
    )


def _sentence_of(position: int, spans: list[tuple[int, int]]) -> int:
    return next((i for i, (a, b) in enumerate(spans) if a <= position < b), len(spans) - 1)


def _label_claims(
    text: str,
    spans: list[tuple[int, int]],
    mentions: list[SubjectMention],
    bound: list[_Bound],
    facts: Facts,
    scale_spans: list[tuple[int, int]],
) -> list[Claim]:
    classifications = [f for f in facts.about(FEAR_GREED) if f.field is Field.CLASSIFICATION]
    claims: list[Claim] = []
    for label in find_labels(text):
        if any(a <= label.start < b for a, b in scale_spans):
            continue  # "0 (Extreme Fear) to 100 (Extreme Greed)" explains the scale
        index = _sentence_of(label.start, spans)
        s_start, s_end = spans[index] if spans else (0, len(text))
        about_index = any(m.subject == FEAR_GREED and s_start <= m.start < s_end for m in mentions) or any(
            b.sentence == index and b.binding.subject == FEAR_GREED for b in bound
        )
        if not about_index and not label.label.startswith("Extreme"):
            continue
        allowed = _allowed_classes(label, index, bound, classifications, text, spans)
        if allowed is None:
            continue
        ok = label.label in allowed
        claims.append(
            Claim(
                text=label.text,
                start=label.start,
                end=label.end,
                value=label.label,
                kind="label",
                verified=ok,
                reason=None if ok else CLASS_MISMATCH,
                subject=str(FEAR_GREED),
                field=Field.CLASSIFICATION.value,
            )
        )
    return claims


def _allowed_classes(
    label: LabelMention,
    sentence: int,
    bound: list[_Bound],
    classifications: list[Fact],
    text: str,
    spans: list[tuple[int, int]],
) -> set[str] | None:
    values = [
        b
        for b in bound
        if b.sentence == sentence and b.binding.subject == FEAR_GREED and Field.INDEX_VALUE in b.binding.fields
    ]
    if values:
        nearest = min(values, key=lambda b: abs(b.binding.number.start - label.start))
        allowed = classes_for(int(nearest.binding.number.value))
        fact = nearest.verdict.fact
        allowed |= {str(c.value) for c in classifications if fact is not None and c.time == fact.time}
        return allowed
    if not classifications:
        return None
    s_start, s_end = spans[sentence]
    dated = find_dates(text[s_start:s_end], default_year=_year(classifications))
    if dated:
        at = [c for c in classifications if c.time is not None and any(d.matches(c.time) for d in dated)]
        if at:
            return {str(c.value) for c in at}
    latest = max(classifications, key=lambda c: c.time.timestamp() if c.time is not None else float("-inf"))
    return {str(latest.value)}


def _year(facts: list[Fact]) -> int | None:
    times = [f.time for f in facts if f.time is not None]
    return max(times).year if times else None


def _date_claims(text: str, spans: list[tuple[int, int]], mentions: list[SubjectMention], facts: Facts) -> list[Claim]:
    timed = facts.timed()
    if not timed:
        return []
    clock = [f for f in timed if f.subject == CLOCK]
    claims: list[Claim] = []
    for mention in find_dates(text, default_year=_year(clock or timed)):
        index = _sentence_of(mention.start, spans)
        s_start, s_end = spans[index] if spans else (0, len(text))
        subjects = {m.subject for m in mentions if s_start <= m.start < s_end}
        pool = [f for s in subjects for f in facts.about(s) if f.time is not None and not f.derived] + clock
        if not subjects or len(pool) == len(clock):
            pool = [f for f in timed if not f.derived]
        ok = any(f.time is not None and mention.matches(f.time) for f in pool)
        claims.append(_date_claim(mention, ok))
    return claims


def _date_claim(mention: DateMention, ok: bool) -> Claim:
    return Claim(
        text=mention.text.strip(),
        start=mention.start,
        end=mention.end,
        value=mention.text.strip(),
        kind="date",
        verified=ok,
        reason=None if ok else TIME_MISMATCH,
        field=Field.TIME.value,
    )
