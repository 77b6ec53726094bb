"""The latency verdict: median of paired ratios with a bootstrap confidence interval (no torch, no numpy)."""

from __future__ import annotations

import random
import statistics
from dataclasses import dataclass

CONFIDENCE = 0.95
RESAMPLES = 2000
MIN_PAIRS = 5  # below this a median's interval means nothing: no verdict either way


@dataclass(frozen=True)
class RatioEstimate:
    ratio: float  # median of the per-pair ratios
    low: float
    high: float
    significant: bool  # the interval excludes 1.0
    pairs: int

    def verdict(self) -> str:
        if self.pairs < MIN_PAIRS:
            return f"too few timed rounds to tell ({self.pairs}; at least {MIN_PAIRS})"
        interval = f"{CONFIDENCE:.0%} CI {self.low:.2f} to {self.high:.2f}"
        if not self.significant:
            return f"no significant difference ({interval})"
        return f"fixed is {'slower' if self.ratio > 1 else 'faster'} ({interval})"


def median_ratio(ratios: list[float], seed: int = 0) -> RatioEstimate:
    """Percentile bootstrap over the pairs: each pair's two forwards ran back to back, so load that drifts
    over the run cancels within a pair instead of favouring whichever variant ran at a quiet moment."""
    if not ratios:
        raise ValueError("no timed pairs")
    center = statistics.median(ratios)
    if len(ratios) < MIN_PAIRS:
        return RatioEstimate(center, min(ratios), max(ratios), False, len(ratios))
    rng = random.Random(seed)
    medians = sorted(statistics.median(rng.choices(ratios, k=len(ratios))) for _ in range(RESAMPLES))
    tail = (1 - CONFIDENCE) / 2
    low = medians[int(tail * RESAMPLES)]
    high = medians[min(RESAMPLES - 1, int((1 - tail) * RESAMPLES))]
    return RatioEstimate(center, low, high, not low <= 1.0 <= high, len(ratios))
