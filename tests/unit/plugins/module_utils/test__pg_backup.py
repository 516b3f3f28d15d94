"""Pure helpers of the pg_dump backup: error detection, passfile, options, plans."""

from __future__ import annotations

import os
import stat

import pytest

from ansible_collections.dbops.datastores.plugins.module_utils import _pg_backup as pgb
from ansible_collections.dbops.datastores.plugins.module_utils._errors import DbopsError


def test_error_in_stderr_fails_even_with_exit_code_zero():
    with pytest.raises(DbopsError, match="reported an error although it exited 0"):
        pgb._check_result(0, 'pg_dump: error: query failed: ERROR:  permission denied for table x\n', "dump")
    pgb._check_result(0, "pg_dump: warning: there are circular foreign-key constraints\n", "dump")


def test_killed_and_failed_runs():
    with pytest.raises(DbopsError, match="dump: killed by signal 9"):
        pgb._check_result(-9, "", "dump")
    with pytest.raises(DbopsError, match="could not write to file: No space left on device"):
        pgb._check_result(1, "pg_dump: error: could not write to file: No space left on device\n", "dump")


def test_password_goes_to_a_private_passfile_never_the_environment():
    params = {"login_host": "db1", "login_port": 5433, "login_user": "backup",
              "login_password": "p:a\\ss", "ssl_mode": "require", "connect_timeout": 5}
    with pgb.tool_env(params, "app") as env:
        passfile = env["PGPASSFILE"]
        assert "PGPASSWORD" not in env
        assert env["PGHOST"] == "db1" and env["PGPORT"] == "5433" and env["PGDATABASE"] == "app"
        assert stat.S_IMODE(os.stat(passfile).st_mode) == 0o600
        assert stat.S_IMODE(os.stat(os.path.dirname(passfile)).st_mode) == 0o700
        with open(passfile) as handle:
            assert handle.read() == "*:*:*:*:p\\:a\\\\ss\n"
    assert not os.path.exists(passfile)


@pytest.mark.parametrize(("options", "message"), [
    ({"database": "a", "format": "tar"}, "unknown format"),
    ({"database": "a", "format": "custom", "jobs": 2}, "jobs > 1 needs format directory"),
    ({"database": "a", "format": "directory", "jobs": 0}, "jobs must be at least 1"),
    ({"database": "a", "format": "custom", "compression": 11}, "compression must be between 0 and 9"),
])
def test_invalid_options(options, message):
    with pytest.raises(DbopsError, match=message):
        pgb.validate_options(options)


def test_plan_and_restore_command(tmp_path):
    (tmp_path / "database.dir").mkdir()
    (tmp_path / "database.dir" / "toc.dat").write_bytes(b"PGDMP")
    plan = pgb.plan_backup({"database": "app", "format": "directory", "jobs": 4, "compression": 5,
                            "globals": True})
    assert plan["commands"][0].endswith("--jobs=4 --compress=5 app")
    assert plan["commands"][1].startswith("pg_dumpall --globals-only")
    manifest = {"format": "directory", "payload": "database.dir",
                "files": [{"path": "database.dir/toc.dat", "size": 5, "sha256": "-"}]}
    cmd = pgb.restore_command(manifest, str(tmp_path), "target", {"clean": True, "jobs": 2, "no_owner": True},
                              "pg_restore")
    assert cmd == ["pg_restore", "--exit-on-error", "--dbname=target", "--clean", "--if-exists", "--jobs=2",
                   "--no-owner", f"{tmp_path}/database.dir"]
