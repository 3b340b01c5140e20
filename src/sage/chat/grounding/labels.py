"""The Fear & Greed Index's classes and the labels an answer gives them.

Alternative.me's classes, from the values its API publishes next to each label (25 is
"Extreme Fear", 46 "Fear", 47 and 54 "Neutral", 75 "Greed"): Extreme Fear 0-25, Fear 26-46,
Neutral 47-54, Greed 55-75, Extreme Greed 76-100. Third-party tables disagree by one point
at each boundary, so a value within one point of a boundary accepts either neighbour; the
index's own published classification, when Sage has it, is always accepted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

CLASSES = (
    (25, "Extreme Fear"),
    (46, "Fear"),
    (54, "Neutral"),
    (75, "Greed"),
    (100, "Extreme Greed"),
)
_LABEL_WORDS = {
    "extreme fear": "Extreme Fear",
    "extreme greed": "Extreme Greed",
    "fear": "Fear",
    "greed": "Greed",
    "neutral": "Neutral",
    "극단적공포": "Extreme Fear",
    "극도의공포": "Extreme Fear",
    "극단적탐욕": "Extreme Greed",
    "극도의탐욕": "Extreme Greed",
    "공포": "Fear",
    "탐욕": "Greed",
    "중립": "Neutral",
}
# The index's own name says "fear" and "greed": blank it before looking for labels.
INDEX_NAME = re.compile(
    r"(?:crypto\s)?fear\s?(?:&|and|/|-)\s?greed(?:\sindex)?|f\s?&\s?g|공포\s?[·&/-]?\s?탐욕\s?지수|공포\s?[·&/-]?\s?탐욕",
    re.IGNORECASE,
)
_LABEL = re.compile(
    r"(?<![A-Za-z])(?P<label>extreme\s+fear|extreme\s+greed|fear|greed|neutral)(?![A-Za-z])"
    r"|(?P<ko>극(?:단적|도의)\s?(?:공포|탐욕)|공포|탐욕|중립)",
    re.IGNORECASE,
)


def classify(value: int) -> str:
    for upper, name in CLASSES:
        if value <= upper:
            return name
    return CLASSES[-1][1]


def classes_for(value: int) -> set[str]:
    """The classes a stated value may carry: its own, and a neighbour within one point of a boundary."""
    return {classify(max(0, min(100, v))) for v in (value - 1, value, value + 1)}


@dataclass(frozen=True)
class LabelMention:
    text: str
    start: int
    end: int
    label: str  # canonical: one of the CLASSES names


def find_labels(text: str) -> list[LabelMention]:
    """Class labels written in `text`, outside the index's own name.

    A bare "fear"/"greed"/"neutral" counts only when written as a label: capitalised, in
    parentheses, in quotes, or followed by "territory"/"zone"; "investors are greedy" or
    "fear of missing out" are not labels.
    """
    masked = INDEX_NAME.sub(lambda m: " " * len(m.group(0)), text)
    found: list[LabelMention] = []
    for match in _LABEL.finditer(masked):
        raw = match.group(0)
        key = " ".join(raw.lower().split())
        if match.group("label") and not key.startswith("extreme"):
            before = masked[max(0, match.start() - 2) : match.start()]
            after = masked[match.end() : match.end() + 12].lower()
            labelled = (
                raw[0].isupper()
                or before.endswith(("(", '"', "'", "“"))
                or after.lstrip().startswith(("territory", "zone", "range", "level", "reading"))
            )
            if not labelled or after.lstrip().startswith(("of ", "index", "and ", "&")):
                continue
        canonical = _LABEL_WORDS.get(key if match.group("label") else key.replace(" ", ""))
        if canonical is None:
            continue
        found.append(LabelMention(raw, match.start(), match.end(), canonical))
    return found
