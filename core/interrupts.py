"""SIGINT/SIGTERM as an exception that cannot get lost.

Python runs a signal handler between any two bytecodes of the main thread.
An exception raised there can land inside code that swallows it (logging's
at-fork hook during subprocess.Popen with a preexec_fn prints "Exception
ignored" and goes on), and the run would never stop. So the handler also
records the signal: `check()` raises it again at the next safe point, and
`deferred()` holds it back while a child process is being started, so the
child is never half-registered. Stdlib only: the drivers use it too.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(Exception):
    """SIGINT or SIGTERM reached this process."""


class _State:
    pending: str | None = None  # the signal received inside handled()
    deferring = 0  # depth of deferred() blocks


def _handler(signum: int, _frame: FrameType | None) -> None:
    _State.pending = signal.Signals(signum).name
    if not _State.deferring:
        raise Interrupted(_State.pending)


def check() -> None:
    """Raise Interrupted if a signal arrived, even one whose exception was swallowed."""
    if _State.pending is not None and not _State.deferring:
        raise Interrupted(_State.pending)


@contextmanager
def shielded() -> Iterator[None]:
    """Hold signals back during clean-up that must finish (stopping the brokers and
    workers a run started): a second Ctrl-C there would leave them running. A signal
    that arrives stays pending (`pending()`, `check()`), it is not raised at the end."""
    _State.deferring += 1
    try:
        yield
    finally:
        _State.deferring -= 1


@contextmanager
def deferred() -> Iterator[None]:
    """Hold a signal back until the block is done, then raise it."""
    with shielded():
        yield
    check()


def pending() -> str | None:
    """The name of a signal received and not yet raised, if any."""
    return _State.pending


@contextmanager
def handled() -> Iterator[None]:
    """Turn SIGINT/SIGTERM into Interrupted inside the block; restore the old handlers after."""
    previous: dict[int, Callable[..., object] | int | None] = {
        s: signal.signal(s, _handler) for s in SIGNALS}
    _State.pending = None
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
        _State.pending = None
