"""The run's private folders in the system's temporary directory, each marked with the
pid that made it, so a later run removes those of a harness that was killed (SIGKILL
leaves no chance to clean up) instead of letting them pile up."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from core import procs

OWNER = ".owner"  # the pid of the process that made the folder


def private_dir(prefix: str, mode: int) -> Path:
    """A new folder `<tmp>/<prefix>XXXX` with `mode`, after removing that prefix's folders
    whose maker is dead."""
    sweep_orphans(prefix)
    made = Path(tempfile.mkdtemp(prefix=prefix))
    (made / OWNER).write_text(str(os.getpid()))
    made.chmod(mode)
    return made


def sweep_orphans(prefix: str) -> None:
    """Remove `<tmp>/<prefix>*` folders whose maker no longer runs (unmarked ones, from
    elsewhere or an older harness, are left alone)."""
    for folder in Path(tempfile.gettempdir()).glob(f"{prefix}*"):
        try:
            pid = int((folder / OWNER).read_text())
        except (OSError, ValueError):
            continue
        if not procs.alive(pid):
            shutil.rmtree(folder, ignore_errors=True)

