"""The harness-owned PostgreSQL (core/brokers/postgres.py) against a real server."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters import BACKENDS
from core import pgwire
from core.brokers.postgres import Postgres
from harness.ceiling_check import bare_drain
from harness.cli import main
from harness.envs import python_of

pytestmark = pytest.mark.skipif(Postgres.find_binary() is None,
                                reason=Postgres.missing_binary())


@pytest.fixture(scope="module")
def server() -> Iterator[Postgres]:
    base = Path(tempfile.mkdtemp(prefix="queuebench-test-pg-"))
    base.chmod(0o755)  # the server runs as the postgres user when the tests run as root
    pg = Postgres(data_dir=base / "postgres")
    try:
        pg.start()
        yield pg
    finally:
        pg.stop()
        shutil.rmtree(base, ignore_errors=True)


def query(url: str, sql: str) -> list[tuple[str | None, ...]]:
    with pgwire.Connection(url) as conn:
        return conn.query(sql)


def test_it_answers_on_loopback_with_its_fresh_password(server):
    assert server.url.startswith("postgresql://queuebench:") and "@127.0.0.1:" in server.url
    assert Postgres.probe(server.url) is None
    assert query(server.url, "SHOW listen_addresses") == [("127.0.0.1",)]
    assert "fsync=on" in server.version and "synchronous_commit=on" in server.version


def test_wrong_or_missing_credentials_are_told_apart(server):
    wrong = Postgres.probe(server.url.replace(server.password, "not-it"))
    assert wrong and "refused the credentials" in wrong and "not-it" not in wrong
    missing = Postgres.probe(server.url.replace(f":{server.password}", ""))
    assert missing and "password" in missing


def test_memory_is_the_size_of_the_tables(server):
    before = Postgres.memory(server.url, None)["bytes"]
    query(server.url, "CREATE TABLE qb_test_memory (body bytea); INSERT INTO qb_test_memory "
                      "SELECT convert_to(repeat('x', 900), 'UTF8') FROM generate_series(1, 500)")
    after = Postgres.memory(server.url, None)
    query(server.url, "DROP TABLE qb_test_memory")
    assert after["bytes"] - before >= 500 * 900 and "pg_total_relation_size" in after["method"]


def test_kill9_and_restart_keep_committed_rows(server):
    query(server.url, "CREATE TABLE qb_test_kill (n int); INSERT INTO qb_test_kill VALUES (7)")
    port = server.port
    server.kill9()
    assert Postgres.probe(server.url) is not None
    server.start()
    assert server.port == port
    assert query(server.url, "SELECT n FROM qb_test_kill") == [("7",)]
    query(server.url, "DROP TABLE qb_test_kill")


@pytest.mark.skipif(not python_of(BACKENDS["pg-raw"].family).exists(),
                    reason="no pg environment: python -m harness setup")
@pytest.mark.parametrize("start_method", ["fork", "exec"])
def test_the_bare_loop_drains_every_row(server, start_method):
    """harness/ceiling_bare.py's postgres loop, which the self-test holds pg-raw against,
    with its consumers forked or each a new interpreter."""
    drained = bare_drain("postgres", "pg-raw", server.url, consumers=2, jobs=2000,
                         start_method=start_method)
    assert drained["jobs_per_s"] > 0 and drained["end_ns"] > drained["start_ns"]
    # the consumers' CPU from the go on: some, and no more than two busy processes had
    drain_s = (drained["end_ns"] - drained["start_ns"]) / 1e9
    assert 0 < drained["cpu_us_per_job"] * 2000 / 1e6 <= 2 * (drain_s + 0.5)
    assert query(server.url, 'SELECT count(*) FROM "qb-bare"') == [("0",)]
    query(server.url, 'DROP TABLE "qb-bare"')


def test_stop_leaves_no_server_process():
    base = Path(tempfile.mkdtemp(prefix="queuebench-test-pg-"))
    base.chmod(0o755)
    pg = Postgres(data_dir=base / "postgres")
    try:
        pg.start()
        pid = pg.proc.pid if pg.proc else 0
    finally:
        pg.stop()
        shutil.rmtree(base, ignore_errors=True)
    assert pid and not Path(f"/proc/{pid}").exists()


def test_a_bad_pg_url_is_a_one_line_error(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["run", "--pg-url", "redis://bob:s3cret@127.0.0.1:6379/0"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not a postgresql:// URL" in err[0] and "s3cret" not in err[0]


def test_an_unreachable_pg_url_says_so():
    problem = Postgres.probe("postgresql://bob:s3cret@127.0.0.1:1/db", timeout_s=1.0)
    assert problem and problem.startswith("cannot reach postgres") and "s3cret" not in problem


@pytest.mark.skipif(not python_of(BACKENDS["pg-raw"].family).exists(),
                    reason="no pg environment: python -m harness setup")
def test_pg_raw_skips_its_fair_share_only_right_after_a_full_claim(server):
    """A short queue is shared out (16 rows, 8 consumers: 2 each). Right after a full
    claim the share (two more index look-ups) is not computed, so the next claim takes up
    to the whole batch (10 rows); a short claim, or a full one FRESH_S ago (a batch of
    long jobs ran since), brings the share back (10 rows: 2)."""
    import json
    import subprocess
    done = subprocess.run([str(python_of(BACKENDS["pg-raw"].family)),
                           "-m", "tests.pg_claim_probe", server.url],
                          capture_output=True, text=True, timeout=60,
                          cwd=Path(__file__).resolve().parent.parent)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [2, 64, 10, 2, 64, 2]
