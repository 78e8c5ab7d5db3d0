"""The history page: OUT/index.html (no script, no network: charts are embedded as data:
URIs) and the same charts as OUT/<backend>.png, noop and 10 ms throughput over the
entries, each point the median of its rounds with their min-max spread, and a mark
where compare called a change."""

from __future__ import annotations

import html
import json
import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any

from matplotlib.axes import Axes

from core.results import make_dir
from core.words import counted
from harness.compare.judge import IMPROVED, WORSENED
from harness.history.changes import Called, called_changes
from reports.charts import new_figure, to_png
from reports.html import data_uri
from reports.style import backend_rank, colour

SCENARIO, METRIC = "throughput", "jobs_per_s"
DURATIONS = (0.0, 10.0)
MARKS = {**dict.fromkeys(WORSENED, ("v", "#d62728")), **dict.fromkeys(IMPROVED, ("^", "#2ca02c"))}
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"

Points = dict[float, dict[int, list[float]]]  # duration -> entry index -> round values


def collect(entries: list[dict[str, Any]]) -> dict[str, Points]:
    """backend (with [profile] unless default) -> its throughput rounds per entry."""
    out: dict[str, Points] = defaultdict(lambda: defaultdict(dict))
    for index, entry in enumerate(entries):
        for cell in entry["cells"]:
            value = (cell.get("metrics") or {}).get(METRIC)
            duration = float((cell.get("params") or {}).get("duration_ms", -1))
            if (cell.get("scenario") != SCENARIO or cell.get("status") != "ok"
                    or duration not in DURATIONS or not isinstance(value, int | float)):
                continue
            profile = cell.get("profile") or "default"
            name = cell["backend"] + ("" if profile == "default" else f"[{profile}]")
            out[name][duration].setdefault(index, []).append(float(value))
    return out


def tick(entry: dict[str, Any]) -> str:
    return f"{entry['commit'][:7]}\n{entry['date'][:10]}"


def draw(ax: Axes, points: dict[int, list[float]], marks: list[Called], name: str,
         entries: list[dict[str, Any]], duration: float) -> None:
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
    ax.set_xticks(range(len(entries)), [tick(e) for e in entries], fontsize=7)
    ax.set_xlim(-0.5, len(entries) - 0.5)
    ax.set_ylim(bottom=0)
    ax.set_ylabel("jobs/s")
    ax.set_title(f"{name}: {'no-op' if duration == 0 else f'{duration:g} ms'} jobs")
    handles, labels = ax.get_legend_handles_labels()
    unique = dict(zip(labels, handles, strict=True))
    ax.legend(unique.values(), unique.keys(), fontsize=7, loc="lower left")


def chart(name: str, series: Points, called: list[Called],
          entries: list[dict[str, Any]]) -> bytes:
    fig = new_figure(max(6.0, 0.9 * len(entries) + 2), 3.2 * len(DURATIONS))
    axes = fig.subplots(len(DURATIONS), 1)
    for ax, duration in zip(axes, DURATIONS, strict=True):
        marks = [c for c in called if c.key[0] == SCENARIO and label_of(c) == name
                 and float(json.loads(c.key[3]).get("duration_ms", -1)) == duration]
        if series.get(duration):
            draw(ax, series[duration], marks, name, entries, duration)
        else:
            ax.set_axis_off()
            ax.text(0.5, 0.5, f"no ok {duration:g} ms cells", ha="center", transform=ax.transAxes)
    return to_png(fig)


def label_of(called: Called) -> str:
    profile = called.key[2]
    return called.key[1] + ("" if profile == "default" else f"[{profile}]")


def page(entries: list[dict[str, Any]], charts: dict[str, bytes], called: list[Called],
         notes: list[str]) -> str:
    esc = html.escape
    runs = "".join(
        f"<tr><td>{i}</td><td><code>{esc(e['commit'][:10])}</code></td><td>{esc(e['date'])}"
        f"</td><td>{esc(str(e['run'].get('host', '?')))}</td>"
        f"<td>{esc(str(e['fingerprint'].get('cpu_count')))}</td>"
        f"<td>{esc(str(e['fingerprint'].get('python')))}</td></tr>"
        for i, e in enumerate(entries))
    changes = "".join(
        f"<tr><td><code>{esc(entries[c.index - 1]['commit'][:10])}</code> &rarr; "
        f"<code>{esc(entries[c.index]['commit'][:10])}</code></td><td>{esc(label_of(c))}</td>"
        f"<td>{esc(c.key[3])}</td><td>{esc(c.metric)} {esc(c.basis)}</td>"
        f"<td>{esc(c.verdict)}</td><td>{(c.ratio - 1) * 100:+.1f}%</td></tr>" for c in called)
    change_table = ("<table><tr><th>commits</th><th>backend</th><th>params</th><th>metric</th>"
                    f"<th>verdict</th><th>change</th></tr>{changes}</table>")
    figures = "".join(
        f'<figure><img src="{data_uri(png)}" alt="{esc(name)} throughput over commits">'
        f"<figcaption>{esc(name)} ({esc(name)}.png)</figcaption></figure>"
        for name, png in charts.items())
    skipped = "".join(f"<li>{esc(n)}</li>" for n in notes)
    runs = counted(len(entries), "run")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{CSP}">
<title>queuebench history</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto}}
table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:2px 6px}}
img{{max-width:100%}}</style></head>
<body><main>
<h1>queuebench throughput history</h1>
<p>{runs}. Each point is the median of a run's rounds, the bars their min and
max. A triangle marks a change <code>python -m harness compare</code> called against the
previous run (its gate: threshold, Welch t-test, Benjamini-Hochberg), on the basis it gates:
per probe loop (the machine's speed taken out) where both runs have the speed meter, else a
library over its broker's raw ceiling, else absolute. The charts plot plain jobs/s, so a
triangle can sit where the line hardly moves: the machine changed speed too.</p>
<section id="runs"><h2>Runs</h2><table><tr><th>#</th><th>commit</th><th>date</th>
<th>host</th><th>CPUs</th><th>Python</th></tr>{runs}</table></section>
<section id="changes"><h2>Called changes</h2>
{change_table if called else '<p>none</p>'}
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
