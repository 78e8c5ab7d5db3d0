"""A killed harness's private temporary folders are removed by the next run."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from core.scratch import OWNER, private_dir


def test_a_dead_makers_folders_go_and_the_rest_stay() -> None:
    prefix = f"queuebench-test-scratch-{os.getpid()}-"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    orphan = Path(tempfile.mkdtemp(prefix=prefix))
    (orphan / OWNER).write_text(dead)
    live = Path(tempfile.mkdtemp(prefix=prefix))
    (live / OWNER).write_text(str(os.getpid()))
    unmarked = Path(tempfile.mkdtemp(prefix=prefix))
    made = private_dir(prefix, 0o755)
    try:
        assert not orphan.exists()
        assert live.exists() and unmarked.exists()
        assert (made / OWNER).read_text() == str(os.getpid())
        assert made.stat().st_mode & 0o777 == 0o755
    finally:
        for folder in (live, unmarked, made):
            subprocess.run(["rm", "-rf", str(folder)], check=False)
