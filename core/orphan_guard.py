"""Stops a server's process group when the harness dies without stopping it.

    python -m core.orphan_guard PARENT_PID GROUP [CLEANUP COMMAND...]

Every child the harness spawns dies with it (PR_SET_PDEATHSIG, core/procs.py), but
the signal is per process: what a server forks after a change of user does not
inherit it (RabbitMQ: `runuser` forks, then rabbitmq-server's shell starts beam).
This guard, a process of its own outside the harness's tree, polls: while GROUP is
alive and its parent is still PARENT_PID it waits; once the harness is gone (it was
re-parented) it stops GROUP (TERM, then KILL) and runs the cleanup command (for
RabbitMQ, `epmd -kill` for the node's private epmd, which detaches). It exits by
itself once GROUP is gone, so a normal stop needs nothing from it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

POLL_S = 0.5
GRACE_S = 10.0


def group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, under another user
        return True
    return True


def stop_group(group: int) -> None:
    """TERM the group, KILL what is left after GRACE_S."""
    for sig, wait_s in ((signal.SIGTERM, GRACE_S), (signal.SIGKILL, 2.0)):
        try:
            os.killpg(group, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait_s
        while group_alive(group) and time.monotonic() < deadline:
            time.sleep(0.1)


def main(argv: list[str]) -> int:
    parent, group, cleanup = int(argv[0]), int(argv[1]), argv[2:]
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C is the harness's to handle
    while group_alive(group):
        if os.getppid() != parent:  # the harness died: nobody else will stop the server
            stop_group(group)
            if cleanup:
                subprocess.run(cleanup, capture_output=True, timeout=30, check=False)
            return 0
        time.sleep(POLL_S)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
