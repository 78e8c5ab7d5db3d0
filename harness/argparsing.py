"""The project's argparse flavour: bad input is one line on stderr and exit 2; the value
types its commands share (lists of names or numbers, bounded whole numbers)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable


class UsageError(ValueError):
    """Input that passed argparse but cannot run (e.g. a payload the broker refuses)."""


class OneLineParser(argparse.ArgumentParser):
    """argparse that reports bad input in one line, exit code 2, no usage dump."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        sys.exit(2)


def name_list(valid: Callable[[], list[str]], what: str,
              also: Callable[[str], bool] = lambda _name: False,
              all_of: Callable[[], list[str]] | None = None,
              hint: str = "") -> Callable[[str], list[str]]:
    """argparse type: a comma list of names (valid ones, or any `also` accepts), or 'all'
    (`all_of()`, by default every valid name)."""

    def parse(text: str) -> list[str]:
        names = [n.strip() for n in text.split(",")]
        if any(not n for n in names):
            raise argparse.ArgumentTypeError(f"malformed {what} list {text!r}")
        if names == ["all"]:
            return (all_of or valid)()
        unknown = [n for n in names if n not in valid() and not also(n)]
        if unknown:
            raise argparse.ArgumentTypeError(
                f"unknown {what} {', '.join(map(repr, unknown))}; valid: "
                f"{', '.join(valid())} (or all)" + (f"; {hint}" if hint else ""))
        return list(dict.fromkeys(names))

    return parse


def whole_number(maximum: int, what: str) -> Callable[[str], int]:
    """argparse type: a whole number from 1 to `maximum`."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if not 1 <= value <= maximum:
            raise argparse.ArgumentTypeError(f"{what} must be from 1 to {maximum:,}: got {text}")
        return value

    return parse


def number_list(kind: type, minimum: float, maximum: float, what: str
                ) -> Callable[[str], tuple]:
    """argparse type: a comma list of numbers from minimum to maximum (so never NaN or
    infinite); a float that is whole is kept as an int, as the defaults are (0, not 0.0)."""

    def parse(text: str) -> tuple:
        try:
            values = tuple(kind(v) for v in text.split(","))
        except ValueError:
            raise argparse.ArgumentTypeError(f"malformed {what} list {text!r}") from None
        bad = [v for v in values if not minimum <= v <= maximum]
        if bad:
            raise argparse.ArgumentTypeError(
                f"{what} must be from {minimum:g} to {maximum:,.0f}: got {bad[0]}")
        return tuple(dict.fromkeys(int(v) if float(v).is_integer() else v for v in values))

    return parse
