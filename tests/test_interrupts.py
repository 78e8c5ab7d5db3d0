"""A SIGINT/SIGTERM is never lost: deferred while a child starts, raised again when swallowed."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from core import interrupts, procs

ROOT = Path(__file__).resolve().parent.parent


def test_signal_inside_deferred_block_is_raised_when_it_ends():
    reached_end = False
    with interrupts.handled(), pytest.raises(interrupts.Interrupted, match="SIGTERM"):
        with interrupts.deferred():
            signal.raise_signal(signal.SIGTERM)
            reached_end = True
    assert reached_end


def test_swallowed_interrupt_is_raised_again_by_check():
    with interrupts.handled():
        try:
            signal.raise_signal(signal.SIGINT)
        except interrupts.Interrupted:
            pass  # what logging's at-fork hook does to an exception raised inside it
        with pytest.raises(interrupts.Interrupted, match="SIGINT"):
            interrupts.check()
    interrupts.check()  # a new handled() block starts clean; outside one nothing is pending
    with interrupts.handled():
        interrupts.check()


def test_child_started_during_an_interrupt_is_still_stopped():
    with interrupts.handled(), pytest.raises(interrupts.Interrupted):
        with interrupts.deferred():
            signal.raise_signal(signal.SIGTERM)
            child = procs.spawn(["sleep", "60"])
    assert child.poll() is None
    procs.stop_started(grace_s=2.0)
    assert child.poll() is not None


def test_handlers_are_restored():
    before = signal.getsignal(signal.SIGTERM)
    with interrupts.handled():
        assert signal.getsignal(signal.SIGTERM) is not before
    assert signal.getsignal(signal.SIGTERM) is before


# Runs `python -m harness list` with an import hook that raises KeyboardInterrupt when
# pandas is first imported: a Ctrl-C in the second `harness` spends importing, before
# main() has its own handler.
CTRL_C_DURING_IMPORT = """
import runpy, sys

class CtrlC:
    def find_spec(self, name, path=None, target=None):
        if name == "pandas":
            raise KeyboardInterrupt
        return None

sys.meta_path.insert(0, CtrlC())
sys.argv = ["harness", "list"]
runpy.run_module("harness", run_name="__main__", alter_sys=True)
"""


def test_ctrl_c_while_the_harness_imports_is_one_line_and_exit_130():
    done = subprocess.run([sys.executable, "-c", CTRL_C_DURING_IMPORT], capture_output=True,
                          text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 130, done.stderr
    assert done.stderr == "python -m harness: interrupted\n"
