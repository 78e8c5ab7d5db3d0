"""harness.crash_repeat: the cell it picks and the table it prints (no broker needed)."""

from __future__ import annotations

import pytest

from harness.crash_repeat import pick_cell, table


def test_picks_the_durable_broker_kill_cell() -> None:
    cell = pick_cell("amqp-raw", "broker-kill", "durable", 8)
    assert cell.params["fault"] == "broker-kill"
    assert cell.params["persistence"] == "durable"
    assert cell.broker_kill is not None


def test_unknown_cell_is_refused() -> None:
    with pytest.raises(ValueError, match="expected one"):
        pick_cell("amqp-raw", "broker-kill", "no-such-setting", 8)


def test_table_counts_lossy_tries() -> None:
    metrics = {"lost": 0, "duplicated": 16, "once": 16}
    cells = [{"round": 1, "status": "ok", "reason": None, "metrics": metrics},
             {"round": 2, "status": "ok", "reason": None,
              "metrics": {**metrics, "lost": 16, "duplicated": 0}},
             {"round": 3, "status": "failed", "reason": "driver died", "metrics": {}}]
    text = table(cells)
    assert "| 3 | failed: driver died |" in text
    assert "2 of 3 tries ran; 1 lost jobs (16 in all), 1 ran jobs twice (16 in all)" in text
