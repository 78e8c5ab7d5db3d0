"""Bad input: one clear line, exit code 2, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.cli import main
from tests.conftest import harness_cli

REPO = Path(__file__).resolve().parents[1]

BAD_INPUT = [
    (["run", "--scenario", "nope"], "unknown scenario 'nope'; valid: throughput"),
    (["run", "--backend", "celery"], "unknown backend 'celery'; valid: asyncio"),
    (["run", "--backend", "asyncio,,rq"], "malformed backend list"),
    (["run", "--rounds", "0"], "rounds must be from 1 to 100: got 0"),
    (["run", "--rounds", "-3"], "rounds must be from 1 to 100"),
    (["run", "--slots", "100000"], "slots must be from 1 to 1,024"),
    (["run", "--durations", "inf"], "job duration (ms) must be from 0 to 3,600,000: got inf"),
    (["run", "--durations", "nan"], "job duration (ms) must be from 0"),
    (["run", "--rates", "inf"], "rate (jobs/s) must be from 0.1 to 10,000,000"),
    (["run", "--payload-sizes", "99999999999"], "payload size (bytes) must be from 1 to"),
    (["run", "--inject-delay-us", "99999999999"], "the delay (us) must be from 0 to 1,000,000"),
    (["run", "--inject-delay-us", "-1"], "the delay (us) must be from 0"),
    (["run", "--inject-delay-us", "4.55"], "the delay (us) takes steps of 0.1 us: got 4.55"),
    (["run", "--inject-delay-us", "nan"], "the delay (us) must be from 0"),
    (["run", "--slots", "two"], "is not a whole number"),
    (["run", "--rates", "100,-5"], "rate (jobs/s) must be from 0.1"),
    (["run", "--payload-sizes", "0"], "payload size (bytes) must be from 1"),
    (["run", "--durations", "-1"], "job duration (ms) must be from 0"),
    (["run", "--profile", "paranoid"], "unknown profile 'paranoid'"),
    (["run", "--redis-url", "notaurl"], "argument --redis-url: not a redis:// URL: notaurl"),
    (["run", "--amqp-url", "redis://127.0.0.1:6379/0"], "not an amqp:// URL"),
    (["run", "--redis-url", "rediss://:pw@127.0.0.1:6379/0"],
     "TLS (rediss://) is not supported: each library needs TLS settings of its own"),
    (["run", "--redis-url", "redis://127.0.0.1:99999/0"], "bad port"),
    (["run", "--backend", "rq,asyncio", "--redis-url", "redis://:hunter2@127.0.0.1:1/0"],
     "cannot reach redis at redis://:***@127.0.0.1:1/0: [Errno 111] Connection refused "
     "(--redis-url)"),
    (["run", "--backend", "amqp-raw", "--amqp-url", "amqp://u:pw@127.0.0.1:1/"],
     "cannot reach amqp broker at amqp://u:***@127.0.0.1:1/"),
    (["run", "--backend", "asyncio", "--redis-url", "redis://127.0.0.1:1/0"],
     "cannot reach redis at redis://127.0.0.1:1/0"),  # unused, still the user's input
    (["selftest", "--backend", "redis-raw", "--redis-url", "redis://127.0.0.1:1/0"],
     "cannot reach redis at redis://127.0.0.1:1/0"),
    (["doctor", "--amqp-url", "amqp://u:p@"], "no host in amqp://u:***@"),
    (["run", "--backend", "amqp-raw", "--payload-sizes", "300000000"],
     "must be from 1 to 16,777,216"),
    (["run", "--backend", "asyncio", "--out", "/proc/queuebench"],
     "cannot create /proc/queuebench"),
    (["report", "/nonexistent/run"], "/nonexistent/run"),
    (["compare", "/nonexistent/a", "/nonexistent/b"], "/nonexistent/a"),
    (["frobnicate"], "invalid choice"),
    (["run", "--redis-url", "redis://:s3cret@[::1/0"],
     "malformed URL (Invalid IPv6 URL): redis://:***@[::1/0"),
    (["run", "--backend", "pg-raw", "--pg-url", "postgresql://u@127.0.0.1:1/db?password=s3cret"],
     "postgresql://u@127.0.0.1:1/db?password=***"),
    (["run", "--redis-url", "redis://127.0.0.1:6379/abc"], "database of a redis URL is a number"),
    (["run", "--backend", "asyncio", "--with", "celery="], "no PATH after '='"),
    (["run", "--backend", "asyncio,redis-raw", "--with", f"celery={REPO}"],
     "--with celery: none of the chosen backends (asyncio, redis-raw) uses it"),
]


@pytest.mark.parametrize(("argv", "message"), BAD_INPUT, ids=[" ".join(a) for a, _ in BAD_INPUT])
def test_bad_input_is_one_line_and_exit_2(argv, message, capsys):
    try:
        code = main(argv)
    except SystemExit as exit_:  # argparse's own exit
        code = exit_.code
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert message in lines[0]


@pytest.mark.parametrize("command", ["run", "selftest"])
def test_an_out_folder_that_holds_files_is_refused(command, tmp_path, capsys):
    """Workers find a cell's folder by its number: an earlier run's cells in the same
    folder took this run's records (its cells failed with no job ended)."""
    (tmp_path / "cells" / "0001-throughput-redis-raw").mkdir(parents=True)
    code = main([command, "--backend", "redis-raw", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.strip().splitlines() == [err.strip()] and "is not empty" in err


@pytest.mark.parametrize("argv", [["run", "--backend", "nope"], ["compare", "/no/a", "/no/b"],
                                  ["run", "--redis-url", "notaurl"]])
def test_bad_input_as_a_user_sees_it(argv):
    """The same through a real `python -m harness`: no traceback reaches the terminal."""
    done = harness_cli(*argv, timeout=120)
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1
    assert "Traceback" not in done.stderr


def test_list_names_every_backend_and_scenario():
    done = harness_cli("list", timeout=60)
    assert done.returncode == 0, done.stderr
    for name in ("asyncio", "redis-raw", "amqp-raw", "celery-redis", "celery-rabbitmq",
                 "dramatiq-redis", "dramatiq-rabbitmq", "arq", "rq", "throughput", "latency",
                 "payload", "memory"):
        assert name in done.stdout


def test_all_scenarios_leaves_the_long_sweeps_to_be_named():
    from harness.cli import build_parser
    every = build_parser().parse_args(["run", "--scenario", "all"]).scenario
    assert every == build_parser().parse_args(["run"]).scenario
    assert "throughput" in every and "crash-recovery" in every
    assert "scaling" not in every and "depth" not in every
    named = build_parser().parse_args(["run", "--scenario", "scaling,depth"]).scenario
    assert named == ["scaling", "depth"]


def test_progress_lines_name_a_profile_that_is_not_the_default() -> None:
    """With --profile both, a backend's two cells must not print the same line."""
    from harness.runner import _label
    params = {"duration_ms": 0, "slots": 8, "window_s": 2.0}
    assert _label(1, "throughput", "asyncio", "default", params) == \
        "r1 throughput asyncio duration_ms=0 slots=8 window_s=2"
    assert _label(1, "throughput", "asyncio", "reliable", params) == \
        "r1 throughput asyncio[reliable] duration_ms=0 slots=8 window_s=2"


def test_selftest_attach_renders_the_runs_report_with_the_observer_effect(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`selftest --attach RUN_DIR` saved observer.json but left report.html without it
    until `harness report` ran again: it renders the report itself now."""
    import json
    import shutil

    from harness import selftest
    reference = REPO / "results" / "reference"
    canned = json.loads((reference / "2026-12-03-selftest-batched-amqp"
                         / "selftest.json").read_text())
    def canned_run(_backends: list[str], out: Path, *_args: object) -> dict:
        out.mkdir(parents=True, exist_ok=True)  # what the real one makes first
        return canned

    monkeypatch.setattr(selftest, "run", canned_run)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    for name in ("run.json", "summary.json"):
        shutil.copy(reference / "2026-12-01-depth-1m" / name, run_dir / name)
    main(["selftest", "--backend", "redis-raw", "--json", "--attach", str(run_dir),
          "--out", str(tmp_path / "selftest")])
    assert 'id="observer-effect"' in (run_dir / "report.html").read_text()


def test_an_incomplete_backend_with_one_cell_reads_right() -> None:
    from harness.cli import incomplete_backends
    cells = [{"backend": "rq", "status": "failed", "reason": "boom"}]
    assert incomplete_backends(cells) == ["rq: 1 of 1 cell failed"]
    cells += [{"backend": "rq", "status": "skipped", "reason": "broker gone"},
              {"backend": "rq", "status": "ok", "reason": None}]
    assert incomplete_backends(cells) == ["rq: 1 of 3 cells failed, 1 skipped"]


def test_doctor_sees_a_pinned_package_that_is_not_installed(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The marker file says what setup installed; a package removed since (or another
    version) must not pass as ok."""
    from harness import envs
    from tests.conftest import require_env
    require_env("rq")
    assert envs.installed_problem("rq") is None
    monkeypatch.setattr(envs, "requirements",
                        lambda _family: ["nosuchpkg==1.0", "rq[extra]==0.0.1"])
    problem = envs.installed_problem("rq")
    assert problem is not None
    assert "nosuchpkg missing (pinned 1.0)" in problem and "; rq " in problem
    assert "(pinned 0.0.1)" in problem


def test_a_run_skips_a_backend_whose_environment_lacks_a_pin(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The marker can outlive a removed package: the runner asks the environment itself,
    once a run, and skips the backend's cells with what is missing, not a worker that
    fails to import."""
    from harness import envs
    from harness.runner import RunConfig, Runner
    from scenarios.base import RunOptions
    from tests.conftest import require_env
    require_env("rq")
    asked = []
    real = envs.requirements

    def requirements(family: str) -> list[str]:
        asked.append(family)
        return [*real(family), "nosuchpkg==1.0"] if family == "rq" else real(family)

    monkeypatch.setattr(envs, "requirements", requirements)
    # the marker still says the environment is current: setup built it before the pin came
    monkeypatch.setattr(envs, "_fingerprint",
                        lambda family: (envs.VENVS / family / envs.MARKER).read_text())
    runner = Runner(RunConfig(scenarios=["throughput"], backends=["rq"], rounds=1,
                              out=tmp_path / "run", options=RunOptions(quick=True)))
    try:
        reasons = {runner._skip_reason(cell)[0] for _, cell in runner.plan()}
    finally:
        runner.stop_brokers()
    assert len(reasons) == 1
    reason = reasons.pop()
    assert reason and "nosuchpkg missing (pinned 1.0)" in reason and "make setup" in reason
    assert asked.count("rq") == 1  # asked once for every cell of the family


def test_a_scenario_with_no_cell_for_the_chosen_backend_says_why(tmp_path: Path) -> None:
    """depth fills a broker's queue: asyncio alone gives it nothing to run, which is bad
    input (exit 2, one line), not an empty run that exits 0."""
    done = harness_cli("run", "--scenario", "depth", "--backend", "asyncio", "--quick",
                       "--out", str(tmp_path / "run"), timeout=120)
    assert done.returncode == 2, done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert "nothing to run: depth has no cell for asyncio" in line
    assert not (tmp_path / "run").exists()


def test_grid_options_no_chosen_scenario_reads_and_jobs_longer_than_the_window_are_named(
        capsys: pytest.CaptureFixture[str]) -> None:
    from harness.run_checks import say_durations_too_long, say_unused_options
    from scenarios.base import RunOptions

    say_unused_options(["latency"], RunOptions(slots_sweep=(4,), rates=(100.0,)))
    err = capsys.readouterr().err
    assert "--slots-sweep is read by scaling only" in err and "--rates" not in err
    say_durations_too_long(["throughput"], RunOptions(quick=True, durations_ms=(0, 5000)))
    assert "--durations 5000: longer than the 2 s steady-state window" in capsys.readouterr().err
    say_durations_too_long(["throughput"], RunOptions(quick=True, durations_ms=(0, 10)))
    assert capsys.readouterr().err == ""


def test_two_runs_never_share_a_results_folder(tmp_path: Path) -> None:
    """Two runs started in the same second: the default folder is claimed by the first and
    the second gets its own; a folder named twice with --out is refused the second time."""
    from core.results import ResultsError
    from harness.run_checks import fresh_default_out, fresh_out, unclaim

    first = tmp_path / "20261203-200757"
    assert fresh_default_out(first) == first
    assert fresh_default_out(first) == tmp_path / "20261203-200757-2"
    with pytest.raises(ResultsError, match="in use by another run|is not empty"):
        fresh_out(first)
    unclaim(tmp_path / "20261203-200757-2")
    assert not (tmp_path / "20261203-200757-2").exists()
