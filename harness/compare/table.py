"""summary.json -> per-round values of every numeric metric of every ok cell; a rate at
the machine's speed of its window (the speed meter), or a library's rates over its
broker's raw ceiling measured in the same run."""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import dataclass, field
from typing import Any

from adapters import BACKENDS
from core.numbers import flatten, flatten_all
from core.results import ResultsError

# Rates a broker ceiling also has: these are divided by the ceiling's figure.
NORMALISABLE = ("jobs_per_s", "enqueue_per_s")
# A rate and its figure with the machine's speed taken out (harness/speed).
AT_MACHINE_SPEED = {"jobs_per_s": "jobs_per_loop", "cpu_us_per_job": "cpu_loops_per_job"}
PER_LOOP = "per loop"  # the basis name of those rows
# a basis or the machine's: no row of their own
MACHINE_METRICS = ("jobs_per_loop", "cpu_loops_per_job", "probe_us")

Key = tuple[str, str, str, str]  # scenario, backend, profile, params (sorted JSON)
Table = dict[Key, dict[str, dict[int, float]]]  # key -> metric -> round -> value


@dataclass
class CaseState:
    """How one case's cells ended in a run, round by round."""

    statuses: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    unstable: int = 0  # ok rounds flagged unstable (a short window, or a CV above 10%)
    short: int = 0  # ok rounds whose counted window was shorter than asked
    producer_bound: int = 0  # ok rounds whose queue ran dry inside the window
    reused: int = 0  # ok rounds that are another case's cell, reused (`reused_from`)
    source: Key | None = None  # that other case
    written: set[str] = field(default_factory=set)  # metric names of its ok cells, null too

    @property
    def ok(self) -> int:
        return self.statuses.count("ok")


def canonical(params: dict[str, Any]) -> str:
    """Params as a key: sorted JSON, a whole float written as an int, so `--durations 0`
    (0.0) and the default durations (0) name the same case."""
    return json.dumps({k: int(v) if isinstance(v, float) and v.is_integer() else v
                       for k, v in params.items()}, sort_keys=True)


def key_of(cell: Any, index: int, source: str) -> Key:
    if not isinstance(cell, dict):
        raise ResultsError(f"{source}: cell {index} is not an object")
    try:
        if not isinstance(cell["params"], dict):
            raise TypeError("params is not an object")
        return (str(cell["scenario"]), str(cell["backend"]),
                str(cell.get("profile") or "default"), canonical(cell["params"]))
    except (KeyError, TypeError) as exc:
        raise ResultsError(f"{source}: cell {index} does not follow the schema "
                           f"(missing or bad {exc})") from None


def case_states(summary: dict[str, Any], source: str) -> dict[Key, CaseState]:
    """Every case of a run, ok or not, with its rounds' outcomes."""
    states: dict[Key, CaseState] = {}
    by_dir = {cell["cell_dir"]: key_of(cell, index, source)
              for index, cell in enumerate(summary["cells"])
              if isinstance(cell, dict) and cell.get("cell_dir")}
    for index, cell in enumerate(summary["cells"]):
        state = states.setdefault(key_of(cell, index, source), CaseState())
        reused_from = cell.get("reused_from")
        if cell.get("status") == "ok" and reused_from and reused_from in by_dir:
            state.reused += 1
            state.source = by_dir[reused_from]
        status = str(cell.get("status"))
        state.statuses.append(status)
        if status != "ok" and cell.get("reason"):
            state.reasons.append(str(cell["reason"]))
        metrics = cell.get("metrics")
        if status == "ok" and isinstance(metrics, dict):
            state.written.update(flatten_all(metrics))
            state.unstable += metrics.get("unstable") is True
            state.producer_bound += metrics.get("producer_bound") is True
            state.short += window_short(metrics, {**(cell.get("params") or {}),
                                                  **(cell.get("forced_params") or {})})
    return states


def window_short(metrics: dict[str, Any], params: Any) -> bool:
    wanted = params.get("window_s") if isinstance(params, dict) else None
    counted = metrics.get("window_s")
    return (isinstance(wanted, int | float) and isinstance(counted, int | float)
            and counted < wanted - 1e-3)


def per_round(summary: dict[str, Any], source: str) -> Table:
    """Per-round values of every numeric metric of every ok cell."""
    table: Table = {}
    for index, cell in enumerate(summary["cells"]):
        key = key_of(cell, index, source)
        if cell.get("status") != "ok":
            continue
        try:
            metrics = flatten(cell["metrics"])
        except (KeyError, TypeError, AttributeError) as exc:
            raise ResultsError(f"{source}: cell {index} does not follow the schema "
                               f"(missing or bad {exc})") from None
        rnd = cell.get("round")
        rnd = rnd if isinstance(rnd, int) and not isinstance(rnd, bool) else -1 - index
        for name, value in metrics.items():
            if math.isfinite(value):
                table.setdefault(key, {}).setdefault(name, {})[rnd] = value
    return table


def metric_names(summary: dict[str, Any]) -> set[str]:
    """Every metric name any cell of a run has, numeric or not (null included): what
    the harness that made the run writes."""
    return set().union(*(flatten_all(cell["metrics"]) for cell in summary["cells"]
                         if isinstance(cell, dict) and isinstance(cell.get("metrics"), dict)))


def label(key: Key) -> str:
    """throughput/celery-redis/duration_ms=10,slots=8,window_s=8.0 (profile in [] unless
    default)."""
    scenario, backend, profile, params = key
    backend += "" if profile == "default" else f"[{profile}]"
    parts = [f"{k}={'null' if v is None else v}" for k, v in json.loads(params).items()]
    return "/".join([scenario, backend] + ([",".join(parts)] if parts else []))


def ceiling_of(backend: str) -> str | None:
    info = BACKENDS.get(backend)
    return info.ceiling if info else None


def normalised(table: Table, key: Key, metric: str) -> tuple[list[float], bool] | None:
    """The library's values over its ceiling's in the same run: round by round when the
    ok rounds of both are the same, else over the ceiling's median. None without a ceiling."""
    ceiling = ceiling_of(key[1])
    if ceiling is None or metric not in NORMALISABLE:
        return None
    lib = table.get(key, {}).get(metric)
    ref_cell = (table.get((key[0], ceiling, key[2], key[3]))
                or table.get((key[0], ceiling, "default", key[3])) or {})
    ref = ref_cell.get(metric)
    if not lib or not ref:
        return None
    if set(lib) == set(ref) and all(v > 0 for v in ref.values()):
        return [lib[r] / ref[r] for r in sorted(lib)], True
    middle = statistics.median(ref.values())
    return ([v / middle for v in lib.values()], False) if middle > 0 else None


def per_loop(table: Table, key: Key, metric: str) -> list[float] | None:
    """`metric`'s rounds with the machine's speed taken out (jobs_per_loop for jobs_per_s,
    cpu_loops_per_job for cpu_us_per_job), in round order; None unless every round of it
    has that figure."""
    steady = AT_MACHINE_SPEED.get(metric)
    values = table.get(key, {})
    if steady is None or metric not in values or steady not in values:
        return None
    if set(values[steady]) != set(values[metric]):
        return None
    return [values[steady][r] for r in values[metric]]


def probe_of(summary: dict[str, Any]) -> tuple[Any, Any, Any] | None:
    """What a jobs_per_loop figure is measured with: the probe's loop and interval and
    the Python that ran it (a faster interpreter runs the loop faster); None for a run
    without the meter."""
    run = summary.get("run") if isinstance(summary.get("run"), dict) else {}
    probe = run.get("speed_probe")
    if not isinstance(probe, dict):
        return None
    return probe.get("loop_iterations"), probe.get("interval_s"), run.get("python")
