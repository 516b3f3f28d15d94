"""The db_migrate role's plan, apply and replay phases on a primary and its standby (two local
hosts, the role's own login: postgres over each server's socket as the postgres OS user): the
standby never runs pg_migrate (no files shipped, nothing written), the primary applies once, and
the role waits until the standby replayed the primary's position or fails naming it and its lag."""

from __future__ import annotations

import json
import sys
import tempfile
import uuid
from pathlib import Path

import psycopg2
import pytest

from tests.integration.replication.test_pg_replication import wait_replayed

PHASES = ("plan.yml", "apply.yml", "replay.yml")
SYSTEM_PYTHON = f"/usr/bin/python3.{sys.version_info.minor}"


@pytest.fixture
def replica_db(pg_pair):
    if not Path(SYSTEM_PYTHON).exists():
        pytest.skip(f"{SYSTEM_PYTHON} (the postgres OS user's interpreter) is not installed")
    primary, standby = pg_pair
    db = f"mr_{uuid.uuid4().hex[:8]}"
    primary.query(f'CREATE DATABASE "{db}"')
    wait_replayed(primary, standby)
    yield db
    primary.query(f'DROP DATABASE "{db}" WITH (FORCE)')


def _become_python_path() -> Path:
    """A directory the postgres OS user can read holding only psycopg2 (of the test venv, which
    lives where that user cannot go); the system python of the same minor imports it."""
    path = Path(tempfile.mkdtemp(prefix="dbops-become-py-"))
    path.chmod(0o755)
    site = Path(psycopg2.__file__).resolve().parents[1]
    for entry in site.glob("psycopg2*"):
        (path / entry.name).symlink_to(entry)
    return path


def run_phases(ansible, pg_pair, db, migrations, timeout):
    primary, standby = pg_pair
    # Modules run as the postgres OS user (su from root needs no password) with the system python;
    # their temp files live where that user can read them.
    remote_tmp = Path(tempfile.mkdtemp(prefix="dbops-become-"))
    remote_tmp.chmod(0o1777)
    inventory = ansible.workdir / "migrate_pair.ini"
    # The standby first: the role asks each node, the inventory order means nothing.
    inventory.write_text("".join(
        f"{name} ansible_connection=local ansible_python_interpreter={SYSTEM_PYTHON}"
        f" ansible_become_method=ansible.builtin.su ansible_remote_tmp={remote_tmp}"
        f" db_migrate_pg_socket_dir={server.socket_dir} db_migrate_pg_port={server.port}\n"
        for name, server in (("standby", standby), ("primary", primary))))
    variables = {"db_migrate_pg_migrations": [{"database": db, "path": str(migrations)}],
                 "db_migrate_replay_timeout": timeout}
    play = {"hosts": "all", "gather_facts": False, "vars": variables,
            # scram over the socket: the harness servers have no peer authentication.
            "environment": {"PGPASSWORD": primary.password, "PYTHONPATH": str(_become_python_path())},
            "tasks": [{"name": f"phase {phase}", "ansible.builtin.include_role": {
                "name": "dbops.datastores.db_migrate", "tasks_from": phase}} for phase in PHASES]}
    path = ansible.workdir / f"migrate_phases_{uuid.uuid4().hex[:6]}.yml"
    path.write_text(json.dumps([play]))
    return ansible.playbook(path, inventory=inventory)


def ran(run, host, name_part):
    return [r for r in run.task_results(host) if name_part in r["_task"] and not r.get("skipped")]


def applied(run, host):
    """The apply phase's pg_migrate results (not the plan's check-mode run)."""
    return [r["changed"] for r in ran(run, host, "Run pg_migrate") if "check mode" not in r["_task"]]


def test_the_standby_only_reads_and_the_role_waits_for_its_replay(ansible, pg_pair, replica_db, tmp_path):
    _primary, standby = pg_pair
    migrations = tmp_path / "migrations"
    migrations.mkdir()
    (migrations / "V1__create.sql").write_text(
        "CREATE TABLE replayed (id int); INSERT INTO replayed SELECT generate_series(1, 1000);\n")
    run = run_phases(ansible, pg_pair, replica_db, migrations, timeout=30)
    assert run.rc == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert ran(run, "standby", "pg_migrate") == []
    assert run.stats["standby"]["changed"] == 0
    assert applied(run, "primary") == [True]
    messages = [r.get("msg") for r in run.task_results("standby")]
    assert "standby replayed primary's position" in messages, messages
    # Right after the role: the standby has the migration (the wait was real, not assumed).
    assert standby.query("SELECT count(*) FROM replayed", dbname=replica_db) == [(1000,)]
    # The primary does not wait for itself.
    assert ran(run, "primary", "Poll the standby") == []

    # Nothing left to apply: nothing written, no wait, 0 changed on both.
    again = run_phases(ansible, pg_pair, replica_db, migrations, timeout=30)
    assert again.rc == 0, again.stdout[-4000:]
    assert again.stats["primary"]["changed"] == 0 and again.stats["standby"]["changed"] == 0
    assert ran(again, "standby", "Poll the standby") == []


def test_a_standby_that_does_not_replay_fails_the_role_naming_it(ansible, pg_pair, replica_db, tmp_path):
    primary, standby = pg_pair
    migrations = tmp_path / "migrations"
    migrations.mkdir()
    (migrations / "V1__create.sql").write_text(
        "CREATE TABLE lagging (id int); INSERT INTO lagging SELECT generate_series(1, 5000);\n")
    standby.query("SELECT pg_wal_replay_pause()")
    try:
        run = run_phases(ansible, pg_pair, replica_db, migrations, timeout=2)
        assert run.rc != 0
        assert run.stats["primary"]["failures"] == 0
        assert applied(run, "primary") == [True]
        failed = [r for r in run.task_results("standby") if r.get("failed")]
        assert len(failed) == 1, run.stdout[-4000:]
        msg = failed[0]["msg"]
        assert msg.startswith("standby has not replayed primary's WAL position "), msg
        assert "within 2 s" in msg
        behind = int(msg.split(" bytes behind")[0].rsplit(" ", 1)[1])
        assert behind > 0
    finally:
        standby.query("SELECT pg_wal_replay_resume()")
    wait_replayed(primary, standby)
