"""dbops-backup: config validation and runs that need no server (retention, info)."""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import re

import pytest

from ansible_collections.dbops.datastores.plugins.module_utils import _backup_cli as cli
from ansible_collections.dbops.datastores.plugins.module_utils import _backup_ops as ops
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
    ({"root": "/x", "retention": {}}, "no keep_\\* rule is set"),
    ({"root": "/x", "backups": "x"}, "backups must be a list"),
    ({"root": "/x", "retention": {"keep_daily": "7d"}}, "keep_daily must be an integer"),
    ({"root": "/x", "retention": {"keep_last": 1, "partial_max_age": "99999999999999999999d"}},
     "partial_max_age.*too long"),
    ({"root": "/x", "verify": {"jobs": "x"}}, "verify.*jobs must be an integer"),
    ({"root": "/x", "verify": {"restore_test": "yes please"}}, "restore_test must be true or false"),
    ({"root": "/x", "postgres": {"login_port": "high"}}, "login_port must be an integer"),
    ({"root": "/x", "postgres": {"ssl_mode": "sometimes"}}, "ssl_mode must be one of"),
    ({"root": "/x", "mongodb": {"tls": "yes please"}}, "tls must be true or false"),
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


@pytest.mark.parametrize(("job", "message"), [
    ({"engine": "oracle", "database": "a"}, "engine must be postgresql or mongodb"),
    ({"engine": "postgresql"}, "database is required"),
    ({"engine": "mongodb", "database": "a", "format": "custom"}, "unknown option format"),
    ({"engine": "postgresql", "database": "a", "jobs": "x"}, "jobs must be an integer"),
    ({"engine": "postgresql", "database": "a", "compression": "high"}, "compression must be an integer"),
    ({"engine": "postgresql", "database": "a", "compression": 12}, "compression must be between 0 and 9"),
    ({"engine": "postgresql", "database": "a", "format": "tar"}, "format must be one of custom, dir"),
    ({"engine": "postgresql", "database": "a", "min_interval": "99999999999999999999d"}, "too long"),
    ({"engine": "postgresql", "database": "a", "min_interval": 10**30}, "too long"),
    ({"engine": "mongodb", "database": "a", "tool": "mongoexport"}, "tool must be one of auto, mongo"),
    ({"engine": "mongodb", "database": "a", "gzip": "high"}, "gzip must be true or false"),
    ("x", "expected a mapping"),
])
def test_a_bad_job_is_reported_and_the_other_jobs_still_run(tmp_path, capsys, job, message):
    """Validated up front with the modules' own option spec; only the bad job fails."""
    root = tmp_path / "root"
    root.mkdir()
    good = {"engine": "postgresql", "database": "b", "min_interval": "1h"}
    path = _config(tmp_path, {"root": str(root), "backups": [job, good]})
    config = cli.load_config(path)
    assert [j.get("error") is None for j in config["backups"]] == [False, True]
    assert re.search(message, config["backups"][0]["error"])
    now = dt.datetime.now(UTC)
    bk.fake_backup(root, "postgresql", "b", now)  # the good job is skipped by min_interval: no server needed
    code, line = _main(capsys, "backup", "--config", path)
    assert code == 1 and line["ok"] is False
    assert line["backups"][0]["ok"] is False and re.search(message, line["backups"][0]["error"])
    assert line["backups"][1]["ok"] is True and line["backups"][1]["created"] is False


def test_the_cli_reads_the_modules_option_specs():
    from ansible_collections.dbops.datastores.plugins.module_utils import _backup_ops as ops

    for engine, adapter in ops.ENGINES.items():
        assert set(cli.job_spec(engine)) == {"engine", *adapter.option_spec()}
    assert set(cli.job_spec("postgresql")["format"]["choices"]) == {"custom", "directory", "plain"}


@pytest.mark.parametrize(("job", "message"), [
    # found by tests/unit/fuzz
    ({"engine": [], "database": "a"}, "engine must be postgresql or mongodb"),  # was TypeError: unhashable
    ({"engine": "postgresql", "database": "a", "jobs": "¹"}, "jobs must be an integer"),  # was ValueError
])
def test_fuzz_found_job_errors(job, message):
    with pytest.raises(cli.ConfigError, match=message):
        cli.check_job(job, "cfg backups[0]")
    with pytest.raises(cli.ConfigError, match="keep_daily must be an integer"):
        cli.apply_spec(ops.retention_option_spec(), {"keep_daily": "¹"}, "cfg retention")


def test_the_log_file_is_never_written_through_a_symlink(tmp_path, capsys):
    root = tmp_path / "root"
    root.mkdir()
    victim = tmp_path / "victim"
    os.symlink(victim, tmp_path / "log.jsonl")
    path = _config(tmp_path, {"root": str(root), "log_file": str(tmp_path / "log.jsonl")})
    code = cli.main(["info", "--config", path])
    lines = capsys.readouterr().out.strip().splitlines()
    assert code == 1 and "write log" in json.loads(lines[-1])["error"]
    assert not victim.exists()
