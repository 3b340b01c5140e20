"""Verifies one bound claim against the facts of its subject, and says why when it fails.

Tolerances (the same for every field):
- exact wording: the figure is the fact rounded (within half a unit of the last digit written)
  or truncated (up to one unit below it): "$97.3K" and "$97K" match 97,250.50, "$97,300",
  "$96K" and "3" for 2 do not;
- about/around/roughly/~/약/정도: within 3 % of the fact, or one unit of the last digit if larger;
- above/over/more than/이상: the fact is at or above the figure and at most 10 % beyond it (or
  one unit of the last digit, or half a percentage point for a percentage, if larger):
  "above $95K" at 97,250 holds, "above $80K" is loose;
- below/under/less than/미만: the mirror image.
A written sign or direction word (up/down, 상승/하락) must agree with the sign of a change,
P&L or calculation result; a move of exactly zero accepts any direction.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from sage.chat.grounding.binding import Binding, Comparison
from sage.chat.grounding.facts import PERCENT_FIELDS, SIGNED_FIELDS, Fact, Facts, Field, SubjectKind

ABOUT_TOLERANCE = Decimal("0.03")
COMPARISON_BAND = Decimal("0.10")
PERCENT_POINT_BAND = Decimal("0.5")

# Why a figure is unverified
WRONG_SUBJECT = "wrong_subject"
WRONG_FIELD = "wrong_field"
WRONG_DIRECTION = "wrong_direction"
COMPARISON_FALSE = "comparison_false"
COMPARISON_LOOSE = "comparison_loose"
VALUE_MISMATCH = "value_mismatch"
NO_MATCHING_FACT = "no_matching_fact"
CLASS_MISMATCH = "class_mismatch"
TIME_MISMATCH = "time_mismatch"


@dataclass(frozen=True)
class Verdict:
    fact: Fact | None  # the fact it matched
    reason: str | None  # None when verified

    @property
    def verified(self) -> bool:
        return self.reason is None


def _band(binding: Binding, claim: Decimal) -> Decimal:
    floor = PERCENT_POINT_BAND if binding.percent else binding.number.unit
    return max(floor, binding.number.unit, claim * COMPARISON_BAND)


def _magnitude(binding: Binding, target: Decimal) -> str | None:
    """None when the written figure states `target` (magnitudes only), else a reason."""
    number = binding.number
    claim, fact, unit = abs(number.value), abs(target), number.unit
    match binding.comparison:
        case Comparison.EXACT:  # rounded (half a unit either side) or truncated (up to one unit above)
            return None if -unit / 2 <= fact - claim < unit else VALUE_MISMATCH
        case Comparison.ABOUT:
            return None if abs(claim - fact) <= max(unit, fact * ABOUT_TOLERANCE) else VALUE_MISMATCH
        case Comparison.ABOVE:
            if fact < claim:
                return COMPARISON_FALSE
            return None if fact - claim <= _band(binding, claim) else COMPARISON_LOOSE
        case Comparison.BELOW:
            if fact > claim:
                return COMPARISON_FALSE
            return None if claim - fact <= _band(binding, claim) else COMPARISON_LOOSE
    return VALUE_MISMATCH


def check_fact(binding: Binding, fact: Fact) -> str | None:
    target = fact.number
    if target is None:
        return VALUE_MISMATCH
    if binding.percent != (fact.field in PERCENT_FIELDS) and fact.field is not Field.RESULT:
        return VALUE_MISMATCH
    reason = _magnitude(binding, target)
    sign = binding.claimed_sign
    if sign and target != 0 and (fact.field in SIGNED_FIELDS) and (sign > 0) != (target > 0):
        return WRONG_DIRECTION if reason is None else reason
    if sign < 0 and fact.field not in SIGNED_FIELDS and binding.number.explicit_sign < 0:
        return VALUE_MISMATCH  # "-$3,400" for a price
    return reason


# Which fact a failing figure is most likely about, to name the reason after it
_FIELD_ORDER = {
    field: rank
    for rank, field in enumerate(
        (
            Field.PRICE,
            Field.CHANGE_PCT,
            Field.INDEX_VALUE,
            Field.VALUE,
            Field.PNL,
            Field.PNL_PCT,
            Field.CHANGE_ABS,
            Field.QUANTITY,
            Field.HIGH,
            Field.LOW,
            Field.VOLUME,
        )
    )
}


def _first_match(binding: Binding, facts: Iterable[Fact]) -> tuple[Fact | None, str | None]:
    """The first fact the claim states, else the failure on the fact it most likely meant."""
    failures: list[str] = []
    for fact in sorted(facts, key=lambda f: _FIELD_ORDER.get(f.field, len(_FIELD_ORDER))):
        reason = check_fact(binding, fact)
        if reason is None:
            return fact, None
        failures.append(reason)
    if WRONG_DIRECTION in failures:
        return None, WRONG_DIRECTION
    return None, failures[0] if failures else None


def _in_fields(facts: Iterable[Fact], binding: Binding) -> list[Fact]:
    wanted = binding.fields
    return [f for f in facts if f.number is not None and (not wanted or f.field in wanted)]


def verify(binding: Binding, facts: Facts, extra: Iterable[Fact] = ()) -> Verdict:
    """`extra` holds facts derived for this answer only (the user's quantity x a price)."""
    subject = binding.subject
    numeric = [f for f in facts if f.number is not None and f.subject.kind is not SubjectKind.CALCULATION]
    extra = list(extra)
    own = facts.about(subject) if subject is not None else numeric
    if subject is not None:  # derived for this answer about the same subject ("ETH trailed BTC by 3.56 points")
        own += [f for f in extra if f.subject.key == subject.key and f.subject.kind is subject.kind]
    own_fields = _in_fields(own, binding)
    fact, reason = _first_match(binding, own_fields)
    if fact is not None:
        return Verdict(fact, None)
    if reason in (WRONG_DIRECTION, COMPARISON_FALSE, COMPARISON_LOOSE):
        return Verdict(None, reason)
    if binding.fields and own and (binding.hinted or binding.comparison is Comparison.EXACT):
        # without a keyword, a coin's sentence may mean another of its market figures, but not
        # the user's position in it ("ETH is at $4,000" is not the ETH average cost of 4,000)
        chosen = {id(f) for f in own_fields}
        rest = [
            f
            for f in own
            if f.number is not None
            and id(f) not in chosen
            and (binding.hinted or not f.derived)
            and (binding.hinted or binding.personal or f.subject.kind is not SubjectKind.POSITION)
        ]
        other_field, _ = _first_match(binding, rest)
        if other_field is not None:
            return Verdict(other_field, None) if not binding.hinted else Verdict(other_field, WRONG_FIELD)
    calculated, _ = _first_match(binding, [*facts.calculations(), *extra])
    if calculated is not None:
        return Verdict(calculated, None)
    if subject is not None and own_fields:
        mine = {id(f) for f in own}
        others = [f for f in numeric if id(f) not in mine]
        elsewhere, _ = _first_match(binding, _in_fields(others, binding))
        if elsewhere is not None:
            return Verdict(elsewhere, WRONG_SUBJECT)
    return Verdict(None, VALUE_MISMATCH if own_fields else NO_MATCHING_FACT)
