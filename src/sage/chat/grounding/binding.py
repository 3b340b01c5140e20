"""Binds each number of an answer to what it claims: a subject, a field, a direction, a comparison.

The subject is the nearest mention before the number in its sentence ("ETH at $3,456.78"),
else the first one after it ("At $97,250, BTC ..."), else the subject the previous sentence
ended on; a number followed by a coin is a quantity of that coin ("0.5 BTC"). The field comes
from the nearest keyword between the number and what came before it in the sentence
("24h high", "worth", "P&L", "volume", "고가"), or just after it ("$1.2B in volume").
Direction words (up/down/rose/fell, 상승/하락) give the sign; comparatives (above/below/about,
이상/미만/약) say how the figure relates to the fact.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from sage.chat.grounding.facts import FEAR_GREED, PERCENT_FIELDS, PORTFOLIO, Field, Subject, SubjectKind
from sage.chat.grounding.numbers import NumberMention
from sage.chat.grounding.text import SubjectMention


class Comparison(StrEnum):
    EXACT = "exact"
    ABOUT = "about"
    ABOVE = "above"
    BELOW = "below"


_HINT_WORDS: tuple[tuple[str, frozenset[Field]], ...] = tuple(
    (pattern, frozenset(fields))
    for pattern, fields in (
        (
            r"average\s(?:cost|price)|avg\.?\s(?:cost|price)|entry(?:\sprice)?|bought\s(?:at|for)|평균\s?(?:단가|매입가)|평단",
            {Field.AVERAGE_COST},
        ),
        (r"\bcost(?:\sbasis)?\b|\bpaid\b|\binvested\b|매입|원가", {Field.COST}),
        (r"p&l|\bpnl\b|\bprofit\b|unreali[sz]ed|\bloss\b|손익|수익(?!률)|손실", {Field.PNL, Field.PNL_PCT}),
        (r"\bworth\b|\bvalued?\b|\bequity\b|평가액|가치|총액", {Field.VALUE}),
        (r"\bvolume\b|거래량|거래대금", {Field.VOLUME}),
        (r"\bhighs?\b|\bhighest\b|\bpeak(?:ed)?\b|고가|최고", {Field.HIGH}),
        (r"\blows?\b|\blowest\b|\bbottom(?:ed)?\b|저가|최저", {Field.LOW}),
        (r"\bopen(?:ed|ing)?\b|\bfrom\b|\b24\s?h(?:ours?)?\sago\b|\byesterday\b|시가|전일", {Field.OPEN}),
        (r"\bclos(?:e|es|ed|ing)\b|종가", {Field.CLOSE}),
        (r"\branged?\b|\bspread\b|변동폭", {Field.RANGE}),
        (r"\bbetween\b|사이", {Field.LOW, Field.HIGH}),
        (
            r"\bout(?:paced|performed)\b|\bunderperformed\b|\btrail(?:ed|ing)\b|\blagg(?:ed|ing)\b|\bbeat\b|\bahead\sof\b|\bgap\b",
            {Field.GAP_PCT},
        ),
        (r"\b(?:below|under|off|from)\s(?:its|the)\s(?:24\s?h\s)?(?:high|low|peak)\b", {Field.RELATIVE_PCT}),
        (r"\bhold(?:s|ing)?\b|\bown(?:s)?\b|\bquantity\b|보유", {Field.QUANTITY}),
        (r"\bweight\b|\bshare\b|비중", {Field.WEIGHT_PCT}),
        (r"\bprices?d?\b|\btrad(?:es|ing)\s(?:at|near|around)\b|\bquoted\b|가격|시세|현재가", {Field.PRICE}),
        (r"\bindex\b|\breading\b|\bscore\b|지수", {Field.INDEX_VALUE}),
        (r"\breturn(?:s|ed|ing)?\b(?!\s(?:to|back)\b)|수익률", {Field.RETURN_PCT, Field.PNL_PCT}),
        (r"\bdrawdown\b|낙폭", {Field.DRAWDOWN_PCT}),
        (r"\bcash\b|현금", {Field.CASH}),
    )
)
_HINTS_AFTER = (
    (
        re.compile(r"^\s?(?:in\s)?(?:24\s?h\s)?(?:trading\s)?volume\b|^\s?(?:의\s)?거래량", re.IGNORECASE),
        frozenset({Field.VOLUME}),
    ),
    (
        re.compile(r"^\s?(?:\w+\s)?of\s(?:the|your)\s(?:\w+\s)?portfolio|^\s?비중", re.IGNORECASE),
        frozenset({Field.WEIGHT_PCT}),
    ),
    (re.compile(r"^\s?(?:[A-Z]{2,6}\s)?(?:held|worth)\b", re.IGNORECASE), frozenset({Field.QUANTITY})),
    (
        re.compile(r"^\s?(?:below|under|above|off|from)\s(?:its|the)\s(?:24\s?h\s)?(?:high|low|peak)", re.IGNORECASE),
        frozenset({Field.RELATIVE_PCT}),
    ),
    (re.compile(r"^\s?(?:24\s?h\s)?high\b", re.IGNORECASE), frozenset({Field.HIGH})),
    (re.compile(r"^\s?(?:24\s?h\s)?low\b", re.IGNORECASE), frozenset({Field.LOW})),
)
_COMPARE_BEFORE = (
    (
        re.compile(
            r"(?:above|over|more\sthan|higher\sthan|greater\sthan|exceed(?:s|ing|ed)?|at\sleast|beyond|north\sof|past|topp(?:ed|ing))\s*$",
            re.IGNORECASE,
        ),
        Comparison.ABOVE,
    ),
    (
        re.compile(r"(?:below|under|less\sthan|lower\sthan|at\smost|south\sof|beneath|shy\sof)\s*$", re.IGNORECASE),
        Comparison.BELOW,
    ),
    (
        re.compile(
            r"(?:about|around|roughly|approximately|approx\.?|nearly|almost|close\sto|near|some|~|≈|약|대략|거의)\s*$",
            re.IGNORECASE,
        ),
        Comparison.ABOUT,
    ),
)
_COMPARE_AFTER = re.compile(
    r"^\s?(?:달러|원|불|USDT|USD|dollars?)?\s?(?:을|를|이|가|에|는|은)?\s?(?:(?P<above>이상|초과|넘|웃돌|돌파|or\smore|plus\b|\+)|(?P<below>이하|미만|아래|밑|or\sless)|(?P<about>정도|쯤|가량|안팎|내외|or\sso|ish\b))",
    re.IGNORECASE,
)
_UP = r"\badd(?:ed|s|ing)\b|\bup\b|\brose\b|\brisen\b|\brises?\b|\brising\b|\bgain(?:ed|s|ing)?\b|\bclimb(?:ed|s|ing)?\b|\bjump(?:ed|s)?\b|\bsurg(?:ed|es|ing)\b|\brall(?:ied|ies|y)\b|\badvanc(?:ed|es)\b|\bincreas(?:ed|es|e)\b|\bhigher\b|\bsoar(?:ed|s)?\b|\bprofit\b|in\sthe\sgreen|상승|올랐|오른|오르|급등|증가|이익|플러스"
_DOWN = r"\bshed(?:s|ding)?\b|\bgave\sup\b|\bpared\b|\bdown\b|\bfell\b|\bfallen\b|\bfall(?:s|ing)?\b|\bdrop(?:ped|s)?\b|\bdeclin(?:ed|es|e)\b|\blost\b|\bloss\b|\blos(?:es|ing)\b|\bslid\b|\bslipped\b|\bsank\b|\bplung(?:ed|es)\b|\btumbl(?:ed|es)\b|\bretreat(?:ed|s)?\b|\bdecreas(?:ed|es|e)\b|\blower\b|in\sthe\sred|하락|떨어|내렸|내린|빠졌|급락|감소|마이너스"
_DIRECTION = re.compile(rf"(?P<up>{_UP})|(?P<down>{_DOWN})", re.IGNORECASE)
_DIRECTION_AFTER = re.compile(
    r"^\s?(?:%\s)?(?:(?P<up>higher|gain|rise|increase|up\b|상승|올랐|오른|오르|급등|증가|이익)|(?P<down>lower|drop|decline|loss|fall|decrease|down\b|하락|떨어|내렸|내린|빠졌|급락|감소|손실))",
    re.IGNORECASE,
)
# "fell to $3,400": the number after "to/at" is a level, not the size of the move
_LEVEL_AFTER_DIRECTION = re.compile(
    r"^\s*(?:\w+\s+)?(?:to|at|toward|towards|near|into|back\sto|below|above|under|over|beneath|past|through)\b|^\S*\s*(?:해서|하여)",
    re.IGNORECASE,
)
_COMPARATIVE_WORDS = re.compile(r"(?:higher|lower|more|less|greater)\s+than", re.IGNORECASE)
_PERSONAL = re.compile(
    r"\byou(?:r|'re|'ve)?\b|\bmy\b|\bheld\b|\bholdings\b|\bpositions?\b|p&l|\bpnl\b|보유|포트폴리오|내\s",
    re.IGNORECASE,
)
_LIST_SEPARATOR = re.compile(r"^\s*(?:,|;|/|&|and|or|,\s*and|,\s*or)\s*$", re.IGNORECASE)
_FOR_COIN = re.compile(r"\s?(?:for|of|on|in)\s(?:your\s|the\s)?", re.IGNORECASE)
_POINTS_AFTER = re.compile(r"^\s?(?:points?|pts?)\b", re.IGNORECASE)
_COIN_AFTER = re.compile(r"^\s?([A-Z][A-Z0-9]{1,9})(?![A-Za-z])|^\s?(비트코인|이더리움|솔라나|리플|도지코인)")


@dataclass(frozen=True)
class Binding:
    number: NumberMention
    subject: Subject | None
    fields: frozenset[Field]  # what the number may be; empty = any field of the subject
    hinted: bool  # the fields came from a keyword, not from defaults
    direction: int  # +1 up, -1 down, 0 none written
    comparison: Comparison
    personal: bool  # the sentence speaks of the user's holdings ("your", "P&L", "보유")
    points: bool = False  # "by 3.56 points" about coins: percentage points

    @property
    def percent(self) -> bool:
        return self.number.percent or self.points

    @property
    def claimed_sign(self) -> int:
        return self.number.explicit_sign or self.direction


# one pass over the text: each keyword family is a named group inside a lookahead, so keywords
# that overlap ("below its 24h high" is both a distance and a high) are all found
_HINTS = re.compile("|".join(f"(?=(?P<h{i}>{pattern}))" for i, (pattern, _) in enumerate(_HINT_WORDS)), re.IGNORECASE)


def _hints(window: str) -> frozenset[Field] | None:
    """Every field a keyword in `window` names ("lowest price" -> low or price)."""
    found: set[Field] = set()
    for match in _HINTS.finditer(window):
        found |= _HINT_WORDS[int((match.lastgroup or "h0")[1:])][1]
    return frozenset(found) if found else None


def _direction(before: str, after: str) -> int:
    if (later := _DIRECTION_AFTER.match(after)) is not None:
        return 1 if later.group("up") else -1
    cleaned = _COMPARATIVE_WORDS.sub(lambda m: " " * len(m.group(0)), before)
    last = None
    for match in _DIRECTION.finditer(cleaned):
        last = match
    if last is None or _LEVEL_AFTER_DIRECTION.match(cleaned[last.end() :]):
        return 0
    return 1 if last.group("up") else -1


def _comparison(before: str, after: str) -> Comparison:
    tail = before[-30:]
    for pattern, kind in _COMPARE_BEFORE:
        if pattern.search(tail):
            return kind
    if (match := _COMPARE_AFTER.match(after)) is not None:
        return (
            Comparison.ABOVE if match.group("above") else Comparison.BELOW if match.group("below") else Comparison.ABOUT
        )
    return Comparison.EXACT


def coin_after(text: str, end: int, known: dict[str, Subject]) -> Subject | None:
    """ "0.5 BTC": the coin a quantity is written with."""
    match = _COIN_AFTER.match(text[end : end + 16])
    if match is None:
        return None
    word = match.group(1) or match.group(2) or ""
    return known.get(word.upper()) or known.get(word)


def bind(
    number: NumberMention,
    text: str,
    sentence: tuple[int, int],
    window_start: int,
    mentions: list[SubjectMention],
    carried: Subject | None,
    coins: dict[str, Subject],
    previous: Binding | None = None,
) -> Binding:
    """What `number` claims; `window_start` is where the text that qualifies it begins
    (the end of the previous number in the sentence, or the sentence's start)."""
    s_start, s_end = sentence
    before = text[window_start : number.start]
    after = text[number.end : min(s_end, number.end + 40)]
    inside = [m for m in mentions if s_start <= m.start and m.end <= s_end]
    subject: Subject | None = None
    quantity_of = None if (number.percent or number.currency) else coin_after(text, number.end, coins)
    named_after = _FOR_COIN.match(text, number.end)
    for_coin = [
        m for m in inside if named_after and m.start == named_after.end() and m.subject.kind is SubjectKind.SYMBOL
    ]
    if quantity_of is not None:
        subject = quantity_of
    elif for_coin:  # "$8,000 for ETH"
        subject = for_coin[0].subject
    elif preceding := [m for m in inside if m.end <= number.start]:
        subject = preceding[-1].subject
    elif following := [m for m in inside if m.start >= number.end]:
        subject = following[0].subject
    else:
        subject = carried
    # the hint and direction must be in this clause: after the subject named nearest before it
    last_mention = max((m.end for m in inside if m.end <= number.start), default=window_start)
    clause = text[max(window_start, last_mention) : number.start] if last_mention > window_start else before
    hint = _hints(before)  # every keyword since the previous figure: "the spread between its high and low"
    for pattern, fields in _HINTS_AFTER:
        if pattern.match(after):
            hint = fields
    direction = _direction(clause, after)
    comparison = _comparison(before, after)
    hinted = hint is not None
    if quantity_of is not None and hint is None:
        hint = frozenset({Field.QUANTITY, Field.VOLUME})  # "0.5 BTC" held, or traded
    points = (
        not number.percent
        and subject is not None
        and subject.kind is SubjectKind.SYMBOL
        and bool(_POINTS_AFTER.match(after))
    )
    fields = _fields(number, subject, hint, direction, points)
    personal = bool(_PERSONAL.search(text, s_start, s_end))
    if hint is not None and Field.QUANTITY in hint and not personal and quantity_of is None:
        hint = hint - {Field.QUANTITY} or None  # "BTC is holding near $97K" is not a holding
        fields, hinted = _fields(number, subject, hint, direction, points), hint is not None
    if previous is not None and hint is None and previous.percent == number.percent and _LIST_SEPARATOR.match(before):
        fields, hinted = previous.fields, previous.hinted  # "closes of $94,000, $96,500 and $95,100"
    return Binding(number, subject, fields, hinted, direction, comparison, personal, points)


def _fields(
    number: NumberMention, subject: Subject | None, hint: frozenset[Field] | None, direction: int, points: bool
) -> frozenset[Field]:
    if subject == FEAR_GREED and not number.percent:
        return frozenset({Field.INDEX_VALUE})  # the index has one figure; "yesterday" names a time, not a field
    if number.percent or points:
        chosen = (hint or frozenset()) & PERCENT_FIELDS
        if hint and Field.PNL in hint:
            chosen |= {Field.PNL_PCT}
        return chosen or PERCENT_FIELDS
    if hint is not None:
        chosen = hint - PERCENT_FIELDS
        if Field.PNL_PCT in hint:
            chosen |= {Field.PNL}
        if chosen:
            return frozenset(chosen)
    if subject is None:
        return frozenset()
    if subject == FEAR_GREED:
        return frozenset({Field.INDEX_VALUE})
    if direction:
        return frozenset({Field.CHANGE_ABS, Field.PNL})
    # a level by default; verify() still accepts another field of the same subject when no keyword said which
    return frozenset({Field.VALUE}) if subject == PORTFOLIO else frozenset({Field.PRICE})


def is_index_value(number: NumberMention) -> bool:
    return number.bare_integer and Decimal(0) <= number.value <= Decimal(100)
