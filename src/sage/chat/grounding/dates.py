"""Dates and clock times written in an answer.

They are masked before numbers are read ("as of 09:59:58 UTC" states no price) and checked
on their own against the times the facts carry. Times are read as UTC (Sage states every
time in UTC). A time written to the minute matches a fact within one minute either side
(rounding or truncation); to the second, within one second; a date alone, the same UTC day.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

_MONTHS = {
    name: number
    for number, names in enumerate(
        (
            ("jan", "january"),
            ("feb", "february"),
            ("mar", "march"),
            ("apr", "april"),
            ("may",),
            ("jun", "june"),
            ("jul", "july"),
            ("aug", "august"),
            ("sep", "sept", "september"),
            ("oct", "october"),
            ("nov", "november"),
            ("dec", "december"),
        ),
        start=1,
    )
    for name in names
}
_MONTH = "|".join(sorted(_MONTHS, key=len, reverse=True))
_CLOCK = r"(?P<h>\d{1,2}):(?P<mi>\d{2})(?::(?P<s>\d{2}))?(?:\.\d+)?(?:\s?(?P<ampm>[AaPp][Mm]))?(?:\s?UTC|Z|\s?GMT)?"
_DATE_FORMS = (
    re.compile(rf"(?P<y>\d{{4}})-(?P<mo>\d{{2}})-(?P<d>\d{{2}})(?:[T ]{_CLOCK})?"),
    re.compile(rf"(?P<y>\d{{4}})년\s?(?P<mo>\d{{1,2}})월\s?(?P<d>\d{{1,2}})일(?:\s?{_CLOCK})?"),
    re.compile(r"(?<!\d)(?P<mo>\d{1,2})월\s?(?P<d>\d{1,2})일"),
    re.compile(
        rf"\b(?P<mname>{_MONTH})\.?\s(?P<d>\d{{1,2}})(?:st|nd|rd|th)?(?:\s?[-–]\s?(?P<d2>\d{{1,2}})(?:st|nd|rd|th)?)?"
        rf"(?:,?\s(?P<y>\d{{4}}))?\b",
        re.IGNORECASE,
    ),
    re.compile(rf"\b(?P<d>\d{{1,2}})\s(?P<mname>{_MONTH})\.?(?:\s(?P<y>\d{{4}}))?\b", re.IGNORECASE),
    re.compile(r"(?<![\d/])\d{1,2}/\d{1,2}/\d{2,4}(?![\d/])"),  # masked, never checked: 11/12 is ambiguous
    re.compile(rf"(?<![\d:]){_CLOCK}(?![\d:])"),
)


@dataclass(frozen=True)
class DateMention:
    text: str
    start: int
    end: int
    day: date | None  # None: a clock time alone ("at 09:59 UTC")
    clock: time | None
    precision: timedelta  # how far a fact's time may be from the one written
    last_day: date | None = None  # "Nov 19-21": the range's last day

    def matches(self, moment: datetime) -> bool:
        moment = moment.astimezone(UTC)
        if self.clock is None:
            return self.day is not None and self.day <= moment.date() <= (self.last_day or self.day)
        day = self.day or moment.date()
        written = datetime.combine(day, self.clock, tzinfo=UTC)
        if self.day is None:  # a time alone may sit on either side of midnight
            return (
                min(abs(moment - written + shift) for shift in (timedelta(0), timedelta(days=1), -timedelta(days=1)))
                <= self.precision
            )
        return abs(moment - written) <= self.precision


def _build(match: re.Match[str], default_year: int | None) -> DateMention | None:
    groups = match.groupdict()
    if "mo" not in groups and "mname" not in groups and "h" not in groups:
        return None  # a numeric form kept only for masking
    clock: time | None = None
    precision = timedelta(days=1)
    if groups.get("h") is not None:
        hour, minute = int(groups["h"]), int(groups["mi"])
        if groups.get("ampm"):
            hour = hour % 12 + (12 if groups["ampm"].lower() == "pm" else 0)
        second = int(groups["s"]) if groups.get("s") else 0
        if hour > 23 or minute > 59 or second > 59:
            return None
        clock = time(hour, minute, second)
        precision = timedelta(seconds=1) if groups.get("s") else timedelta(minutes=1)
    day: date | None = None
    if groups.get("d") is not None:
        month = int(groups["mo"]) if groups.get("mo") else _MONTHS[groups["mname"].lower()]
        year = int(groups["y"]) if groups.get("y") else default_year
        if year is None:
            return None
        try:
            day = date(year, month, int(groups["d"]))
        except ValueError:
            return None
    if day is None and clock is None:
        return None
    last_day = None
    if day is not None and groups.get("d2"):
        try:
            last_day = day.replace(day=int(groups["d2"]))
        except ValueError:
            return None
        if last_day < day:
            return None
    return DateMention(match.group(0), match.start(), match.end(), day, clock, precision, last_day)


def _spans(text: str) -> list[tuple[int, int, re.Match[str]]]:
    spans: list[tuple[int, int, re.Match[str]]] = []
    for form in _DATE_FORMS:
        for match in form.finditer(text):
            if not any(a < match.end() and match.start() < b for a, b, _ in spans):
                spans.append((match.start(), match.end(), match))
    return sorted(spans, key=lambda s: s[0])


def mask_dates(text: str) -> str:
    """`text` with every date and clock time blanked (same length, so offsets hold)."""
    chars = list(text)
    for start, end, _ in _spans(text):
        chars[start:end] = " " * (end - start)
    return "".join(chars)


def find_dates(text: str, *, default_year: int | None = None) -> list[DateMention]:
    """Dates and times that can be checked (a month-day without a year takes `default_year`)."""
    found = []
    for _, _, match in _spans(text):
        mention = _build(match, default_year)
        if mention is not None:
            found.append(mention)
    return found
