"""Every figure quoted in docs/ comes from a committed results file, through here.

A doc holds generated blocks between two markers:

    <!-- figures: BLOCK from results/reference/RUN -->
    ...generated markdown...
    <!-- end of figures: BLOCK -->

`python -m harness docs-figures` rewrites every block from the summary.json
(or selftest.json) of the named results folder; `--check` only says which
block is out of date (a test runs it). A block names its source itself, so
a reader can open the run behind each number.
"""

from __future__ import annotations

import json
import re
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

from adapters import BACKENDS
from core.numbers import relative_spread, spread
from core.results import seconds_by_step
from core.words import counted
from harness.ceiling_check import drain_orders
from harness.selftest import headroom_verdict
from reports.data import load as load_run
from reports.observer import interval_text
from reports.runtime import run_time
from reports.style import backend_rank
from scenarios.common import MAX_STABLE_CV
from scenarios.latency import KEEP_UP, MAX_WAIT_GROWTH, saturation_backlog

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
BLOCK = re.compile(r"(<!-- figures: (?P<name>[\w-]+) from (?P<source>\S+) -->\n)"
                   r"(?P<body>.*?)"
                   r"(<!-- end of figures: (?P=name) -->)", re.S)


class FiguresError(ValueError):
    """A block that cannot be generated; the message names the doc and the block."""


def _cells(source: Path) -> list[dict[str, Any]]:
    return json.loads((source / "summary.json").read_text())["cells"]


def _num(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}"


def _join(values: list[str]) -> str:
    """Rounds that agree show once; others show each round, separated by ' / '."""
    return values[0] if len(set(values)) == 1 else " / ".join(values)


def throughput_table(source: Path) -> str:
    """Steady-state jobs/s per backend and job duration: median (min-max) over rounds,
    with the largest per-second CV of the rounds."""
    cells = [c for c in _cells(source) if c["scenario"] == "throughput"]
    durations = sorted({c["params"]["duration_ms"] for c in cells})
    rows: dict[tuple[str, str], dict[float, list[dict[str, Any]]]] = {}
    for cell in cells:  # a profile other than default is a row of its own
        key = (cell["backend"], cell.get("profile") or "default")
        rows.setdefault(key, {}).setdefault(cell["params"]["duration_ms"], []).append(cell)
    head = "| backend | " + " | ".join(f"{d:g} ms jobs/s (rounds' min-max, worst CV)"
                                       for d in durations) + " |"
    lines = [head, "|" + " --- |" * (len(durations) + 1)]
    for backend, profile in sorted(rows, key=lambda key: (backend_rank(key[0]), key[1] != "default",
                                                          key[1])):
        entries = []
        for duration in durations:
            mine = rows[backend, profile].get(duration, [])
            ok = [c["metrics"] for c in mine if c["status"] == "ok"]
            if not ok:
                reason = next((c.get("reason") for c in mine if c.get("reason")), "not run")
                entries.append(f"failed: {reason}"[:60])
                continue
            rate = spread([m["jobs_per_s"] for m in ok])
            cvs = [m.get("stability_cv") for m in ok if m.get("stability_cv") is not None]
            entries.append(f"{_num(rate['median'])} ({_num(rate['min'])}-{_num(rate['max'])}"
                           f"{f', {max(cvs):.0%}' if cvs else ''})")
        name = backend if profile == "default" else f"{backend} ({profile})"
        lines.append(f"| {name} | " + " | ".join(entries) + " |")
    return "\n".join(lines)


def machine_speed_table(source: Path) -> str:
    """Per backend, noop throughput's rounds: the probe loop's cost in each window, and
    the round spread of jobs/s against that of jobs_per_loop (the machine's speed out)."""
    cells = [c for c in _cells(source) if c["scenario"] == "throughput"
             and c["params"]["duration_ms"] == 0 and c["status"] == "ok"
             and c["metrics"].get("jobs_per_loop") is not None]
    lines = ["| backend | probe loop per round (us) | jobs/s spread | jobs_per_loop spread |",
             "| --- | --- | --- | --- |"]
    for backend in sorted({c["backend"] for c in cells}, key=backend_rank):
        mine = sorted((c for c in cells if c["backend"] == backend), key=lambda c: c["round"])
        if len(mine) < 2:
            continue
        probes = " / ".join(_num(c["metrics"]["probe_us"]) for c in mine)
        raw = relative_spread([c["metrics"]["jobs_per_s"] for c in mine])
        steady = relative_spread([c["metrics"]["jobs_per_loop"] for c in mine])
        lines.append(f"| {backend} | {probes} | {raw:.0%} | {steady:.0%} |")
    return "\n".join(lines + ["", speed_fit(cells)])


def window_start_table(source: Path) -> str:
    """Per backend, noop throughput's rounds: jobs/s, the window's first second against
    the median of its seconds (below 100%: the workers were still ramping up when it
    opened), the per-second CV and, where the run has it, the ramp waited before the
    window; then the round spread of jobs/s."""
    cells = [c for c in _cells(source) if c["scenario"] == "throughput"
             and c["params"]["duration_ms"] == 0 and c["status"] == "ok"]
    lines = ["| backend | jobs/s per round | first second / median second | per-second CV "
             "| ramp (s) | round spread |", "|" + " --- |" * 6]
    within = 0
    for backend in sorted({c["backend"] for c in cells}, key=backend_rank):
        mine = [c["metrics"] for c in sorted((c for c in cells if c["backend"] == backend),
                                             key=lambda c: c["round"])]
        firsts = [m["per_second"][0] / statistics.median(m["per_second"])
                  for m in mine if m.get("per_second") and statistics.median(m["per_second"])]
        ramps = [m.get("ramp_s") for m in mine]
        gap = relative_spread([m["jobs_per_s"] for m in mine])
        within += gap is not None and gap <= MAX_STABLE_CV
        rates = " / ".join(_num(m["jobs_per_s"]) for m in mine)
        shares = " / ".join(f"{share:.0%}" for share in firsts)
        cvs = " / ".join("-" if m.get("stability_cv") is None else f"{m['stability_cv']:.0%}"
                         for m in mine)
        waited = (" / ".join(_num(r, 1) for r in ramps) if any(r is not None for r in ramps)
                  else "- (0.2 fixed)")
        lines.append(f"| {backend} | {rates} | {shares} | {cvs} | {waited} "
                     f"| {'-' if gap is None else f'{gap:.0%}'} |")
    backends = len({c["backend"] for c in cells})
    return "\n".join(lines + ["", f"The noop rounds of {within} of the {backends} backends "
                                   f"spread by at most {MAX_STABLE_CV:.0%} (max - min) / median."])


def speed_fit(cells: list[dict[str, Any]]) -> str:
    """How far jobs/s follows the probe over these cells, each backend's own mean taken
    out of both logs: the least-squares slope (jobs_per_loop assumes -1), the
    correlation, and the share of jobs/s's variance left in jobs_per_loop."""
    import numpy as np

    rate, probe, steady = [], [], []
    for backend in {c["backend"] for c in cells}:
        mine = [c["metrics"] for c in cells if c["backend"] == backend]
        for values, name in ((rate, "jobs_per_s"), (probe, "probe_us"),
                             (steady, "jobs_per_loop")):
            logs = np.log([m[name] for m in mine])
            values.extend(logs - logs.mean())
    x, y = np.array(probe), np.array(rate)
    slope = float((x * y).sum() / (x * x).sum())
    left = float(np.square(steady).sum() / np.square(y).sum())
    return (f"Over these {len(cells)} windows, each backend's own mean taken out: log jobs/s "
            f"moves with log probe_us at a slope of {slope:.1f} (correlation "
            f"{np.corrcoef(x, y)[0, 1]:.2f}; `jobs_per_loop` assumes -1), and "
            f"`jobs_per_loop` keeps {left:.0%} of the round-to-round variance of log jobs/s.")


def crash_table(fault: str) -> Callable[[Path], str]:
    """lost / late / ran twice / last job done after the kill, per backend (and
    persistence), with the slots before and after (worker faults)."""

    def render(source: Path) -> str:
        cells = [c for c in _cells(source)
                 if c["scenario"] == "crash-recovery" and c["params"].get("fault") == fault]
        groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
        for cell in cells:
            key = (cell["backend"], cell["params"].get("mode") or cell.get("profile") or "",
                   cell["params"].get("persistence") or "")
            groups.setdefault(key, []).append(cell)
        lines = ["| backend | profile | persistence | lost | late | ran twice | "
                 "last job done after kill | slots before / after |",
                 "| --- | --- | --- | --- | --- | --- | --- | --- |"]
        for (backend, mode, persistence), mine in sorted(
                groups.items(), key=lambda item: (backend_rank(item[0][0]), item[0][1:])):
            ok = [c["metrics"] for c in mine if c["status"] == "ok"]
            if not ok:
                reason = next((c.get("reason") for c in mine if c.get("reason")), "")
                lines.append(f"| {backend} | {mode} | {persistence or '-'} | "
                             f"{mine[0]['status']}: {reason[:60]} | | | | |")
                continue
            lost = _join([f"{m['lost']} of {m['jobs']}" for m in ok])
            late = _join([str(m.get("late", 0)) for m in ok])
            twice = _join([str(m["duplicated"]) for m in ok])
            slots = _join([f"{(m.get('capacity') or {}).get('before')} / "
                           f"{(m.get('capacity') or {}).get('after')}" for m in ok])
            last = _join([f"{m['recovery_s']['last']:.1f} s"
                          if (m.get("recovery_s") or {}).get("last") is not None else "never"
                          for m in ok])
            lines.append(f"| {backend} | {mode} | {persistence or '-'} | {lost} | {late} | "
                         f"{twice} | {last} | {slots} |")
        return "\n".join(lines)

    return render


def selftest_table(source: Path) -> str:
    """Observer effect per backend and each ceiling against its bare loop."""
    report = json.loads((source / "selftest.json").read_text())
    lines = ["| backend | instrumented jobs/s | bare jobs/s | observer effect | 95% CI of the "
             "median | groups (range) | goal |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for backend, row in sorted(report["observer"]["backends"].items(),
                               key=lambda item: backend_rank(item[0])):
        if row["status"] != "ok":
            lines.append(f"| {backend} | {row['status']}: {row.get('reason', '')[:60]} | | | | "
                         "| |")
            continue
        low, high = row.get("effect_range") or (None, None)
        groups = (f"{row['groups']} ({low:+.1%} to {high:+.1%})" if low is not None
                  else "drains timed one after the other")
        ci = interval_text(row) or "-"
        lines.append(f"| {backend} | {_num(spread(row['instrumented_per_s'])['median'])} | "
                     f"{_num(spread(row['bare_per_s'])['median'])} | {row['effect']:+.1%} | "
                     f"{ci} | {groups} | <= {row['limit']:.0%}"
                     f"{'' if row['passed'] else ' (not met)'} |")
    lines += ["", "| ceiling | processes (sweep) | ceiling, bare mode | bare client loop | "
              "ratio (pairs) | per probe loop | goal | bare loop exec'd (x forked) | "
              "ceiling / exec'd loop | consumer CPU per job: ceiling, forked loop |",
              "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for row in report.get("ceilings", {}).values():
        sweep = ", ".join(f"{n}: {_num(r)}" for n, r in row.get("sweep", {}).items())
        if row["status"] != "ok":
            lines.append(f"| {row['backend']} | {sweep} | {row['status']}: "
                         f"{row.get('reason', '')[:60]} | | | | | | | |")
            continue
        steady = row.get("ratio_per_loop")  # a self-test run with the speed meter
        lines.append(f"| {row['backend']} | {row['processes']} ({sweep}) | "
                     f"{_num(spread(row['ceiling_bare_mode_per_s'])['median'])} | "
                     f"{_num(spread(row['bare_loop_per_s'])['median'])} | {row['ratio']:.3f}x"
                     f"{pairs_of(row)} | "
                     f"{'-' if steady is None else f'{steady:.3f}x'} | "
                     f">= {row['goal']:.1f}x{'' if row['passed'] else ' (not met)'} | "
                     f"{start_method_split(row)} | {consumer_cpu(row)} |")
    return "\n".join(lines)


def consumer_cpu(row: dict[str, Any]) -> str:
    """"20.8 / 19.3 us (0.92x)": the median CPU per job of the ceiling's consumers and of
    the forked loop's, and the paired ratio (forked / ceiling); a dash for self-tests
    from before it was read."""
    if row.get("cpu_ratio") is None:
        return "-"
    cpu = row["cpu_us_per_job"]
    return (f"{statistics.median(cpu['ceiling']):.1f} / {statistics.median(cpu['bare']):.1f} "
            f"us ({row['cpu_ratio']:.2f}x)")


def ceiling_drains_table(source: Path) -> str:
    """Every drain of the ceiling check, in the order it ran: jobs/s and the consumers'
    CPU per job, so a reader sees which drains ran slow and whether their consumers'
    own cost changed with them."""
    report = json.loads((source / "selftest.json").read_text())
    lines = ["| ceiling | round | drain | jobs/s | consumer CPU per job (us) |",
             "| --- | --- | --- | --- | --- |"]
    names = {"ceiling": "ceiling (bare mode)", "bare": "forked loop", "bare_exec": "exec'd loop"}
    for row in report.get("ceilings", {}).values():
        if row["status"] != "ok" or row.get("cpu_ratio") is None:
            continue
        rates = {"ceiling": row["ceiling_bare_mode_per_s"], "bare": row["bare_loop_per_s"],
                 "bare_exec": row["bare_exec_loop_per_s"]}
        for round_no, order in enumerate(drain_orders(len(rates["ceiling"]))):
            for side in order:
                lines.append(f"| {row['backend']} | {round_no + 1} | {names[side]} | "
                             f"{_num(rates[side][round_no])} | "
                             f"{row['cpu_us_per_job'][side][round_no]:.1f} |")
    return "\n".join(lines)


def headroom_table(source: Path) -> str:
    """Per backend the self-test drove: its noop drain, the producer's send rates into the
    same broker with no worker running, and the best of them over the drain (the tightest
    broker-backed backend is the one judged)."""
    report = json.loads((source / "selftest.json").read_text())
    rows = report["backends"]
    counts = sorted({n for row in rows.values() for n in row.get("send_per_s", {})}, key=int)
    lines = ["| backend | noop drain (jobs/s) | "
             + " | ".join(f"{n} producer{'s' if int(n) > 1 else ''} (jobs/s)" for n in counts)
             + " | best send / drain |", "| --- " * (len(counts) + 3) + "|"]
    tightest = headroom_verdict(rows)["tightest_backend"]
    for backend, row in sorted(rows.items(), key=lambda item: backend_rank(item[0])):
        if row["status"] != "ok":
            lines.append(f"| {backend} | {row['status']}: {row.get('reason', '')[:60]} |"
                         + " |" * (len(counts) + 1))
            continue
        sends = row["send_per_s"]
        ratio = max(sends.values()) / row["jobs_per_s"]
        mark = " (judged: the tightest)" if backend == tightest else ""
        lines.append(f"| {backend} | {_num(row['jobs_per_s'])} | "
                     + " | ".join(_num(sends.get(n)) for n in counts)
                     + f" | {ratio:.2f}x{mark} |")
    return "\n".join(lines)


def start_method_split(row: dict[str, Any]) -> str:
    """The exec'd bare loop's columns: its rate (its ratio to the forked loop) and the
    ceiling's ratio to it; dashes for self-tests from before it was timed."""
    if not row.get("bare_exec_loop_per_s"):
        return "- | -"
    return (f"{_num(spread(row['bare_exec_loop_per_s'])['median'])} "
            f"({row['exec_over_fork']:.3f}x) | {row['ratio_to_exec']:.3f}x")


def pairs_of(row: dict[str, Any]) -> str:
    """ " (0.66, 0.77, 0.91)": the ratio of each adjacent pair of drains, when the self-test
    judged on them (harness/ceiling_check.py); older self-tests judged medians."""
    pairs = row.get("pair_ratios")
    return f" ({', '.join(f'{r:.2f}' for r in pairs)})" if pairs else ""


def drain_speeds_table(source: Path) -> str:
    """The drains of results/reference/*-amqp-drain-speeds (drain_speeds.py there): each
    drain's rate and the CPU per message of its consumers and of the broker."""
    study = json.loads((source / "drains.json").read_text())
    lines = ["| drain | prefetch per consumer | jobs/s | consumers' CPU per message (us) | "
             "broker's CPU per message (us) |", "| --- | --- | --- | --- | --- |"]
    for row in study["drains"]:
        lines.append(f"| {row['drain']} | {row['prefetch']} | {_num(row['jobs_per_s'])} | "
                     f"{row['consumer_cpu_us_per_job']:.1f} | "
                     f"{row['broker_cpu_us_per_job']:.1f} |")
    return "\n".join(lines)


def crash_summary(source: Path) -> str:
    """One row per backend: lost / late / ran twice of the jobs, per fault and profile
    (broker-kill: its most durable persistence)."""
    columns = [("job-process-kill", "default"), ("job-process-kill", "reliable"),
               ("node-kill", "default"), ("node-kill", "reliable"), ("broker-kill", "reliable")]
    found: dict[str, dict[tuple[str, str], list[dict[str, Any]]]] = {}
    for cell in _cells(source):
        if cell["scenario"] != "crash-recovery":
            continue
        params = cell["params"]
        if params["fault"] == "broker-kill" and params.get("persistence") in ("off", "transient"):
            continue
        key = (params["fault"], params.get("mode") or cell.get("profile") or "")
        found.setdefault(cell["backend"], {}).setdefault(key, []).append(cell)
    lines = ["| backend | " + " | ".join(f"{fault}, {mode}" for fault, mode in columns) + " |",
             "| --- |" + " --- |" * len(columns)]
    for backend in sorted(found, key=backend_rank):
        entries = []
        for key in columns:
            mine = found[backend].get(key, [])
            ok = [c["metrics"] for c in mine if c["status"] == "ok"]
            if not mine:
                same = key[0] == "node-kill" and BACKENDS[backend].crash.node_is_job_process
                entries.append("= job-process-kill" if same else "not run")
            elif not ok:
                entries.append(mine[0]["status"])
            else:
                entries.append(_join([f"{m['lost']} / {m.get('late', 0)} / {m['duplicated']}"
                                      for m in ok]))
        lines.append(f"| {backend} | " + " | ".join(entries) + " |")
    return "\n".join(lines)


def memory_table(source: Path) -> str:
    """Queue bytes per queued job per backend and payload size, at the deepest job count
    of the run, with MB per 100,000 jobs (the seed claim) and the zero-job control."""
    cells = [c for c in _cells(source)
             if c["scenario"] == "memory" and not c["params"].get("control")]
    sizes = sorted({c["params"]["payload_bytes"] for c in cells})
    deepest = {size: max(c["params"]["jobs"] for c in cells
                         if c["params"]["payload_bytes"] == size) for size in sizes}
    head = [f"{_size(size)} x {deepest[size]:,}: B/job (MB per 100,000)" for size in sizes]
    lines = ["| backend | " + " | ".join(head) + " | on disk, B/job | control drift, B |",
             "| --- |" + " --- |" * (len(sizes) + 2)]
    for backend in sorted({c["backend"] for c in cells}, key=backend_rank):
        entries, disk, drift = [], [], []
        for size in sizes:
            mine = [c for c in cells if c["backend"] == backend
                    and c["params"]["payload_bytes"] == size
                    and c["params"]["jobs"] == deepest[size]]
            ok = [c["metrics"] for c in mine if c["status"] == "ok"]
            if not ok:
                entries.append(mine[0]["status"] if mine else "not run")
                continue
            entries.append(_join([f"{_num(m['bytes_per_job'])} "
                                  f"({m['bytes_per_job'] * 1e5 / 1e6:,.0f})" for m in ok]))
            disk += [_num(m["disk_bytes_per_job"]) for m in ok
                     if m.get("disk_bytes_per_job") is not None]
            drift += [_num((m.get("control") or {}).get("queue_bytes")) for m in ok]
        lines.append(f"| {backend} | " + " | ".join(entries)
                     + f" | {' / '.join(disk) or '-'} | {_join(drift) if drift else '-'} |")
    return "\n".join(lines)


def run_time_table(source: Path) -> str:
    """Where a run's time went: seconds in cells per backend and scenario (their
    `wall_s`, reports.runtime as the report sums them), and start to summary from
    run.json (the report's rendering comes after)."""
    data = load_run(source)
    spent = run_time(data)
    if spent is None or spent["whole"] is None:
        raise ValueError("this run's cells recorded no time (wall_s), or run.json no end")
    scenarios = spent["scenarios"]
    lines = ["| backend | " + " | ".join(scenarios) + " | all |",
             "| --- |" + " --- |" * (len(scenarios) + 1)]
    for row in spent["rows"]:
        lines.append(f"| {row['backend']} | " + " | ".join(_num(v) for v in row["seconds"])
                     + f" | {_num(row['total'])} |")
    totals = [sum(row["seconds"][i] for row in spent["rows"]) for i in range(len(scenarios))]
    lines.append("| all | " + " | ".join(_num(v) for v in totals)
                 + f" | {_num(spent['in_cells'])} |")
    run, total = data.run, spent["whole"]
    swept = ", ".join(sorted(run.get("ceiling_layouts") or {}))
    outside = f"layout sweeps ({swept}), " if swept else ""
    lines.append(f"\nSeconds in cells (`wall_s`), {counted(len(data.cells), 'cell')}. From "
                 f"start to summary {int(total // 60)} min {int(total % 60)} s, of which "
                 f"{_num(spent['outside'])} s outside cells ({outside}broker starts, analysis "
                 f"between cells); `run {'--quick ' if run['config']['quick'] else ''}"
                 f"--scenario {','.join(run['config']['scenarios'])}` at "
                 f"{run['git_revision'][:7]}.")
    return "\n".join(lines)


MIN_STEP_SHOWN_S = 0.5  # a step that took less in the whole run is summed, not listed


def run_steps_table(source: Path) -> str:
    """The seconds in cells by step (`wall_parts`) and scenario, the longest step first."""
    cells = _cells(source)
    scenarios = list(dict.fromkeys(c["scenario"] for c in cells))
    steps = seconds_by_step((c["scenario"], c.get("wall_parts")) for c in cells)
    if not steps:
        raise ValueError("no cell of this run recorded its steps (wall_parts)")
    lines = ["| step | " + " | ".join(scenarios) + " | all |",
             "| --- |" + " --- |" * (len(scenarios) + 1)]
    shown = [(step, row) for step, row in steps if sum(row.values()) >= MIN_STEP_SHOWN_S]
    for step, row in shown:
        lines.append(f"| `{step}` | " + " | ".join(_num(row.get(s, 0.0)) for s in scenarios)
                     + f" | {_num(sum(row.values()))} |")
    left = sum(sum(row.values()) for _step, row in steps[len(shown):])
    lines.append(f"\nSeconds in cells by step (`wall_parts`); {len(steps) - len(shown)} "
                 f"steps of under {MIN_STEP_SHOWN_S:g} s in all left out ({left:.1f} s).")
    return "\n".join(lines)


def window_feed_table(source: Path) -> str:
    """The steady-state cells whose window the driver had to top up, or whose queue ran
    dry inside it (producer-bound), with the count of all such cells."""
    steady = [c for c in _cells(source)
              if c["status"] == "ok" and not c.get("reused_from")
              and "window_sent" in c["metrics"]]
    fed = [c for c in steady
           if c["metrics"].get("window_sent") or c["metrics"].get("producer_bound")]
    lines = ["| backend | scenario | cell | round | jobs/s | jobs sent in the window "
             "| driver busy in it | queue ran dry |", "|" + " --- |" * 8]
    for cell in sorted(fed, key=lambda c: (backend_rank(c["backend"]), c["scenario"], c["round"],
                                           [(k, _sortable(v))
                                            for k, v in sorted(c["params"].items())])):
        metrics = cell["metrics"]
        busy = metrics.get("window_producer_busy_s") or 0.0
        lines.append(f"| {cell['backend']} | {cell['scenario']} | {_point(cell['params'])} "
                     f"| {cell['round']} | {_num(metrics.get('jobs_per_s'))} "
                     f"| {_num(metrics.get('window_sent'))} "
                     f"| {busy:.2g} of {metrics.get('window_s', 0):g} s "
                     f"| {'yes' if metrics.get('producer_bound') else 'no'} |")
    dry = sum(bool(c["metrics"].get("producer_bound")) for c in steady)
    lines += ["", f"{len(fed)} of the run's {len(steady)} steady-state cells were fed inside "
                  f"their window; {dry} of them ran dry (producer-bound)."]
    return "\n".join(lines)


def latency_saturation_table(source: Path) -> str:
    """Every open-loop rate cell: the share of its rate it ended per second (first
    INTENDED to last END, the saturation test before 2026-12-03) beside how fast its
    queue wait grew (`wait_growth`, the test since), and its verdict."""
    rated = [c for c in _cells(source) if c["scenario"] == "latency" and c["status"] == "ok"
             and c["params"].get("rate") is not None and "wait_growth" in c["metrics"]]
    lines = ["| backend | rate | round | offered jobs/s | ended per s / offered | wait growth "
             "(s per s) | backlog | verdict |", "|" + " --- |" * 8]
    disagree: list[str] = []
    for cell in sorted(rated, key=lambda c: (backend_rank(c["backend"]), c["params"]["rate"],
                                             c["round"])):
        metrics = cell["metrics"]
        offered = metrics["offered_per_s"]
        basis = offered if metrics.get("producer_limited") else cell["params"]["rate"]
        share = metrics["achieved_per_s"] / basis if basis else 0.0
        growth = metrics["wait_growth"]
        verdict = ", ".join(["producer-limited"] * bool(metrics.get("producer_limited"))
                            + ["saturated" if metrics["saturated"] else "keeps up"])
        by_backlog = metrics["backlog"] > saturation_backlog(basis)
        by_share = by_backlog or share < KEEP_UP  # a timeout would say saturated to both
        by_growth = by_backlog or (growth is not None and growth > MAX_WAIT_GROWTH)
        if by_share != by_growth:
            disagree.append(f"{cell['backend']} {cell['params']['rate_label']} "
                            f"({'saturated' if by_share else 'keeps up'} by that test)")
        lines.append(f"| {cell['backend']} | {cell['params']['rate_label']} | {cell['round']} "
                     f"| {_num(offered)} | {share:.2f} "
                     f"| {'n/a' if growth is None else f'{growth:.3f}'} "
                     f"| {_num(metrics['backlog'])} | {verdict} |")
    lines += ["", f"{len(rated)} rate cells; in {len(disagree)} the test on jobs ended per "
                  f"second (below 0.9 of the offered rate, or the backlog) gives the other "
                  f"verdict" + (f": {'; '.join(disagree)}." if disagree else ".")]
    return "\n".join(lines)


def _sortable(value: Any) -> tuple[int, float, str]:
    """Numbers in numeric order, before any other value (None, labels)."""
    if isinstance(value, int | float):
        return 0, float(value), ""
    return 1, 0.0, str(value)


def _point(params: dict[str, Any]) -> str:
    """A cell's parameter point in words: its payload, job duration, slots or rate."""
    words = []
    if "payload_bytes" in params:
        words.append(f"{_size(params['payload_bytes'])} payload")
    if "duration_ms" in params:
        words.append(f"{params['duration_ms']:g} ms jobs")
    if "slots" in params and "payload_bytes" not in params:
        words.append(f"{params['slots']} slots")
    if params.get("rate_label"):
        words.append(f"rate {params['rate_label']}")
    return ", ".join(words) or "-"


def _size(size: int) -> str:
    for unit, scale in (("MiB", 1024 ** 2), ("KiB", 1024)):
        if size >= scale and size % scale == 0:
            return f"{size // scale} {unit}"
    return f"{size} B"


RENDERERS: dict[str, Callable[[Path], str]] = {
    "throughput": throughput_table,
    "machine-speed": machine_speed_table,
    "window-start": window_start_table,
    "crash-job-process-kill": crash_table("job-process-kill"),
    "crash-node-kill": crash_table("node-kill"),
    "crash-broker-kill": crash_table("broker-kill"),
    "crash-summary": crash_summary,
    "memory": memory_table,
    "run-time": run_time_table,
    "run-steps": run_steps_table,
    "selftest": selftest_table,
    "ceiling-drains": ceiling_drains_table,
    "drain-speeds": drain_speeds_table,
    "headroom": headroom_table,
    "window-feed": window_feed_table,
    "latency-saturation": latency_saturation_table,
}


def regenerate(text: str, where: str) -> str:
    """`text` with every generated block rendered afresh from its source."""

    def replace(match: re.Match[str]) -> str:
        name, source = match["name"], ROOT / match["source"]
        if name not in RENDERERS:
            raise FiguresError(f"{where}: unknown figures block {name!r} "
                               f"(known: {', '.join(RENDERERS)})")
        if not source.is_dir():
            raise FiguresError(f"{where}: block {name!r}: no results folder {match['source']}")
        try:
            body = RENDERERS[name](source)
        except (OSError, KeyError, ValueError, TypeError) as exc:
            raise FiguresError(f"{where}: block {name!r} from {match['source']}: "
                               f"{type(exc).__name__}: {exc}") from None
        return f"{match.group(1)}{body}\n{match.group(5)}"

    return BLOCK.sub(replace, text)


def update_docs(check: bool, docs: Path = DOCS) -> list[str]:
    """Rewrite (or with `check`, only compare) every doc's blocks; the docs out of date."""
    stale = []
    for path in sorted(docs.glob("*.md")):
        text = path.read_text()
        fresh = regenerate(text, str(path.relative_to(ROOT)))
        if fresh != text:
            stale.append(str(path.relative_to(ROOT)))
            if not check:
                path.write_text(fresh)
    return stale
