"""Fixed colours per backend and number formatting shared by tables and charts."""

from __future__ import annotations

import math

from adapters import BACKENDS

# tab10, in registry order, so a backend has the same colour in every chart of every run.
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22", "#17becf")
EXTRA = ("#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173")
MISSING = "#bbbbbb"


def backend_rank(name: str) -> tuple[int, str]:
    """Sort key: registry order first, unknown backends after, by name."""
    order = list(BACKENDS)
    return (order.index(name), "") if name in order else (len(order), name)


def colour(backend: str) -> str:
    order = list(BACKENDS)
    if backend in order:
        return PALETTE[order.index(backend) % len(PALETTE)]
    return EXTRA[sum(map(ord, backend)) % len(EXTRA)]


def fmt_num(value: float | None, digits: int = 3) -> str:
    """About `digits` significant figures, thousands separated; never scientific."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if value == 0:
        return "0"
    decimals = max(0, digits - 1 - int(math.floor(math.log10(abs(value)))))
    text = f"{value:,.{decimals}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def fmt_bytes(value: float | None) -> str:
    """1024 -> '1 KiB', 1048576 -> '1 MiB', 300 -> '300 B'."""
    if value is None:
        return "n/a"
    for unit, size in (("MiB", 1024 ** 2), ("KiB", 1024)):
        if abs(value) >= size:
            return f"{fmt_num(value / size)} {unit}"
    return f"{fmt_num(value)} B"
