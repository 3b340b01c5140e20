"""Precision and recall of the grounding check on a labelled corpus (a quality gate)."""

from __future__ import annotations

from sage.chat.grounding import check_answer
from tests.chat.grounding_corpus import CORPUS
from tests.chat.grounding_facts import corpus_facts

GOAL = 0.95


def _score(group: str | None = None) -> tuple[int, int, int, int, list[str]]:
    facts = corpus_facts()
    tp = fp = fn = right_reason = 0
    misses: list[str] = []
    for case in (c for c in CORPUS if group is None or c.group == group):
        result = check_answer(case.answer, facts.copy(), question=case.question)
        flagged = {c.text: c.reason for c in result.unverified}
        for text, reason in flagged.items():
            if text in case.false:
                tp += 1
                right_reason += case.false[text] == reason
                if case.false[text] != reason:
                    misses.append(f"reason {reason} != {case.false[text]}: {case.answer}")
            else:
                fp += 1
                misses.append(f"false alarm {text} ({reason}): {case.answer}")
        for text in case.false.keys() - flagged.keys():
            fn += 1
            misses.append(f"missed {text}: {case.answer}")
    return tp, fp, fn, right_reason, misses


def test_the_corpus_is_large_enough_and_covers_every_failure_class():
    assert len(CORPUS) >= 150
    reasons = {reason for case in CORPUS for reason in case.false.values()}
    assert {"wrong_subject", "wrong_direction", "comparison_false", "class_mismatch", "value_mismatch"} <= reasons
    assert {"true", "korean", "kmb", "user", "not_claims", "dates"} <= {case.group for case in CORPUS}


def test_recall_on_false_claims_is_at_least_95_percent_at_precision_95():
    tp, fp, fn, right_reason, misses = _score()
    precision = tp / (tp + fp)
    recall = tp / (tp + fn)
    print(
        f"\ngrounding corpus: {len(CORPUS)} sentences, {tp + fn} false figures; "
        f"precision {precision:.3f}, recall {recall:.3f}, reason agreement {right_reason / tp:.3f}"
    )
    h_tp, h_fp, h_fn, _, _ = _score("holdout")
    print(f"held-out group alone: precision {h_tp / (h_tp + h_fp):.3f}, recall {h_tp / (h_tp + h_fn):.3f}")
    print("\n".join(misses))
    assert precision >= GOAL and recall >= GOAL, misses
