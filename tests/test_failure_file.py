"""failure.txt: what a failed cell's folder tells its reader."""

from __future__ import annotations

from pathlib import Path

from core.protocol import DriverReport
from harness.runner import save_failure


def test_a_later_cell_of_a_group_gets_its_drivers_log(tmp_path: Path) -> None:
    """A group's driver logs into the folder of its first cell; a later cell that fails
    still shows the tail of that log, and of its workers' logs."""
    first, later, workers = tmp_path / "0001-a", tmp_path / "0002-b", tmp_path / "logs"
    for folder in (first, later, workers):
        folder.mkdir()
    (first / "driver.log").write_text("line 1\nTraceback: the driver's own words\n")
    (workers / "worker-0.log").write_text("worker said this\n")
    report = DriverReport(error="RuntimeError: boom", worker_log_dir=str(workers))
    save_failure(later, "boom", report, first / "driver.log")
    text = (later / "failure.txt").read_text()
    assert text.startswith("reason: boom\nRuntimeError: boom\n")
    assert "--- last lines of driver.log ---\nline 1\nTraceback: the driver's own words" in text
    assert "--- last lines of worker-0.log ---\nworker said this" in text
