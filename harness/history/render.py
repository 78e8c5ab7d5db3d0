"""The history page: OUT/index.html (no script, no network: charts are embedded as data:
URIs) and the same charts as OUT/<backend>.png, noop and 10 ms throughput over the
entries, each point the median of its rounds with their min-max spread, and a mark
where compare called a change."""

from __future__ import annotations

import html
import json
import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from matplotlib.axes import Axes

from core.results import make_dir
from core.words import counted
from harness.compare.judge import IMPROVED, TEST_ROUNDS, WORSENED
from harness.history.changes import Called, called_changes
from reports.charts import new_figure, to_png
from reports.html import data_uri
from reports.style import backend_rank, colour

SCENARIO, METRIC = "throughput", "jobs_per_s"
DURATIONS = (0.0, 10.0)
MARKS = {**dict.fromkeys(WORSENED, ("v", "#d62728")), **dict.fromkeys(IMPROVED, ("^", "#2ca02c"))}
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"

Points = dict[float, dict[int, list[float]]]  # duration -> entry index -> round values


@dataclass
class Series:
    """One backend's (with [profile] unless default) throughput over the entries: the
    rounds' figures of each entry that measured it, and the entries whose cells of a
    duration all failed."""

    points: Points = field(default_factory=lambda: defaultdict(dict))
    failed: dict[float, set[int]] = field(default_factory=lambda: defaultdict(set))


def collect(entries: list[dict[str, Any]]) -> dict[str, Series]:
    """backend (with [profile] unless default) -> its throughput series."""
    out: dict[str, Series] = defaultdict(Series)
    for index, entry in enumerate(entries):
        tried: dict[tuple[str, float], bool] = {}  # (name, duration) -> any ok round
        for cell in entry["cells"]:
            value = (cell.get("metrics") or {}).get(METRIC)
            duration = (cell.get("params") or {}).get("duration_ms")
            if (cell.get("scenario") != SCENARIO or not isinstance(duration, int | float)
                    or duration not in DURATIONS):
                continue
            profile = cell.get("profile") or "default"
            name = cell["backend"] + ("" if profile == "default" else f"[{profile}]")
            ok = cell.get("status") == "ok" and isinstance(value, int | float)
            tried[(name, float(duration))] = tried.get((name, float(duration)), False) or ok
            if ok:
                out[name].points[float(duration)].setdefault(index, []).append(float(value))
        for (name, duration), any_ok in tried.items():
            if not any_ok:
                out[name].failed[duration].add(index)
    return out


def tick(index: int, entry: dict[str, Any]) -> str:
    """#3 abc1234 / 2026-12-03: the entry's number tells two runs of one commit apart."""
    return f"#{index} {entry['commit'][:7]}\n{entry['date'][:10]}"


def draw(ax: Axes, points: dict[int, list[float]], failed: set[int], marks: list[Called],
         name: str, entries: list[dict[str, Any]], duration: float) -> None:
    xs = sorted(points)
    medians = [statistics.median(points[x]) for x in xs]
    low = [m - min(points[x]) for m, x in zip(medians, xs, strict=True)]
    high = [max(points[x]) - m for m, x in zip(medians, xs, strict=True)]
    ax.errorbar(xs, medians, yerr=[low, high], color=colour(name.split("[")[0]), marker="o",
                capsize=4, label="median, min-max of rounds")
    for mark in marks:
        if mark.index in points:
            shape, tint = MARKS[mark.verdict]
            ax.plot([mark.index], [statistics.median(points[mark.index])], shape, color=tint,
                    markersize=12, label=f"compare: {mark.verdict}")
    top = max(max(values) for values in points.values()) if points else 1.0
    if failed:
        ax.plot(sorted(failed), [0.0] * len(failed), "x", color="#d62728", markersize=10,
                clip_on=False, label="failed in this run")
    ax.set_xticks(range(len(entries)), [tick(i, e) for i, e in enumerate(entries)], fontsize=7)
    ax.set_xlim(-0.5, len(entries) - 0.5)
    ax.set_ylim(0, top * 1.12)  # room above the highest round for its cap and a mark
    ax.set_ylabel("jobs/s")
    ax.set_title(f"{name}: {'no-op' if duration == 0 else f'{duration:g} ms'} jobs")
    handles, labels = ax.get_legend_handles_labels()
    unique = dict(zip(labels, handles, strict=True))
    ax.legend(unique.values(), unique.keys(), fontsize=7, loc="lower left")


def chart(name: str, series: Series, called: list[Called],
          entries: list[dict[str, Any]]) -> bytes:
    fig = new_figure(max(6.0, 0.9 * len(entries) + 2), 3.2 * len(DURATIONS))
    axes = fig.subplots(len(DURATIONS), 1)
    for ax, duration in zip(axes, DURATIONS, strict=True):
        marks = [c for c in called if c.key[0] == SCENARIO and label_of(c) == name
                 and json.loads(c.key[3]).get("duration_ms") == duration]
        points, failed = series.points.get(duration, {}), series.failed.get(duration, set())
        if points or failed:
            draw(ax, points, failed, marks, name, entries, duration)
        else:
            ax.set_axis_off()
            ax.text(0.5, 0.5, f"{duration:g} ms jobs: not measured in these runs",
                    ha="center", transform=ax.transAxes)
    return to_png(fig)


def label_of(called: Called) -> str:
    profile = called.key[2]
    return called.key[1] + ("" if profile == "default" else f"[{profile}]")


def rounds_of(entry: dict[str, Any]) -> int:
    """The rounds an entry's run asked for (1 when its config does not say)."""
    rounds = (entry["run"].get("config") or {}).get("rounds")
    return rounds if isinstance(rounds, int) and not isinstance(rounds, bool) else 1


def window_of(entry: dict[str, Any]) -> str:
    """The steady-state window of an entry's run: runs of another window are never
    compared (they are listed under the pairs not compared)."""
    config = entry["run"].get("config") or {}
    if isinstance(config.get("window_s"), int | float) and config["window_s"]:
        return f"{config['window_s']:g} s"
    return "quick (2 s)" if config.get("quick") else "full (8 s)"


def page(entries: list[dict[str, Any]], charts: dict[str, bytes], called: list[Called],
         notes: list[str]) -> str:
    esc = html.escape
    runs = "".join(
        f"<tr><td>{i}</td><td><code>{esc(e['commit'][:10])}</code></td><td>{esc(e['date'])}"
        f"</td><td>{esc(str(e['run'].get('host', '?')))}</td>"
        f"<td>{esc(str(e['fingerprint'].get('cpu_count')))}</td>"
        f"<td>{esc(str(e['fingerprint'].get('python')))}</td>"
        f"<td>{rounds_of(e)}</td><td>{esc(window_of(e))}</td></tr>"
        for i, e in enumerate(entries))
    changes = "".join(
        f"<tr><td>#{c.index - 1} <code>{esc(entries[c.index - 1]['commit'][:10])}</code> "
        f"&rarr; #{c.index} <code>{esc(entries[c.index]['commit'][:10])}</code></td>"
        f"<td>{esc(c.key[0])}</td><td>{esc(label_of(c))}</td>"
        f"<td>{esc(c.key[3])}</td><td>{esc(c.metric)} {esc(c.basis)}</td>"
        f"<td>{esc(c.verdict)}</td><td>{(c.ratio - 1) * 100:+.1f}%</td></tr>" for c in called)
    change_table = ("<table><tr><th>runs</th><th>scenario</th><th>backend</th><th>params</th>"
                    f"<th>metric</th><th>verdict</th><th>change</th></tr>{changes}</table>")
    thin = [str(i) for i, e in enumerate(entries) if rounds_of(e) < TEST_ROUNDS]
    thin_note = (f"<p>Runs #{', #'.join(thin)} have fewer than {TEST_ROUNDS} rounds: "
                 "a change called against them rests on the threshold alone, with no test "
                 "of the rounds' noise (compare warns the same).</p>") if thin else ""
    figures = "".join(
        f'<figure><img src="{data_uri(png)}" alt="{esc(name)} throughput over commits">'
        f"<figcaption>{esc(name)} ({esc(name)}.png)</figcaption></figure>"
        for name, png in charts.items())
    skipped = "".join(f"<li>{esc(n)}</li>" for n in notes)
    count = counted(len(entries), "run")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{CSP}">
<title>queuebench history</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto}}
table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:2px 6px}}
img{{max-width:100%}}</style></head>
<body><main>
<h1>queuebench throughput history</h1>
<p>{count}. Each point is the median of a run's rounds, the bars their min and
max. A triangle marks a change <code>python -m harness compare</code> called against the
previous run (its gate: threshold, Welch t-test, Benjamini-Hochberg), on the basis it gates:
per probe loop (the machine's speed taken out) where both runs have the speed meter, else a
library over its broker's raw ceiling, else absolute. The charts plot plain jobs/s, so a
triangle can sit where the line hardly moves: the machine changed speed too.</p>
<section id="runs"><h2>Runs</h2><table><tr><th>#</th><th>commit</th><th>date</th>
<th>host</th><th>CPUs</th><th>Python</th><th>rounds</th><th>window</th></tr>{runs}</table>
</section>
<section id="changes"><h2>Called changes</h2>
{change_table if called else '<p>none</p>'}{thin_note}
{f'<p>Pairs not compared:</p><ul>{skipped}</ul>' if notes else ''}</section>
<section id="charts"><h2>Charts</h2>{figures}</section>
</main></body></html>
"""


def render(entries: list[dict[str, Any]], out: Path) -> Path:
    """Write OUT/index.html and OUT/<backend>.png; return the page's path."""
    called, notes = called_changes(entries)
    series = collect(entries)
    charts = {name: chart(name, series[name], called, entries)
              for name in sorted(series, key=lambda n: backend_rank(n.split("[")[0]))}
    make_dir(out)
    for name, png in charts.items():
        (out / f"{name}.png").write_bytes(png)
    index = out / "index.html"
    index.write_text(page(entries, charts, called, notes))
    return index
