"""Stopping process trees: when stop_trees returns, nothing of the trees runs."""

from __future__ import annotations

import sys
import time

from core import procs

# A parent and a child that both ignore SIGTERM: only the SIGKILLs after the grace end them.
STUBBORN = """
import signal, subprocess, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
subprocess.Popen([sys.executable, "-c",
                  "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
                  "print('child up', flush=True); time.sleep(60)"])
time.sleep(60)
"""


def test_a_tree_that_ignores_sigterm_is_gone_when_stop_trees_returns(tmp_path) -> None:
    log = tmp_path / "tree.log"
    proc = procs.spawn([sys.executable, "-c", STUBBORN], log_path=log)
    deadline = time.monotonic() + 10
    while "child up" not in log.read_text() and time.monotonic() < deadline:
        time.sleep(0.02)
    tree = [proc.pid, *procs.descendants(proc.pid)]
    assert len(tree) == 2, tree
    procs.stop_trees([proc], grace_s=0.3)
    assert [pid for pid in tree if procs.alive(pid)] == []
