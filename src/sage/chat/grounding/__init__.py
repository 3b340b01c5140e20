"""Grounding v2: every figure of an answer bound to what it claims and checked against it.

Modules: `facts` (what may be stated, from the context and tool results), `numbers` and
`dates` (reading figures, K/M/B and Korean number words), `text` and `binding` (what each
figure is about), `labels` (Fear & Greed classes), `verify` (tolerances and reasons),
`check` (the whole answer), `stats` (hallucination-rate metrics).
"""

from sage.chat.grounding.check import check_answer
from sage.chat.grounding.facts import FEAR_GREED, PORTFOLIO, Fact, Facts, Field, Subject, SubjectKind
from sage.chat.grounding.numbers import NumberMention, find_numbers
from sage.chat.grounding.result import Claim, GroundingResult
from sage.chat.grounding.stats import GroundingStats

__all__ = [
    "FEAR_GREED",
    "PORTFOLIO",
    "Claim",
    "Fact",
    "Facts",
    "Field",
    "GroundingResult",
    "GroundingStats",
    "NumberMention",
    "Subject",
    "SubjectKind",
    "check_answer",
    "find_numbers",
]
