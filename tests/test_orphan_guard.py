"""A harness killed with SIGKILL (the OOM killer, `kill -9`) leaves no broker behind:
RabbitMQ's processes escape the death signal every other child gets, and the orphan
guard (core/orphan_guard.py) stops them and the node's private epmd."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from core.brokers.rabbitmq import RabbitMQ
from tests.conftest import REPO

HARNESS = """
import sys, time
from pathlib import Path
from harness.brokers import Brokers
brokers = Brokers(Path(sys.argv[1]), {})
brokers.url("amqp")
server = brokers.owned["amqp"]
print(server.port, server.epmd_port, flush=True)
time.sleep(600)
"""


def node_pids(epmd_port: int) -> list[int]:
    """The processes of the RabbitMQ node that uses this private epmd port (the Erlang
    VM's command line names it; the node's shell scripts have it in their environment)."""
    found = subprocess.run(["pgrep", "-f", f"epmd_port {epmd_port}"], capture_output=True,
                           text=True, check=False).stdout.split()
    return [int(pid) for pid in found]


def listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.slow
@pytest.mark.extended  # a RabbitMQ start and stop; the guard's loop has a fast test below
def test_a_harness_killed_with_sigkill_leaves_no_rabbitmq() -> None:
    if RabbitMQ.find_binary() is None:
        pytest.skip(RabbitMQ.missing_binary())
    data = Path(tempfile.mkdtemp(prefix="queuebench-test-orphan-"))
    data.chmod(0o755)  # rabbitmq-server runs as its own user: its dir must be reachable
    harness = subprocess.Popen([sys.executable, "-c", HARNESS, str(data)], cwd=REPO,
                               stdout=subprocess.PIPE, text=True,
                               env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        assert harness.stdout is not None
        port, epmd_port = map(int, harness.stdout.readline().split())
        assert node_pids(epmd_port) and listening(port) and listening(epmd_port)
    finally:
        harness.send_signal(signal.SIGKILL)
        harness.wait()
    deadline = time.monotonic() + 30
    while (node_pids(epmd_port) or listening(epmd_port)) and time.monotonic() < deadline:
        time.sleep(0.5)
    left = node_pids(epmd_port)
    epmd_was_left = listening(epmd_port)
    for pid in left:  # leave the machine clean even when the test fails
        os.kill(pid, signal.SIGKILL)
    if epmd_was_left:
        time.sleep(1)  # epmd refuses -kill while the killed node is still registered
        epmd = shutil.which("epmd") or next(Path("/usr/lib/erlang").glob("erts-*/bin/epmd"))
        subprocess.run([str(epmd), "-kill"], env={"ERL_EPMD_PORT": str(epmd_port)},
                       capture_output=True, timeout=10, check=False)
    shutil.rmtree(data, ignore_errors=True)
    assert not left, f"RabbitMQ outlived the harness: {left}"
    assert not epmd_was_left, "the node's private epmd outlived the harness"


GUARDED_PARENT = """
import subprocess, sys
from core import procs
group = subprocess.Popen(["sleep", "600"], start_new_session=True)
procs.orphan_guard(group.pid, ["touch", sys.argv[1]])
print(group.pid, flush=True)
"""


def test_the_guard_stops_the_group_and_cleans_up_once_its_parent_is_gone(
        tmp_path: Path) -> None:
    """The parent exits without stopping its server (a stand-in: `sleep`): the guard,
    re-parented, stops the group and runs the clean-up command."""
    done = subprocess.run([sys.executable, "-c", GUARDED_PARENT, str(tmp_path / "cleaned")],
                          capture_output=True, text=True, cwd=REPO, timeout=30,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    group = int(done.stdout.split()[0])
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and not (tmp_path / "cleaned").exists():
        time.sleep(0.1)
    alive = subprocess.run(["ps", "-o", "stat=", "-p", str(group)], capture_output=True,
                           text=True, check=False).stdout.strip()
    if alive and not alive.startswith("Z"):
        os.killpg(group, signal.SIGKILL)
    assert (tmp_path / "cleaned").exists(), "the guard never ran its clean-up"
    assert not alive or alive.startswith("Z"), f"the group outlived its parent ({alive})"
