"""pg_migrate killed with SIGKILL at random points: never a half-applied migration.

Each trial starts a runner on a fresh database, kills it (SIGKILL, the whole process group)
at a random moment while it migrates, checks that every migration is either fully applied with
its history row or not at all, then runs again and checks that everything ends up applied
exactly once. Every fourth trial goes through the real module (ansible-playbook); the others
run the module's code in a plain Python process, which starts faster.

The migrations are transactional and fewer than a batch, so all of them travel in one message:
a kill mid-run is a kill mid-batch. The killed runner's server session goes on with its message
until its next migration finds the advisory lock gone; a runner started at once (every other
trial) must neither race it nor apply anything twice.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ansible_collections.dbops.datastores.plugins.module_utils import _pg_migrate as pm

REPO = Path(__file__).resolve().parents[3]
TRIALS = 20
MIGRATIONS = 30
ROWS = 5000

RUNNER = """
import json, sys
sys.path[:0] = {paths!r}
from ansible_collections.dbops.datastores.plugins.module_utils import _pg_migrate as pm
pm.migrate(json.loads(sys.argv[1]), check_mode=False)
"""


def make_migrations(directory: Path) -> Path:
    directory.mkdir()
    (directory / "V001__log.sql").write_text("CREATE TABLE applied_log (version int NOT NULL);")
    for n in range(2, MIGRATIONS + 1):
        (directory / f"V{n:03d}__step_{n}.sql").write_text(
            f"CREATE TABLE k{n} (id int PRIMARY KEY, payload text);\n"
            f"INSERT INTO k{n} SELECT g, md5(g::text) FROM generate_series(1, {ROWS}) g;\n"
            f"INSERT INTO applied_log VALUES ({n});\n"
        )
    return directory


def runner_connected(pg_server, db: str) -> bool:
    rows = pg_server.query("SELECT count(*) FROM pg_stat_activity WHERE datname = %s"
                           " AND application_name LIKE 'dbops pg_migrate migrate%%'", (db,))
    return rows[0][0] > 0


def wait_settled(pg_server, db: str, timeout: float = 30) -> None:
    """Wait until the killed runner's server sessions are gone (they finish or roll back)."""
    deadline = time.monotonic() + timeout
    while pg_server.query("SELECT count(*) FROM pg_stat_activity WHERE datname = %s"
                          " AND application_name LIKE 'dbops pg_migrate%%'", (db,))[0][0]:
        assert time.monotonic() < deadline, "sessions of the killed runner did not end"
        time.sleep(0.02)


def check_consistent(pg_server, db: str) -> int:
    """Every migration is applied with its history row, or not at all; return how many are applied."""
    exists = pg_server.query("SELECT to_regclass('public.dbops_schema_history') IS NOT NULL",
                             dbname=db)[0][0]
    rows = pg_server.query("SELECT version::int, success FROM dbops_schema_history ORDER BY installed_rank",
                           dbname=db) if exists else []
    assert all(success for _version, success in rows), f"failed rows after a kill: {rows}"
    versions = [v for v, _success in rows]
    assert len(versions) == len(set(versions)), f"a version recorded twice: {versions}"
    assert versions == list(range(1, len(versions) + 1)), f"history has gaps: {versions}"
    tables = {r[0] for r in pg_server.query(
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename ~ '^k[0-9]+$'", dbname=db)}
    assert tables == {f"k{n}" for n in versions if n > 1}, (versions, tables)
    if versions:
        logged = [r[0] for r in pg_server.query("SELECT version FROM applied_log ORDER BY 1", dbname=db)]
        assert logged == [n for n in versions if n > 1]
        for n in versions[1:]:
            assert pg_server.query(f"SELECT count(*) FROM k{n}", dbname=db)[0][0] == ROWS
    return len(versions)


def start_runner(ansible, pg_server, db: str, path: Path, *, through_module: bool, workdir: Path):
    params = pg_server.params(login_db=db, path=str(path))
    if through_module:
        playbook = workdir / f"kill_{db}.yml"
        playbook.write_text(json.dumps([{"hosts": "localhost", "gather_facts": False,
                                         "tasks": [{"dbops.datastores.pg_migrate": params}]}]))
        cmd = [str(Path(sys.executable).with_name("ansible-playbook")), "-i", str(ansible.inventory),
               str(playbook)]
    else:
        script = RUNNER.format(paths=[str(REPO), str(REPO / ".build" / "collections")])
        cmd = [sys.executable, "-c", script, json.dumps(dict(params, ssl_mode="disable"))]
    return subprocess.Popen(cmd, env=ansible.env, cwd=workdir, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)


@pytest.mark.slow
def test_sigkill_at_random_points_never_half_applies(ansible, pg_server, tmp_path):
    path = make_migrations(tmp_path / "migrations")
    seed = int(os.environ.get("DBOPS_KILL_SEED", random.randrange(1 << 30)))
    rng = random.Random(seed)

    # Calibrate: how long an uninterrupted run takes here, now.
    calibration = pg_server.create_database("kill")
    started = time.monotonic()
    pm.migrate(pg_server.params(login_db=calibration, path=str(path), ssl_mode="disable"), check_mode=False)
    duration = time.monotonic() - started
    assert check_consistent(pg_server, calibration) == MIGRATIONS

    assert MIGRATIONS <= pm.BATCH_MAX_VERSIONS  # one message: every kill mid-run is mid-batch
    interrupted = mid_batch = 0
    for trial in range(TRIALS):
        db = pg_server.create_database("kill")
        through_module = trial % 4 == 0
        proc = start_runner(ansible, pg_server, db, path, through_module=through_module,
                            workdir=ansible.workdir)
        deadline = time.monotonic() + 60
        while not runner_connected(pg_server, db) and proc.poll() is None:
            assert time.monotonic() < deadline, "the runner never connected"
            time.sleep(0.005)
        time.sleep(rng.uniform(0, duration * 0.9))
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()

        if trial % 2:
            # Let the killed sessions end, then look at what they left.
            wait_settled(pg_server, db)
            applied = check_consistent(pg_server, db)
        else:
            # Run again at once: the new runner must wait for a migration still finishing.
            applied = None
        params = pg_server.params(login_db=db, path=str(path), ssl_mode="disable")
        result = pm.migrate(params, check_mode=False)
        assert result["version"] == f"{MIGRATIONS:03d}", (seed, trial)
        assert check_consistent(pg_server, db) == MIGRATIONS, (seed, trial)
        if applied is None:
            applied = MIGRATIONS - len(result["applied"])
        interrupted += applied < MIGRATIONS
        mid_batch += 0 < applied < MIGRATIONS
        pg_server.query(f'DROP DATABASE "{db}" WITH (FORCE)')
    print(f"SIGKILL trials: {TRIALS}, interrupted mid-run: {interrupted}, after some versions of the"
          f" batch committed: {mid_batch}, seed {seed}")
    # The kills must have landed mid-run most of the time, or the test proves little.
    assert interrupted >= TRIALS // 2, f"only {interrupted} of {TRIALS} kills interrupted a run (seed {seed})"
    assert mid_batch >= 1, f"no kill landed after part of the batch had committed (seed {seed})"
