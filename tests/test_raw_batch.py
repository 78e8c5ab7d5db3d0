"""How a raw ceiling runs one fetch (adapters/raw_message.run_batch), on known messages:
a noop batch is recorded in one write, a record per run of ids that loads as a START
and an END per job; a bare cell counts it in one store; any other batch runs job by
job in order."""

from __future__ import annotations

import json
import time

from adapters.base import JobCall
from adapters.raw_message import ACK_FLUSH_S, DeferredAcks, encode, run_batch
from core import gate
from core.envnames import GATE_ENV, RECORDS_DIR_ENV
from core.jobcount import COUNTS_DIR, read_counts
from core.recorder import ID_SPAN, RECORD, Event
from scenarios.records import load_records


def messages(cell: int, specs: list[dict]) -> list[bytes]:
    return [encode(JobCall(job_id=cell * ID_SPAN + i, sent_ns=0, spec=spec, payload="x"))
            for i, spec in enumerate(specs)]


def cell_folder(tmp_path, monkeypatch, cell: int):
    """A cell folder under a records root (each test its own cell index: the job module
    caches a cell's folder by index)."""
    folder = tmp_path / f"{cell:04d}-throughput-redis-raw"
    folder.mkdir()
    monkeypatch.setenv(RECORDS_DIR_ENV, str(tmp_path))
    return folder


def test_a_noop_batch_writes_start_and_end_of_every_job_in_one_write(tmp_path, monkeypatch):
    folder = cell_folder(tmp_path, monkeypatch, 41)
    acked = []
    bodies = messages(41, [{"kind": "noop", "ms": 0}] * 5)
    run_batch(bodies, lambda key, started: acked.append(key))
    frame = load_records(folder / "records")
    ids = [41 * ID_SPAN + i for i in range(5)]
    assert list(frame["job_id"]) == [j for j in ids for _ in (0, 1)]
    assert list(frame["event"]) == [Event.START, Event.END] * 5
    assert (frame["t_ns"].diff().dropna() >= 0).all()
    assert acked == bodies
    files = list((folder / "records").glob("*.bin"))
    assert len(files) == 1 and files[0].stat().st_size == RECORD.size  # one run of ids


def test_a_bare_noop_batch_is_counted_not_recorded(tmp_path, monkeypatch):
    folder = cell_folder(tmp_path, monkeypatch, 42)
    monkeypatch.setenv(GATE_ENV, "1")
    gate.set_gate(folder, True)
    gate.set_bare(folder, True)
    run_batch(messages(42, [{"kind": "noop"}] * 7))
    run_batch(messages(42, [{"kind": "noop"}] * 3))
    assert read_counts(folder / COUNTS_DIR)[0] == 10
    assert not (folder / "records").exists()


def test_a_mixed_batch_runs_job_by_job_in_order(tmp_path, monkeypatch):
    folder = cell_folder(tmp_path, monkeypatch, 43)
    acked = []
    specs = [{"kind": "noop"}, {"kind": "sleep", "ms": 20}, {"kind": "fail"}]
    run_batch(messages(43, specs), lambda key, started: acked.append((key, started)),
              keys=["a", "b", "c"])
    frame = load_records(folder / "records")
    events = list(zip(frame["job_id"] - 43 * ID_SPAN, frame["event"], strict=True))
    assert events == [(0, Event.START), (0, Event.END), (1, Event.START), (1, Event.END),
                      (2, Event.START), (2, Event.ERROR)]
    slept = frame["t_ns"].iloc[3] - frame["t_ns"].iloc[2]
    assert slept >= 20_000_000
    assert [key for key, _ in acked] == ["a", "b", "c"]
    assert acked[2][1] - acked[1][1] >= 0.02  # each job acked with its own start


def test_a_noop_batch_runs_at_once_only_within_one_cell_and_in_any_order(tmp_path,
                                                                         monkeypatch):
    """A spec without a kind is a noop; ids out of order are each recorded; a batch that
    reaches into another cell runs job by job, each job into its own cell's records."""
    first = cell_folder(tmp_path, monkeypatch, 46)
    second = cell_folder(tmp_path, monkeypatch, 47)
    shuffled = messages(46, [{}] * 4)
    run_batch([shuffled[2], shuffled[0], shuffled[3], shuffled[1]])
    (file,) = (first / "records").glob("*.bin")
    assert file.stat().st_size == 4 * RECORD.size  # no two ids consecutive in that order
    frame = load_records(first / "records")
    assert sorted(frame["job_id"] - 46 * ID_SPAN) == [0, 0, 1, 1, 2, 2, 3, 3]
    run_batch([*messages(46, [{"kind": "noop"}] * 5)[4:], *messages(47, [{"kind": "noop"}])])
    assert file.stat().st_size == 4 * RECORD.size + 2 * RECORD.size  # START and END of 4
    assert list(load_records(second / "records")["event"]) == [Event.START, Event.END]


def test_the_wire_format_is_one_json_object(tmp_path):
    (body,) = messages(1, [{"kind": "noop"}])
    assert json.loads(body) == {"id": ID_SPAN, "sent": 0, "spec": {"kind": "noop"}, "p": "x"}


class SentAcks(DeferredAcks):
    def __init__(self) -> None:
        super().__init__()
        self.sent: list[list[int]] = []

    def send(self, keys: list[int]) -> None:
        self.sent.append(list(keys))


def test_deferred_acks_wait_for_flush_unless_the_oldest_job_started_long_ago():
    acks = SentAcks()
    now = time.monotonic()
    acks.ran(1, now)
    acks.ran(2, now)
    assert acks.sent == []  # short jobs: acked together at the fetch's end
    acks.flush()
    acks.flush()  # nothing pending: nothing sent
    assert acks.sent == [[1, 2]]
    acks.ran(3, now - 2 * ACK_FLUSH_S)  # a long job: acked as soon as it ended
    assert acks.sent == [[1, 2], [3]] and acks.pending == []


def test_a_batch_acks_every_key_in_order_through_deferred_acks(tmp_path, monkeypatch):
    cell_folder(tmp_path, monkeypatch, 45)
    acks = SentAcks()
    run_batch(messages(45, [{"kind": "noop"}] * 3), acks.ran, keys=[7, 8, 9])
    acks.flush()
    assert acks.sent == [[7, 8, 9]]
