"""Shared fixtures: real brokers started by the harness itself, never fakes."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness import envs
from harness.brokers import BrokerError, Brokers

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session", autouse=True)
def scratch_tmpdir() -> Iterator[Path]:
    """A TMPDIR for every process the tests start, removed at the end: what a library
    leaves in one (billiard's pymp-* when a Celery prefork pool stops) goes with it, as a
    run's drivers and workers get one of the run's (harness/runner.py)."""
    scratch = Path(tempfile.mkdtemp(prefix="queuebench-test-tmp-"))
    scratch.chmod(0o1777)  # the broker users (rabbitmq, postgres) write there too
    before = os.environ.get("TMPDIR")
    os.environ["TMPDIR"] = str(scratch)
    try:
        yield scratch
    finally:
        if before is None:
            os.environ.pop("TMPDIR", None)
        else:
            os.environ["TMPDIR"] = before
        shutil.rmtree(scratch, ignore_errors=True)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that uses real brokers (the `brokers` fixture) is an end-to-end test: marked
    slow, so `make test-fast` (-m "not slow") leaves it out whether or not it says so."""
    for item in items:
        if "brokers" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def brokers() -> Iterator[Brokers]:
    base = Path(tempfile.mkdtemp(prefix="queuebench-test-brokers-"))
    base.chmod(0o755)
    pool = Brokers(base, {})
    try:
        yield pool
    finally:
        pool.stop_all()
        shutil.rmtree(base, ignore_errors=True)


def broker_url(brokers: Brokers, kind: str | None) -> str | None:
    """URL of a real broker of `kind`; the test fails (not skips) when none can start."""
    if kind is None:
        return None
    try:
        return brokers.url(kind)
    except BrokerError as exc:
        pytest.fail(f"{kind} broker unavailable: {exc}")


def require_env(family: str) -> Path:
    problem = envs.status(family)
    if problem:
        pytest.fail(problem)
    return envs.python_of(family)


def harness_cli(*args: str, timeout: float = 600, **kwargs: object
                ) -> subprocess.CompletedProcess[str]:
    """Run `python -m harness ARGS` as a user would."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "harness", *args], capture_output=True,
                          text=True, timeout=timeout, cwd=REPO, env=env, **kwargs)


def session_of(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return int(fields[3]) if fields[0] not in ("Z", "X") else None


def live_in_session(sid: int) -> list[str]:
    """Command lines of live processes in session `sid` (what the harness started)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and session_of(int(entry.name)) == sid:
            try:
                found.append((entry / "cmdline").read_bytes().replace(b"\0", b" ").decode())
            except OSError:
                continue
    return found


def epmd_pids() -> set[int]:
    """Live epmd daemons: a RabbitMQ node's detaches from every session, so a test that
    checks what a run left behind compares these before and after."""
    from core.procs import alive
    found = subprocess.run(["pgrep", "-x", "epmd"], capture_output=True, text=True).stdout
    return {int(pid) for pid in found.split() if alive(int(pid))}


def start_harness(*args: str, **kwargs: object) -> subprocess.Popen[str]:
    """`python -m harness ARGS` in a session of its own, to find every process it starts."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, "-m", "harness", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=REPO, env=env,
                            start_new_session=True, **kwargs)
