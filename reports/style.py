"""Fixed colours per backend and number formatting shared by tables and charts."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from adapters import BACKENDS, BackendInfo

# A backend's colour is fixed in its backend.toml, so it is the same in every chart of
# every run. One that gives none takes the next of these in registry order, skipping the
# declared ones: tab10's last, tab20's light half and tab20b's darks, 21 distinct colours.
SPARE = ("#17becf", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94",
         "#f7b6d2", "#c7c7c7", "#dbdb8d", "#9edae5", "#393b79", "#637939", "#8c6d31",
         "#843c39", "#7b4173", "#5254a3", "#8ca252", "#bd9e39", "#ad494a", "#a55194")


def colours(backends: Mapping[str, BackendInfo]) -> dict[str, str]:
    """name -> colour: the declared one, else the next spare colour nobody declared."""
    declared = {info.colour for info in backends.values() if info.colour}
    spare = (c for c in SPARE if c not in declared)
    return {name: info.colour or next(spare, None) or by_name(name)
            for name, info in backends.items()}


def by_name(backend: str) -> str:
    """A colour for a backend the registry does not know (an older run's)."""
    return SPARE[sum(map(ord, backend)) % len(SPARE)]


COLOURS = colours(BACKENDS)


def backend_rank(name: str) -> tuple[int, str]:
    """Sort key: registry order first, unknown backends after, by name."""
    order = list(BACKENDS)
    return (order.index(name), "") if name in order else (len(order), name)


def colour(backend: str) -> str:
    return COLOURS.get(backend) or by_name(backend)


# A backend's profiles share its colour; the line tells them apart ("rq [reliable]").
PROFILE_LINES = {"reliable": "--", "tuned": ":"}


def line_style(series: str) -> str:
    """The line of a chart series: solid for a backend's default profile, dashed for
    reliable, dotted for tuned (the series label ends in "[profile]" when a backend ran
    several)."""
    profile = series.rsplit("[", 1)[1].rstrip("]") if series.endswith("]") else "default"
    return PROFILE_LINES.get(profile, "-")


def fmt_num(value: float | None, digits: int = 3) -> str:
    """About `digits` significant figures, thousands separated; never scientific."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if value == 0:
        return "0"
    magnitude = int(math.floor(math.log10(abs(value))))
    if magnitude >= digits:  # 102,730 -> 103,000: no digit finer than the figure's noise
        value = round(value, digits - 1 - magnitude)
    decimals = max(0, digits - 1 - magnitude)
    text = f"{value:,.{decimals}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def fmt_share(fraction: float) -> str:
    """A share as a percentage: whole percents from 10% up, two significant figures below,
    so a library at 0.36% of its ceiling does not read "0%" (nothing ran)."""
    if fraction >= 0.1 or fraction == 0:
        return f"{fraction:.0%}"
    return f"{fmt_num(fraction * 100, 2)}%"


def fmt_cpu_us(value: float) -> str:
    """CPU time in us: 540 -> '540 µs', 2680 -> '2.68 ms'."""
    return f"{fmt_num(value / 1000)} ms" if value >= 1000 else f"{fmt_num(value)} µs"


def fmt_bytes(value: float | None) -> str:
    """1024 -> '1 KiB', 1048576 -> '1 MiB', 300 -> '300 B'."""
    if value is None:
        return "n/a"
    for unit, size in (("MiB", 1024 ** 2), ("KiB", 1024)):
        if abs(value) >= size:
            return f"{fmt_num(value / size)} {unit}"
    return f"{fmt_num(value)} B"


def describe_params(params: Mapping[str, Any], hide: Iterable[str] = ("jobs", "duration_s"),
                    sep: str = " ") -> str:
    """A cell's params for people: "duration_ms=0 window_s=2", without `hide`, unset
    values (None, NaN) and trailing .0 on whole floats."""
    def shown(value: Any) -> str:
        return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)

    hidden = set(hide)
    return sep.join(f"{k}={shown(v)}" for k, v in params.items() if k not in hidden
                    and v is not None and not (isinstance(v, float) and math.isnan(v)))


def row_params(row: Mapping[str, Any]) -> dict[str, Any]:
    """The params of a report row (its "params.*" columns), by their own names."""
    return {k.removeprefix("params."): v for k, v in row.items()
            if isinstance(k, str) and k.startswith("params.")}
