"""dbops-backup: config validation and runs that need no server (retention, info)."""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os

import pytest

from ansible_collections.dbops.datastores.plugins.module_utils import _backup_cli as cli
from ansible_collections.dbops.datastores.plugins.module_utils import _postgres
from tests.harness import backups as bk

UTC = dt.timezone.utc


def _config(tmp_path, data, mode=0o600):
    path = tmp_path / "cfg.json"
    path.write_text(json.dumps(data))
    path.chmod(mode)
    return str(path)


def _main(capsys, *argv):
    code = cli.main(list(argv))
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1
    return code, json.loads(lines[0])


def test_apply_spec_aliases_defaults_and_env(monkeypatch):
    monkeypatch.setenv("PGPASSWORD", "from-env")
    params = cli.apply_spec(_postgres.pg_argument_spec(), {"host": "db1", "port": "5433"}, "cfg")
    assert params["login_host"] == "db1" and params["login_port"] == 5433
    assert params["login_user"] == "postgres" and params["login_password"] == "from-env"
    with pytest.raises(cli.ConfigError, match="unknown option login_hots"):
        cli.apply_spec(_postgres.pg_argument_spec(), {"login_hots": "x"}, "cfg")


@pytest.mark.parametrize(("data", "message"), [
    ({}, "root .* is required"),
    ({"root": "/x", "bogus": 1}, "unknown option.*bogus"),
    ({"root": "/x", "backups": [{"engine": "oracle", "database": "a"}]},
     "engine must be postgresql or mongodb"),
    ({"root": "/x", "backups": [{"engine": "postgresql"}]}, "database is required"),
    ({"root": "/x", "backups": [{"engine": "mongodb", "database": "a", "format": "custom"}]}, "format"),
    ({"root": "/x", "retention": {}}, "no keep_\\* rule is set"),
    ({"root": "/x", "retention": {"keep_daily": 7, "keep_within": "soon"}}, "parse duration"),
])
def test_invalid_configs(tmp_path, data, message):
    with pytest.raises(cli.ConfigError, match=message):
        cli.load_config(_config(tmp_path, data))


def test_password_in_readable_config_is_refused(tmp_path):
    path = _config(tmp_path, {"root": "/x", "postgres": {"login_password": "secret"}}, mode=0o644)
    with pytest.raises(cli.ConfigError, match="readable by other users"):
        cli.load_config(path)


def test_retention_and_info_runs(tmp_path, capsys):
    root = tmp_path / "root"
    root.mkdir()
    now = dt.datetime.now(UTC)
    ids = [bk.fake_backup(root, "postgresql", "app", now - dt.timedelta(days=d)) for d in (3, 2, 1)]
    path = _config(tmp_path, {"root": str(root), "retention": {"keep_last": 2},
                              "log_file": str(tmp_path / "log.jsonl")})

    code, line = _main(capsys, "retention", "--config", path, "--dry-run")
    assert code == 0 and line["retention"]["remove"] == [ids[0]] and bk.entries(root) == sorted(ids)
    code, line = _main(capsys, "retention", "--config", path)
    assert code == 0 and line["retention"]["removed"] == [ids[0]]
    assert json.loads((tmp_path / "log.jsonl").read_text().splitlines()[-1]) == line

    code, line = _main(capsys, "info", "--config", path, "--max-age", "12h")
    assert code == 1 and line["ok"] is False
    assert line["stale_reasons"][0].startswith(f"postgresql/app newest backup {ids[2]} is")
    code, line = _main(capsys, "info", "--config", path, "--max-age", "2d")
    assert code == 0 and line["ok"] is True


def test_exit_codes_for_bad_config_and_busy_root(tmp_path, capsys):
    code, line = _main(capsys, "run", "--config", str(tmp_path / "missing.json"))
    assert code == 2 and "read config" in line["error"]

    root = tmp_path / "root"
    root.mkdir()
    path = _config(tmp_path, {"root": str(root), "retention": {"keep_last": 1}})
    fd = os.open(root / cli.LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        code, line = _main(capsys, "retention", "--config", path)
        assert code == 1 and "another dbops-backup run is in progress" in line["error"]
    finally:
        os.close(fd)
    code, line = _main(capsys, "retention", "--config", path)
    assert code == 0, line


def test_select_jobs_keeps_config_order_and_names_unknown_jobs():
    jobs = [{"engine": "postgresql", "database": "a"}, {"engine": "mongodb", "database": "a"},
            {"engine": "postgresql", "database": "b"}]
    assert cli.select_jobs(jobs, None) == jobs
    assert cli.select_jobs(jobs, ["postgresql:b", "mongodb:a"]) == jobs[1:]
    with pytest.raises(cli.ConfigError, match="--only mongodb:b names no configured backup job"):
        cli.select_jobs(jobs, ["mongodb:b"])
    with pytest.raises(cli.ConfigError, match="must be postgresql:DATABASE or mongodb:DATABASE"):
        cli.select_jobs(jobs, ["a"])
