"""Process helpers shared by the coordinator, drivers and worker groups.

Stdlib only (runs in every backend environment). Every child the harness
starts gets its own process group and PR_SET_PDEATHSIG, so it dies with its
parent even when the parent is SIGKILLed, and a whole tree can be stopped
by signalling its group.
"""

from __future__ import annotations

import ctypes
import os
import pwd
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from core import interrupts

_PR_SET_PDEATHSIG = 1
_started: list[subprocess.Popen[bytes]] = []  # every child spawn() made, pruned as they end


def die_with_parent() -> None:
    """SIGKILL this process when its parent dies (Linux; elsewhere nothing)."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except OSError:
        pass


def _die_with_parent() -> None:
    """Run in the child before exec (after any change of user, which would clear it):
    new process group, SIGKILL when the parent dies."""
    os.setpgrp()
    die_with_parent()


def spawn(
    cmd: Sequence[str],
    *,
    env: dict[str, str] | None = None,
    log_path: Path | None = None,
    cwd: Path | None = None,
    user: str | None = None,
) -> subprocess.Popen[bytes]:
    """Start `cmd` in its own process group, stdout+stderr to `log_path`; as `user`
    when given (needs root)."""
    as_user: dict[str, Any] = {}
    if user is not None:
        as_user = {"user": user, "group": pwd.getpwnam(user).pw_gid, "extra_groups": []}
    out: int | object = subprocess.DEVNULL
    handle = None
    if log_path is not None:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(log_path, "ab")
        out = handle
    try:
        # a signal is held back until the child is registered, then raised
        with interrupts.deferred():
            proc = subprocess.Popen(
                list(cmd), env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=out,
                stderr=subprocess.STDOUT, preexec_fn=_die_with_parent, **as_user,
            )
            _started[:] = [p for p in _started if p.poll() is None]
            _started.append(proc)
        return proc
    finally:
        if handle is not None:
            handle.close()


def orphan_guard(group: int, cleanup: Sequence[str]) -> subprocess.Popen[bytes]:
    """Start core/orphan_guard.py for process group `group`: outside this process's tree
    and session (it must outlive a harness killed with SIGKILL), it stops the group and
    runs `cleanup` once the harness is gone."""
    return subprocess.Popen(
        [sys.executable, "-m", "core.orphan_guard", str(os.getpid()), str(group), *cleanup],
        cwd=Path(__file__).resolve().parent.parent, start_new_session=True,
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop_started(grace_s: float = 5.0) -> None:
    """Stop every child spawn() started that is still alive: the last line of defence
    when an interrupt arrived before its owner could keep hold of it."""
    left = [p for p in _started if p.poll() is None]
    if left:
        stop_trees(left, grace_s, whole_group=True)
    _started.clear()


def children_map() -> dict[int, list[int]]:
    """ppid -> pids, read from /proc."""
    tree: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        tree.setdefault(ppid, []).append(int(entry.name))
    return tree


def descendants(pid: int) -> list[int]:
    """All live descendants of `pid` (not including it)."""
    tree = children_map()
    found: list[int] = []
    stack = [pid]
    while stack:
        for child in tree.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


_TICKS_PER_S = os.sysconf("SC_CLK_TCK")
_CPUCLOCK_SCHED = 2  # linux/posix-timers.h: a process's CPU clock in ns, all its threads


def _process_cpu_ns(pid: int) -> int | None:
    """The CPU time of `pid` in ns, its ended threads included, from its CPU clock
    (clock_getcpuclockid's id: ~pid << 3 | CPUCLOCK_SCHED); None once it is gone."""
    try:
        return time.clock_gettime_ns(((~pid) << 3) | _CPUCLOCK_SCHED)
    except OSError:
        return None


def _zombie_children(pids: set[int]) -> set[int]:
    """Children of `pids` that have ended and are not reaped yet: their CPU is in
    neither their parent's cutime nor a live process's clock until they are."""
    found = set()
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                state, ppid = Path(entry.path, "stat").read_text().rsplit(")", 1)[1].split()[:2]
            except (OSError, ValueError):
                continue
            if state == "Z" and int(ppid) in pids:
                found.add(int(entry.name))
    return found


def cpu_seconds(pids: Sequence[int]) -> float:
    """CPU time (user + system) the processes `pids` have used so far: each one's CPU
    clock (ns), plus its reaped children's (cutime + cstime in clock ticks: an RQ work
    horse's CPU is its worker's once reaped), plus their ended, unreaped children's.
    A live child of one of them must be in `pids` itself; a pid that is gone counts
    nothing. A child reaped between two of these reads can be missed: rare, and
    only ever by one child."""
    total = 0.0
    wanted = set(pids)
    for pid in wanted | _zombie_children(wanted):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        own_ns = _process_cpu_ns(pid)
        own = (own_ns / 1e9 if own_ns is not None  # stat fields 14-15: utime, stime
               else (int(fields[11]) + int(fields[12])) / _TICKS_PER_S)
        total += own + (int(fields[13]) + int(fields[14])) / _TICKS_PER_S  # 16-17
    return total


def alive(pid: int) -> bool:
    """True if `pid` exists and is not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def signal_tree(pid: int, sig: int) -> None:
    """Send `sig` to pid's process group and to every descendant."""
    targets = descendants(pid) + [pid]
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass
    for target in targets:
        try:
            os.kill(target, sig)
        except (ProcessLookupError, PermissionError):
            pass


def stop_tree(proc: subprocess.Popen[bytes], grace_s: float = 5.0,
              whole_group: bool = False) -> None:
    """SIGTERM `proc`, SIGKILL whatever is left of its tree after `grace_s`."""
    stop_trees([proc], grace_s, whole_group)


def kill9_and_wait(pids: Sequence[int], timeout_s: float = 5.0) -> bool:
    """SIGKILL every pid of `pids` at once, then wait until none is alive (a zombie
    counts as dead: its records are complete). False when none of them existed."""
    hit = False
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
            hit = True
        except ProcessLookupError:  # ended between listing and kill (a work horse)
            continue
    deadline = time.monotonic() + timeout_s
    while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.005)
    return hit


def stop_trees(started: Sequence[subprocess.Popen[bytes]], grace_s: float = 5.0,
               whole_group: bool = False) -> None:
    """Stop several process trees at once: SIGTERM, wait, SIGKILL the rest.

    By default only the top process gets SIGTERM: frameworks with a parent
    and pool children (celery, dramatiq, rq) shut their children down
    gracefully themselves, and a second SIGTERM sent straight to a child
    makes some of them exit at once. `whole_group` signals every process.
    Returns once every process of the trees has ended (or `grace_s` after the
    SIGKILLs): a killed child takes a moment to die, and a caller that checks
    right away must not find it still running.
    """
    tree = [pid for proc in started for pid in [proc.pid, *descendants(proc.pid)]]
    for proc in started:
        if whole_group:
            signal_tree(proc.pid, signal.SIGTERM)
        else:
            try:
                os.kill(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and any(alive(p) for p in tree):
        for proc in started:
            proc.poll()
        time.sleep(0.05)
    for pid in tree:
        if alive(pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    for proc in started:
        signal_tree(proc.pid, signal.SIGKILL)
        try:
            proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            pass
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and any(alive(p) for p in tree):
        time.sleep(0.01)


def tail(path: Path, lines: int = 20) -> str:
    """Last `lines` lines of a log file, or '' when there is none."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.rstrip().splitlines()[-lines:])
