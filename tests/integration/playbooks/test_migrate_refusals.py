"""playbooks/migrate.yml through ansible-playbook on localhost against the harness' PostgreSQL: the
pre-flight refuses before anything runs (tiny backup root, a session holding a lock, outside the
maintenance window) and a failing post-check names its assertion."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from tests.harness.proc import mount_tmpfs, unmount
from tests.harness.runner import REPO_ROOT

MIGRATE = REPO_ROOT / "playbooks" / "migrate.yml"
MONDAY_EVENING = "2026-11-30T18:00:00+00:00"


def write_migrations(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "V1__accounts.sql").write_text("CREATE TABLE accounts (id int PRIMARY KEY, email text);\n")
    (directory / "V2__email_index.sql").write_text("CREATE INDEX accounts_email ON accounts (email);\n")
    return directory


def run_migrate(ansible, pg_server, entries, check=False, **variables):
    """migrate.yml with localhost as the PostgreSQL primary (no become: the harness' superuser logs in
    through its socket with PGPASSWORD)."""
    inventory = ansible.workdir / "migrate_inventory.ini"
    inventory.write_text(
        "[postgresql]\n"
        f"localhost ansible_connection=local ansible_python_interpreter={sys.executable}"
        " ansible_become=false\n")
    extra = {"dbops_pg_migrations": entries, "dbops_pg_socket_dir": str(pg_server.socket_dir),
             "postgresql_port": pg_server.port, "dbops_mongodb_python": sys.executable, **variables}
    return ansible.playbook(MIGRATE, inventory=inventory, extra_vars=extra,
                            env={"PGPASSWORD": pg_server.password}, check=check)


def failure(run):
    failed = [r for r in run.task_results() if r.get("failed")]
    assert run.rc != 0 and len(failed) == 1, run.stdout + run.stderr
    result = failed[0]
    if "results" in result:  # a loop: the failed item's message
        result = {**result, "msg": " | ".join(r["msg"] for r in result["results"] if r.get("failed"))}
    return result


def ran(run, name_part):
    return [r["_task"] for r in run.task_results() if name_part in r["_task"] and not r.get("skipped")]


def history_exists(pg_server, db):
    return pg_server.query("SELECT to_regclass('public.dbops_schema_history') IS NOT NULL", dbname=db)[0][0]


@pytest.fixture
def tiny_root(tmp_path):
    root = tmp_path / "tiny_backups"
    root.mkdir()
    try:
        mount_tmpfs(root, "1m")
    except OSError as exc:
        pytest.skip(f"needs root to mount a tmpfs: {exc}")
    yield root
    unmount(root)


def test_a_backup_root_too_small_refuses_before_dumping(ansible, pg_server, pg_db, tmp_path, tiny_root):
    entries = [{"database": pg_db, "path": str(write_migrations(tmp_path / "m"))}]
    run = run_migrate(ansible, pg_server, entries, db_backup_root=str(tiny_root),
                      db_backup_jobs=[{"engine": "postgresql", "database": pg_db}])
    failed = failure(run)
    assert failed["_task"].endswith("Refuse before dumping when the backup root cannot take the"
                                    " pre-migration backups")
    assert str(tiny_root) in failed["msg"] and f"postgresql:{pg_db}" in failed["msg"], failed["msg"]
    # Refused before the backup and before any migration: no dump in the root, no history table.
    assert ran(run, "Take a fresh backup") == [] and ran(run, "Apply") == []
    assert list(tiny_root.iterdir()) == []
    assert history_exists(pg_server, pg_db) is False


def test_an_open_transaction_holding_a_lock_refuses_before_anything_runs(ansible, pg_server, pg_db, tmp_path):
    entries = [{"database": pg_db, "path": str(write_migrations(tmp_path / "m"))}]
    pg_server.query("CREATE TABLE busy (id int)", dbname=pg_db)
    holder = pg_server.connect(pg_db, autocommit=False)
    try:
        with holder.cursor() as cur:
            cur.execute("LOCK TABLE busy IN ACCESS EXCLUSIVE MODE")
        time.sleep(1.2)
        run = run_migrate(ansible, pg_server, entries, dbops_migrate_session_max_age=1)
    finally:
        holder.rollback()
        holder.close()
    failed = failure(run)
    assert failed["_task"].endswith("Check PostgreSQL sessions that would block DDL")
    assert pg_db in failed["msg"] and "idle in transaction" in failed["msg"], failed["msg"]
    assert ran(run, "Take a fresh backup") == [] and ran(run, "Apply") == []
    assert history_exists(pg_server, pg_db) is False


def test_outside_the_window_migrate_yml_refuses_and_names_the_next_one(ansible, pg_server, pg_db, tmp_path):
    entries = [{"database": pg_db, "path": str(write_migrations(tmp_path / "m"))}]
    run = run_migrate(ansible, pg_server, entries, dbops_environment="prod",
                      dbops_migrate_windows=["Sat 02:00-05:00 Europe/Berlin"], db_migrate_now=MONDAY_EVENING)
    failed = failure(run)
    assert failed["_task"].endswith("Refuse to migrate outside the maintenance window")
    assert failed["msg"].startswith("migrate in environment prod: outside the maintenance window; the next"
                                    " one (Sat 02:00-05:00 Europe/Berlin) opens at 2026-12-05T02:00+01:00")
    assert ran(run, "primary") == []
    assert history_exists(pg_server, pg_db) is False


def test_a_failing_post_check_names_its_assertion(ansible, pg_server, pg_db, tmp_path):
    path = write_migrations(tmp_path / "m")
    # Already migrated: nothing to back up or apply, the post-checks still run.
    ok = ansible.module("pg_migrate", pg_server.params(login_db=pg_db, path=str(path)))
    assert ok.get("failed") is not True, ok.get("msg")
    pg_server.query("INSERT INTO accounts VALUES (1, NULL)", dbname=pg_db)
    assertions = [
        {"name": "accounts table present", "sql": "SELECT to_regclass('public.accounts') IS NOT NULL"},
        {"name": "every account has an email",
         "sql": "SELECT count(*) = 0 FROM accounts WHERE email IS NULL"},
    ]
    run = run_migrate(ansible, pg_server, [{"database": pg_db, "path": str(path), "assertions": assertions}])
    failed = failure(run)
    assert failed["_task"].endswith("Check the PostgreSQL post-migration assertions")
    assert "every account has an email" in failed["msg"], failed["msg"]
    assert run.stats["localhost"]["changed"] == 0


def test_check_mode_plans_and_applies_nothing(ansible, pg_server, pg_db, tmp_path):
    """The release's dry run (operations.md): --check prints the plan of every database; nothing
    is backed up or applied, whatever the window."""
    entries = [{"database": pg_db, "path": str(write_migrations(tmp_path / "m"))}]
    root = tmp_path / "backups"
    root.mkdir()
    run = run_migrate(ansible, pg_server, entries, check=True, dbops_environment="prod",
                      dbops_migrate_windows=["Sat 02:00-05:00 Europe/Berlin"], db_migrate_now=MONDAY_EVENING,
                      db_backup_root=str(root), db_backup_jobs=[{"engine": "postgresql", "database": pg_db}])
    assert history_exists(pg_server, pg_db) is False  # nothing applied
    assert pg_server.query("SELECT to_regclass('public.accounts') IS NULL", dbname=pg_db)[0][0] is True
    assert run.rc == 0, run.stdout + run.stderr
    planned = next(r for r in run.task_results() if r["_task"].endswith("in check mode") and "results" in r)
    assert [step["version"] for step in planned["results"][0]["plan"]] == ["1", "2"], planned
    assert ran(run, "Apply the PostgreSQL migrations") == []
    assert list(root.iterdir()) == []  # nothing backed up
