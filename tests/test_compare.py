"""compare and baseline save on real summary.json files written by RunWriter (no brokers)."""

from __future__ import annotations

import itertools
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from core.results import RunWriter
from harness.cli import main
from harness.compare.judge import Row, benjamini_hochberg
from harness.compare.render import HEADERS

REPO = Path(__file__).resolve().parent.parent
NOISE = (1.0, 1.012, 0.991)  # realistic round-to-round spread of a quiet machine
NOISE_B = (0.996, 1.008, 0.985)
BASE = {"redis-raw": 9000.0, "celery-redis": 3000.0, "asyncio": 20000.0}
DURATIONS = (0, 10)


def cell(backend: str, duration: int, rnd: int, jobs_per_s: float, *,
         p99: float = 2.0, status: str = "ok", unstable: bool = False) -> dict:
    """A throughput cell; an unstable one counted a 1.2 s window of the 2 s asked."""
    ideal = 8 / (duration / 1000) if duration else None
    return {
        "scenario": "throughput", "backend": backend, "profile": "default",
        "params": {"duration_ms": duration, "slots": 8, "window_s": 2.0}, "round": rnd,
        "status": status, "reason": None if status == "ok" else "broker missing",
        "settings": {"slots": 8},
        "metrics": {} if status != "ok" else {
            "jobs_per_s": jobs_per_s, "enqueue_per_s": 5000.0 * NOISE[rnd - 1],
            "efficiency": jobs_per_s / ideal if ideal else None, "ideal_jobs_per_s": ideal,
            "window_s": 1.2 if unstable else 2.0, "unstable": unstable, "completed": 2400,
            "errors": 0, "duplicated": 0,
            "timed_out": False, "latency_ms": {"p50": p99 / 4, "p99": p99}},
        "cell_dir": f"cells/{rnd:04d}-throughput-{backend}-{duration}ms",
    }


def make_run(path: Path, factors: dict[str, float] | None = None, *, rounds: int = 3,
             noise: tuple[float, ...] = NOISE, per_round: dict[str, list[float]] | None = None,
             backends: tuple[str, ...] = tuple(BASE), p99: float = 2.0,
             config: dict | None = None, failed: tuple[str, ...] = (),
             unstable: tuple[str, ...] = (), info: dict | None = None,
             probe_us: tuple[float, ...] | None = None, python: str = "3.11.7",
             cpu_us: dict[str, float] | None = None) -> Path:
    """A run dir whose jobs_per_s is BASE x factor x noise (or explicit per-round values);
    `failed` backends' cells fail, `unstable` ones are flagged unstable; with `probe_us`
    (per round) every cell has the speed meter's figures; with `cpu_us`, those backends'
    cells their workers' CPU per job (x the round's noise, per loop with the meter)."""
    writer = RunWriter(path, {"id": path.name, "host": "testhost", "git_revision": "abc123",
                              "started": "2025-01-01T00:00:00Z", "complete": True,
                              "cpu_count": 2, "python": python,
                              **({"speed_probe": {"loop_iterations": 10_000,
                                                  "interval_s": 0.05}} if probe_us else {}),
                              "config": {"slots": 8, "profiles": ["default"], "quick": True,
                                         "window_s": None, **(config or {})},
                              "broker_versions": {"redis": "7.0.15"},
                              "library_versions": {"celery": {"celery": "5.5.3"}},
                              **(info or {})})
    for rnd in range(1, rounds + 1):
        for backend in backends:
            for duration in DURATIONS:
                if backend in failed:
                    writer.add(cell(backend, duration, rnd, 0.0, status="failed"))
                    continue
                if per_round and backend in per_round:
                    value = per_round[backend][rnd - 1]
                else:
                    value = BASE[backend] * (factors or {}).get(backend, 1.0) * noise[rnd - 1]
                added = cell(backend, duration, rnd, value * (1 if duration == 0 else 0.5),
                             p99=p99 * noise[rnd - 1], unstable=backend in unstable)
                metrics = added["metrics"]
                if cpu_us and backend in cpu_us:
                    metrics["cpu_us_per_job"] = cpu_us[backend] * noise[rnd - 1]
                if probe_us:
                    metrics["probe_us"] = probe_us[rnd - 1]
                    metrics["jobs_per_loop"] = metrics["jobs_per_s"] * probe_us[rnd - 1] / 1e6
                    if "cpu_us_per_job" in metrics:
                        metrics["cpu_loops_per_job"] = (metrics["cpu_us_per_job"]
                                                        / probe_us[rnd - 1])
                writer.add(added)
    return path


def run(*argv: str | Path) -> tuple[int, str, str]:
    """`python -m harness compare` in-process; argparse errors (SystemExit) count as exit codes."""
    import contextlib
    import io

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(["compare", *(str(a) for a in argv)])
        except SystemExit as exc:
            code = int(exc.code or 0)
    return code, out.getvalue(), err.getvalue()


def gated_rows(text: str) -> list[str]:
    section = text.split("gated rows:")[1].split("\n\n")[0]
    return section.strip("\n").splitlines()[2:]  # without the count and the header


@pytest.fixture
def base_run(tmp_path: Path) -> Path:
    return make_run(tmp_path / "base")


def test_run_against_itself_is_clean(base_run: Path) -> None:
    code, out, err = run(base_run, base_run)
    assert code == 0, err
    assert "no regression in 4 gated rows" in out
    assert "slower" not in out and "faster" not in out
    # library rows are normalised by their ceiling, the ceiling and asyncio are absolute
    rows = gated_rows(out)
    assert any("celery-redis" in r and "/redis-raw" in r for r in rows)
    assert any(r.startswith("throughput/asyncio/") and "absolute" in r for r in rows)
    assert not any(r.startswith("throughput/redis-raw/") for r in rows)  # yardstick
    assert "ceiling (yardstick): gates only with --absolute" in out


def test_twenty_percent_slower_is_a_regression(base_run: Path, tmp_path: Path) -> None:
    slow = make_run(tmp_path / "slow", {"celery-redis": 0.8, "asyncio": 0.8}, noise=NOISE_B)
    code, out, err = run(base_run, slow)
    assert code == 1
    bad = [r for r in gated_rows(out) if "slower" in r]
    assert len(bad) == 4
    assert all("p=" in r and "(<= 0.0" in r for r in bad)  # alpha x k* / rows
    assert all("-20.0%  -20.3%" in r for r in bad if "celery-redis" in r)  # basis, absolute
    for name in ("throughput/celery-redis/duration_ms=0,slots=8,window_s=2 jobs_per_s",
                 "throughput/asyncio/duration_ms=10,slots=8,window_s=2 jobs_per_s"):
        assert name in err and name in out
    assert len(err.splitlines()) == 1 and err.startswith("REGRESSION in 4 rows")


def test_faster_is_not_a_regression(base_run: Path, tmp_path: Path) -> None:
    fast = make_run(tmp_path / "fast", {"celery-redis": 1.25}, noise=NOISE_B)
    code, out, _ = run(base_run, fast)
    assert code == 0
    assert sum("faster" in r for r in gated_rows(out)) == 2


def test_change_within_round_noise_is_not_called(tmp_path: Path) -> None:
    base = make_run(tmp_path / "b", per_round={"asyncio": [20000, 20200, 19800]},
                    backends=("asyncio",))
    # median 15% lower, but one round is as fast as the baseline: rounds overlap
    noisy = make_run(tmp_path / "c", per_round={"asyncio": [17000, 20100, 14000]},
                     backends=("asyncio",))
    code, out, _ = run(base, noisy)
    assert code == 0
    rows = gated_rows(out)
    assert rows and all("no significant change" in r and "-15.0%" in r for r in rows)
    assert all(float(r.split("p=")[1].split()[0]) > 0.05 for r in rows)


def test_a_noisy_row_says_what_drop_it_could_not_see(tmp_path: Path) -> None:
    """Rounds spread by a factor of 1.5 hide a 25% drop: the row says how large a drop it
    could call and how many rounds would show 25%; tight rounds are not blind."""
    noisy = {"asyncio": [20000, 30000, 24000]}
    base = make_run(tmp_path / "b", per_round=noisy, backends=("asyncio",))
    cur = make_run(tmp_path / "c", per_round=noisy, backends=("asyncio",))
    code, out, _ = run(base, cur)
    assert code == 0
    blind = [line for line in out.splitlines() if line.startswith("blind spots:")]
    assert len(blind) == 1 and "2 gated rows" in blind[0]
    needed = [int(part.split("needs about ")[1].split()[0]) for part in blind[0].split(";")]
    assert all(n > 3 for n in needed)
    sees = [int(r.split(" -")[-1].split("%")[0]) for r in gated_rows(out)
            if "duration_ms=0," in r for r in [r.split("no significant change")[0]]]
    assert sees and all(s > 25 for s in sees)
    code, out, _ = run(make_run(tmp_path / "q1"), make_run(tmp_path / "q2", noise=NOISE_B))
    assert code == 0 and "blind spots" not in out


def test_more_rounds_see_a_smaller_drop() -> None:
    from harness.compare.judge import detectable_drop, rounds_needed
    spread = [1.0, 1.3, 0.8]
    three = detectable_drop(spread, spread, 0.05, 0.1)
    six = detectable_drop(spread * 2, spread * 2, 0.05, 0.1)
    assert three is not None and six is not None and six < three
    assert three > 0.25
    needed = rounds_needed(spread, spread, 0.05)
    assert needed is not None and needed > 3
    assert detectable_drop(spread * needed, spread * needed, 0.05, 0.1) <= 0.25 + 0.02
    assert detectable_drop([5.0, 5.0], [5.0, 5.0], 0.05, 0.1) == 0.1  # no spread: threshold
    assert detectable_drop([5.0], [5.0, 6.0], 0.05, 0.1) is None  # one round: no spread


def test_whole_float_params_match_int_params(tmp_path: Path) -> None:
    """`run --durations 0,10` writes 0.0 and 10.0, the default durations 0 and 10: the
    same case for compare."""
    base = make_run(tmp_path / "b")
    cur = make_run(tmp_path / "c", noise=NOISE_B)
    summary = json.loads((cur / "summary.json").read_text())
    for each in summary["cells"]:
        each["params"]["duration_ms"] = float(each["params"]["duration_ms"])
    (cur / "summary.json").write_text(json.dumps(summary))
    code, out, err = run(base, cur)
    assert code == 0, out + err
    assert "no regression in 4 gated rows" in out and "missing in current" not in out


def test_single_round_is_threshold_only(tmp_path: Path) -> None:
    one = make_run(tmp_path / "one", rounds=1)
    slow = make_run(tmp_path / "slow", {"asyncio": 0.8}, noise=NOISE_B)
    code, out, err = run(one, slow)
    assert code == 1 and "asyncio" in err
    rows = gated_rows(out)
    assert rows and all("threshold only" in r and "1/3" in r for r in rows)
    code, out, _ = run(one, one)
    assert code == 0 and all("threshold only" in r for r in gated_rows(out))


def limits(ps: list[float], ratios: list[float] | None = None) -> list[float]:
    """The limits benjamini_hochberg gives rows with these p's (and median ratios: 20%
    slower unless given)."""
    rows = [Row(("t", "b", "default", str(i)), "jobs_per_s", "absolute", [1.0], [1.0], True,
                ratio=ratio, p=p)
            for i, (p, ratio) in enumerate(zip(ps, ratios or [0.8] * len(ps), strict=True))]
    benjamini_hochberg(rows, 0.05)
    return [r.p_limit for r in rows]


def test_benjamini_hochberg_steps_up() -> None:
    # ranks 1-4: 0.001 <= 0.0125, 0.01 <= 0.025, 0.04 > 0.0375, 0.3 > 0.05: k* = 2
    assert limits([0.04, 0.001, 0.01, 0.3]) == pytest.approx([0.025] * 4)
    # every p at 0.04 reaches 4 x 0.05 / 4: all four are significant
    assert limits([0.04] * 4) == pytest.approx([0.05] * 4)
    # none reaches its rank's limit: the first limit, alpha / m, is what one row must reach
    assert limits([0.02, 0.3, 0.5, 0.9]) == pytest.approx([0.0125] * 4)


def test_speed_ups_do_not_loosen_a_slower_call() -> None:
    """Four rows really got faster: they may not lower the bar for the fifth, an
    unchanged row whose rounds came out 12% slower."""
    got = limits([0.001, 0.001, 0.001, 0.001, 0.02], [1.3, 1.3, 1.3, 1.3, 0.88])
    assert got[4] == pytest.approx(0.01)  # alpha / 5: p = 0.02 is not enough
    assert got[:4] == pytest.approx([0.04] * 4)  # the speed-ups among themselves: 4 of 5


BORDERLINE = {"base": [20000, 21000, 19000], "cur": [17000, 19000, 16000]}  # p = 0.042


def test_a_borderline_row_among_unchanged_ones_does_not_fire(tmp_path: Path) -> None:
    """asyncio's rows alone would pass p <= 0.05; beside celery-redis's unchanged rows the
    correction asks them for more."""
    backends = ("asyncio", "celery-redis")
    base = make_run(tmp_path / "b", per_round={"asyncio": BORDERLINE["base"]},
                    backends=backends)
    cur = make_run(tmp_path / "c", per_round={"asyncio": BORDERLINE["cur"]},
                   backends=backends)
    code, out, _ = run(base, cur)
    rows = gated_rows(out)
    assert code == 0 and len(rows) == 4 and all("no significant change" in r for r in rows)
    assert all("(<= 0.0125)" in r for r in rows)  # alpha / 4


def test_the_same_drop_in_every_row_fires(tmp_path: Path) -> None:
    """The same borderline drop in every gated row: each is called (Holm would have asked
    the first for alpha / 2 and called none)."""
    base = make_run(tmp_path / "b", per_round={"asyncio": BORDERLINE["base"]},
                    backends=("asyncio",))
    cur = make_run(tmp_path / "c", per_round={"asyncio": BORDERLINE["cur"]},
                   backends=("asyncio",))
    code, out, _ = run(base, cur)
    rows = gated_rows(out)
    assert code == 1 and len(rows) == 2 and all("slower" in r for r in rows)
    assert all("(<= 0.05)" in r for r in rows)
    assert all(0.025 < float(r.split("p=")[1].split()[0]) <= 0.05 for r in rows)


def test_slower_machine_is_absorbed_by_normalisation(base_run: Path, tmp_path: Path) -> None:
    slow_machine = make_run(tmp_path / "slowbox", {"celery-redis": 0.8, "redis-raw": 0.8},
                            noise=NOISE_B, backends=("redis-raw", "celery-redis"))
    code, out, err = run(base_run, slow_machine, "--allow-missing")  # no asyncio here
    assert code == 0, out
    assert "no regression" in out and not err
    code, out, err = run(base_run, slow_machine, "--absolute", "--allow-missing")
    assert code == 1
    assert "throughput/celery-redis/duration_ms=10,slots=8,window_s=2 jobs_per_s" in err
    assert "throughput/redis-raw/duration_ms=0,slots=8,window_s=2 jobs_per_s" in err


def test_one_round_a_side_warns_that_only_the_threshold_judges(tmp_path: Path,
                                                               base_run: Path) -> None:
    one = make_run(tmp_path / "one", rounds=1)
    _, out, _ = run(one, make_run(tmp_path / "other", rounds=1, noise=NOISE_B))
    assert "warning:  4 gated rows with too few rounds for the test" in out
    _, out, _ = run(base_run, base_run)
    assert "warning:" not in out


SPEED = (400.0, 400.0, 400.0)


def test_machine_speed_is_taken_out(tmp_path: Path) -> None:
    """A machine 1.4x slower in every round of the current run: jobs/s fall by 29%,
    jobs_per_loop stays; the gate judges the latter, --absolute the former."""
    base = make_run(tmp_path / "base", probe_us=SPEED)
    slower = {b: 1 / 1.4 for b in BASE}
    slow_box = make_run(tmp_path / "slowbox", slower, noise=NOISE_B,
                        probe_us=tuple(v * 1.4 for v in SPEED))
    code, out, err = run(base, slow_box)
    assert code == 0, out
    rows = gated_rows(out)
    # the basis moved with the rounds' noise only; the absolute figures fell by 29%
    assert rows and all(" per loop " in r and "-0.4%   -28.9%" in r for r in rows)
    assert not any(r.split()[1] in ("jobs_per_loop", "probe_us")  # a basis, not a row
                   for r in out.splitlines() if r.startswith("throughput/"))
    code, _, err = run(base, slow_box, "--absolute")
    assert code == 1 and "REGRESSION" in err


def test_a_drop_at_the_same_machine_speed_is_called(tmp_path: Path) -> None:
    base = make_run(tmp_path / "base", probe_us=SPEED)
    slow = make_run(tmp_path / "slow", {"celery-redis": 0.75}, noise=NOISE_B, probe_us=SPEED)
    code, out, err = run(base, slow)
    assert code == 1
    bad = [r for r in gated_rows(out) if "slower" in r]
    assert len(bad) == 2 and all("celery-redis" in r and " per loop " in r for r in bad)


CPU_US = {"celery-redis": 900.0, "redis-raw": 20.0}


def test_more_cpu_per_job_is_called_at_the_same_rate(tmp_path: Path) -> None:
    """celery-redis's workers burn a third more CPU per job at an unchanged rate (a
    backend that does not fill the cores): its CPU row is called slower, on the per-loop
    basis; a ceiling's CPU row is a yardstick and does not gate."""
    base = make_run(tmp_path / "base", probe_us=SPEED, cpu_us=CPU_US)
    heavier = {"celery-redis": 1200.0, "redis-raw": 30.0}
    cur = make_run(tmp_path / "cur", noise=NOISE_B, probe_us=SPEED, cpu_us=heavier)
    code, out, err = run(base, cur)
    assert code == 1, out
    bad = [r for r in gated_rows(out) if "slower" in r]
    assert len(bad) == 2 and all("celery-redis" in r and "cpu_us_per_job" in r
                                 and " per loop " in r for r in bad)
    assert not any("redis-raw" in r and "cpu_us_per_job" in r for r in gated_rows(out))


def test_cpu_per_job_on_a_slower_machine_is_no_change(tmp_path: Path) -> None:
    """Every core 1.4x slower: each job's CPU takes 1.4x the microseconds and the same
    probe loops, so the gate stays quiet."""
    base = make_run(tmp_path / "base", probe_us=SPEED, cpu_us=CPU_US)
    slow_box = make_run(tmp_path / "slowbox", {b: 1 / 1.4 for b in BASE}, noise=NOISE_B,
                        probe_us=tuple(v * 1.4 for v in SPEED),
                        cpu_us={b: v * 1.4 for b, v in CPU_US.items()})
    code, out, err = run(base, slow_box)
    assert code == 0, out
    assert any("cpu_us_per_job" in r and " per loop " in r for r in gated_rows(out))
    code, _, err = run(base, slow_box, "--absolute")
    assert code == 1 and "REGRESSION" in err


def test_a_lost_cpu_figure_leaves_the_rate_judged(tmp_path: Path) -> None:
    """celery-redis's cells lost their CPU figure (null) and its rate halved: the lost
    figure fails the gate, and with --allow-missing the rate row still does."""
    base = make_run(tmp_path / "base", probe_us=SPEED, cpu_us=CPU_US)
    cur = make_run(tmp_path / "cur", {"celery-redis": 0.5}, noise=NOISE_B, probe_us=SPEED,
                   cpu_us=CPU_US)
    summary = json.loads((cur / "summary.json").read_text())
    for cell in summary["cells"]:
        if cell["backend"] == "celery-redis":
            cell["metrics"].update(cpu_us_per_job=None, cpu_loops_per_job=None)
    (cur / "summary.json").write_text(json.dumps(summary))
    code, out, err = run(base, cur)
    assert code == 1 and "cpu_us_per_job not measured in current's ok rounds" in out
    code, out, err = run(base, cur, "--allow-missing")
    assert code == 1 and "REGRESSION" in err and "celery-redis" in err


def test_a_gated_figure_null_in_both_runs_is_listed(tmp_path: Path) -> None:
    """celery-redis's CPU figure is null in every round of both runs: not a failure (the
    baseline had nothing to lose), but named among what was not judged, and its rate
    is still judged."""
    runs = []
    for name, noise in (("base", NOISE), ("cur", NOISE_B)):
        path = make_run(tmp_path / name, noise=noise, probe_us=SPEED, cpu_us=CPU_US)
        summary = json.loads((path / "summary.json").read_text())
        for cell in summary["cells"]:
            if cell["backend"] == "celery-redis":
                cell["metrics"].update(cpu_us_per_job=None, cpu_loops_per_job=None)
        (path / "summary.json").write_text(json.dumps(summary))
        runs.append(path)
    code, out, err = run(*runs)
    assert code == 0, out
    assert ("throughput/celery-redis/duration_ms=0,slots=8,window_s=2: cpu_us_per_job not "
            "measured in either run (null in every ok round) [skipped]") in out
    assert any("celery-redis" in r and "jobs_per_s" in r for r in gated_rows(out))
    assert not any("asyncio" in line and "not measured" in line for line in out.splitlines())


def test_a_figure_the_current_harness_never_writes_is_a_note(tmp_path: Path) -> None:
    """A current run from a harness before CPU per job against a baseline with it: the
    rates are judged, the CPU rows noted, nothing fails."""
    base = make_run(tmp_path / "base", probe_us=SPEED, cpu_us=CPU_US)
    older = make_run(tmp_path / "older", noise=NOISE_B, probe_us=SPEED)
    code, out, err = run(base, older)
    assert code == 0, out
    assert "cpu_us_per_job not written by current's harness" in out


def test_cpu_rows_without_a_per_loop_basis_are_shown_not_gated(tmp_path: Path) -> None:
    base = make_run(tmp_path / "base", probe_us=SPEED, cpu_us=CPU_US)
    no_meter = make_run(tmp_path / "nometer", noise=NOISE_B,
                        cpu_us={b: v * 1.3 for b, v in CPU_US.items()})
    code, out, err = run(base, no_meter)
    assert code == 0, out
    assert not any("cpu_us_per_job" in r for r in gated_rows(out))
    assert "no per-loop basis in both runs: shown, not gated" in out


def test_per_loop_needs_the_meter_in_both_runs(tmp_path: Path) -> None:
    base = make_run(tmp_path / "base", probe_us=SPEED)
    old = make_run(tmp_path / "old")
    code, out, _ = run(old, base)
    assert code == 0
    rows = gated_rows(out)
    assert any("celery-redis" in r and "/redis-raw" in r for r in rows)
    assert not any(" per loop " in r for r in rows)


def test_missing_ceiling_falls_back_to_absolute(base_run: Path, tmp_path: Path) -> None:
    no_raw = make_run(tmp_path / "noraw", backends=("celery-redis",))
    code, out, _ = run(base_run, no_raw, "--allow-missing")
    assert code == 0
    rows = [r for r in gated_rows(out) if "celery-redis" in r]
    assert rows and all("absolute" in r and "no redis-raw jobs_per_s in current" in r
                        for r in rows)


def test_metric_option_and_latency_direction(base_run: Path, tmp_path: Path) -> None:
    laggy = make_run(tmp_path / "laggy", p99=2.6, noise=NOISE_B)
    code, _, err = run(base_run, laggy)
    assert code == 0  # jobs_per_s unchanged; latency shown but not gated
    code, out, err = run(base_run, laggy, "--metric", "latency_ms.*")
    assert code == 1 and "latency_ms.p99" in err and "latency_ms.p50" in err
    # a gate that would judge nothing is bad input, not a pass
    code, out, err = run(base_run, laggy, "--metric", "window_s")
    assert code == 2 and "no better or worse way for window_s, so nothing would be gated" in err
    code, out, err = run(base_run, laggy, "--metric", "jobs_per_s,cpu_us_per_jb")
    assert code == 2 and "no metric matching cpu_us_per_jb in both runs" in err


def test_a_threshold_a_rate_cannot_fall_by_is_refused(base_run: Path) -> None:
    code, _, err = run(base_run, base_run, "--threshold", "100")
    assert code == 2 and "must be a percentage above 0 and below 100" in err


def test_threshold_option(base_run: Path, tmp_path: Path) -> None:
    slow = make_run(tmp_path / "slow", {"asyncio": 0.8}, noise=NOISE_B)
    assert run(base_run, slow, "--threshold", "25%")[0] == 0
    assert run(base_run, slow, "--threshold", "15")[0] == 1


def test_report_only_never_fails_on_regression(base_run: Path, tmp_path: Path) -> None:
    slow = make_run(tmp_path / "slow", {"asyncio": 0.8}, noise=NOISE_B)
    code, out, err = run(base_run, slow, "--report-only")
    assert code == 0
    assert "REGRESSION in 2 rows" in out and "(report only: not failing)" in out
    assert "asyncio" in err
    code, _, err = run(base_run, tmp_path / "missing", "--report-only")
    assert code == 2


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.mark.parametrize("case", [
    "missing", "not-json", "schema", "no-cells", "bad-cell", "no-common", "no-metric",
    "no-baseline", "one-run", "bad-threshold", "bad-format", "three-runs", "too-deep",
    "cell-dir-list", "huge-number", "config-list", "infinite",
])
def test_bad_input_is_one_line_exit_2(case: str, base_run: Path, tmp_path: Path) -> None:
    summary = json.loads((base_run / "summary.json").read_text())
    other = json.loads(json.dumps(summary))
    for c in other["cells"]:
        c["scenario"] = "latency"
    args: dict[str, list[str | Path]] = {
        "missing": [base_run, tmp_path / "nope"],
        "not-json": [base_run, write(tmp_path / "x.json", "{not json")],
        "schema": [base_run, write(tmp_path / "x.json", json.dumps({**summary, "schema": 9}))],
        "no-cells": [base_run, write(tmp_path / "x.json", '{"schema": 1, "cells": 3}')],
        "bad-cell": [base_run, write(tmp_path / "x.json", json.dumps(
            {"schema": 1, "cells": [{"status": "ok", "params": {}, "metrics": {}}]}))],
        "no-common": [base_run, write(tmp_path / "x.json", json.dumps(other))],
        "no-metric": [base_run, base_run, "--metric", "nosuch_*"],
        "no-baseline": ["main", base_run, "--baselines-dir", tmp_path / "bl"],
        "one-run": [base_run],
        "bad-threshold": [base_run, base_run, "--threshold", "ten"],
        "bad-format": [base_run, base_run, "--format", "xml"],
        "three-runs": [base_run, base_run, base_run],
        "too-deep": [base_run, write(tmp_path / "x.json", "[" * 100_000 + "]" * 100_000)],
        "cell-dir-list": [base_run, write(tmp_path / "x.json", json.dumps(
            {**summary, "cells": [{**summary["cells"][0], "cell_dir": ["x"]}]}))],
        "huge-number": [base_run, write(tmp_path / "x.json", json.dumps(
            {**summary, "cells": [{**summary["cells"][0], "metrics": {"jobs_per_s": 10**400}}]}))],
        "config-list": [base_run, write(tmp_path / "x.json", json.dumps(
            {**summary, "run": {**summary["run"], "config": [1, 2]}}))],
        "infinite": [base_run, write(tmp_path / "x.json", json.dumps(
            {**summary, "cells": [{**summary["cells"][0], "metrics": {"jobs_per_s": 1e999}}]}))],
    }
    code, out, err = run(*args[case])
    assert code == 2
    assert len(err.splitlines()) == 1 and "error:" in err and "Traceback" not in err
    assert out == ""


def test_markdown_format(base_run: Path, tmp_path: Path) -> None:
    slow = make_run(tmp_path / "slow", {"asyncio": 0.8}, noise=NOISE_B)
    code, out, _ = run(base_run, slow, "--format", "markdown")
    assert code == 1
    lines = out.splitlines()
    assert lines[0] == "### queuebench compare"
    header = "| " + " | ".join(HEADERS) + " |"
    assert lines.count(header) == 2  # gated table and the folded one
    table = [ln for ln in lines if ln.startswith("| throughput/")]
    assert all(ln.count("|") == len(HEADERS) + 1 for ln in table)
    assert "**slower**" in out and "<details>" in out and "**REGRESSION in 2 rows" in out


def test_github_format(base_run: Path, tmp_path: Path) -> None:
    out_file = tmp_path / "bench.json"
    code, out, _ = run(base_run, "--format", "github", "--output", out_file)
    assert code == 0 and out == ""
    entries = json.loads(out_file.read_text())
    assert isinstance(entries, list) and entries
    for entry in entries:
        assert {"name", "unit", "value", "range"} <= set(entry)
        assert isinstance(entry["value"], float) and isinstance(entry["range"], str)
        assert entry["range"].startswith("± ")
    names = {e["name"]: e for e in entries}
    key = "throughput/celery-redis/duration_ms=10,slots=8,window_s=2 jobs_per_s"
    assert names[key]["unit"] == "jobs/s" and names[key]["value"] == pytest.approx(1500)
    assert names[key + "/redis-raw"]["unit"] == "x redis-raw"
    assert names[key + "/redis-raw"]["value"] == pytest.approx(1 / 3)
    assert not any("latency" in n for n in names)  # customBiggerIsBetter only
    code, out, _ = run(base_run, base_run, "--format", "github", "--absolute")
    assert code == 0 and not any(e["name"].endswith("/redis-raw") for e in json.loads(out))
    code, _, err = run(base_run, "--format", "github", "--metric", "latency_ms.p99")
    assert code == 2 and "customBiggerIsBetter" in err
    # the other direction has a file of its own: customSmallerIsBetter
    code, out, _ = run(base_run, "--format", "github-smaller", "--metric", "latency_ms.p99")
    smaller = json.loads(out)
    assert code == 0 and smaller and all(e["name"].endswith("latency_ms.p99") for e in smaller)
    code, _, err = run(base_run, "--format", "github-smaller")
    assert code == 2 and "customSmallerIsBetter" in err


def test_bencher_format(base_run: Path) -> None:
    code, out, _ = run(base_run, "--format", "bencher", "--metric", "jobs_per_s,latency_ms.*")
    assert code == 0
    data = json.loads(out)
    bench = data["throughput/celery-redis/duration_ms=0,slots=8,window_s=2"]
    assert set(bench) == {"jobs-per-s", "jobs-per-s-per-redis-raw", "latency-ms-p50",
                          "latency-ms-p99"}
    for measures in data.values():
        for metric in measures.values():
            assert set(metric) == {"value", "lower_value", "upper_value"}
            assert metric["lower_value"] <= metric["value"] <= metric["upper_value"]
    assert bench["jobs-per-s"]["value"] == pytest.approx(3000)
    code, out, err = run(base_run, "--format", "bencher", "--metric", "jobs_per_sec")
    assert (code, out) == (2, "") and "matches --metric jobs_per_sec" in err


def test_baseline_save_and_compare_by_name(base_run: Path, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    store = tmp_path / "baselines"
    assert main(["baseline", "save", "main", str(base_run), "--baselines-dir", str(store)]) == 0
    assert capsys.readouterr().out.startswith("saved ")
    assert main(["baseline", "save", "main", str(base_run), "--baselines-dir", str(store)]) == 2
    assert "exists; --replace to overwrite it" in capsys.readouterr().err  # never silently
    assert main(["baseline", "save", "main", str(base_run), "--baselines-dir", str(store),
                 "--replace"]) == 0
    assert capsys.readouterr().out.startswith("replaced ")
    saved = store / "main.json"
    assert saved.read_bytes() == (base_run / "summary.json").read_bytes()
    code, out, _ = run("main", base_run, "--baselines-dir", store)
    assert code == 0 and f"baseline: {saved}" in out
    slow = make_run(tmp_path / "slow", {"asyncio": 0.8}, noise=NOISE_B)
    assert run("main", slow, "--baselines-dir", store)[0] == 1


@pytest.mark.parametrize("name", ["../evil", "a/b", ".hidden", "", "sp ace"])
def test_baseline_save_rejects_bad_names(name: str, base_run: Path, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    store = tmp_path / "baselines"
    assert main(["baseline", "save", name, str(base_run), "--baselines-dir", str(store)]) == 2
    assert len(capsys.readouterr().err.splitlines()) == 1
    assert not store.exists()


def test_baseline_save_validates_the_run(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    store = tmp_path / "baselines"
    failed = RunWriter(tmp_path / "failed", {"complete": True})
    failed.add(cell("celery-redis", 0, 1, 0.0, status="failed"))
    for run_dir in (tmp_path / "failed", tmp_path / "nothing-here"):
        assert main(["baseline", "save", "x", str(run_dir), "--baselines-dir", str(store)]) == 2
        assert len(capsys.readouterr().err.splitlines()) == 1
    assert not (store / "x.json").exists()


def test_module_entry_point(base_run: Path) -> None:
    """`python -m harness compare` as CI calls it, in a fresh interpreter."""
    proc = subprocess.run([sys.executable, "-m", "harness", "compare", str(base_run),
                           str(base_run / "summary.json"), "--format", "markdown"],
                          capture_output=True, text=True, cwd=REPO, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "| case |" in proc.stdout


# -- gate semantics: what the current run lost fails the gate ----------------------------
def test_missing_backend_fails_and_is_named(base_run: Path, tmp_path: Path) -> None:
    gone = make_run(tmp_path / "gone", backends=("redis-raw", "asyncio"))
    code, out, err = run(base_run, gone)
    assert code == 1
    assert "celery-redis" in err and "missing in current" in err and len(err.splitlines()) == 1
    assert "throughput/celery-redis/duration_ms=0,slots=8,window_s=2: missing in current " \
           "[FAILS the gate]" in out
    code, out, err = run(base_run, gone, "--allow-missing")
    assert code == 0 and not err
    assert "missing in current [allowed (--allow-missing)]" in out
    assert ("no regression in 2 gated rows; 2 cases not measured in current (failed, missing "
            "or unstable) allowed by --allow-missing") in out


def test_failed_backend_fails_the_gate(base_run: Path, tmp_path: Path) -> None:
    broken = make_run(tmp_path / "broken", failed=("celery-redis",))
    code, out, err = run(base_run, broken)
    assert code == 1 and "celery-redis" in err
    assert "failed in current: broker missing [FAILS the gate]" in out
    assert run(base_run, broken, "--allow-missing")[0] == 0
    assert run(base_run, broken, "--report-only")[0] == 0


@pytest.mark.parametrize("lost", [None, float("nan"), "fast", "absent"])
def test_an_ok_cell_without_its_gated_figure_fails_the_gate(base_run: Path, tmp_path: Path,
                                                            lost: object) -> None:
    """A current cell that ended ok with its jobs_per_s null, NaN, not a number or gone
    is a case the gate lost, never a row that quietly drops out."""
    summary = json.loads((base_run / "summary.json").read_text())
    for cell in summary["cells"]:
        if cell["backend"] == "celery-redis" and cell["params"]["duration_ms"] == 10:
            if lost == "absent":
                del cell["metrics"]["jobs_per_s"]
            else:
                cell["metrics"]["jobs_per_s"] = lost
    (tmp_path / "cur").mkdir()
    (tmp_path / "cur" / "summary.json").write_text(json.dumps(summary))
    code, out, err = run(base_run, tmp_path / "cur")
    assert code == 1, out
    assert ("throughput/celery-redis/duration_ms=10,slots=8,window_s=2: jobs_per_s not "
            "measured in current's ok rounds [FAILS the gate]") in out
    assert run(base_run, tmp_path / "cur", "--allow-missing")[0] == 0


@pytest.mark.parametrize(("cell", "message"), [({"status": None}, "has no 'status' string"),
                                               ({"status": "weird"}, "unknown status 'weird'")])
def test_a_malformed_cell_is_bad_input(base_run: Path, tmp_path: Path, cell: dict,
                                       message: str) -> None:
    summary = json.loads((base_run / "summary.json").read_text())
    summary["cells"][0].update(cell)
    (tmp_path / "cur").mkdir()
    (tmp_path / "cur" / "summary.json").write_text(json.dumps(summary))
    code, _, err = run(base_run, tmp_path / "cur")
    assert code == 2 and message in err and len(err.splitlines()) == 1


def test_missing_ceiling_fails_the_gate(base_run: Path, tmp_path: Path) -> None:
    no_raw = make_run(tmp_path / "noraw", backends=("celery-redis", "asyncio"))
    code, _, err = run(base_run, no_raw)
    assert code == 1 and "redis-raw" in err


def test_unstable_in_current_only_fails(base_run: Path, tmp_path: Path) -> None:
    shaky = make_run(tmp_path / "shaky", unstable=("asyncio",))
    code, out, err = run(base_run, shaky)
    assert code == 1
    assert "unstable in current: window shorter than asked in 3 of 3 ok rounds" in err
    code, out, _ = run(shaky, shaky)  # unstable on both sides: judged, with a note
    assert code == 0 and "unstable in 3 of 3 current rounds" in out


def test_a_noisy_cv_is_a_note_not_a_failure(base_run: Path, tmp_path: Path) -> None:
    """unstable by its per-second CV alone (the window was full): noted, judged."""
    summary = json.loads((base_run / "summary.json").read_text())
    for c in summary["cells"]:
        c["metrics"]["unstable"] = c["backend"] == "asyncio"
    code, out, _ = run(base_run, write(tmp_path / "cv.json", json.dumps(summary)))
    assert code == 0 and "unstable in 3 of 3 current rounds" in out


def test_a_producer_bound_round_is_a_note_not_a_failure(base_run: Path, tmp_path: Path) -> None:
    """The queue ran dry inside asyncio's windows: judged, and the row says so."""
    summary = json.loads((base_run / "summary.json").read_text())
    for c in summary["cells"]:
        c["metrics"]["producer_bound"] = c["backend"] == "asyncio"
    code, out, _ = run(base_run, write(tmp_path / "fed.json", json.dumps(summary)))
    assert code == 0
    assert "producer-bound in 3 of 3 current rounds (the queue ran dry: a lower bound)" in out


def test_the_injected_delay_is_a_run_option() -> None:
    from harness.cli import build_parser

    args = build_parser().parse_args(["run", "--inject-delay-us", "300"])
    assert args.inject_delay_us == 300
    assert build_parser().parse_args(["run", "--inject-delay-us", "4.5"]).inject_delay_us == 4.5
    assert build_parser().parse_args(["run", "--inject-delay-us", "0"]).inject_delay_us == 0


def test_new_case_is_listed_as_skipped(tmp_path: Path) -> None:
    small = make_run(tmp_path / "small", backends=("asyncio",))
    code, out, _ = run(small, make_run(tmp_path / "big"))
    assert code == 0
    assert "throughput/redis-raw/duration_ms=0,slots=8,window_s=2: new in current: nothing " \
           "to compare with [skipped]" in out


# -- fingerprints --------------------------------------------------------------------------
def test_different_slots_refuse_unless_forced(base_run: Path, tmp_path: Path) -> None:
    four = make_run(tmp_path / "four", config={"slots": 4})
    code, out, err = run(base_run, four)
    assert code == 2 and out == "" and len(err.splitlines()) == 1
    assert "not comparable: slots 8 vs 4" in err and "--force" in err
    code, out, _ = run(base_run, four, "--force")
    assert code == 0 and "fingerprint: slots: 8 -> 4 (forced)" in out
    window = make_run(tmp_path / "window", config={"quick": False, "window_s": 8.0})
    code, _, err = run(base_run, window)
    assert code == 2 and "quick True vs False" in err and "window_s 2.0 vs 8.0" in err
    same = make_run(tmp_path / "same-window", config={"window_s": 2.0})  # --quick --window 2
    code, out, _ = run(base_run, same)
    assert code == 0 and "fingerprint: same machine shape, versions and settings" in out


def test_forced_runs_pair_their_cases_without_the_forced_option(base_run: Path,
                                                                tmp_path: Path) -> None:
    """slots and window_s are case params too: `--force` pairs the cases of an 8-slot
    and a 4-slot run without them, or it would find no case in common."""
    four = make_run(tmp_path / "four", config={"slots": 4}, factors={"celery-redis": 0.5})
    summary = json.loads((four / "summary.json").read_text())
    for cell in summary["cells"]:
        cell["params"]["slots"] = 4
    (four / "summary.json").write_text(json.dumps(summary))
    assert run(base_run, four)[0] == 2
    code, out, _ = run(base_run, four, "--force")
    assert code == 1 and "forced:   cases paired without slots" in out
    rows = gated_rows(out)
    assert rows and all("slots" not in r.split()[0] for r in rows)
    assert any(r.startswith("throughput/celery-redis/") and "slower" in r for r in rows)


def test_other_differences_are_printed_at_the_top(base_run: Path, tmp_path: Path) -> None:
    summary = json.loads((base_run / "summary.json").read_text())
    summary["fingerprint"]["broker_versions"]["redis"] = "7.2.4"
    summary["fingerprint"]["cpu_count"] = 4
    other = write(tmp_path / "other.json", json.dumps(summary))
    code, out, _ = run(base_run, other)
    assert code == 0
    head = out.split("\n\n")[0]
    assert "fingerprint: broker_versions.redis: '7.0.15' -> '7.2.4'" in head
    assert "fingerprint: cpu_count: 2 -> 4" in head
    del summary["fingerprint"]["library_versions"]["celery"]  # a run without celery
    code, out, _ = run(base_run, write(tmp_path / "fewer.json", json.dumps(summary)))
    assert "library_versions" not in out.split("\n\n")[0]
    assert "fingerprint: same machine shape, versions and settings" in run(base_run, base_run)[1]


def test_summary_without_fingerprint_is_said(base_run: Path, tmp_path: Path) -> None:
    summary = json.loads((base_run / "summary.json").read_text())
    del summary["fingerprint"]
    old = write(tmp_path / "old.json", json.dumps(summary))
    code, out, _ = run(old, base_run)
    assert code == 0
    assert "fingerprint: none in baseline (written before fingerprints)" in out


def test_baseline_save_refuses_an_injected_delay(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    slowed = make_run(tmp_path / "slowed", config={"inject_delay_us": 300})
    store = tmp_path / "baselines"
    assert main(["baseline", "save", "x", str(slowed), "--baselines-dir", str(store)]) == 2
    assert "--inject-delay-us 300" in capsys.readouterr().err
    assert not store.exists()


CALIBRATION = REPO / "results" / "reference" / "ci-calibration"


@pytest.mark.parametrize(("folder", "least"), [(CALIBRATION, 6),
                                               (CALIBRATION.parent / "ci-calibration-speed", 4),
                                               (CALIBRATION.parent / "ci-calibration-cpu", 4),
                                               (CALIBRATION.parent / "ci-calibration-nine-ramp-2",
                                                5)])
def test_committed_aa_pairs_do_not_fail_the_gate(folder: Path, least: int) -> None:
    """The A/A runs docs/ci.md quotes (same code, one after the other): no pair fails,
    on the ceiling basis (before the speed meter) and per probe loop (with it)."""
    runs = sorted((folder / "aa").glob("*.json"))
    assert len(runs) >= least
    for base, cur in itertools.combinations(runs, 2):
        code, out, err = run(base, cur)
        assert code == 0, out + err


# The gate on real runs (a 25% injected slowdown fires for every gated backend, 0% for
# none) is a benchmark, not a unit test: results/reference/ci-calibration/collect.py and
# calibrate.py, docs/ci.md. On this 2-core VM the default gate (no history) does not
# call every slowed library against every baseline; the committed runs keep what it does
# catch from regressing, and the workflow's gate (--noise) is held to all of them below.
CPU_CALIBRATION = CALIBRATION.parent / "ci-calibration-cpu"
CPU_TIME_CALIBRATION = CALIBRATION.parent / "ci-calibration-cpu-time"
RAMP_CALIBRATION = CALIBRATION.parent / "ci-calibration-ramp"
NINE_CALIBRATION = CALIBRATION.parent / "ci-calibration-nine-ramp"
NINE_CALIBRATION_2 = CALIBRATION.parent / "ci-calibration-nine-ramp-2"
NINE_LIBRARIES = ("arq", "asyncio", "celery-rabbitmq", "celery-redis", "dramatiq-rabbitmq",
                  "dramatiq-redis", "rq")
CALLED_EVERY_TIME = [
    *((CPU_CALIBRATION, b, "cpu_us_per_job")
      for b in ("arq", "celery-rabbitmq", "celery-redis", "dramatiq-redis", "rq")),
    *((CPU_TIME_CALIBRATION, b, "cpu_us_per_job")
      for b in ("arq", "celery-rabbitmq", "dramatiq-rabbitmq", "dramatiq-redis")),
    (CPU_TIME_CALIBRATION, "rq", "jobs_per_s"),
    *((RAMP_CALIBRATION, b, m) for b in ("asyncio", "celery-redis")
      for m in ("jobs_per_s", "cpu_us_per_job")),
    *((NINE_CALIBRATION_2, b, "cpu_us_per_job") for b in ("celery-redis", "dramatiq-redis")),
    *((NINE_CALIBRATION_2, "rq", m) for m in ("jobs_per_s", "cpu_us_per_job"))]


@pytest.mark.parametrize(("folder", "backend", "metric"), CALLED_EVERY_TIME)
def test_committed_injected_slowdowns_fail_the_gate(folder: Path, backend: str,
                                                    metric: str) -> None:
    """The committed runs with a CPU delay sized toward -25% noop throughput, each
    compared with every committed A/A run as a maintainer would (the backend and its
    ceiling): the gate fails and names the backend's noop row."""
    slowed = folder / "injected" / f"{backend}.json"
    for base in sorted((folder / "aa").glob("*.json")):
        code, out, err = run(base, slowed, "--allow-missing")
        assert code == 1, out
        assert f"throughput/{backend}/duration_ms=0,slots=8,window_s=2 {metric}" in err


@pytest.mark.parametrize("backend", NINE_LIBRARIES)
def test_the_workflow_gate_with_an_earlier_calibrations_noise(backend: str) -> None:
    """Out of sample, as the workflow gates with main's history: the noise learned from
    one calibration's A/A runs (--noise) judges the next calibration's runs. Each slowed
    library is called slower against every A/A run of its own calibration, and the A/A
    runs of consecutive pairs pass (docs/ci.md)."""
    noise = NINE_CALIBRATION / "aa"
    runs = sorted((NINE_CALIBRATION_2 / "aa").glob("*.json"))
    slowed = NINE_CALIBRATION_2 / "injected" / f"{backend}.json"
    for base in runs:
        code, out, err = run(base, slowed, "--allow-missing", "--noise", noise)
        assert code == 1 and f"throughput/{backend}/duration_ms=0" in err, out
    index = NINE_LIBRARIES.index(backend) % (len(runs) - 1)  # one consecutive pair each
    code, out, err = run(runs[index], runs[index + 1], "--noise", noise)
    assert code == 0, out + err


def failing_aa_pairs(folder: Path) -> tuple[list[Path], list[tuple[int, int]], str]:
    """The committed A/A runs of `folder`, the pairs (1-based) that fail the default
    gate, and what compare printed for them."""
    runs = sorted((folder / "aa").glob("*.json"))
    failed, printed = [], ""
    for base, cur in itertools.combinations(runs, 2):
        code, out, _ = run(base, cur)
        if code:
            failed.append((runs.index(base) + 1, runs.index(cur) + 1))
            printed += out
    return runs, failed, printed


def test_the_committed_aa_pair_that_fails_is_the_one_whose_ceiling_fell_too() -> None:
    """Of the 10 A/A pairs of ci-calibration-cpu-time, one fails the gate: its fifth run
    drained everything slower with the probe loop barely slower (docs/ci.md), and the
    warning says the row's ceiling fell alike."""
    _, failed, printed = failing_aa_pairs(CPU_TIME_CALIBRATION)
    assert failed == [(1, 5)]
    assert "raw ceiling was called slower in the same case too " \
           "(throughput/celery-rabbitmq/duration_ms=0,slots=8,window_s=2 jobs_per_s)" in printed


def test_the_ramp_calibrations_one_failing_aa_pair_and_the_noise_model_that_quiets_it(
        ) -> None:
    """With the ramp's tight rounds, one A/A pair of ten fails the default gate (a whole
    run drifted: celery-redis's noop rate, docs/ci.md); learning the drift between runs
    from the three A/A runs the pair does not use (--noise) quiets it."""
    runs, failed, printed = failing_aa_pairs(RAMP_CALIBRATION)
    assert failed == [(1, 4)]
    assert "throughput/celery-redis/duration_ms=0,slots=8,window_s=2 jobs_per_s" in printed
    with tempfile.TemporaryDirectory() as noise_dir:
        for other in runs[1:3] + runs[4:]:
            shutil.copy(other, noise_dir)
        code, out, err = run(runs[0], runs[3], "--noise", noise_dir)
    assert code == 0, out + err


def test_noise_model_pools_within_run_spread_and_finds_drift() -> None:
    """Runs whose rounds spread alike but whose means differ: within is the pooled
    round variance, between what the means scatter beyond it."""
    import math

    from harness.compare.noise import learn

    rows = [{("k", "m"): [100.0, 110.0, 105.0]}, {("k", "m"): [100.0, 110.0, 105.0]},
            {("k", "m"): [200.0, 220.0, 210.0]}]
    quiet = learn(rows[:2], lambda r: r)[("k", "m")]
    one = [math.log(v) for v in (100.0, 110.0, 105.0)]
    mean = sum(one) / 3
    assert quiet.freedom == 4 and quiet.runs == 2
    assert quiet.within == pytest.approx(sum((v - mean) ** 2 for v in one) / 2)
    assert quiet.between == 0.0  # two runs: no spread of means of their own
    drifting = learn(rows, lambda r: r)[("k", "m")]
    assert drifting.within == pytest.approx(quiet.within)  # a doubled run is not noisier
    assert drifting.between > 0.05  # but the runs drift


def test_learned_noise_calls_a_drop_the_rounds_alone_cannot(tmp_path: Path) -> None:
    """Two rounds a side give Welch about two degrees of freedom; the same rounds tested
    against the noise of ten earlier runs call an 18% drop (Welch: p = 0.057)."""
    history = tmp_path / "history"
    history.mkdir()
    for n in range(10):
        make_run(history / f"r{n}", rounds=2, noise=(1.0, 1.12), backends=("asyncio",))
    base = make_run(tmp_path / "b", rounds=2, noise=(1.0, 1.12), backends=("asyncio",))
    cur = make_run(tmp_path / "c", {"asyncio": 0.82}, rounds=2, noise=(1.1, 0.98),
                   backends=("asyncio",))
    code, out, _ = run(base, cur)
    assert code == 0 and not any("slower" in r for r in gated_rows(out))
    code, out, _ = run(base, cur, "--noise", history)
    assert code == 1, out
    assert "noise:    learned from 10 runs" in out and "2 gated rows learned, 10 degrees" in out
    noop = next(r for r in gated_rows(out) if "duration_ms=0," in r)
    assert "slower" in noop
    code, out, _ = run(base, base, "--noise", history)
    assert code == 0 and "blind spots" not in out


def test_noise_needs_a_folder_of_runs(base_run: Path, tmp_path: Path) -> None:
    code, _, err = run(base_run, base_run, "--noise", tmp_path / "nothing")
    assert code == 2 and "not a directory of runs" in err
    (tmp_path / "two").mkdir()
    for name in ("a", "b"):
        make_run(tmp_path / "two" / name)
    code, _, err = run(base_run, base_run, "--noise", tmp_path / "two")
    assert code == 2 and "2 other runs found, at least 3" in err
    # the compared runs themselves are no noise sample: a third run that is the baseline
    # leaves two
    shutil.copytree(base_run, tmp_path / "two" / "base")
    code, _, err = run(base_run, base_run, "--noise", tmp_path / "two")
    assert code == 2 and "2 other runs found, at least 3" in err
    make_run(tmp_path / "two" / "c")
    code, out, _ = run(base_run, base_run, "--noise", tmp_path / "two")
    assert code == 0 and "1 run of --noise" in out and "the baseline or current run itself" in out
    write(tmp_path / "two" / "delays.json", '{"rq": 300}')  # a script's notes beside the runs
    code, out, _ = run(base_run, base_run, "--noise", tmp_path / "two")
    assert code == 0 and "left out delays.json" in out


def test_learned_noise_keeps_its_variance_when_rounds_are_projected() -> None:
    """rounds_needed with a learned noise: the rounds it projects add freedom, never
    shrink the variance; with drift between runs no number of rounds is enough."""
    import math

    from harness.compare.judge import detectable_drop, rounds_needed
    from harness.compare.noise import Noise

    spread = [1.0, 1.3, 0.8]
    logs = [math.log(v) for v in spread]
    mean = sum(logs) / 3
    squares = sum((v - mean) ** 2 for v in logs)
    noise = Noise(squares * 4, 8, 4, 0.0)  # four runs as spread as these rounds
    needed = rounds_needed(spread, spread, 0.05, noise=noise)
    assert needed is not None and needed > 3
    many = spread * needed
    assert detectable_drop(many, many, 0.05, 0.1, noise) <= 0.25 + 0.02
    drifting = Noise(squares * 4, 8, 4, 0.05)
    assert rounds_needed(spread, spread, 0.05, noise=drifting) is None


def test_per_loop_needs_the_same_probe_in_both_runs(tmp_path: Path) -> None:
    """Another Python runs the probe loop at another speed: rates per loop of the two
    runs are not on one scale, so the rows fall back to the ceiling basis and say why."""
    base = make_run(tmp_path / "base", probe_us=SPEED)
    other = make_run(tmp_path / "other", probe_us=SPEED, python="3.12.1")
    code, out, _ = run(base, other)
    assert code == 0
    rows = [r for r in gated_rows(out) if "celery-redis" in r]
    assert rows and all("/redis-raw" in r and "speed probes differ" in r for r in rows)


def test_exports_carry_the_rate_per_probe_loop(tmp_path: Path) -> None:
    metered = make_run(tmp_path / "metered", probe_us=SPEED)
    code, out, _ = run(metered, metered, "--format", "github")
    assert code == 0
    names = {e["name"]: e for e in json.loads(out)}
    key = "throughput/celery-redis/duration_ms=10,slots=8,window_s=2 jobs_per_loop"
    assert names[key]["unit"] == "jobs/loop" and names[key]["value"] == pytest.approx(1500 * 400e-6)
    code, out, _ = run(metered, metered, "--format", "github", "--absolute")
    assert not any(e["name"].endswith("jobs_per_loop") for e in json.loads(out))
    code, out, _ = run(metered, "--format", "bencher")
    assert code == 0
    bench = json.loads(out)["throughput/celery-redis/duration_ms=10,slots=8,window_s=2"]
    assert bench["jobs-per-loop"]["value"] == pytest.approx(1500 * 400e-6)


def with_reused_payload_cells(run_dir: Path) -> Path:
    """Add, as a run does, a payload 64 B case per backend and round that is the
    throughput noop cell itself (`reused_from`)."""
    path = run_dir / "summary.json"
    summary = json.loads(path.read_text())
    for source in [c for c in summary["cells"] if c["params"]["duration_ms"] == 0]:
        summary["cells"].append({**source, "scenario": "payload",
                                 "params": {"payload_bytes": 64, "slots": 8, "window_s": 2.0},
                                 "reused_from": source["cell_dir"], "cell_dir": None})
    path.write_text(json.dumps(summary))
    return run_dir


def test_a_reused_cell_is_judged_once_under_its_own_case(tmp_path: Path) -> None:
    base = with_reused_payload_cells(make_run(tmp_path / "base"))
    slow = with_reused_payload_cells(make_run(tmp_path / "slow", {"celery-redis": 0.6}))
    code, out, _err = run(base, slow)
    assert code == 1
    rows = gated_rows(out)
    assert not any(r.startswith("payload/") for r in rows)
    assert sorted(r.split()[0] for r in rows if "slower" in r) == [  # each called once
        "throughput/celery-redis/duration_ms=0,slots=8,window_s=2",
        "throughput/celery-redis/duration_ms=10,slots=8,window_s=2"]
    assert ("payload/celery-redis/payload_bytes=64,slots=8,window_s=2: the same cell as "
            "throughput/celery-redis/duration_ms=0,slots=8,window_s=2, judged there") in out


def test_a_case_measured_on_its_own_in_one_run_is_still_judged(tmp_path: Path) -> None:
    """The baseline ran payload 64 B as a cell of its own (an older harness), the current
    run reuses the noop cell: the two are different measurements, so the row is judged."""
    base = make_run(tmp_path / "base")
    summary = json.loads((base / "summary.json").read_text())
    for source in [c for c in summary["cells"] if c["params"]["duration_ms"] == 0]:
        summary["cells"].append({**source, "scenario": "payload", "cell_dir": None,
                                 "params": {"payload_bytes": 64, "slots": 8, "window_s": 2.0}})
    (base / "summary.json").write_text(json.dumps(summary))
    current = with_reused_payload_cells(make_run(tmp_path / "cur"))
    code, out, _err = run(base, current)
    assert code == 0
    assert any(r.startswith("payload/celery-redis/") for r in gated_rows(out))
    assert "the same cell as" not in out


def test_a_library_that_fell_with_its_ceiling_is_flagged(tmp_path: Path) -> None:
    """celery-redis and redis-raw both 40% slower per loop (the probe saw nothing): the
    gate still fails on celery-redis, and says its ceiling fell alike; a library that
    fell alone gets no such line."""
    base = make_run(tmp_path / "base", probe_us=SPEED)
    both = make_run(tmp_path / "both", {"celery-redis": 0.6, "redis-raw": 0.6}, probe_us=SPEED)
    code, out, _ = run(base, both)
    assert code == 1
    assert ("warning:  2 rows called slower whose raw ceiling was called slower in the "
            "same case too (throughput/celery-redis/duration_ms=0,slots=8,window_s=2 "
            "jobs_per_s; throughput/celery-redis/duration_ms=10,") in out
    alone = make_run(tmp_path / "alone", {"celery-redis": 0.6}, probe_us=SPEED)
    code, out, _ = run(base, alone)
    assert code == 1 and "raw ceiling was called slower" not in out


def test_sees_is_signed_as_the_metric_worsens() -> None:
    """A rate worsens by falling, a cost by rising: the same blindness reads -25% on a
    jobs/s row and +33% on a CPU-per-job row, and the threshold floors each in its own
    direction."""
    from harness.compare.judge import Row, detectable_drop
    from harness.compare.render import sees_cell
    key = ("throughput", "asyncio", "default", '{"duration_ms": 0}')
    rate = Row(key, "jobs_per_s", "absolute", [1.0], [1.0], True, sees=0.25)
    cost = Row(key, "cpu_us_per_job", "absolute", [1.0], [1.0], True, sees=0.25)
    assert (sees_cell(rate), sees_cell(cost)) == ("-25%", "+33%")
    cost.sees = detectable_drop([5.0, 5.0], [5.0, 5.0], 0.05, 0.1, lower_is_better=True)
    assert sees_cell(cost) == "+10%"
    cost.sees = detectable_drop([100, 100.001], [100, 180], 0.05 / 40, 0.1,
                                lower_is_better=True)  # one tight side: a drop of 1.0
    assert sees_cell(cost) == ">+900%"


def test_verdict_words_fit_the_metric() -> None:
    """A rate or a time is called faster or slower; lost jobs or a CV better or worse (a
    rise in lost jobs is no slowdown, but it fails a gate that watches it)."""
    from harness.compare.judge import Row, verdict_if_called
    key = ("crash-recovery", "rq", "fault=job-process-kill", "")

    def called(metric: str, ratio: float) -> Row:
        row = Row(key, metric, "absolute", [1.0], [ratio], True, ratio=ratio)
        row.verdict = verdict_if_called(row)
        return row

    assert [called(m, r).verdict for m, r in [
        ("jobs_per_s", 0.5), ("cpu_us_per_job", 0.5), ("recovery_s.last", 2.0),
        ("lost", 2.0), ("stability_cv", 0.5), ("window_s", 2.0)]] == [
        "slower", "faster", "slower", "worse", "better", "higher"]
    assert called("lost", 2.0).regressed and not called("stability_cv", 0.5).regressed


def test_a_rate_that_fell_to_zero_fails_the_gate(tmp_path: Path) -> None:
    """Logs of 0 do not exist, and a t-test on the raw values of 2-3 rounds lets 27,000
    -> 0 jobs/s pass: a round at 0 leaves the threshold alone to judge the row."""
    base = make_run(tmp_path / "b", per_round={"asyncio": [20000, 21000, 20500]},
                    backends=("asyncio",))
    cur = make_run(tmp_path / "c", per_round={"asyncio": [0, 0, 0]}, backends=("asyncio",))
    code, out, _ = run(base, cur)
    assert code == 1
    rows = [r for r in gated_rows(out) if "duration_ms=0," in r]
    assert rows and all("slower" in r and "a round at 0 or below" in r for r in rows)
    assert "too few rounds" not in out
    code, out, _ = run(cur, base)
    assert code == 0 and "up from 0" in out


def test_an_unfinished_run_is_named_at_the_top(base_run: Path, tmp_path: Path) -> None:
    """A baseline cut short gates fewer cases than it seems to: compare says which side
    did not finish and what that costs."""
    cut = make_run(tmp_path / "cut", backends=("asyncio",),
                   info={"complete": False, "interrupted": "SIGINT", "planned_cells": 18})
    code, out, _ = run(cut, base_run)
    assert code == 0
    assert ("warning:  the baseline run was interrupted (SIGINT): it holds 6 of 18 planned "
            "cells; the cases it never ran are not gated") in out.split("\n\n")[0]
    assert "did not finish" not in run(base_run, base_run)[1]


def test_baseline_list_of_a_missing_directory_is_an_error(tmp_path: Path) -> None:
    assert main(["baseline", "list", "--baselines-dir", str(tmp_path / "nope")]) == 2


def test_a_case_that_failed_in_current_only_is_not_called_new(tmp_path: Path) -> None:
    small = make_run(tmp_path / "small", backends=("asyncio",))
    cur = make_run(tmp_path / "cur", backends=("asyncio", "redis-raw"), failed=("redis-raw",))
    code, out, _ = run(small, cur)
    assert code == 0
    lines = [line.strip() for line in out.splitlines()
             if line.strip().startswith("throughput/redis-raw/")]
    assert lines and all("failed in current, not in baseline" in line for line in lines)
    assert not any("new in current" in line for line in lines)


def test_exporting_a_run_without_an_ok_cell_says_so(tmp_path: Path) -> None:
    broken = make_run(tmp_path / "broken", backends=("asyncio",), failed=("asyncio",))
    code, out, err = run(broken, "--format", "github")
    assert (code, out) == (2, "") and "has no ok cell" in err


def test_summary_csv_keeps_flags_texts_and_reuse(tmp_path: Path) -> None:
    """A CSV reader sees `unstable` beside the rate it marks, as summary.json holds it."""
    import csv
    run_dir = make_run(tmp_path / "r", rounds=1, backends=("asyncio",), unstable=("asyncio",))
    summary = json.loads((run_dir / "summary.json").read_text())
    rows = list(csv.DictReader((run_dir / "summary.csv").open()))
    assert len(rows) == len(summary["cells"])
    assert {"metrics.unstable", "metrics.timed_out", "reused_from",
            "metrics.latency_ms.p99"} <= set(rows[0])
    assert {row["metrics.unstable"] for row in rows} == {"True"}
    assert float(rows[0]["metrics.jobs_per_s"]) == summary["cells"][0]["metrics"]["jobs_per_s"]
    writer = RunWriter(tmp_path / "w", {"id": "w", "config": {}})
    reused = {**cell("asyncio", 0, 1, 100.0), "reused_from": "cells/0001-throughput"}
    reused["metrics"].update(per_second=[99, 101], hdr={"latency": "HISTFAAAA"})
    writer.add(reused)
    (row,) = list(csv.DictReader((tmp_path / "w" / "summary.csv").open()))
    assert row["reused_from"] == "cells/0001-throughput"
    assert json.loads(row["metrics.per_second"]) == [99, 101]
    assert not any(column.startswith("metrics.hdr") for column in row)


def test_a_comparison_with_nothing_gated_says_it_checks_nothing(tmp_path: Path) -> None:
    """Runs of a raw ceiling alone share no gated row: the gate passes, and says that it
    checked nothing rather than "no regression" alone."""
    base = make_run(tmp_path / "base", backends=("redis-raw",))
    cur = make_run(tmp_path / "cur", backends=("redis-raw",))
    code, out, _ = run(base, cur)
    assert code == 0 and "warning:  no gated row in common: this comparison checks nothing" \
        in out
    code, out, _ = run(make_run(tmp_path / "b2"), make_run(tmp_path / "c2"))
    assert "checks nothing" not in out


def test_a_case_the_baseline_ran_ok_without_a_gated_figure_is_listed_as_skipped(
        base_run: Path, tmp_path: Path) -> None:
    """rq ok in the baseline but with no jobs_per_s there: the gate cannot judge it and
    says so, rather than leaving it out silently."""
    summary = json.loads((base_run / "summary.json").read_text())
    for cell in summary["cells"]:
        if cell["backend"] == "celery-redis":
            cell["metrics"]["jobs_per_s"] = None
    base = write(tmp_path / "base.json", json.dumps(summary))
    code, out, _ = run(base, base_run)
    assert code == 0
    assert "jobs_per_s not measured in baseline's ok rounds" in out
    assert "celery-redis" in out.split("jobs_per_s not measured in baseline")[0].splitlines()[-1]


def test_runs_of_disjoint_profiles_are_refused_without_offering_force(
        base_run: Path, tmp_path: Path) -> None:
    reliable = make_run(tmp_path / "reliable", config={"profiles": ["reliable"]})
    for extra in ((), ("--force",)):
        code, _, err = run(base_run, reliable, *extra)
        assert code == 2 and "have none in common" in err and "--force" not in err, err
