"""Recorder: fixed-size records that survive their writer and load back exactly."""

from __future__ import annotations

import os
import signal
import time

from core.recorder import (
    MAX_RUN,
    RECORD,
    Event,
    Recorder,
    RecordTail,
    contiguous_runs,
    count_events,
)
from scenarios.records import load_records


def test_records_round_trip(tmp_path):
    recorder = Recorder(tmp_path)
    recorder.record(7, Event.START, t_ns=100)
    recorder.record(7, Event.END, t_ns=250, attempt=2)
    recorder.record_many([(8, Event.INTENDED, 50), (8, Event.SENT, 60)])
    frame = load_records(tmp_path)
    assert list(frame.job_id) == [8, 8, 7, 7]
    assert list(frame.event) == [Event.INTENDED, Event.SENT, Event.START, Event.END]
    assert list(frame.t_ns) == [50, 60, 100, 250]
    assert frame.attempt.iloc[-1] == 2
    assert set(frame.pid) == {os.getpid()}


def test_truncated_file_loses_only_the_partial_record(tmp_path):
    recorder = Recorder(tmp_path)
    for job in range(10):
        recorder.record(job, Event.END, t_ns=job)
    path = tmp_path / f"{os.getpid()}.bin"
    with open(path, "ab") as handle:
        handle.write(RECORD.pack(99, Event.END, 0, 1, 1)[:13])  # as a crash could leave it
    frame = load_records(tmp_path)
    assert list(frame.job_id) == list(range(10))


def test_garbage_events_are_ignored(tmp_path):
    (tmp_path / "1.bin").write_bytes(RECORD.pack(1, 200, 0, 1, 5) + RECORD.pack(2, 4, 0, 1, 6))
    assert list(load_records(tmp_path).job_id) == [2]


def test_records_of_a_sigkilled_writer_survive(tmp_path):
    recorder = Recorder(tmp_path)
    child = os.fork()
    if child == 0:
        for job in range(1000):
            recorder.record(job, Event.END)
        os.kill(os.getpid(), signal.SIGKILL)
    os.waitpid(child, 0)
    assert (tmp_path / f"{child}.bin").exists(), "the child writes its own file"
    assert len(load_records(tmp_path)) == 1000


def test_count_events_is_incremental(tmp_path):
    recorder = Recorder(tmp_path)
    tail = RecordTail(tmp_path)
    recorder.record(1, Event.END)
    recorder.record(1, Event.START)
    assert count_events(tail.read(), frozenset({Event.END})) == 1
    recorder.record(2, Event.END)
    assert count_events(tail.read(), frozenset({Event.END})) == 1
    assert count_events(tail.read(), frozenset({Event.END})) == 0


def test_a_record_tail_waits_for_a_folder_and_sees_each_new_file_and_whole_record(tmp_path):
    """The folder may not exist yet; files made right after a listing, within one tick
    of the folder's coarse clock, are still found; a partial record waits."""
    folder = tmp_path / "records"
    tail = RecordTail(folder)
    assert tail.read() == []
    folder.mkdir()
    for writer in range(3):  # three files in quick succession, read between them
        (folder / f"{writer}.bin").write_bytes(RECORD.pack(writer, Event.END, 0, writer, 1))
        assert count_events(tail.read(), frozenset({Event.END})) == 1
    with open(folder / "0.bin", "ab") as handle:
        handle.write(RECORD.pack(9, Event.END, 0, 0, 2)[:10])
        handle.flush()
        assert tail.read() == []
        handle.write(RECORD.pack(9, Event.END, 0, 0, 2)[10:])
    assert count_events(tail.read(), frozenset({Event.END})) == 1
    assert len(tail.files.descriptors) == 3


def test_a_settled_folder_is_not_listed_again_until_it_changes(tmp_path, monkeypatch):
    from core import folder_files
    (tmp_path / "a.bin").write_bytes(b"")
    old = time.time_ns() - 10 * folder_files.SETTLE_NS
    os.utime(tmp_path, ns=(old, old))
    files = folder_files.FolderFiles(tmp_path, ".bin")
    assert list(files.open_files()) == ["a.bin"]
    listings = []
    real = os.scandir
    monkeypatch.setattr(folder_files.os, "scandir", lambda path: listings.append(path)
                        or real(path))
    files.open_files()
    assert listings == []  # unchanged and settled: one stat, no listing
    (tmp_path / "b.bin").write_bytes(b"")
    assert sorted(files.open_files()) == ["a.bin", "b.bin"] and len(listings) == 1


def test_a_batch_of_noops_is_one_record_per_run_of_ids(tmp_path):
    """record_noops writes a record per run of consecutive ids, and every reader sees
    the START and END of each job: the analysis, the driver's count, the crash tracker."""
    from harness.driver.crash import JobTracker
    ids = [*range(10, 20), 25, 26, 40, *range(1000, 1000 + MAX_RUN + 5)]
    assert contiguous_runs(ids) == [(10, 10), (25, 2), (40, 1), (1000, MAX_RUN),
                                    (1000 + MAX_RUN, 5)]
    recorder = Recorder(tmp_path)
    recorder.record(5, Event.START, t_ns=1)
    recorder.record_noops(ids)
    assert (tmp_path / f"{os.getpid()}.bin").stat().st_size == 6 * RECORD.size
    frame = load_records(tmp_path)
    for event in (Event.START, Event.END):
        rows = frame[frame.event == event]
        expected = ids if event == Event.END else [5, *ids]
        assert sorted(rows.job_id) == sorted(expected)
    ends = frame[frame.event == Event.END]
    assert ends.t_ns.nunique() == 1 and set(ends.pid) == {os.getpid()}
    assert set(frame.attempt) == {0}
    tail = RecordTail(tmp_path)
    assert count_events(tail.read(), frozenset({Event.END, Event.ERROR})) == len(ids)
    assert count_events(RecordTail(tmp_path).read(), frozenset({Event.START})) == len(ids) + 1
    recorder.record_noops([7])
    assert count_events(tail.read(), frozenset({Event.END})) == 1
    tracker = JobTracker(tmp_path)
    tracker.update()
    assert tracker.ended == {*ids, 7} and tracker.running == 1  # job 5 never ended


def test_the_gate_shuts_again_for_a_process_that_mapped_it_open(tmp_path, monkeypatch):
    """The sustained phase pauses workers that already saw the gate open: a forked
    process (another worker) sees every change without reopening anything."""
    from core import gate
    from core.envnames import GATE_ENV, RECORDS_DIR_ENV
    from core.recorder import ID_SPAN
    cell_dir = tmp_path / "0003-throughput-rq"
    cell_dir.mkdir()
    monkeypatch.setenv(RECORDS_DIR_ENV, str(tmp_path))
    monkeypatch.setenv(GATE_ENV, "1")
    job = 3 * ID_SPAN + 1

    def is_open() -> bool:
        return gate.pass_gate(job) is not None

    assert not is_open()  # no gate file yet: the driver has not opened the cell
    gate.set_gate(cell_dir, True)
    assert gate.pass_gate(job) is False  # open, and jobs record (not bare)
    to_child, from_parent = os.pipe()
    to_parent, from_child = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child reads the gate after the parent shut it, then reopened it
        states = []
        for _ in range(2):
            os.read(to_child, 1)
            states.append(is_open())
            os.write(from_child, b"k")
        os._exit(0 if states == [False, True] else 1)
    gate.set_gate(cell_dir, False)
    assert not is_open()
    os.write(from_parent, b"s")
    os.read(to_parent, 1)
    gate.set_gate(cell_dir, True)
    os.write(from_parent, b"o")
    os.read(to_parent, 1)
    assert os.waitpid(pid, 0)[1] == 0


def test_a_cell_is_analysed_as_of_its_end() -> None:
    """Records written after the driver closed the cell (a work horse finishing its job)
    are not the cell's: a figure recomputed from the files later must match."""
    import pandas as pd

    from scenarios.records import as_of
    frame = pd.DataFrame({"job_id": [1, 2, 3], "event": [2, 2, 2], "pid": [9, 9, 9],
                          "t_ns": [100, 200, 300]})
    assert list(as_of(frame, 200)["job_id"]) == [1, 2]
    assert len(as_of(frame, None)) == 3


def test_the_tally_reads_the_workers_files_and_the_analysis_the_producers_too(tmp_path):
    """The producer's records live in their own subfolder: the driver's tally never reads
    a fill's millions of SENT records back while the cell runs; the analysis has them."""
    from core.recorder import PRODUCER_RECORDS
    from harness.driver.tally import JobTally

    Recorder(tmp_path / PRODUCER_RECORDS).record_many(
        [(job, event, job) for job in range(1000) for event in (Event.INTENDED, Event.SENT)])
    worker = Recorder(tmp_path)
    worker.record(3, Event.START, t_ns=5_000)
    worker.record(3, Event.END, t_ns=6_000)
    tally = JobTally(tmp_path)
    assert (tally.refresh(), tally.started()) == (1, 1)
    assert tally.records.offsets == {f"{os.getpid()}.bin": 2 * RECORD.size}
    assert len(load_records(tmp_path)) == 2002


def test_runs_of_a_batch_in_enqueue_order_and_of_batches_that_only_look_like_one():
    """A fetched batch in enqueue order is one run; the same span out of order, with a
    repeat, or longer than a record holds is split as its ids fall."""
    assert contiguous_runs(list(range(50, 50 + MAX_RUN))) == [(50, MAX_RUN)]
    assert contiguous_runs(tuple(range(50, 50 + MAX_RUN + 1))) == [(50, MAX_RUN),
                                                                    (50 + MAX_RUN, 1)]
    assert contiguous_runs([5, 7, 6, 8]) == [(5, 1), (7, 1), (6, 1), (8, 1)]
    assert contiguous_runs([5, 6, 6, 8]) == [(5, 2), (6, 1), (8, 1)]
    assert contiguous_runs([9]) == [(9, 1)]
    assert contiguous_runs([]) == []
