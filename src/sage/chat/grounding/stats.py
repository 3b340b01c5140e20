"""Rolling hallucination rates over recent answers, exported as metrics."""

from __future__ import annotations

import threading
from collections import deque

from sage.chat.grounding.result import GroundingResult
from sage.observability.metrics import Metrics


class GroundingStats:
    """Rolling hallucination rates over the last `window` answers, exported as metrics.

    Counters (GroundingEvaluated / GroundingUnverified, dim level=response|claim) are
    monotonic so CloudWatch can compute fleet-wide rates; the HallucinationRate gauge is
    this process's recent rate in percent, which the spec alerts on above 1 %.
    """

    def __init__(self, metrics: Metrics, window: int = 1000) -> None:
        self.metrics = metrics
        self._answers: deque[tuple[int, int]] = deque(maxlen=window)  # (claims, unverified)
        self._lock = threading.Lock()

    def record(self, result: GroundingResult) -> None:
        if not result.has_claims:
            return
        unverified = len(result.unverified)
        self.metrics.incr("GroundingEvaluated", level="response")
        self.metrics.incr("GroundingEvaluated", len(result.claims), level="claim")
        if unverified:
            self.metrics.incr("GroundingUnverified", level="response")
            self.metrics.incr("GroundingUnverified", unverified, level="claim")
        with self._lock:
            self._answers.append((len(result.claims), unverified))
            response_rate, claim_rate = self._rates()
        self.metrics.gauge("HallucinationRate", response_rate, unit="Percent", level="response")
        self.metrics.gauge("HallucinationRate", claim_rate, unit="Percent", level="claim")

    def _rates(self) -> tuple[float, float]:
        answers = len(self._answers)
        if not answers:
            return 0.0, 0.0
        flagged = sum(1 for _, bad in self._answers if bad)
        claims = sum(total for total, _ in self._answers)
        bad_claims = sum(bad for _, bad in self._answers)
        return 100.0 * flagged / answers, (100.0 * bad_claims / claims if claims else 0.0)

    def rates(self) -> dict[str, float]:
        with self._lock:
            response_rate, claim_rate = self._rates()
            return {
                "response_percent": response_rate,
                "claim_percent": claim_rate,
                "answers": float(len(self._answers)),
            }
