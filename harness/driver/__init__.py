"""The driver: runs a group of cells in the backend's own environment.

    .venvs/<family>/bin/python -m harness.driver CELL_DIR/cell.json [CELL_DIR/cell.json ...]

It builds the backend's adapter once, starts its real workers when a cell
first needs them and keeps them for the following cells of the group (the
runner groups cells with identical backend settings), produces each cell's
load (recording INTENDED and SENT per job), waits for the jobs to end or
for the time limit, and writes each cell's driver.json next to its records
as soon as the cell is done. Between cells the queue is purged and the
jobs still running are let finish, so a cell never measures its
predecessor's work.

Everything this package imports must stay importable inside every backend
environment: the standard library, core, adapters and the stdlib-only
harness modules it names (tests/test_imports.py checks the closure).

    group.py     one adapter for the group, cells in order, driver.json each
    workers.py   the group's adapter and whether its workers run
    cell.py      one cell: start gate, phases in order, settle for the next cell
    phases.py    one function per phase type
    producer.py  enqueueing: batches, open-loop schedules, forked producers
    schedule.py  an open-loop schedule and its producer's cut-off
    sustained.py the steady-state window: warm-up, calibration, gated fill, count
    alternate.py a drain whose record mode alternates (the self-test's observer effect)
    depth.py     a deep backlog queued with no worker running, then drained
    crash.py     the crash phase: fault, supervisor, observation window
    tally.py     counting ended/started jobs from the records
    steps.py     where a cell's time goes (steps_s)
"""
