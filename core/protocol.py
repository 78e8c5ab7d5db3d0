"""The coordinator-driver protocol: what goes into cell.json and comes back in driver.json.

Both sides speak these dataclasses, never bare dicts, and both files carry
PROTOCOL_VERSION: a driver refuses a cell of another version instead of
guessing, and the coordinator refuses such a report. Stdlib only: the
driver reads these inside every backend's environment.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal, TypeVar

PROTOCOL_VERSION = 2
JobKind = Literal["noop", "sleep", "cpu", "fail"]


class ProtocolError(ValueError):
    """A cell.json or driver.json that this side cannot read."""


T = TypeVar("T")


def _build(cls: type[T], data: dict[str, Any], what: str) -> T:
    """cls(**data) with a one-line error naming unknown or missing fields."""
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - names)
    if unknown:
        raise ProtocolError(f"{what}: unknown field(s) {', '.join(unknown)}")
    try:
        return cls(**data)
    except TypeError as exc:
        raise ProtocolError(f"{what}: {exc}") from None


def _plain(obj: Any) -> dict[str, Any]:
    """A dataclass as a JSON-ready dict, leaving out fields that were never set (None)."""
    return {k: v for k, v in dataclasses.asdict(obj).items() if v is not None}


@dataclass(frozen=True)
class JobSpec:
    """What bench_job does: kind and duration."""

    kind: JobKind = "noop"
    ms: float = 0.0


# -- phases: what the driver does, in order, within one cell ---------------------------
@dataclass(frozen=True)
class Phase:
    """Base of every phase; `type` is the discriminator in JSON."""

    type: ClassVar[str] = ""
    time_limit_s: float = 60.0


@dataclass(frozen=True)
class BatchPhase(Phase):
    """Enqueue `jobs` as fast as the producer can (bulk where the backend has it);
    preloaded ones go in before the workers start."""

    type: ClassVar[str] = "batch"
    jobs: int = 0
    preload: bool = False
    enqueue_limit_s: float | None = None
    # the self-test's observer effect: the record mode alternates in ABBA segments of
    # this many seconds while the batch drains (harness/driver/alternate.py)
    alternate_s: float | None = None


@dataclass(frozen=True)
class SustainedPhase(Phase):
    """Steady state: completions counted over `window_s` seconds in which the
    driver sends nothing, fed by a preload calibrated after `warmup_s` and a
    `probe_s` drain, sent while the workers are held at the gate; the window
    opens once they are back at speed after they are let go, at least `settle_s` and
    at most `max_ramp_s` later (harness/driver/sustained.py). The preload holds `margin`
    times the window's work at the calibrated rate, plus `min_backlog`, and at
    most `max_jobs` jobs or `max_backlog_bytes` of payload."""

    type: ClassVar[str] = "sustained"
    warmup_s: float = 1.0
    window_s: float = 8.0
    probe_s: float = 0.5
    settle_s: float = 0.2
    max_ramp_s: float = 1.0
    ramp_share: float = 0.8  # of the calibrated rate, over ramp_span_s: back at speed
    ramp_span_s: float = 0.3
    margin: float = 1.5
    min_backlog: int = 1000
    # redis-raw's noop cell drained 311k jobs/s in the committed full run at d3b0eaf and
    # ended up to 640k jobs in one second on 2026-12-04; at 570c837 a fill capped at 4M
    # ran dry in a window's last second (147k ended in it) while the driver topped it up
    # (results/reference/2026-12-04-window-start-*): 1.5 x 8 s of 630k/s is 7.6M jobs,
    # about 1.2 GB in Redis at its 155 B per queued 64 B job
    max_jobs: int = 8_000_000
    max_backlog_bytes: int = 64 * 1024 * 1024


@dataclass(frozen=True)
class OpenLoopPhase(Phase):
    """Send on a fixed schedule; INTENDED is the schedule's time."""

    type: ClassVar[str] = "open"
    rate: float = 1.0
    duration_s: float = 1.0
    producers: int = 1
    max_jobs: int | None = None
    saturated_backlog: int | None = None
    without_workers: bool = False  # the self-test times the producer alone


@dataclass(frozen=True)
class IdlePhase(Phase):
    """One job at a time, each after the previous ended and a gap."""

    type: ClassVar[str] = "idle"
    jobs: int = 1
    gap_ms: float = 50.0
    purge_first: bool = False


@dataclass(frozen=True)
class FillPhase(Phase):
    """Memory: jobs sit in the broker, no worker runs (an in-process queue: pending
    tasks held at the shut gate)."""

    type: ClassVar[str] = "fill"
    jobs: int = 0
    settle_s: float = 0.5
    samples: int = 3  # memory readings before and after; each figure is their median


@dataclass(frozen=True)
class DepthPhase(Phase):
    """Depth: `jobs` queued with no worker running (broker memory read before and
    after; the fill stops early once `enqueue_limit_s` passed or the next batch would
    take the broker past `max_broker_bytes`), then the workers start, one probe job
    goes behind the backlog (and, where the adapter serves a second queue, one more on
    that queue) and the drain is counted over `window_s` after `warmup_s`.
    The probes are waited for only while the backlog ahead of them can drain within
    `time_limit_s` of the workers' start at the counted rate."""

    type: ClassVar[str] = "depth"
    jobs: int = 0
    enqueue_limit_s: float = 60.0
    max_broker_bytes: int = 1024 * 1024 * 1024
    memory_checks: int = 16  # broker memory readings during the fill
    settle_s: float = 0.5
    warmup_s: float = 0.5
    window_s: float = 2.0


@dataclass(frozen=True)
class CrashPhase(Phase):
    """Crash recovery: preloaded jobs, one fault, a bounded observation window."""

    type: ClassVar[str] = "crash"
    fault: str = "job-process-kill"
    jobs: int = 0
    kill_after_ends: int = 1
    kill_in_flight: int = 1
    kill_delay_s: float = 0.05
    window_s: float = 10.0
    min_observe_s: float = 1.5
    observe_after_back_s: float = 0.0
    # jobs still missing when the window ends are watched this much longer: those that
    # end then are late (re-delivered after the window), the others lost
    late_grace_s: float = 0.0


PHASE_TYPES: dict[str, type[Phase]] = {
    cls.type: cls for cls in (BatchPhase, SustainedPhase, OpenLoopPhase, IdlePhase, FillPhase,
                              DepthPhase, CrashPhase)
}


def phase_from_dict(data: dict[str, Any]) -> Phase:
    data = dict(data)
    kind = data.pop("type", None)
    if kind not in PHASE_TYPES:
        raise ProtocolError(f"unknown phase type {kind!r} (known: {', '.join(PHASE_TYPES)})")
    return _build(PHASE_TYPES[kind], data, f"{kind} phase")


def phase_to_dict(phase: Phase) -> dict[str, Any]:
    return {"type": phase.type, **_plain(phase)}


@dataclass(frozen=True)
class Workload:
    """The job every phase sends and the phases themselves."""

    spec: JobSpec
    phases: tuple[Phase, ...]
    payload_bytes: int = 0
    bulk: bool = True  # use the backend's bulk enqueue API where it has one

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Workload:
        data = dict(data)
        spec = _build(JobSpec, dict(data.pop("spec", {})), "job spec")
        phases = tuple(phase_from_dict(p) for p in data.pop("phases", []))
        return _build(cls, {**data, "spec": spec, "phases": phases}, "workload")

    def to_dict(self) -> dict[str, Any]:
        return {"spec": _plain(self.spec), "phases": [phase_to_dict(p) for p in self.phases],
                "payload_bytes": self.payload_bytes, "bulk": self.bulk}


@dataclass(frozen=True)
class CellSpec:
    """cell.json: everything a driver needs to run one cell (or `skip`: answered
    by the coordinator without a run). The broker URL here is masked; the real one
    travels in the driver's environment (core.envnames.BROKER_URL_ENV)."""

    index: int = 0
    scenario: str = ""
    backend: str = ""
    slots: int = 1
    profile: str = "default"
    results: bool = False
    queue: str = ""
    workload: Workload | None = None
    options: dict[str, Any] = field(default_factory=dict)
    broker_url: str | None = None
    broker_ctl: list[str] | None = None
    skip: bool = False
    version: int = PROTOCOL_VERSION

    def to_json(self) -> str:
        data = _plain(self)
        if self.workload is not None:
            data["workload"] = self.workload.to_dict()
        return json.dumps(data, indent=1)

    @classmethod
    def from_json(cls, text: str, source: str = "cell.json") -> CellSpec:
        data = _versioned(json.loads(text), source)
        if data.get("workload") is not None:
            data["workload"] = Workload.from_dict(data["workload"])
        return _build(cls, data, source)


@dataclass
class PhaseReport:
    """What the driver observed in one phase (monotonic ns times). Fields a phase
    type does not produce stay None and are left out of driver.json."""

    type: str
    first_id: int
    expected: int = 0
    load_start_ns: int | None = None
    load_end_ns: int | None = None
    done_ns: int | None = None
    timed_out: bool | None = None
    producers: int | None = None
    producer_failures: int | None = None
    drain_cut_short: bool | None = None
    # jobs the phase meant to send and did not, and why (open loop: the producer was past
    # the schedule's cut-off, or a forked producer failed; depth: the cap that stopped it)
    unsent: int | None = None
    unsent_reason: str | None = None
    backlog_purged: bool | None = None
    # sustained phases: the counted window, and whether the producer kept up
    window_start_ns: int | None = None
    window_end_ns: int | None = None
    window_min_backlog: int | None = None
    ramp_s: float | None = None  # from the gate's opening to the window
    ramp_reached: bool | None = None  # the workers were back at speed when it opened
    preloaded: int | None = None
    calibrated_per_s: float | None = None
    calibrated_by: str | None = None  # "warm-up" or "probe" (harness/driver/sustained.py)
    fill_sent: int | None = None
    window_sent: int | None = None
    window_producer_busy_s: float | None = None
    # CPU time the worker processes used in the window (a preloaded batch: in its drain)
    window_cpu_s: float | None = None
    producer_busy_s: float | None = None
    # alternating batches: [start_ns, end_ns, bare (0/1), jobs counted bare] per segment
    segments: list[list[int]] | None = None
    memory_before: dict[str, Any] | None = None
    memory_after: dict[str, Any] | None = None
    # depth: how the workers served the second queue its probe went to ("" when none)
    second_queue: str | None = None
    # crash phases
    kill_wait_timed_out: bool | None = None
    kill_ns: int | None = None
    killed_pid: int | None = None
    killed_pids: list[int] | None = None  # node-kill: the whole tree
    pids_before: list[int] | None = None
    # slots the live workers could run: before the kill, right after it, at the end
    capacity_before: int | None = None
    capacity_after_kill: int | None = None
    capacity_after: int | None = None
    dead_ns: int | None = None
    back_ns: int | None = None
    handled_ns: int | None = None
    workers_replaced: int | None = None
    observed_until_ns: int | None = None
    late_until_ns: int | None = None  # end of the late watch (None: nothing was missing)


@dataclass
class DriverReport:
    """driver.json: one cell's run as the driver saw it."""

    pid: int = 0
    error: str | None = None
    traceback: str | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    bulk_enqueue: bool = False
    worker_log_dir: str | None = None
    ready_ns: int | None = None
    workers_start_s: float | None = None
    workers_reused: bool | None = None
    workers_stop_s: float | None = None
    worker_pids: list[int] = field(default_factory=list)
    phases: list[PhaseReport] = field(default_factory=list)
    expected: int = 0
    ended: int = 0
    fault: str | None = None
    settle_s: float | None = None
    purge_error: str | None = None
    # seconds per step of the cell, in order (harness/driver/steps.py): where its time went
    steps_s: dict[str, float] = field(default_factory=dict)
    version: int = PROTOCOL_VERSION

    @property
    def timed_out(self) -> bool:
        """True when any phase ran out of time before its jobs ended."""
        return any(bool(p.timed_out) for p in self.phases)

    def to_json(self) -> str:
        data = _plain(self)
        data["phases"] = [_plain(p) for p in self.phases]
        return json.dumps(data, indent=1, default=str)

    def write(self, cell_dir: Path) -> None:
        """Atomically: the coordinator polls for the file."""
        tmp = cell_dir / "driver.json.tmp"
        tmp.write_text(self.to_json())
        tmp.replace(cell_dir / "driver.json")

    @classmethod
    def from_json(cls, text: str, source: str = "driver.json") -> DriverReport:
        data = _versioned(json.loads(text), source)
        data["phases"] = [_build(PhaseReport, p, f"{source} phase") for p in data.get("phases", [])]
        return _build(cls, data, source)

    @classmethod
    def read(cls, cell_dir: Path) -> DriverReport | None:
        """The cell's report, or None while the driver has not written it."""
        try:
            return cls.from_json((cell_dir / "driver.json").read_text())
        except (OSError, json.JSONDecodeError):
            return None


def _versioned(data: Any, source: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ProtocolError(f"{source}: not a JSON object")
    found = data.get("version")
    if found != PROTOCOL_VERSION:
        raise ProtocolError(f"{source}: protocol version {found!r}, this side speaks "
                            f"{PROTOCOL_VERSION}")
    return dict(data)
