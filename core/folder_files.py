"""The files of a folder that workers add to, held open for a reader that polls it.

The driver reads a cell's records and job counts every 20 ms while the workers run
on the same cores. Listing the folder and opening every file on each poll cost it
about 0.65 ms here (3% of a core, taken from the workers); with each file opened
once, a poll is a stat of the folder and one read per file.

The folder is listed again when its modification time moved (a file was created),
and also on the poll after any listing made less than SETTLE_NS after that time:
the kernel stamps folders from a coarse clock (a few ms per tick), so a file
created within one tick of a listing may leave the time where that listing saw it.
"""

from __future__ import annotations

import os
import time
import weakref
from pathlib import Path

SETTLE_NS = 50_000_000  # far above a coarse clock tick (1-10 ms)


def _close_all(descriptors: dict[str, int]) -> None:
    for descriptor in descriptors.values():
        os.close(descriptor)
    descriptors.clear()


class FolderFiles:
    """Read-only descriptors of the files named *`suffix` in `directory` (which may
    not exist yet), by name; closed when the object is collected."""

    def __init__(self, directory: Path, suffix: str) -> None:
        self.directory = directory
        self.suffix = suffix
        self.descriptors: dict[str, int] = {}
        self._seen_mtime_ns: int | None = None
        self._settled = False
        weakref.finalize(self, _close_all, self.descriptors)

    def open_files(self) -> dict[str, int]:
        """Every such file now in the folder, opened once."""
        try:
            mtime_ns = os.stat(self.directory).st_mtime_ns
        except FileNotFoundError:
            return self.descriptors
        if mtime_ns == self._seen_mtime_ns and self._settled:
            return self.descriptors
        listed_ns = time.time_ns()
        with os.scandir(self.directory) as entries:
            for entry in entries:
                if entry.name.endswith(self.suffix) and entry.name not in self.descriptors:
                    self.descriptors[entry.name] = os.open(entry.path, os.O_RDONLY)
        self._seen_mtime_ns = mtime_ns
        self._settled = listed_ns - mtime_ns > SETTLE_NS
        return self.descriptors
