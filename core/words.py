"""Counts in words ("1 row", "4 rows") and texts cut to a size a reader can use."""

from __future__ import annotations


def counted(count: int, noun: str, plural: str | None = None) -> str:
    """`count` and `noun`, the plural (noun + "s" unless given) for any count but 1."""
    return f"{count:,} {noun if count == 1 else plural or noun + 's'}"


def clipped(text: str, limit: int) -> str:
    """`text`, or its head and tail with the middle cut out when it is longer than
    `limit` characters: a library's error may quote a whole payload (hundreds of MB)."""
    if len(text) <= limit:
        return text
    keep = max(0, limit - 60) // 2
    return f"{text[:keep]} [... {len(text) - 2 * keep:,} characters cut ...] {text[-keep:]}"
