"""The project's argparse flavour: bad input is one line on stderr and exit 2."""

from __future__ import annotations

import argparse
import sys


class UsageError(ValueError):
    """Input that passed argparse but cannot run (e.g. a payload the broker refuses)."""


class OneLineParser(argparse.ArgumentParser):
    """argparse that reports bad input in one line, exit code 2, no usage dump."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        sys.exit(2)
