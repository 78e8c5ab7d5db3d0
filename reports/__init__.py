"""The comparison report: RUN_DIR/report.html (self-contained) and RUN_DIR/charts/*.png.

render() is what `python -m harness report RUN_DIR` and the end of a run call;
`python -m reports RUN_DIR` does the same on its own.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from core.results import ResultsError

__all__ = ["render", "main"]

PROG = "python -m reports"


def render(run_dir: Path) -> Path:
    """Render the report of the run in `run_dir`; ResultsError on bad input."""
    # Imported here so `import reports` (the harness CLI does it) stays cheap.
    from adapters import BACKENDS
    from reports import claims, data, html, sections, verdict

    run_dir = Path(run_dir)
    loaded = data.load(run_dir)
    tables, figures = sections.build(loaded)
    chart_dir = run_dir / "charts"
    chart_dir.mkdir(exist_ok=True)
    for stale in chart_dir.glob("*.png"):
        stale.unlink()
    for figure in figures:
        (chart_dir / f"{figure.slug}.png").write_bytes(figure.png)
    ceilings = {name: info.ceiling for name, info in BACKENDS.items() if info.ceiling}
    page = html.render_page(html.context(
        loaded, tables, verdict.library_cost(loaded, ceilings), figures,
        claims.evaluate_all(loaded)))
    out = run_dir / "report.html"
    tmp = out.with_suffix(".html.tmp")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(out)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m reports RUN_DIR`: exit 0 and the report path, or exit 2 and one line."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1 or args[0].startswith("-"):
        sys.stderr.write(f"usage: {PROG} RUN_DIR\n")
        return 2
    try:
        print(render(Path(args[0])))
    except ResultsError as exc:
        sys.stderr.write(f"{PROG}: error: {exc}\n")
        return 2
    return 0
