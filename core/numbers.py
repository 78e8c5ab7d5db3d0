"""Per-round number helpers shared by the results writer, reports and compare (stdlib)."""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Sequence
from typing import Any


def spread(values: Sequence[float]) -> dict[str, float | int | None]:
    """Median, min, max and count of per-round values (None-free)."""
    clean = [v for v in values if v is not None and not math.isnan(v)]
    if not clean:
        return {"median": None, "min": None, "max": None, "n": 0}
    return {"median": statistics.median(clean), "min": min(clean), "max": max(clean),
            "n": len(clean)}


def relative_spread(values: Sequence[float]) -> float | None:
    """(max - min) / median of the positive values: how far rounds disagree; None below
    two of them."""
    clean = [v for v in values if v is not None and not math.isnan(v) and v > 0]
    if len(clean) < 2:
        return None
    return (max(clean) - min(clean)) / statistics.median(clean)


def median_interval(values: Sequence[float], level: float = 0.95
                    ) -> tuple[float, float] | None:
    """A distribution-free interval for the median of `values` at `level` (order
    statistics: [x_k, x_(n+1-k)] for the largest k whose two binomial(n, 1/2) tails
    stay within 1 - level); None when too few values give one (fewer than 6 at 95%)."""
    ordered = sorted(values)
    n = len(ordered)
    below = 0.0  # P(B <= k - 1), B the count of values under the median
    k = 0
    while k < n // 2:
        below += math.comb(n, k) / 2 ** n
        if 2 * below > 1 - level:
            break
        k += 1
    return (ordered[k - 1], ordered[n - k]) if k else None


def flatten_all(metrics: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """As flatten, but every value: numbers as floats, flags and texts as they are, a
    list as JSON (summary.csv: a reader must see `unstable` beside the rate it marks)."""
    out: dict[str, Any] = {}
    for key, value in metrics.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten_all(value, f"{name}."))
        elif isinstance(value, int | float) and not isinstance(value, bool):
            out[name] = float(value)
        elif isinstance(value, list):
            out[name] = json.dumps(value, default=str)
        else:
            out[name] = value
    return out


def flatten(metrics: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """{'latency_ms': {'p50': 1}} -> {'latency_ms.p50': 1}; numbers only."""
    return {k: v for k, v in flatten_all(metrics, prefix).items() if isinstance(v, float)}
