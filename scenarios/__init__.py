"""Scenario registry: every Scenario instance at module level in this package, found by
scanning, so adding a scenario is adding one module.

SCENARIOS is in run order: by `order`, except that scenarios whose cells stop
the workers (memory) run after the others of a backend. The report lists
them by `order` alone (in_report_order).
"""

from __future__ import annotations

import importlib
import pkgutil

from scenarios.base import Metric, Scenario


def _scan() -> dict[str, Scenario]:
    found: dict[str, Scenario] = {}
    for info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{info.name}")
        for value in vars(module).values():
            if isinstance(value, Scenario) and type(value).__module__ == module.__name__:
                found[value.name] = value
    ordered = sorted(found.values(), key=lambda s: (s.stops_workers, s.order))
    return {s.name: s for s in ordered}


SCENARIOS: dict[str, Scenario] = _scan()


def scenario_names() -> list[str]:
    return list(SCENARIOS)


def everyday_scenario_names() -> list[str]:
    """What `--scenario all` runs: every scenario but the long sweeps (in_all False)."""
    return [name for name, scenario in SCENARIOS.items() if scenario.in_all]


def in_report_order() -> list[Scenario]:
    return sorted(SCENARIOS.values(), key=lambda s: s.order)


def metric_of(name: str) -> Metric | None:
    """The declaration of a flattened metric name in any scenario (a name means the
    same everywhere), or None for a metric no scenario declares."""
    return next((m for s in SCENARIOS.values() if (m := s.metric(name)) is not None), None)


def gated_by_default() -> list[str]:
    """The metrics compare gates when --metric is not given."""
    return list(dict.fromkeys(name for s in SCENARIOS.values()
                              for name, metric in s.metrics.items() if metric.gated))


def metrics_markdown() -> str:
    """The metric tables of docs/results-schema.md, one per scenario (a test keeps the
    doc equal to this)."""
    out = []
    for scenario in in_report_order():
        out += [f"### {scenario.name}", "", "| metric | unit | better | gated | what |",
                "| --- | --- | --- | --- | --- |"]
        out += [f"| `{name}` | {m.unit} | {m.better or ''} | {'yes' if m.gated else ''} "
                f"| {m.doc} |" for name, m in scenario.metrics.items()]
        out.append("")
    return "\n".join(out)
