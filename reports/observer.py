"""The self-test's observer effect, as saved next to a run (observer.json)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

OBSERVER_FILE = "observer.json"


def load_observer(run_dir: Path) -> dict[str, Any] | None:
    """The run's observer.json ({"date", "backends": {name: {...}}}), or None."""
    path = run_dir / OBSERVER_FILE
    if not path.exists():
        return None
    return json.loads(path.read_text())
