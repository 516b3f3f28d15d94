"""dbops-backup pgbackrest-backup without a server: command line, pgBackRest argv, exit codes."""

from __future__ import annotations

import fcntl
import os

import pytest

from ansible_collections.dbops.datastores.plugins.module_utils import _pgbackrest_cli as cli
from ansible_collections.dbops.datastores.plugins.module_utils._errors import DbopsError


def test_backup_argv_names_config_stanza_and_type():
    assert cli.backup_argv("pgbackrest", "/etc/pgbackrest/pgbackrest.conf", "main", "diff") == [
        "pgbackrest", "--config=/etc/pgbackrest/pgbackrest.conf", "--stanza=main", "--type=diff", "backup"]


def test_parse_args_defaults_and_refusals():
    args = cli.parse_args(["--stanza", "main", "--type", "incr"])
    assert (args.config, args.textfile_dir, args.mode) == ("/etc/pgbackrest/pgbackrest.conf", "", 0o644)
    with pytest.raises(DbopsError, match="invalid choice"):
        cli.parse_args(["--stanza", "main", "--type", "weekly"])
    with pytest.raises(DbopsError, match="check stanza"):
        cli.parse_args(["--stanza", "../etc", "--type", "full"])
    with pytest.raises(DbopsError, match="not octal"):
        cli.parse_args(["--stanza", "main", "--type", "full", "--file-mode", "rw"])


def test_wrong_command_line_exits_2(capsys):
    assert cli.main(["--type", "full"]) == cli.EXIT_USAGE
    assert "--stanza" in capsys.readouterr().err


def test_missing_pgbackrest_exits_127_and_writes_the_failure(tmp_path, capsys):
    code = cli.main(["--stanza", "main", "--type", "full", "--pgbackrest-bin", str(tmp_path / "nope"),
                     "--textfile-dir", str(tmp_path), "--lock-file", str(tmp_path / "lock")])
    assert code == cli.EXIT_NOT_FOUND
    assert "not found" in capsys.readouterr().err
    text = (tmp_path / "dbops_pgbackrest_main.prom").read_text()
    assert 'dbops_pgbackrest_backup_last_run_success{stanza="main",type="full"} 0' in text
    assert 'dbops_pgbackrest_info_success{stanza="main"} 0' in text


def test_held_lock_exits_50_and_writes_nothing(tmp_path, capsys):
    lock = tmp_path / "lock"
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        code = cli.main(["--stanza", "main", "--type", "full", "--textfile-dir", str(tmp_path),
                         "--lock-file", str(lock)])
    finally:
        os.close(fd)
    assert code == cli.EXIT_LOCKED == 50
    assert "another scheduled backup" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lock"]


def test_lock_made_by_root_is_handed_to_the_directory_owner(tmp_path):
    # A run by hand as root must not leave a lock that the repository user's cron job cannot open.
    spool = tmp_path / "spool"
    spool.mkdir()
    nobody = 65534
    os.chown(spool, nobody, nobody)
    lock = spool / "dbops-backup-main.lock"
    code = cli.main(["--stanza", "main", "--type", "full", "--pgbackrest-bin", str(tmp_path / "nope"),
                     "--lock-file", str(lock)])
    assert code == cli.EXIT_NOT_FOUND
    st = lock.stat()
    assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (nobody, nobody, 0o600)


def test_lock_file_that_is_a_symlink_is_refused(tmp_path, capsys):
    target = tmp_path / "elsewhere"
    (tmp_path / "lock").symlink_to(target)
    code = cli.main(["--stanza", "main", "--type", "full", "--pgbackrest-bin", str(tmp_path / "nope"),
                     "--lock-file", str(tmp_path / "lock")])
    assert code == cli.EXIT_USAGE
    assert "symlink" in capsys.readouterr().err
    assert not target.exists()
