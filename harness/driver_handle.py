"""The coordinator's handle on one driver: the only way the runner talks to it.

LocalDriver runs the driver as a subprocess in the backend's environment
and talks through files in each cell's folder (cell.json in, driver.json
out). A remote implementation (a driver on another host) implements the
same Protocol; the runner and the scenarios do not change.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from core import procs
from core.envnames import BROKER_URL_ENV
from core.protocol import CellSpec, DriverReport
from harness import envs


class DriverHandle(Protocol):
    def start(self, cell_dirs: Sequence[Path]) -> None:
        """Start the driver on these cells, in order (bound or still to be bound)."""

    def bind(self, cell_dir: Path, spec: CellSpec) -> None:
        """Hand the driver a cell's spec (it waits for it before running the cell)."""

    def report(self, cell_dir: Path) -> DriverReport | None:
        """The cell's report once the driver has written it, else None."""

    def alive(self) -> bool:
        """False once the driver process has exited."""

    def wait_exit(self, timeout_s: float) -> None:
        """Let the driver finish on its own (stop its workers), then make sure it is gone."""

    def stop(self) -> None:
        """Stop the driver and everything it started, now."""

    def last_output(self) -> str:
        """The driver's last line of output, for a failure reason."""


class LocalDriver:
    """A driver subprocess on this machine, in the backend's environment."""

    def __init__(self, family: str, url: str | None, log: Path,
                 env: dict[str, str] | None = None) -> None:
        self.family = family
        self.url = url
        self.log = log
        self.env = env or {}  # set in the driver's environment, which its workers inherit
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, cell_dirs: Sequence[Path]) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = str(envs.REPO_ROOT)
        env.update(self.env)
        if self.url:  # the real URL travels in the environment, never in cell.json
            env[BROKER_URL_ENV] = self.url
        self.proc = procs.spawn(
            [str(envs.python_of(self.family)), "-m", "harness.driver",
             *(str(d / "cell.json") for d in cell_dirs)],
            env=env, log_path=self.log, cwd=envs.REPO_ROOT)

    def bind(self, cell_dir: Path, spec: CellSpec) -> None:
        tmp = cell_dir / "cell.json.tmp"
        tmp.write_text(spec.to_json())
        tmp.replace(cell_dir / "cell.json")

    def report(self, cell_dir: Path) -> DriverReport | None:
        return DriverReport.read(cell_dir)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def wait_exit(self, timeout_s: float = 30.0) -> None:
        if self.proc is not None:
            try:
                self.proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                pass
        self.stop()

    def stop(self) -> None:
        if self.proc is not None:
            procs.stop_tree(self.proc, grace_s=5.0)
            self.proc = None

    def last_output(self) -> str:
        return procs.tail(self.log, 1)[-300:] or "(none)"
