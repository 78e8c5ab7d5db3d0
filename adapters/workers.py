"""Worker process management shared by every adapter with separate workers.

Starts the framework's real worker command N times, waits until each log
shows the framework's own readiness line, lists the live PIDs, and stops
the whole process tree. A worker that dies before it is ready fails fast
with the tail of its log.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

from adapters.base import Adapter
from core import interrupts, procs
from core.envnames import RECORDS_DIR_ENV

REPO_ROOT = Path(__file__).resolve().parent.parent
READY_LINE = "queuebench: worker ready"


class WorkerStartError(RuntimeError):
    """A worker exited or never became ready."""


def worker_env(records_dir: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for worker processes: the project importable, records located."""
    env = dict(os.environ)
    env[RECORDS_DIR_ENV] = str(records_dir)
    path = env.get("PYTHONPATH", "")
    env["PYTHONPATH"] = f"{REPO_ROOT}{os.pathsep}{path}" if path else str(REPO_ROOT)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


def python_module(module: str, *args: str) -> list[str]:
    """Command that runs `python -m module args` in the current environment."""
    return [sys.executable, "-m", module, *args]


def announce_ready() -> None:
    """Print READY_LINE: for a worker whose framework logs no readiness line by default,
    called from the framework's own startup hook (saq's startup, streaq's lifespan)."""
    print(READY_LINE, flush=True)


def console_script(name: str) -> str:
    """Path of a framework's CLI installed next to this interpreter."""
    return str(Path(sys.executable).parent / name)


class WorkerGroup:
    """A set of identical worker processes started from one command."""

    def __init__(self, name: str, log_dir: Path, env: dict[str, str]) -> None:
        self.name = name
        self.log_dir = log_dir
        self.env = env
        self.procs: list[subprocess.Popen[bytes]] = []
        self._generation = 0
        self._command: tuple[list[str], str, float] | None = None  # the last start()'s
        self.full_size = 0  # processes of a whole set: what a fresh start() started

    def _log(self, index: int) -> Path:
        return self.log_dir / f"{self.name}-{self._generation}-{index}.log"

    def start(self, cmd: Sequence[str], count: int, ready: str, timeout_s: float = 60.0) -> None:
        """Start `count` copies of `cmd`; wait until each log matches `ready`."""
        self._generation += 1
        self._command = (list(cmd), ready, timeout_s)
        if not self.procs:
            self.full_size = count
        new = [
            procs.spawn(cmd, env=self.env, log_path=self._log(i), cwd=REPO_ROOT)
            for i in range(count)
        ]
        self.procs.extend(new)
        pattern = re.compile(ready)
        pending = set(range(count))
        deadline = time.monotonic() + timeout_s
        while pending:
            for index in list(pending):
                if pattern.search(self._log(index).read_text(errors="replace")):
                    pending.discard(index)
                elif new[index].poll() is not None:
                    raise WorkerStartError(
                        f"{self.name} worker exited with code {new[index].returncode} before "
                        f"it was ready:\n{procs.tail(self._log(index))}"
                    )
            if pending and time.monotonic() > deadline:
                raise WorkerStartError(
                    f"{self.name} worker not ready after {timeout_s:.0f}s:\n"
                    f"{procs.tail(self._log(min(pending)))}"
                )
            if pending:
                time.sleep(0.05)
                interrupts.check()

    def pids(self) -> list[int]:
        """Every live process of the group: the started ones and their children."""
        found: list[int] = []
        for proc in self.procs:
            if procs.alive(proc.pid):
                found.append(proc.pid)
                found.extend(p for p in procs.descendants(proc.pid) if procs.alive(p))
        return found

    def node_of(self, pid: int) -> subprocess.Popen[bytes] | None:
        """The started process whose tree holds `pid` (itself or a descendant)."""
        for proc in self.procs:
            if procs.alive(proc.pid) and (pid == proc.pid or pid in procs.descendants(proc.pid)):
                return proc
        return None

    def kill_node(self, running: Sequence[int]) -> list[int]:
        """SIGKILL, all at once, the whole tree of the first node that runs a pid of
        `running`; the pids killed (empty: no node runs one)."""
        for pid in running:
            node = self.node_of(pid)
            if node is None:
                continue
            tree = [node.pid, *procs.descendants(node.pid)]
            procs.kill9_and_wait(tree)
            node.poll()  # reap it, or it lingers as a zombie
            return tree
        return []

    def dead(self) -> list[subprocess.Popen[bytes]]:
        """Started processes that have exited."""
        return [proc for proc in self.procs if proc.poll() is not None]

    def drop_dead(self) -> int:
        """Forget the started processes that have exited; how many there were."""
        gone = self.dead()
        self.procs = [proc for proc in self.procs if proc not in gone]
        return len(gone)

    def respawn_dead(self) -> None:
        """Start as many copies of the last command as have exited: exactly what died."""
        count = self.drop_dead()
        if count and self._command is not None:
            cmd, ready, timeout_s = self._command
            self.start(cmd, count, ready, timeout_s)

    def live(self) -> int:
        """Started processes still running."""
        return sum(procs.alive(proc.pid) for proc in self.procs)

    def stop(self, grace_s: float = 5.0) -> None:
        """Stop every process of the group (SIGTERM, then SIGKILL after grace)."""
        procs.stop_trees(self.procs, grace_s=grace_s)
        self.procs.clear()


class WorkerProcessAdapter(Adapter):
    """An adapter whose jobs run in separate worker processes, kept in `self.workers`.

    Subclasses create the WorkerGroup in __init__ and start it their own
    way; stopping, listing and killing are the same for all of them.
    """

    stop_grace_s: ClassVar[float] = 5.0  # SIGTERM to the main processes, SIGKILL after this
    workers: WorkerGroup

    def stop_workers(self, grace_s: float | None = None) -> None:
        self.workers.stop(grace_s=self.stop_grace_s if grace_s is None else grace_s)

    def worker_pids(self) -> list[int]:
        return self.workers.pids()

    def kill_node(self, running: Sequence[int]) -> list[int]:
        return self.workers.kill_node(running)

    def dead_workers(self) -> int:
        return len(self.workers.dead())

    def capacity(self) -> int:
        """The slots of the live nodes: every node of a set runs slots / set size."""
        size = self.workers.full_size
        return self.config.slots * self.workers.live() // size if size else 0

    def replace_dead(self) -> None:
        self.workers.respawn_dead()
