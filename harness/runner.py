"""Runs a plan of cells: one driver subprocess per cell, results after each.

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
import signal
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from adapters import BACKENDS
from harness import envs, faults, procs
from harness.brokers import BrokerError, Brokers
from harness.driver_env import BROKER_URL_ENV
from harness.progress import Progress
from harness.records import load_records
from harness.results import RunWriter, new_run_id
from harness.urls import mask
from scenarios import SCENARIOS
from scenarios.base import CellFailed, CellPlan, RunOptions, Scenario


@dataclass
class RunConfig:
    scenarios: list[str]
    backends: list[str]
    rounds: int
    out: Path
    options: RunOptions
    urls: dict[str, str | None] = field(default_factory=dict)


class Interrupted(Exception):
    """SIGINT/SIGTERM during a run."""


def _raise_interrupt(signum: int, _frame: Any) -> None:
    raise Interrupted(signal.Signals(signum).name)


def git_revision() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                             cwd=envs.REPO_ROOT, timeout=5, check=False)
        return out.stdout.strip() or "unknown"
    except OSError:
        return "unknown"


def run_info(config: RunConfig, run_id: str) -> dict[str, Any]:
    families = sorted({BACKENDS[b].family for b in config.backends})
    versions = {f: envs.installed_versions(f) for f in families if envs.status(f) is None}
    return {
        "id": run_id, "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "host": platform.node(), "cpu_count": os.cpu_count(), "platform": platform.platform(),
        "python": platform.python_version(), "git_revision": git_revision(),
        "config": {"scenarios": config.scenarios, "backends": config.backends,
                   "rounds": config.rounds, **asdict(config.options),
                   "broker_urls": {k: mask(v) for k, v in config.urls.items() if v}},
        "library_versions": versions, "broker_versions": {}, "complete": False,
    }


class Runner:
    def __init__(self, config: RunConfig) -> None:
        self.config = config
        self.run_id = config.out.name
        self.writer = RunWriter(config.out, run_info(config, self.run_id))
        self.broker_dir = Path(tempfile.mkdtemp(prefix="queuebench-brokers-"))
        self.broker_dir.chmod(0o755)  # rabbitmq-server runs as its own user
        self.brokers = Brokers(self.broker_dir, config.urls)
        self.driver: subprocess.Popen[bytes] | None = None
        self.scenarios: dict[str, Scenario] = dict(SCENARIOS)
        self.cell_index = 0

    def plan(self) -> list[tuple[int, CellPlan]]:
        cells = []
        for round_no in range(1, self.config.rounds + 1):
            for name in self.config.scenarios:
                profiles = self.config.options.profiles
                if getattr(SCENARIOS[name], "all_profiles", False):  # it plans every profile
                    profiles = profiles[:1]
                for profile in profiles:
                    options = dataclasses.replace(self.config.options, profile=profile)
                    for backend in self.config.backends:
                        cells += [(round_no, c) for c in SCENARIOS[name].plan(backend, options)]
        return cells

    def run(self) -> dict[str, Any]:
        previous = {s: signal.signal(s, _raise_interrupt) for s in (signal.SIGINT, signal.SIGTERM)}
        plan = self.plan()
        progress = Progress(len(plan))
        interrupted = None
        try:
            for round_no, cell in plan:
                progress.step(f"r{round_no} {cell.scenario} {cell.backend} "
                              f"{_brief(cell.params)}")
                result = self.run_cell(round_no, cell)
                self.writer.add(result)
                progress.done(result["status"], _headline(result))
        except Interrupted as exc:
            interrupted = str(exc)
        finally:
            self._stop_driver()
            self.brokers.stop_all()
            shutil.rmtree(self.broker_dir, ignore_errors=True)
            for s, handler in previous.items():
                signal.signal(s, handler)
            self.writer.finish(
                finished=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                complete=interrupted is None, interrupted=interrupted,
                planned_cells=len(plan), broker_versions=self.brokers.versions,
                brokers=self.brokers.describe(),
            )
            progress.close()
        return {"run_dir": str(self.config.out), "interrupted": interrupted,
                "cells": self.writer.cells}

    # -- one cell -------------------------------------------------------------
    def _skip_reason(self, cell: CellPlan) -> tuple[str | None, str | None]:
        """(reason to skip, broker url)."""
        info = BACKENDS[cell.backend]
        env_problem = envs.status(info.family)
        if env_problem:
            return env_problem, None
        if info.broker is None:
            return None, None
        try:
            return None, self.brokers.url(info.broker)
        except BrokerError as exc:
            return str(exc).splitlines()[0], None

    def run_cell(self, round_no: int, cell: CellPlan) -> dict[str, Any]:
        self.cell_index += 1
        result: dict[str, Any] = {  # summary.json cell, see docs/results-schema.md
            "scenario": cell.scenario, "backend": cell.backend, "profile": cell.profile,
            "params": cell.params, "round": round_no, "status": "ok", "reason": None,
            "settings": {}, "metrics": {},
        }
        info = BACKENDS[cell.backend]
        reason, url = self._skip_reason(cell)
        if reason:
            result.update(status="skipped", reason=reason)
            return result
        fault = None
        if cell.broker_kill is not None and info.broker:
            try:
                fault = faults.prepare(self.brokers, info.broker, cell.broker_kill,
                                       self.broker_dir / f"cell{self.cell_index}")
            except BrokerError as exc:
                result.update(status="skipped", reason=str(exc).splitlines()[0])
                return result
            url = fault.url
        resolve = getattr(self.scenarios[cell.scenario], "resolve", None)
        if resolve is not None:
            try:
                cell = resolve(cell, self.writer.cells, round_no)
            except CellFailed as exc:
                result.update(status="failed", reason=str(exc))
                return result
            result["params"] = cell.params
        name = f"{self.cell_index:04d}-{cell.scenario}-{cell.backend}"
        cell_dir = self.config.out / "cells" / name
        cell_dir.mkdir(parents=True, exist_ok=True)
        spec = {
            # the driver gets the real URL through its environment: no password on disk
            "scenario": cell.scenario, "backend": cell.backend,
            "broker_url": mask(url) if url else None,
            "slots": self.config.options.slots, "profile": cell.profile,
            "results": self.config.options.results, "queue": f"qb{os.getpid()}c{self.cell_index}",
            "workload": cell.workload, "options": cell.options,
            "broker_ctl": self.brokers.control(info.broker) if info.broker else None,
        }
        (cell_dir / "cell.json").write_text(json.dumps(spec, indent=1))
        result["cell_dir"] = str(cell_dir.relative_to(self.config.out))
        try:
            meta, failure = self._drive(cell, cell_dir, fault, broker_url=url)
        finally:
            if fault is not None:
                fault.close()
        result["settings"] = {**meta.get("settings", {}), **cell.options,
                              "slots": self.config.options.slots, "profile": cell.profile,
                              "bulk_enqueue": meta.get("bulk_enqueue", False)}
        if failure:
            result.update(status="failed", reason=failure)
            return result
        try:
            records = load_records(cell_dir / "records")
            result["metrics"] = self.scenarios[cell.scenario].analyze(cell, records, meta)
        except CellFailed as exc:
            result.update(status="failed", reason=str(exc))
        return result

    def _drive(self, cell: CellPlan, cell_dir: Path, fault: faults.FaultBroker | None = None,
               broker_url: str | None = None) -> tuple[dict[str, Any], str | None]:
        """Run the driver; (driver metadata, failure reason or None).

        On failure, cell_dir/failure.txt keeps the whole error and the last
        lines of the driver's and every worker's log.
        """
        meta, failure = self._run_driver(cell, cell_dir, fault, broker_url)
        if failure:
            save_failure(cell_dir, failure, meta)
        return meta, failure

    def _run_driver(self, cell: CellPlan, cell_dir: Path, fault: faults.FaultBroker | None,
                    broker_url: str | None) -> tuple[dict[str, Any], str | None]:
        python = envs.python_of(BACKENDS[cell.backend].family)
        env = dict(os.environ)
        env["PYTHONPATH"] = str(envs.REPO_ROOT)
        if broker_url:
            env[BROKER_URL_ENV] = broker_url
        log = cell_dir / "driver.log"
        self.driver = procs.spawn([str(python), "-m", "harness.driver", "--cell",
                                   str(cell_dir / "cell.json")], env=env, log_path=log,
                                  cwd=envs.REPO_ROOT)
        try:
            if fault is None:
                self.driver.wait(timeout=cell.timeout_s)
            else:  # crash-recovery: kill and restart the broker when the driver asks
                fault.wait(self.driver, cell_dir, cell.timeout_s)
        except subprocess.TimeoutExpired:
            self._stop_driver()
            return _read_meta(cell_dir), (f"timed out after {cell.timeout_s:.0f}s; last driver "
                                          f"output: {_last_line(log)}")
        finally:
            if self.driver is not None and self.driver.poll() is None:
                self._stop_driver()
        self.driver = None
        meta = _read_meta(cell_dir)
        if "error" in meta:
            return meta, meta["error"].splitlines()[0][:500]
        if not meta:
            return meta, f"driver died without a result; last output: {_last_line(log)}"
        return meta, None

    def _stop_driver(self) -> None:
        if self.driver is not None:
            procs.stop_tree(self.driver, grace_s=5.0)
            self.driver = None


def save_failure(cell_dir: Path, failure: str, meta: dict[str, Any]) -> None:
    parts = [f"reason: {failure}", meta.get("error", ""), meta.get("traceback", "")]
    for log in [cell_dir / "driver.log", *sorted((cell_dir / "logs").glob("*.log"))]:
        text = procs.tail(log, 30)
        if text:
            parts.append(f"--- last lines of {log.relative_to(cell_dir)} ---\n{text}")
    (cell_dir / "failure.txt").write_text("\n".join(p for p in parts if p) + "\n")


def _read_meta(cell_dir: Path) -> dict[str, Any]:
    path = cell_dir / "driver.json"
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def _last_line(log: Path) -> str:
    return procs.tail(log, 1)[-300:] or "(none)"


def _brief(params: dict[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in params.items()
                    if k not in ("slots", "jobs", "duration_s") and v is not None)


def _headline(result: dict[str, Any]) -> str:
    if result["status"] != "ok":
        return result["reason"] or ""
    metrics = result["metrics"]
    for key, unit in (("jobs_per_s", "jobs/s"), ("bytes_per_job", "B/job")):
        if isinstance(metrics.get(key), int | float):
            return f"{metrics[key]:,.0f} {unit}"
    if "lost" in metrics:
        return f"lost {metrics['lost']}, duplicated {metrics['duplicated']}"
    if metrics.get("saturated"):
        return f"saturated (backlog {metrics.get('backlog')})"
    latency = metrics.get("latency_ms") or {}
    if latency.get("p50") is not None:
        return f"p50 {latency['p50']:.2f} ms, p99 {latency['p99']:.2f} ms"
    return ""


def default_run_dir() -> Path:
    return envs.REPO_ROOT / "results" / new_run_id()
