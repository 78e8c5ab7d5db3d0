"""Redis key patterns shared by the arq and rq adapters (stdlib only).

Both adapters name every key of a cell after its queue and purge with SCAN
MATCH; a queue name must then match only itself, never act as a glob.
"""

from __future__ import annotations

import re


def glob_escape(text: str) -> str:
    """Escape Redis glob characters (* ? [ ] \\) so `text` matches literally."""
    return re.sub(r"([*?\[\]\\])", r"\\\1", text)
