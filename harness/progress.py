"""A one-line progress display on stderr (plain lines when not a terminal)."""

from __future__ import annotations

import sys
import time


class Progress:
    def __init__(self, total: int) -> None:
        self.total = total
        self.count = 0
        self.started = time.monotonic()
        self.tty = sys.stderr.isatty()
        self.label = ""

    def _bar(self) -> str:
        width = 20
        filled = int(width * self.count / self.total) if self.total else width
        return f"[{'#' * filled}{'.' * (width - filled)}] {self.count}/{self.total}"

    def step(self, label: str) -> None:
        self.label = label
        if self.tty:
            sys.stderr.write(f"\r\033[K{self._bar()} {label} ...")
            sys.stderr.flush()

    def done(self, label: str, status: str, detail: str) -> None:
        self.label = label
        self.count += 1
        elapsed = time.monotonic() - self.started
        line = f"{self._bar()} {elapsed:5.0f}s {self.label}: {status} {detail}"
        sys.stderr.write(("\r\033[K" if self.tty else "") + line[:200] + "\n")
        sys.stderr.flush()

    def close(self) -> None:
        sys.stderr.flush()
