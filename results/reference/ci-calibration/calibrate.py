"""How docs/ci.md's false-alarm rate and smallest detected drop were measured.

    .venv/bin/python results/reference/ci-calibration/calibrate.py \
        results/reference/ci-calibration [--threshold PCT]

Reads the A/A runs (aa/*.json: history entries of repeated quick runs of one commit,
compare reads them as summaries) and the injected runs (injected/*.json), and prints:
1. every A/A pair (each run against the next, and all pairs): what the default gate says;
2. the round-to-round noise of each gated row, absolute and normalised (log-ratio sd),
   and what each row can see (compare's `sees` column and the rounds a 25% drop needs);
   whether the ceiling's CPU per job in the same round would be a quieter basis for a
   library's than the probe loop (it was not, on ci-calibration-cpu);
3. per backend, the smallest drop that fires in every A/A pair when the current side's
   library figures are scaled down by it (real rounds, scaled: the ceilings stay);
4. the injected runs against every A/A run: the measured drop and the verdicts, twice:
   as the maintainer workflow compares (the backend's own rows, corrected over them),
   grafted into the A/A run that follows the baseline (the slowed backend's cells in
   place of its own there: corrected over every gated row, as a full-run gate sees it),
   and every injected backend grafted there at once (a run where every library slowed);
5. 1, 2 and 4 again with `compare --noise`: each comparison learns the round noise from
   the A/A runs it does not compare (leave out), as a gate learns it from main's history;
6. with --noise-from CALIBRATION..., 5 again with the noise learned from those other
   calibrations' A/A runs alone: out of sample, as main's history made on earlier days.
Every verdict uses compare's defaults but the threshold, which --threshold sets (the
default's, 10%, when absent): how the same runs read under another threshold.
collect.py (beside this script) makes the runs.
"""

from __future__ import annotations

import argparse
import copy
import itertools
import math
import statistics
from collections.abc import Callable
from pathlib import Path

from adapters import CEILINGS
from harness.baselines import read_summary
from harness.compare.judge import THRESHOLD, Comparison, basis_rounds, compare
from harness.compare.noise import NoiseModel, learn
from harness.compare.table import ceiling_of, label

DROPS = [d / 100 for d in range(10, 100, 10)]
threshold = THRESHOLD  # main sets it from --threshold


def gate(base: dict, cur: dict, **options: object) -> Comparison:
    """compare() at this script's threshold."""
    return compare(base, cur, threshold=threshold, **options)  # type: ignore[arg-type]


def verdicts(base: dict, cur: dict, noise: NoiseModel | None = None
             ) -> tuple[list[str], list[str]]:
    comparison = gate(base, cur, allow_missing=True, noise=noise)
    fired = [f"{r.name} {r.verdict} {(r.ratio - 1) * 100:+.1f}%" for r in comparison.rows
             if r.gated and r.verdict != "no significant change"]
    return fired, [f"{s.name}: {s.reason}" for s in comparison.problems]


def scaled(summary: dict, backend: str, factor: float) -> dict:
    """`backend` made slower by `factor` at the same machine speed (both of its rates)."""
    out = copy.deepcopy(summary)
    for cell in out["cells"]:
        if cell["backend"] == backend and cell["status"] == "ok":
            for name in ("jobs_per_s", "jobs_per_loop"):
                if name in cell["metrics"]:
                    cell["metrics"][name] *= factor
    return out


THROUGHPUT_ROW = ("jobs_per_s",)
# the gated rows of a noop case: its rate, and (runs since the CPU reading) its CPU per job
NOOP_ROWS = ("jobs_per_s", "cpu_us_per_job")


def noop_slower(rows: list, backend: str, metrics: tuple[str, ...] = NOOP_ROWS) -> bool:
    """Whether compare called one of `backend`'s gated noop rows (of `metrics`) slower."""
    return any(r.gated and r.key[1] == backend and r.key[3].startswith('{"duration_ms": 0')
               and r.metric in metrics and r.verdict == "slower" for r in rows)


def fires_for(base: dict, cur: dict, backend: str, drop: float, absolute: bool,
              noise: NoiseModel | None = None, metrics: tuple[str, ...] = NOOP_ROWS) -> bool:
    """Whether a gated noop row of `backend` is called slower once the current run's
    jobs/s are scaled down by `drop` (only the rates: the scaled pairs test those rows)."""
    if drop:
        metrics = THROUGHPUT_ROW
    rows = gate(base, scaled(cur, backend, 1 - drop), allow_missing=True,
                absolute=absolute, noise=noise).rows
    return noop_slower(rows, backend, metrics)


def noop_cpu_by_round(summary: dict) -> dict[str, dict[int, dict]]:
    """backend -> round -> the metrics of its ok noop cell."""
    found: dict[str, dict[int, dict]] = {}
    for cell in summary["cells"]:
        if cell["status"] == "ok" and cell["params"]["duration_ms"] == 0:
            found.setdefault(cell["backend"], {})[cell["round"]] = cell["metrics"]
    return found


def cpu_over_ceiling(aa: list[dict]) -> None:
    """Would the ceiling's CPU per job in the same round take out what moves a library's?
    The sd of each noop row's log CPU per job over its rounds, per loop (what the gate
    judges) and over its ceiling's CPU per job in the same round (asyncio has none)."""
    print("== noop CPU per job: sd of its log over the rounds of one run, per probe loop "
          "and over the same round's ceiling (a basis the gate does not use)")
    lower = total = 0
    medians: dict[str, list[tuple[float, float]]] = {}  # per run: (per loop, over ceiling)
    for n, summary in enumerate(aa, 1):
        cells = noop_cpu_by_round(summary)
        for backend, rounds in sorted(cells.items()):
            ceiling = cells.get(ceiling_of(backend) or "", {})
            both = [r for r in sorted(rounds) if r in ceiling and all(
                m.get(name) for m in (rounds[r], ceiling[r])
                for name in ("cpu_loops_per_job", "cpu_us_per_job"))]
            if len(both) < 2:
                continue
            own = statistics.stdev(math.log(rounds[r]["cpu_loops_per_job"]) for r in both)
            over = statistics.stdev(math.log(rounds[r]["cpu_us_per_job"]
                                             / ceiling[r]["cpu_us_per_job"]) for r in both)
            lower, total = lower + (own < over), total + 1
            print(f"  a{n} {backend:20} per loop {own:.3f}  over the ceiling {over:.3f}")
            medians.setdefault(backend, []).append((
                statistics.median(rounds[r]["cpu_loops_per_job"] for r in both),
                statistics.median(rounds[r]["cpu_us_per_job"] / ceiling[r]["cpu_us_per_job"]
                                  for r in both)))
    print(f"  per loop the quieter in {lower} of {total}")
    print("  between runs: sd of the log of each run's median")
    for backend, values in sorted(medians.items()):
        if len(values) > 1:
            own, over = (statistics.stdev(math.log(v[k]) for v in values) for k in (0, 1))
            print(f"    {backend:20} per loop {own:.3f}  over the ceiling {over:.3f}")


def as_current(summary: dict) -> dict:
    """The summary as the harness now writes it: runs made at 380a5e6 (the first speed
    meter) gave sleeping-job cells a jobs_per_loop too, which the meter no longer does
    (a sleeping job's rate is set by the clock, harness/speed.py)."""
    for cell in summary["cells"]:
        if (cell.get("params") or {}).get("duration_ms", 0) > 0:
            (cell.get("metrics") or {}).pop("jobs_per_loop", None)
    return summary


def main(folder: Path, noise_from: list[Path]) -> None:
    aa = [as_current(read_summary(p)) for p in sorted((folder / "aa").glob("*.json"))]
    pairs = list(itertools.combinations(range(len(aa)), 2))
    print(f"== {len(aa)} A/A runs, {len(pairs)} pairs")
    alarms = problems = 0
    for i, j in pairs:
        fired, lost = verdicts(aa[i], aa[j])
        alarms += bool(fired)
        problems += bool(lost)
        tag = "consecutive" if j == i + 1 else "other"
        print(f"a{i + 1} vs a{j + 1} ({tag}): {len(fired)} row(s) fired, {len(lost)} case(s) "
              f"lost" + "".join(f"\n    {line}" for line in fired + lost))
    print(f"pairs with a called change: {alarms}/{len(pairs)}; with a lost case: "
          f"{problems}/{len(pairs)}")

    print("== round noise: sd of log jobs/s over the rounds of one run (median over runs), "
          "absolute and on the gated basis (per loop where the runs have the speed meter)")
    for key, metric in [(r.key, r.metric) for r in
                               gate(aa[0], aa[0], absolute=True).rows
                               if r.metric in NOOP_ROWS]:
        noise = {}
        for absolute in (True, False):
            sds = [statistics.stdev(math.log(v) for v in row.base)
                   for summary in aa for row in gate(summary, summary, absolute=absolute,
                                                     allow_missing=True).rows
                   if row.key == key and row.metric == metric and len(row.base) > 1
                   and min(row.base) > 0]
            noise[absolute] = statistics.median(sds) if sds else math.nan
        print(f"  {label(key):62} {metric:14} absolute {noise[True]:.3f}  gated basis "
              f"{noise[False]:.3f}")

    cpu_over_ceiling(aa)

    print("== what each gated row can see (compare's 'sees' column): the smallest drop it "
          "could call, median over the A/A pairs, and the rounds per side a 25% drop needs "
          "at that noise (median), in a full run (a lone change: alpha / every gated row)")
    seen: dict[str, list] = {}
    for i, j in pairs:
        for row in gate(aa[i], aa[j], allow_missing=True).rows:
            if row.gated and row.metric in NOOP_ROWS and row.sees is not None:
                seen.setdefault(f"{label(row.key)} {row.metric}", []).append(
                    (row.sees, row.rounds_needed or 10 ** 6))
    for name, values in sorted(seen.items()):
        sees = statistics.median(v[0] for v in values)
        need = statistics.median(v[1] for v in values)
        print(f"  {name:77} sees -{sees:.0%}  25% needs "
              f"{'> 50' if need >= 10 ** 6 else round(need)} rounds a side")

    print("== noop jobs/s of one backend scaled down in the current run of every A/A pair: "
          "the smallest drop that fires in every pair, and the share of pairs that fire "
          "at 25% and 50%")
    backends = sorted({c["backend"] for c in aa[0]["cells"]} - CEILINGS)
    for absolute in (False, True):
        print(f"  basis: {'absolute (--absolute)' if absolute else 'default (normalised)'}")
        for backend in backends:
            share = {d: sum(fires_for(aa[i], aa[j], backend, d, absolute) for i, j in pairs)
                     for d in DROPS}
            every = next((d for d in DROPS if share[d] == len(pairs)), None)
            at = {d: sum(fires_for(aa[i], aa[j], backend, d, absolute) for i, j in pairs)
                  for d in (0.25,)}
            print(f"    {backend:20} every pair from {f'{every:.0%}' if every else '> 90%'}; "
                  f"fires at 25%: {at[0.25]}/{len(pairs)}, at 50%: {share[0.5]}/{len(pairs)}")

    injected = sorted(p for p in (folder / "injected").glob("*.json") if p.stem != "delays")
    if injected:
        print("== injected slowdowns (injected/<backend>.json, delays in delays.json) against "
              "each A/A run: measured drop of noop jobs/s (median of rounds against the "
              "median of the A/A runs' medians), and how many of the A/A runs as baseline "
              "call it slower")
    for path in injected:
        slowed = as_current(read_summary(path))
        backend = path.stem
        drop = noop_median(slowed, backend) / statistics.median(
            noop_median(s, backend) for s in aa) - 1
        steady = [noop_median(s, backend, "jobs_per_loop") for s in (slowed, *aa)]
        steady_drop = (f" (per loop {steady[0] / statistics.median(steady[1:]) - 1:+.0%})"
                       if None not in steady else "")
        cpu = [noop_median(s, backend, "cpu_us_per_job") for s in (slowed, *aa)]
        cpu_rise = (f", CPU per job {cpu[0] / statistics.median(cpu[1:]) - 1:+.0%}"
                    if None not in cpu else "")
        print(f"  {backend:20} {drop:+.0%}{steady_drop}{cpu_rise}")
        for rows_judged in (THROUGHPUT_ROW, ("cpu_us_per_job",), NOOP_ROWS):
            alone = sum(fires_for(base, slowed, backend, 0.0, False, metrics=rows_judged)
                        for base in aa)
            full = [fires_for(base, grafted(aa[(i + 1) % len(aa)], slowed, backend), backend,
                              0.0, False, metrics=rows_judged) for i, base in enumerate(aa)]
            print(f"    {' or '.join(rows_judged):28} called slower by {alone}/{len(aa)} "
                  f"alone, {sum(full)}/{len(aa)} in a full run")
    if injected:
        all_slowed(aa, {p.stem: as_current(read_summary(p)) for p in injected})
    with_noise(folder, aa, pairs)
    if noise_from:
        with_noise(folder, aa, pairs, from_other_runs(noise_from),
                   "the A/A runs of " + ", ".join(str(f) for f in noise_from)
                   + " (out of sample, as main's earlier history)")


def all_slowed_counts(aa: list[dict], slowed: dict[str, dict]
                      ) -> tuple[dict[str, int], list[int], int]:
    """Every injected backend grafted at once into the A/A run after the baseline: a run
    in which every library is slowed, as `run --inject-delay-us` with each library's
    delay would be. Per backend, against how many A/A runs its noop row is called
    slower; per baseline, how many backends are; and against how many the gate fails."""
    called = dict.fromkeys(slowed, 0)
    named, gate_failed = [], 0
    for i, base in enumerate(aa):
        current = aa[(i + 1) % len(aa)]
        for backend, run in slowed.items():
            current = grafted(current, run, backend)
        rows = gate(base, current, allow_missing=True).rows
        gate_failed += any(r.regressed for r in rows)
        hits = [backend for backend in slowed if noop_slower(rows, backend)]
        named.append(len(hits))
        for backend in hits:
            called[backend] += 1
    return called, named, gate_failed


def all_slowed(aa: list[dict], slowed: dict[str, dict]) -> None:
    print("== every injected backend grafted at once into the A/A run that follows the "
          "baseline: noop row called slower, against each A/A run")
    called, named, gate_failed = all_slowed_counts(aa, slowed)
    for backend, count in called.items():
        print(f"  {backend:20} {count}/{len(aa)}")
    print(f"  backends named per baseline: {named}; the gate failed against "
          f"{gate_failed}/{len(aa)} baselines")


def learned_without(aa: list[dict], *left_out: int) -> NoiseModel:
    """The noise model of the A/A runs other than `left_out` (compare --noise)."""
    return learn([s for n, s in enumerate(aa) if n not in left_out], basis_rounds)


def with_noise(folder: Path, aa: list[dict], pairs: list[tuple[int, int]],
               learned: Callable[..., NoiseModel] | None = None, source: str = "") -> None:
    """5: every A/A pair and injected run judged with a noise model: by default learned
    from the A/A runs the comparison does not use; `learned(*left_out)` gives another
    (e.g. the runs of an earlier calibration, `source` names them)."""
    if learned is None:
        def learned(*left_out: int) -> NoiseModel:
            return learned_without(aa, *left_out)
        source = "the A/A runs a comparison does not use"
    print(f"== with a noise model (compare --noise), learned from {source}")
    alarms = 0
    seen: dict[str, list[float]] = {}
    for i, j in pairs:
        noise = learned(i, j)
        fired, _ = verdicts(aa[i], aa[j], noise)
        alarms += bool(fired)
        print(f"  a{i + 1} vs a{j + 1}: {len(fired)} row(s) fired"
              + "".join(f"\n    {line}" for line in fired))
        for row in gate(aa[i], aa[j], allow_missing=True, noise=noise).rows:
            if row.gated and row.metric == "jobs_per_s" and row.sees is not None:
                seen.setdefault(label(row.key), []).append(row.sees)
    print(f"  pairs with a called change: {alarms}/{len(pairs)}")
    print("  what each gated row sees (median over the pairs, alpha / every gated row):")
    for name, values in sorted(seen.items()):
        print(f"    {name:62} sees -{statistics.median(values):.0%}")
    print("  injected slowdowns: called slower alone / in a full run, against each A/A run")
    for path in sorted(p for p in (folder / "injected").glob("*.json") if p.stem != "delays"):
        slowed, backend = as_current(read_summary(path)), path.stem
        alone = sum(fires_for(base, slowed, backend, 0.0, False, learned(i))
                    for i, base in enumerate(aa))
        host = [(i + 1) % len(aa) for i in range(len(aa))]
        full = sum(fires_for(base, grafted(aa[host[i]], slowed, backend), backend, 0.0, False,
                             learned(i, host[i]))
                   for i, base in enumerate(aa))
        print(f"    {backend:20} {alone}/{len(aa)} alone, {full}/{len(aa)} in a full run")


def from_other_runs(folders: list[Path]) -> Callable[..., NoiseModel]:
    """A noise model learned from the A/A runs of other calibrations alone (what a gate
    whose history was made earlier lends a comparison: out of sample)."""
    model = learn([as_current(read_summary(p)) for folder in folders
                   for p in sorted((folder / "aa").glob("*.json"))], basis_rounds)
    return lambda *left_out: model


def grafted(full: dict, slowed: dict, backend: str) -> dict:
    """`full` with `backend`'s cells replaced by those of the slowed run."""
    out = copy.deepcopy(full)
    out["cells"] = [c for c in out["cells"] if c["backend"] != backend] + [
        copy.deepcopy(c) for c in slowed["cells"] if c["backend"] == backend]
    return out


def noop_median(summary: dict, backend: str, metric: str = "jobs_per_s") -> float | None:
    """Median of the backend's noop `metric` over its ok rounds; None if one lacks it."""
    values = [c["metrics"].get(metric) for c in summary["cells"]
              if c["backend"] == backend and c["status"] == "ok"
              and c["params"]["duration_ms"] == 0]
    return None if None in values or not values else statistics.median(values)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--threshold", type=float, metavar="PCT", default=THRESHOLD * 100)
    parser.add_argument("--noise-from", type=Path, nargs="+", metavar="CALIBRATION",
                        default=[], help="also judge with the noise of these calibrations' "
                                         "A/A runs alone (section 6)")
    args = parser.parse_args()
    threshold = args.threshold / 100
    main(args.folder, args.noise_from)
