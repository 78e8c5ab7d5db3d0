"""Runs a plan of cells: groups of cells per driver (harness.driver_handle), results after each.

Cells run in round-major order (round 1 of everything, then round 2...), so
an interrupted run still has complete early rounds. A failing backend only
fails its own cells; brokers and drivers are stopped on every exit path.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import shutil
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from adapters import BACKENDS
from core import interrupts, procs
from core.envnames import INJECT_DELAY_ENV
from core.protocol import CellSpec, DriverReport, Workload
from core.results import RunWriter, new_run_id
from core.scratch import private_dir
from core.urls import mask
from core.words import clipped
from harness import envs, faults
from harness.brokers import BrokerError, Brokers
from harness.ceiling_layout import fastest, needs_sweep, sweep, sweeps, with_layout
from harness.driver.steps import wall_parts
from harness.driver_handle import DriverHandle, LocalDriver
from harness.progress import Progress
from harness.speed import SpeedMeter
from reports.style import describe_params
from scenarios import SCENARIOS
from scenarios.base import CellFailed, CellPlan, CellReused, RunOptions, Scenario
from scenarios.records import as_of, load_records
from scenarios.stats import merged_round_percentiles


@dataclass
class RunConfig:
    scenarios: list[str]
    backends: list[str]
    rounds: int
    out: Path
    options: RunOptions
    urls: dict[str, str | None] = field(default_factory=dict)
    # results/latest names the newest benchmark run in results/ (a self-test is none)
    marks_latest: bool = True


def git_revision(folder: Path = envs.REPO_ROOT) -> str:
    """The commit checked out in `folder` ("unknown" outside a git checkout)."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                             cwd=folder, timeout=5, check=False)
        return out.stdout.strip() or "unknown"
    except OSError:
        return "unknown"


def checkouts() -> dict[str, dict[str, str]]:
    """The --with checkouts the run's @local environments were built from: a
    maintainer's main and PR trees carry the same version string, not the same commit."""
    return {package: {"path": str(path), "commit": git_revision(path)}
            for package, path in sorted(envs.CHECKOUTS.items())}


def run_info(config: RunConfig, run_id: str) -> dict[str, Any]:
    families = sorted({BACKENDS[b].family for b in config.backends})
    versions = {f: envs.installed_versions(f) for f in families if envs.status(f) is None}
    return {
        "id": run_id, "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "host": platform.node(), "cpu_count": os.cpu_count(), "platform": platform.platform(),
        "python": platform.python_version(), "git_revision": git_revision(),
        "config": {"scenarios": config.scenarios, "backends": config.backends,
                   "rounds": config.rounds, **asdict(config.options),
                   "broker_urls": {k: mask(v) for k, v in config.urls.items() if v},
                   "checkouts": checkouts()},
        "library_versions": versions, "broker_versions": {}, "complete": False,
    }


@dataclass
class GroupCell:
    """A cell of a driver group: bound (cell.json written) once the cells before it ended."""

    cell: CellPlan
    cell_dir: Path
    result: dict[str, Any]
    index: int
    bound: bool = False


def one_line(failure: str) -> str:
    """A failure's reason on one line: its first line, and when that ends in a colon (a
    worker's "exited before it was ready:" over its log's tail) the tail's last line, the
    cause; failure.txt keeps the whole text."""
    lines = [line.strip() for line in failure.splitlines() if line.strip()]
    if not lines:
        return "failed (no reason given)"
    reason = f"{lines[0]} {lines[-1]}" if lines[0].endswith(":") and len(lines) > 1 \
        else lines[0]
    return reason[:500]


class Runner:
    def __init__(self, config: RunConfig) -> None:
        self.config = config
        self.run_id = config.out.name
        self.writer = RunWriter(config.out, run_info(config, self.run_id),
                                merge=merged_round_percentiles,
                                latest=config.marks_latest and (
                                    config.out.parent.resolve()
                                    == default_run_dir().parent.resolve()))
        # rabbitmq-server runs as its own user: it must reach its data dir
        self.broker_dir = private_dir("queuebench-brokers-", 0o755)
        # TMPDIR of every driver and its workers, removed at the end: workers leave their
        # temporary files behind when stopped (Celery's prefork pool, billiard, a pymp-*
        # folder each time); as /tmp, since a driver's memory probe runs rabbitmqctl as
        # user rabbitmq with its env
        self.scratch_dir = private_dir("queuebench-tmp-", 0o1777)
        self.brokers = Brokers(self.broker_dir, config.urls)
        self.driver: DriverHandle | None = None
        self.scenarios: dict[str, Scenario] = dict(SCENARIOS)
        self.cell_index = 0
        self.meter: SpeedMeter | None = None  # runs for the whole of run(), see _run
        self.env_problems: dict[str, str | None] = {}  # per family, asked once a run

    def plan(self) -> list[tuple[int, CellPlan]]:
        """Round-major, then backend-major: one backend's cells of a round run back to
        back, so its workers are started as few times as possible. Scenarios run in
        SCENARIOS' order whatever order they were named in, so a cell that reuses
        another's result (payload's 64 B, latency's max: the throughput noop cell) comes
        after it."""
        cells = []
        scenarios = [name for name in SCENARIOS if name in self.config.scenarios]
        for round_no in range(1, self.config.rounds + 1):
            for backend in self.config.backends:
                for name in scenarios:
                    profiles = self.config.options.profiles
                    if SCENARIOS[name].all_profiles:  # plans every profile itself
                        profiles = profiles[:1]
                    for profile in profiles:
                        options = dataclasses.replace(self.config.options, profile=profile)
                        cells += [(round_no, c) for c in SCENARIOS[name].plan(backend, options)]
        return cells

    def run(self) -> dict[str, Any]:
        with interrupts.handled():
            return self._run()

    def _run(self) -> dict[str, Any]:
        plan = self.plan()
        progress = Progress(len(plan))
        interrupted = None
        ran_all = False  # every planned cell ran (a signal during the clean-up comes after)
        layouts: dict[str, dict[str, Any]] = {}
        self.meter = SpeedMeter(self.config.out / "speed")
        try:
            self._ask_environments({BACKENDS[cell.backend].family for _, cell in plan})
            self.meter.start()
            layouts = self.sweep_layouts([cell for _, cell in plan])
            plan = [(round_no, with_layout(cell, layouts)) for round_no, cell in plan]
            for round_no, group in self.groups(plan):
                interrupts.check()
                progress.step(_label(round_no, group[0].scenario, group[0].backend,
                                     group[0].profile, group[0].params))
                for result in self.run_group(round_no, group):
                    self.writer.add(result)
                    progress.done(_label(round_no, result["scenario"], result["backend"],
                                         result.get("profile"), result["params"]),
                                  result["status"], self._headline(result))
            ran_all = True
        except interrupts.Interrupted as exc:
            interrupted = str(exc)
        finally:
            brokers = self.release()
            interrupted = interrupted or interrupts.pending()  # one during the clean-up
            with interrupts.shielded():
                self.writer.finish(
                    finished=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    complete=ran_all, interrupted=interrupted,
                    planned_cells=len(plan), broker_versions=self.brokers.versions,
                    brokers=brokers, ceiling_layouts=layouts,
                    speed_probe=self.meter.settings(),
                )
                progress.close()
        return {"run_dir": str(self.config.out), "interrupted": interrupted,
                "cells": self.writer.cells}

    def release(self) -> dict[str, Any]:
        """Stop everything this runner started (its driver, the brokers, any process
        left) and remove the brokers' data, holding signals back until it is done: a
        second Ctrl-C must not cut the clean-up short. Returns the brokers it ran, their
        URLs masked (for run.json)."""
        with interrupts.shielded():
            self._stop_driver()
            if self.meter is not None:
                self.meter.stop()
            brokers = self.brokers.describe()  # while the servers are known
            self.brokers.stop_all()
            procs.stop_started()
            self._remove_dirs()
        return brokers

    def stop_brokers(self) -> None:
        """Stop the brokers this runner started, remove their data directories and the
        drivers' TMPDIR (what release() does to them; for callers that ran cells without
        run())."""
        self.brokers.stop_all()
        self._remove_dirs()

    def _remove_dirs(self) -> None:
        for folder in (self.broker_dir, self.scratch_dir):
            shutil.rmtree(folder, ignore_errors=True)

    def driver_env(self) -> dict[str, str]:
        """What a driver's environment (so its workers') takes from this run, whatever the
        caller's shell holds: the injected delay ("" is off) and the TMPDIR."""
        delay = self.config.options.inject_delay_us
        return {INJECT_DELAY_ENV: str(delay) if delay else "", "TMPDIR": str(self.scratch_dir)}

    def sweep_layouts(self, cells: list[CellPlan]) -> dict[str, dict[str, Any]]:
        """backend -> {"sweep": processes -> noop jobs/s, "processes": the fastest} for
        each layout-sweep backend of the plan (harness/ceiling_layout.py)."""
        layouts: dict[str, dict[str, Any]] = {}
        wanted = [b for b in self.config.backends if needs_sweep(b, cells)]
        if wanted and not sweeps(self.config.options):
            why = "--no-sweep" if self.config.options.sweep is False else \
                "a quick run; --sweep to sweep"
            print(f"layout: {', '.join(wanted)} at the CPU-count layout, not swept ({why})",
                  flush=True)
            return layouts
        for backend in wanted:
            if self._skip_reason(next(c for c in cells if c.backend == backend))[0]:
                continue
            print(f"layout sweep: {backend} noop jobs/s by consumer processes...", flush=True)
            rates = sweep(self.run_cell, backend, self.config.options)
            layouts[backend] = {"sweep": rates, "processes": fastest(rates)}
            shown = ", ".join(f"{n}: {r:,.0f}" if r else f"{n}: failed" for n, r in rates.items())
            print(f"layout sweep: {backend} {shown} -> {layouts[backend]['processes']} "
                  "processes", flush=True)
        return layouts

    # -- one cell -------------------------------------------------------------
    def _skip_reason(self, cell: CellPlan) -> tuple[str | None, str | None]:
        """(reason to skip, broker url)."""
        info = BACKENDS[cell.backend]
        env_problem = self._env_problem(info.family)
        if env_problem:
            return env_problem, None
        if info.broker is None:
            return None, None
        try:
            return None, self.brokers.url(info.broker, self._persistence(cell))
        except BrokerError as exc:
            return one_line(str(exc)), None

    def _ask_environments(self, families: set[str]) -> None:
        """Ask every environment of the run at once (a Python start each, in parallel)."""
        names = sorted(families)
        with ThreadPoolExecutor(max_workers=max(1, len(names))) as pool:
            problems = pool.map(self._env_problem_now, names)
            self.env_problems.update(zip(names, problems, strict=True))

    @staticmethod
    def _env_problem_now(family: str) -> str | None:
        return envs.status(family) or envs.installed_problem(family)

    def _broker_lost(self, cell: CellPlan) -> str | None:
        """Why the cell's broker was gone when the cell ended (a figure measured while it
        was would be false), or None. A broker-kill cell restarts its own on purpose."""
        broker = BACKENDS[cell.backend].broker
        if broker is None or cell.broker_kill is not None:
            return None
        return self.brokers.lost(broker, self._persistence(cell))

    def _revive_broker(self, cell: CellPlan) -> str | None:
        """Before a driver starts: a harness-owned broker that died in an earlier cell is
        started again (same port and data); why the cell's broker cannot be had, if so.
        A broker-kill cell's broker is its fault's own."""
        broker = BACKENDS[cell.backend].broker
        if broker is None or cell.broker_kill is not None:
            return None
        try:
            self.brokers.url(broker, self._persistence(cell))
        except BrokerError as exc:
            return one_line(str(exc))
        return None

    def _env_problem(self, family: str) -> str | None:
        """What keeps `family`'s environment from running as pinned (its marker, then the
        distributions it holds), asked once a run."""
        if family not in self.env_problems:
            self.env_problems[family] = self._env_problem_now(family)
        return self.env_problems[family]

    def _persistence(self, cell: CellPlan) -> str | None:
        """The broker persistence a cell runs with (None: no broker); a broker-kill cell's
        is its own (params.persistence), else its profile's (harness/brokers.py)."""
        kind = BACKENDS[cell.backend].broker
        if kind is None:
            return None
        if cell.broker_kill is not None:
            return cell.params.get("persistence")
        return self.brokers.persistence(kind, cell.profile)

    def groups(self, plan: list[tuple[int, CellPlan]]) -> list[tuple[int, list[CellPlan]]]:
        """Consecutive cells that can share one driver and its workers.

        Same round, backend, profile and adapter options, whatever the
        scenario; a cell whose broker is killed runs alone, and after a
        worker-kill the driver starts fresh workers for the next cell. A cell
        whose parameters depend on an earlier result is bound late (_bind).
        """
        grouped: list[tuple[int, list[CellPlan]]] = []
        last_key: object = None
        for round_no, cell in plan:
            key = self._group_key(round_no, cell)
            if key is not None and key == last_key:
                grouped[-1][1].append(cell)
            else:
                grouped.append((round_no, [cell]))
            last_key = key
        return grouped

    def _group_key(self, round_no: int, cell: CellPlan) -> object:
        if cell.broker_kill is not None:  # the coordinator kills this cell's broker
            return None
        options = {k: v for k, v in cell.options.items() if k != "rate_fraction"}
        return (round_no, cell.backend, cell.profile, self._slots(cell),
                json.dumps(options, sort_keys=True))

    def _slots(self, cell: CellPlan) -> int:
        """The cell's slot count: its own (the scaling sweep), else the run's."""
        return cell.slots or self.config.options.slots

    def run_cell(self, round_no: int, cell: CellPlan) -> dict[str, Any]:
        """One cell in a driver of its own (the self-test uses this)."""
        return list(self.run_group(round_no, [cell]))[0]

    def run_group(self, round_no: int, cells: list[CellPlan]) -> Iterator[dict[str, Any]]:
        """Run a group of cells in one driver; yields each cell's result as it ends."""
        info = BACKENDS[cells[0].backend]
        reason, url = self._skip_reason(cells[0])
        fault = None
        if not reason and cells[0].broker_kill is not None and info.broker:
            try:
                fault = faults.prepare(self.brokers, info.broker, cells[0].broker_kill,
                                       self.broker_dir / f"cell{self.cell_index + 1}")
                url = fault.url
            except BrokerError as exc:
                reason = one_line(str(exc))
        queue = f"qb{os.getpid()}c{self.cell_index + 1}"
        items: list[GroupCell] = []
        for cell in cells:
            self.cell_index += 1
            result = self._new_result(round_no, cell)
            if reason:
                result.update(status="skipped", reason=reason)
                yield result
                continue
            name = f"{self.cell_index:04d}-{cell.scenario}-{cell.backend}"
            cell_dir = self.config.out / "cells" / name
            cell_dir.mkdir(parents=True, exist_ok=True)
            result["cell_dir"] = str(cell_dir.relative_to(self.config.out))
            items.append(GroupCell(cell, cell_dir, result, self.cell_index))
        try:
            yield from self._drive(items, fault, url, queue, round_no)
        finally:
            if fault is not None:
                fault.close()

    def _new_result(self, round_no: int, cell: CellPlan) -> dict[str, Any]:
        return {  # a summary.json cell, see docs/results-schema.md
            "scenario": cell.scenario, "backend": cell.backend, "profile": cell.profile,
            "params": cell.params, "round": round_no, "status": "ok", "reason": None,
            "settings": {}, "metrics": {},
        }

    def _headline(self, result: dict[str, Any]) -> str:
        """The progress line's figure: the scenario's headline, or why the cell did not run."""
        if result["status"] != "ok":
            return result["reason"] or ""
        return self.scenarios[result["scenario"]].headline(result["metrics"])

    def _bind(self, driver: DriverHandle, item: GroupCell, round_no: int, queue: str,
              url: str | None) -> dict[str, Any] | None:
        """Write the cell's cell.json, for the driver waiting on it.

        A cell is bound only once the cells before it have ended, so its
        parameters may depend on their results (scenario `resolve`). Returns
        the cell's result when it needs no run (it failed to resolve, or an
        earlier cell measured exactly this); cell.json then says skip.
        """
        item.bound = True
        done = None
        try:
            item.cell = self.scenarios[item.cell.scenario].resolve(item.cell, self.writer.cells,
                                                                   round_no)
            item.result["params"] = item.cell.params
        except CellFailed as exc:
            item.result.update(status="failed", reason=str(exc))
            done = item.result
        except CellReused as reuse:
            source = reuse.source
            item.result.update(metrics=dict(source["metrics"]), settings=source["settings"],
                               reused_from=source.get("cell_dir"), wall_s=0.0)
            done = item.result
        info = BACKENDS[item.cell.backend]
        spec = CellSpec(skip=True) if done else CellSpec(
            index=item.index, scenario=item.cell.scenario, backend=item.cell.backend,
            broker_url=mask(url) if url else None,  # the real one goes in the environment
            slots=self._slots(item.cell), profile=item.cell.profile,
            results=self.config.options.results, queue=queue,
            workload=Workload.from_dict(item.cell.workload), options=dict(item.cell.options),
            broker_ctl=(self.brokers.control(info.broker, self._persistence(item.cell))
                        if info.broker else None),
        )
        driver.bind(item.cell_dir, spec)
        return done

    def _drive(self, items: list[GroupCell], fault: faults.FaultBroker | None, url: str | None,
               queue: str, round_no: int) -> Iterator[dict[str, Any]]:
        """One driver for `items`; a cell that kills or hangs the driver fails alone
        and the cells after it go on in a fresh driver."""
        while items:
            if gone := self._revive_broker(items[0].cell):  # it died in an earlier cell
                for item in items:
                    item.result.update(status="skipped", reason=gone)
                    yield item.result
                return
            family = BACKENDS[items[0].cell.backend].family
            driver = LocalDriver(family, url, items[0].cell_dir / "driver.log",
                                 self.driver_env())
            if not items[0].bound and (done := self._bind(driver, items[0], round_no, queue, url)):
                items.pop(0)
                yield done
                continue
            driver.start([item.cell_dir for item in items])
            self.driver = driver
            began = time.monotonic()
            while items:
                item = items[0]
                if not item.bound and (done := self._bind(driver, item, round_no, queue, url)):
                    items.pop(0)
                    yield done
                    continue
                if fault is not None:  # crash-recovery: serve the driver's broker-kill request
                    fault.serve(item.cell_dir)
                report = driver.report(item.cell_dir)
                if report is not None:
                    items.pop(0)
                    lost = self._broker_lost(item.cell)
                    if not items and not lost:  # let the driver stop its workers first
                        driver.wait_exit(30.0)
                    item.result["wall_s"] = round(time.monotonic() - began, 2)
                    yield self._finish(item, report, with_cause(report.error, lost), driver.log)
                    if lost:  # its workers lost the broker: the rest starts afresh
                        driver.stop()
                        break
                    began = time.monotonic()
                    continue
                if not driver.alive():
                    failure = f"driver died without a result; last output: {driver.last_output()}"
                elif time.monotonic() - began > item.cell.timeout_s:
                    failure = (f"timed out after {item.cell.timeout_s:.0f}s; last driver output: "
                               f"{driver.last_output()}")
                else:
                    time.sleep(0.05)
                    interrupts.check()
                    continue
                driver.stop()
                items.pop(0)
                item.result["wall_s"] = round(time.monotonic() - began, 2)
                yield self._finish(item, driver.report(item.cell_dir) or DriverReport(),
                                   with_cause(failure, self._broker_lost(item.cell)), driver.log)
                break  # the rest of the group goes on in a fresh driver
            self._stop_driver()

    def _finish(self, item: GroupCell, report: DriverReport, failure: str | None,
                driver_log: Path) -> dict[str, Any]:
        """Fill in a cell's result from its driver.json and records; `driver_log`: the log
        of the driver that ran it (in the folder of its group's first cell)."""
        cell, cell_dir, result = item.cell, item.cell_dir, item.result
        parts = wall_parts(report.steps_s, result.get("wall_s") or 0.0)
        if parts:
            result["wall_parts"] = parts
        handoff = self.scenarios[cell.scenario].handoff_options
        result["settings"] = {**report.settings,
                              **{k: v for k, v in cell.options.items() if k not in handoff},
                              "slots": self._slots(cell), "profile": cell.profile,
                              "broker_persistence": self._persistence(cell),
                              "bulk_enqueue": report.bulk_enqueue}
        if failure:
            failure = one_line(failure)
            save_failure(cell_dir, failure, report, driver_log)
            result.update(status="failed", reason=failure)
            return result
        try:
            ends = [phase.done_ns for phase in report.phases]
            records = as_of(load_records(cell_dir / "records"),
                            max(ends) if ends and None not in ends else None)
            result["metrics"] = self.scenarios[cell.scenario].analyze(cell, records, report)
            if self.meter is not None:
                self.meter.annotate(result["metrics"], report)
        except CellFailed as exc:
            result.update(status="failed", reason=str(exc))
        return result

    def _stop_driver(self) -> None:
        if self.driver is not None:
            self.driver.stop()
            self.driver = None


def with_cause(failure: str | None, lost: str | None) -> str | None:
    """A cell's failure, led by the broker's loss when that is what happened (the
    library's own error, a lost connection, follows it)."""
    if lost is None:
        return failure
    return f"{lost}; the cell's own error: {failure}" if failure else lost


LOG_TAIL_CHARS = 20_000  # of each log's last lines in failure.txt (a line may hold a payload)


def save_failure(cell_dir: Path, failure: str, report: DriverReport, driver_log: Path) -> None:
    """failure.txt: the reason, the driver's error, and the last lines of the driver's
    and the workers' logs."""
    parts = [f"reason: {failure}", report.error or "", report.traceback or ""]
    logs = Path(report.worker_log_dir or cell_dir / "logs")
    for log in [driver_log, *sorted(logs.glob("*.log"))]:
        text = clipped(procs.tail(log, 30), LOG_TAIL_CHARS)
        if text:
            parts.append(f"--- last lines of {log.name} ---\n{text}")
    (cell_dir / "failure.txt").write_text("\n".join(p for p in parts if p) + "\n")


def _label(round_no: int, scenario: str, backend: str, profile: str | None,
           params: dict[str, Any]) -> str:
    """r1 throughput redis-raw[reliable] duration_ms=0 ... (the profile as compare labels
    a case: only when it is not the default one)."""
    shown = backend if profile in (None, "default") else f"{backend}[{profile}]"
    return f"r{round_no} {scenario} {shown} {describe_params(params)}"


def default_run_dir() -> Path:
    return envs.REPO_ROOT / "results" / new_run_id()
