"""The version matrix without building anything: names, requirements, the --with twins,
and a variant as a row of its own in compare."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters import BACKENDS, backend_names
from harness import envs, variants
from harness.cli import build_parser, main
from tests.test_compare import gated_rows, make_run, run


def test_a_variant_is_its_backend_in_its_own_environment() -> None:
    info = BACKENDS["celery-redis@5.6.3"]
    assert info.name == "celery-redis@5.6.3" and info.family == "celery@5.6.3"
    assert info.ceiling == "redis-raw" and info.adapter == BACKENDS["celery-redis"].adapter
    assert "rq@2.12.0" in BACKENDS and BACKENDS.get("rq@2.12.0") is not None
    assert "celery-redis@5.6.3" not in backend_names()  # lists show the pinned ones
    for bad in ("nosuch@1.0", "celery-redis@", "celery-redis@../x", "celery-redis@a/b"):
        assert bad not in BACKENDS and BACKENDS.get(bad) is None


def test_variant_requirements() -> None:
    pinned = envs.pinned("celery")
    assert envs.requirements("celery") == pinned
    assert envs.requirements("celery@5.6.3") == ["celery[redis]==5.6.3", *pinned[1:]]
    assert envs.requirements("rq@2.12.0")[0] == "rq==2.12.0"


def checkout(tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    path.mkdir()
    (path / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    return path


def test_with_checkouts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(envs, "CHECKOUTS", {})
    celery, redis = checkout(tmp_path, "celery"), checkout(tmp_path, "redis-py")
    assert envs.add_checkout(f"celery={celery}") == ("celery", celery)
    assert envs.add_checkout(f"redis-py={redis}") == ("redis", redis)
    reqs = envs.requirements("celery@local")
    assert f"celery[redis] @ {celery.as_uri()}" in reqs and f"redis @ {redis.as_uri()}" in reqs
    assert not any(r.startswith(("celery[redis]==", "redis==")) for r in reqs)
    assert variants.expand(["asyncio", "celery-redis", "arq"], ["celery"]) == [
        "asyncio", "celery-redis", "celery-redis@local", "arq"]
    assert "rq@local" in variants.expand(["rq"], ["redis"])
    for bad in ("celery", "nosuch=/tmp", f"celery={tmp_path / 'missing'}",
                f"celery={checkout(tmp_path, 'other-celery')}"):  # the last: twice
        with pytest.raises(envs.EnvError):
            envs.add_checkout(bad)


def test_a_local_twin_needs_a_checkout(capsys: pytest.CaptureFixture[str]) -> None:
    """`--backend arq@local` without --with would build the pinned release and label it
    as a checkout's."""
    assert main(["run", "--backend", "arq@local", "--quick"]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "give --with PACKAGE=PATH" in err


def test_the_backend_option_takes_variants(capsys: pytest.CaptureFixture[str]) -> None:
    args = build_parser().parse_args(["run", "--backend", "celery-redis,celery-redis@5.6.3",
                                      "--with", "celery=/x"])
    assert args.backend == ["celery-redis", "celery-redis@5.6.3"]
    assert args.checkouts == ["celery=/x"]
    for bad in ("asyncio@1.0", "celery-redis@../x", "celery-redis@nonexistent-version"):
        with pytest.raises(SystemExit) as exc:
            build_parser().parse_args(["run", "--backend", bad])
        assert exc.value.code == 2
        assert "BACKEND@VERSION" in capsys.readouterr().err
    assert main(["run", "--backend", "celery-redis", "--with", "nosuch=/x"]) == 2
    assert len(capsys.readouterr().err.splitlines()) == 1


def test_a_variant_is_a_row_of_its_own_in_compare(tmp_path: Path) -> None:
    backends = ("redis-raw", "celery-redis", "celery-redis@5.6.3")
    base = make_run(tmp_path / "b", backends=backends, per_round={
        "celery-redis@5.6.3": [3000.0, 3036.0, 2973.0]})
    cur = make_run(tmp_path / "c", backends=backends, per_round={
        "celery-redis@5.6.3": [2300.0, 2330.0, 2280.0]})
    code, out, err = run(base, cur)
    assert code == 1 and "celery-redis@5.6.3" in err
    rows = gated_rows(out)
    assert [r.split()[0].split("/")[1] for r in rows].count("celery-redis@5.6.3") == 2
    assert all("/redis-raw" in r for r in rows)
    assert all("no significant change" in r for r in rows if "/celery-redis/" in r)


def test_a_failed_first_build_leaves_no_half_made_environment(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A release that does not exist: one-line error, and no .venvs/<family> left behind
    that looks like an environment."""
    import subprocess

    def failing_install(cmd: list[str], **_kwargs: object) -> None:
        (tmp_path / "celery@0.0.1" / "bin").mkdir(parents=True, exist_ok=True)  # the venv
        if "install" in cmd:
            raise subprocess.CalledProcessError(1, cmd, stderr=b"no version of celery==0.0.1")

    monkeypatch.setattr(envs, "VENVS", tmp_path)
    monkeypatch.setattr(envs.subprocess, "run", failing_install)
    with pytest.raises(envs.EnvError, match="no version of celery==0.0.1"):
        envs.build("celery@0.0.1")
    assert not (tmp_path / "celery@0.0.1").exists()


def test_a_run_records_the_commit_of_each_with_checkout(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A maintainer's main and PR checkouts carry one version string: the run says which
    tree it was, and the fingerprint shows the change."""
    import subprocess

    from core.results import fingerprint
    from harness.runner import checkouts

    tree = tmp_path / "rq"
    tree.mkdir()
    for command in (["init", "-q"], ["-c", "user.email=a@b", "-c", "user.name=a", "commit",
                                     "-q", "--allow-empty", "-m", "x"]):
        subprocess.run(["git", *command], cwd=tree, check=True)
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=tree, capture_output=True,
                          text=True, check=True).stdout.strip()
    monkeypatch.setattr(envs, "CHECKOUTS", {"rq": tree})
    assert checkouts() == {"rq": {"path": str(tree), "commit": head}}
    assert fingerprint({"config": {"checkouts": checkouts()}})["checkouts"] == {"rq": head}
