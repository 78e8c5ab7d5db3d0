"""A SIGINT/SIGTERM is never lost: deferred while a child starts, raised again when swallowed."""

from __future__ import annotations

import signal

import pytest

from core import interrupts, procs


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
