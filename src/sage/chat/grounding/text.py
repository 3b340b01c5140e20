"""Where sentences start and end, and the words that mark subjects in them."""

from __future__ import annotations

import re
from dataclasses import dataclass

from sage.chat.grounding.facts import FEAR_GREED, PORTFOLIO, Facts, Subject
from sage.chat.mentions import symbol_mentions

_SENTENCE_END = re.compile(r"(?<=[.!?。])\s+|\n+")
_INDEX_WORDS = re.compile(
    r"fear\s?(?:&|and)\s?greed|\bf\s?&\s?g\b|\bsentiment\b|\bindex\b|\breading\b|공포|탐욕|심리\s?지수|지수",
    re.IGNORECASE,
)
_PORTFOLIO_WORDS = re.compile(r"\bportfolio\b|\bholdings\b|\baccount\b|포트폴리오", re.IGNORECASE)


@dataclass(frozen=True)
class SubjectMention:
    start: int
    end: int
    subject: Subject


def sentences(text: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence; a line is always a sentence of its own (bullets, tables)."""
    spans: list[tuple[int, int]] = []
    position = 0
    for match in _SENTENCE_END.finditer(text):
        if match.start() > position:
            spans.append((position, match.start()))
        position = match.end()
    if position < len(text):
        spans.append((position, len(text)))
    return spans


def subject_mentions(text: str, facts: Facts) -> list[SubjectMention]:
    found = [SubjectMention(a, b, Subject.symbol(symbol)) for a, b, symbol in symbol_mentions(text, facts.symbols())]
    found += [SubjectMention(m.start(), m.end(), FEAR_GREED) for m in _INDEX_WORDS.finditer(text)]
    found += [SubjectMention(m.start(), m.end(), PORTFOLIO) for m in _PORTFOLIO_WORDS.finditer(text)]
    return sorted(found, key=lambda m: m.start)
