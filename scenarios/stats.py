"""Latency histograms (HdrHistogram): per cell, encoded into results, merged across rounds."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from hdrh.histogram import HdrHistogram

PERCENTILES = {"p50": 50.0, "p90": 90.0, "p99": 99.0, "p999": 99.9}
# the samples a percentile needs before it is more than the largest one: 1 / (1 - p)
SAMPLES_FOR = {"p50": 2, "p90": 10, "p99": 100, "p999": 1000}


def samples_needed(metric: str) -> int | None:
    """The samples the percentile a metric names needs ("latency_ms.p99": 100), or None
    for a metric that is no percentile."""
    return SAMPLES_FOR.get(metric.rsplit(".", 1)[-1])
HDR_LOW_US, HDR_HIGH_US, HDR_DIGITS = 1, 3_600_000_000, 3


def new_histogram() -> HdrHistogram:
    """Microsecond histogram from 1 us to 1 h at 3 significant digits."""
    return HdrHistogram(HDR_LOW_US, HDR_HIGH_US, HDR_DIGITS)


def histogram_of(durations_ns: Iterable[int]) -> HdrHistogram:
    hist = new_histogram()
    for value in durations_ns:
        hist.record_value(min(max(int(value) // 1000, HDR_LOW_US), HDR_HIGH_US))
    return hist


def percentiles_ms(hist: HdrHistogram) -> dict[str, float | None]:
    """p50/p90/p99/p999/max in milliseconds; None everywhere for an empty histogram."""
    if hist.get_total_count() == 0:
        return {**{k: None for k in PERCENTILES}, "max": None}
    out: dict[str, float | None] = {
        k: hist.get_value_at_percentile(p) / 1000.0 for k, p in PERCENTILES.items()
    }
    out["max"] = hist.get_max_value() / 1000.0
    return out


def encode(hist: HdrHistogram) -> str:
    return hist.encode().decode()


def merge_encoded(encoded: Sequence[str]) -> HdrHistogram:
    """One histogram from several encoded ones (rounds are merged, not averaged)."""
    merged = new_histogram()
    for text in encoded:
        merged.decode_and_add(text)
    return merged


def saturated(metrics: dict) -> bool:
    """Whether a latency cell's queue grew without bound (its latency is no figure)."""
    return metrics.get("saturated") in (True, "True")


def merged_round_percentiles(ok_cells: Sequence[dict]) -> dict[str, float | None]:
    """The percentiles of every round's histograms merged, as flat metric names:
    histogram `latency` gives `latency_ms.p50` ... `latency_ms.max`. Only when every
    ok round with a latency carries that histogram (core.results.aggregate stores them as
    `merged`); a round that saturated has no latency, so the others' are merged."""
    out: dict[str, float | None] = {}
    encoded_by_name: dict[str, list[str]] = {}
    kept = [c for c in ok_cells if not saturated(c.get("metrics") or {})]
    for cell in kept:
        for name, text in ((cell.get("metrics") or {}).get("hdr") or {}).items():
            encoded_by_name.setdefault(name, []).append(text)
    for name, encoded in encoded_by_name.items():
        if len(encoded) != len(kept) or not all(isinstance(e, str) and e for e in encoded):
            continue
        for key, value in percentiles_ms(merge_encoded(encoded)).items():
            out[f"{name}_ms.{key}"] = value
    return out
