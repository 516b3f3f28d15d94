"""The dbops-backup command (what the db_backup role puts in cron) against real servers."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from tests.harness import backups as bk


def _run(*args, python=None):
    cmd = bk.cli_command(*args)
    if python:
        cmd[0] = python
    proc = subprocess.run(cmd, env=bk.cli_env(), capture_output=True, text=True, timeout=300, check=False)
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1, proc.stdout + proc.stderr  # one JSON line per run
    return proc.returncode, json.loads(lines[0])


def _config(tmp_path, data):
    """A backup root and a private (0600) config file for it; ``data`` is the config without root."""
    root = tmp_path / "backups"
    root.mkdir()
    config = tmp_path / "backup.json"
    config.write_text(json.dumps({"root": str(root), **data}))
    config.chmod(0o600)
    return root, config


def test_run_backs_up_verifies_and_prunes_both_engines(pg_server, pg_db, mongo_server, mongo_db, tmp_path):
    bk.create_pg_seed(pg_server, pg_db, rows=50)
    with mongo_server.client() as client:
        bk.create_mongo_seed(client, mongo_db, docs=50)
    root = tmp_path / "backups"
    root.mkdir(mode=0o700)
    password_file = tmp_path / "pg.pass"
    password_file.write_text(pg_server.password + "\n")
    log_file = tmp_path / "dbops-backup.log"
    pg_conn = {k: v for k, v in pg_server.params().items() if k != "login_password"}
    config = tmp_path / "backup.json"
    config.write_text(json.dumps({
        "root": str(root),
        "log_file": str(log_file),
        "postgres": {**pg_conn, "login_password_file": str(password_file)},
        "mongodb": mongo_server.params(),
        "backups": [{"engine": "postgresql", "database": pg_db, "format": "directory", "jobs": 2},
                    {"engine": "mongodb", "database": mongo_db}],
        "retention": {"keep_last": 1},
        "verify": {"after_backup": True, "restore_test": True},
    }))

    code, line = _run("run", "--config", str(config))
    assert code == 0, line
    assert line["ok"] is True and line["command"] == "run" and line["program"] == "dbops-backup"
    assert [(b["engine"], b["ok"]) for b in line["backups"]] == [("postgresql", True), ("mongodb", True)]
    assert all(v["ok"] and v["kind"] == "restore" and v["rto_s"] > 0 for v in line["verifications"])
    assert line["retention"]["removed"] == []
    first_ids = {b["id"] for b in line["backups"]}
    assert json.loads(log_file.read_text().splitlines()[-1]) == line
    assert pg_server.password not in log_file.read_text()

    code, line = _run("run", "--config", str(config))
    assert code == 0, line
    assert sorted(line["retention"]["removed"]) == sorted(first_ids)  # keep_last 1 per database
    assert sorted(bk.entries(root)) == sorted(b["id"] for b in line["backups"])

    code, info = _run("info", "--config", str(config), "--max-age", "1h")
    assert code == 0 and {g["database"] for g in info["groups"]} == {pg_db, mongo_db}

    # The same catalog through the modules' code path, seen from a Python without ansible-core.
    code, plain = _run("info", "--config", str(config), python="/usr/bin/python3")
    assert code == 0, plain

    def strip_age(groups):
        return [{k: v for k, v in g.items() if k != "latest_age_s"} for g in groups]

    assert strip_age(plain["groups"]) == strip_age(info["groups"])


def test_a_failing_job_fails_the_run_but_not_the_others(pg_server, pg_db, tmp_path):
    root, config = _config(tmp_path, {
        "postgres": pg_server.params(),
        "backups": [{"engine": "postgresql", "database": "no_such_db"},
                    {"engine": "postgresql", "database": pg_db}],
    })
    code, line = _run("backup", "--config", str(config))
    assert code == 1
    assert line["ok"] is False
    assert "no_such_db: the database does not exist" in line["backups"][0]["error"]
    assert line["backups"][1]["ok"] is True
    assert bk.entries(root) == [line["backups"][1]["id"]]

    code, line = _run("info", "--config", str(config), "--max-age", "1h")
    assert code == 0

    config.chmod(0o644)  # a password in a world-readable file is refused
    code, line = _run("backup", "--config", str(config))
    assert code == 2 and "readable by other users" in line["error"]


def test_only_and_skip_missing_select_jobs_and_tolerate_missing_databases(pg_server, pg_db, mongo_server,
                                                                          tmp_path):
    """What migrate.yml runs before a first migration: only the changing databases, some not created yet."""
    root, config = _config(tmp_path, {
        "postgres": pg_server.params(), "mongodb": mongo_server.params(),
        "backups": [{"engine": "postgresql", "database": pg_db},
                    {"engine": "postgresql", "database": "not_created_yet"},
                    {"engine": "mongodb", "database": "not_created_yet"}],
    })

    code, line = _run("backup", "--config", str(config), "--only", "mongodb:not_created_yet",
                      "--only", f"postgresql:{pg_db}", "--skip-missing")
    assert code == 0, line
    assert [(b["engine"], b["database"]) for b in line["backups"]] == [
        ("postgresql", pg_db), ("mongodb", "not_created_yet")]
    assert "id" in line["backups"][0] and "skipped" not in line["backups"][0]
    assert "the database does not exist" in line["backups"][1]["skipped"]
    assert bk.entries(root) == [line["backups"][0]["id"]]  # nothing written for the missing one

    # Without --skip-missing a missing database still fails the run (a typo in a scheduled job must show).
    code, line = _run("backup", "--config", str(config), "--only", "postgresql:not_created_yet")
    assert code == 1 and "the database does not exist" in line["backups"][0]["error"]

    code, line = _run("verify", "--config", str(config), "--only", f"postgresql:{pg_db}")
    assert code == 0 and [v["ok"] for v in line["verifications"]] == [True]

    for bad in ("mongodb:other_db", "postgres:x", "postgresql"):
        code, line = _run("backup", "--config", str(config), "--only", bad)
        assert code == 2 and f"--only {bad}" in line["error"], line
    assert len(bk.entries(root)) == 1


def test_ignore_min_interval_takes_a_new_backup(pg_server, pg_db, tmp_path):
    root, config = _config(tmp_path, {
        "postgres": pg_server.params(),
        "backups": [{"engine": "postgresql", "database": pg_db, "min_interval": "1h"}],
    })
    code, first = _run("backup", "--config", str(config))
    assert code == 0 and first["backups"][0]["created"] is True, first
    code, again = _run("backup", "--config", str(config))
    assert code == 0 and again["backups"][0]["created"] is False  # the recent one stands
    assert again["backups"][0]["id"] == first["backups"][0]["id"]
    code, forced = _run("backup", "--config", str(config), "--ignore-min-interval")
    assert code == 0 and forced["backups"][0]["created"] is True, forced
    assert forced["backups"][0]["id"] != first["backups"][0]["id"]
    assert len(bk.entries(root)) == 2


def _shared_dir():
    """A directory another user can enter (pytest's tmp_path is private to root)."""
    import tempfile

    path = tempfile.mkdtemp(prefix="dbops-cli-")
    os.chmod(path, 0o755)
    return path


def test_a_lock_the_backup_user_cannot_open_is_a_json_failure_not_a_traceback():
    """Retention as the backup user with a readers lock root left behind: exit 1 and one JSON line."""
    import datetime as dt
    import shutil

    if os.geteuid() != 0:
        pytest.skip("needs root to run the command as another user")
    base = _shared_dir()
    try:
        root = os.path.join(base, "backups")
        os.mkdir(root, 0o700)
        for day in (1, 2, 3):
            bk.fake_backup(root, "postgresql", "app", dt.datetime(2026, 1, day, tzinfo=dt.timezone.utc))
        with open(os.path.join(root, ".dbops-readers.lock"), "w"):
            pass
        os.chmod(os.path.join(root, ".dbops-readers.lock"), 0o600)  # root's, as a verify with become left it
        config = os.path.join(base, "backup.json")
        with open(config, "w") as handle:
            json.dump({"root": root, "retention": {"keep_last": 1}}, handle)
        for current, dirs, files in os.walk(base):
            for name in [*dirs, *files]:
                if name != ".dbops-readers.lock":
                    os.chown(os.path.join(current, name), 65534, 65534)
        cmd = ["/usr/bin/python3", *bk.cli_command("retention", "--config", config)[1:]]
        proc = subprocess.run(cmd, env=bk.cli_env(), capture_output=True, text=True, timeout=60, check=False,
                              user=65534, group=65534)
        assert "Traceback" not in proc.stderr, proc.stderr
        lines = proc.stdout.strip().splitlines()
        assert len(lines) == 1, proc.stdout + proc.stderr
        line = json.loads(lines[0])
        assert proc.returncode == 1
        assert line["ok"] is False
        assert "dbops-readers.lock" in line["retention"]["error"]
        assert len([n for n in bk.entries(root) if n.startswith("pg-")]) == 3  # nothing removed
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_a_wrong_command_line_is_a_json_line_with_exit_2(tmp_path):
    code, line = _run("backup", "--no-such-option")
    assert code == 2
    assert line["ok"] is False and "command line" in line["error"]


def test_no_secret_reaches_the_log_line(tmp_path):
    """The log is outside Ansible's no_log: a URI password with an unescaped ``/`` must not appear."""
    password = "pa/ss'w\"or@d"
    _root, config = _config(tmp_path, {
        "mongodb": {"login_uri": f"mongodb://app:{password}@127.0.0.1:1/admin", "connect_timeout": 1},
        "postgres": {"login_host": "127.0.0.1", "login_port": 1, "login_password": password},
        "backups": [{"engine": "mongodb", "database": "app"}, {"engine": "postgresql", "database": "app"}],
    })
    proc = subprocess.run(bk.cli_command("backup", "--config", str(config)), env=bk.cli_env(),
                          capture_output=True, text=True, timeout=120, check=False)
    line = json.loads(proc.stdout.strip())
    assert proc.returncode == 1 and [b["ok"] for b in line["backups"]] == [False, False]
    for form in (password, json.dumps(password)[1:-1], "pa/ss", "w\\\"or@d"):
        assert form not in proc.stdout + proc.stderr


# The MongoDB backup login of docs/security.md: `backup` plus a custom role that may write only the
# fixed restore-test scratch database (verify.scratch_database).
_SCRATCH_ACTIONS = ["find", "insert", "update", "remove", "createCollection", "createIndex", "dropCollection",
                    "dropDatabase", "listCollections", "listIndexes", "collMod", "bypassDocumentValidation",
                    "collStats", "dbStats"]


def _backup_login(server, name: str, scratch: str) -> dict:
    password = f"{name}-secret"
    with server.client() as client:
        role = f"{name}_restore_test"
        client.admin.command("createRole", role, roles=[], privileges=[
            {"resource": {"db": scratch, "collection": ""}, "actions": _SCRATCH_ACTIONS}])
        client.admin.command("createUser", name, pwd=password, roles=["backup", role])
    return server.params(login_user=name, login_password=password, login_database="admin")


def test_mongodb_backup_login_restore_tests_into_the_fixed_scratch_database(mongo_auth_server, tmp_path):
    server = mongo_auth_server
    database = server.database_name("bklogin")
    scratch = server.database_name("scratch")
    with server.client() as client:
        bk.create_mongo_seed(client, database, docs=20)
    login = _backup_login(server, server.database_name("u"), scratch)
    job = {"mongodb": login, "backups": [{"engine": "mongodb", "database": database}]}
    _root, config = _config(tmp_path, {**job, "verify": {"restore_test": True, "scratch_database": scratch}})

    code, line = _run("backup", "--config", str(config))
    assert code == 0 and line["backups"][0]["ok"], line
    code, line = _run("verify", "--restore-test", "--config", str(config))
    assert code == 0, line
    assert [(v["ok"], v["kind"]) for v in line["verifications"]] == [(True, "restore")], line
    with server.client() as client:
        assert scratch not in client.list_database_names()  # dropped after the test

    # Without the fixed name the restore test picks dbops_verify_<id>, which this login may not write.
    config.write_text(json.dumps({"root": str(_root), **job, "verify": {"restore_test": True}}))
    proc = subprocess.run(bk.cli_command("verify", "--restore-test", "--config", str(config)),
                          env=bk.cli_env(), capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode != 0
    assert "not authorized on dbops_verify_" in proc.stdout + proc.stderr
