"""_offhost: restic argv, repository strings, snapshot parsing, retention plans (no restic, no server)."""

from __future__ import annotations

import datetime as dt
import json
import os
import shlex

import pytest
import yaml

from ansible_collections.dbops.datastores.plugins.doc_fragments import offhost as offhost_fragment
from ansible_collections.dbops.datastores.plugins.module_utils import _backup_catalog as catalog
from ansible_collections.dbops.datastores.plugins.module_utils import _backup_cli as cli
from ansible_collections.dbops.datastores.plugins.module_utils import _offhost as oh
from ansible_collections.dbops.datastores.plugins.module_utils import _retention as retention
from ansible_collections.dbops.datastores.plugins.module_utils._errors import DbopsError

UTC = dt.timezone.utc
SETTINGS = {"repository": "sftp:dbops-restic@backup1:/srv/restic/db1",
            "password_file": "/etc/dbops/restic/password", "ssh_key_file": "/etc/dbops/restic/id_ed25519",
            "known_hosts_file": "/etc/dbops/restic/known hosts",
            "connect_timeout": 7, "cache_dir": None, "restic_bin": "restic", "host": "db1"}


def test_doc_fragment_documents_exactly_the_spec():
    doc = yaml.safe_load(offhost_fragment.ModuleDocFragment.DOCUMENTATION)["options"]["offhost"]["suboptions"]
    spec = oh.offhost_option_spec()
    assert list(doc) == list(spec)
    for name, option in spec.items():
        assert doc[name]["type"] == option["type"], name
        assert doc[name].get("default") == option.get("default"), name
        assert doc[name].get("required", False) == option.get("required", False), name


@pytest.mark.parametrize(("text", "kind", "user", "host", "port", "path"), [
    ("sftp:dbops-restic@backup1:/srv/restic/db1", "sftp", "dbops-restic", "backup1", None, "/srv/restic/db1"),
    ("sftp://u@10.0.0.5:2222//srv/restic/db1", "sftp", "u", "10.0.0.5", 2222, "/srv/restic/db1"),
    ("sftp:backup1:/srv/r", "sftp", None, "backup1", None, "/srv/r"),
    ("/mnt/usb/restic", "local", None, None, None, "/mnt/usb/restic"),
])
def test_parse_repository(text, kind, user, host, port, path):  # noqa: PLR0917 - parametrised
    repo = oh.parse_repository(text)
    assert (repo.kind, repo.user, repo.host, repo.port, repo.path) == (kind, user, host, port, path)


@pytest.mark.parametrize("text", ["", "relative/path", "s3:bucket/x", "rest:http://h/", "sftp:nohostpath",
                                  "sftp://u@h:99999//x", "/a\nb", None])
def test_parse_repository_rejects(text):
    with pytest.raises(DbopsError, match="use off-host repository"):
        oh.parse_repository(text)


def test_argv_carries_no_password_and_a_strict_batch_ssh():
    argv = oh.restic_argv(SETTINGS, "snapshots", "--json")
    assert argv[:4] == ["restic", "--repo", SETTINGS["repository"], "--no-cache"]
    assert argv[-2:] == ["snapshots", "--json"]
    assert not any("password" in a and "password_file" not in a for a in argv)
    option = argv[argv.index("--option") + 1]
    assert option.startswith("sftp.command=")
    ssh = shlex.split(option[len("sftp.command="):])
    assert ssh[:3] == ["ssh", "-F", "none"]
    for expected in ("BatchMode=yes", "ConnectTimeout=7", "StrictHostKeyChecking=yes", "IdentitiesOnly=yes",
                     "UserKnownHostsFile=/etc/dbops/restic/known hosts"):
        assert expected in ssh
    assert ssh[ssh.index("-i") + 1] == "/etc/dbops/restic/id_ed25519"
    assert ssh[-3:] == ["dbops-restic@backup1", "-s", "sftp"]


def test_argv_port_cache_and_local_repository():
    argv = oh.restic_argv({**SETTINGS, "repository": "sftp://u@h:2222//r", "cache_dir": "/nonexistent/c"},
                          "init")
    assert argv[3:5] == ["--cache-dir", "/nonexistent/c"]
    ssh = shlex.split(argv[argv.index("--option") + 1].split("=", 1)[1])
    assert ssh[ssh.index("-p") + 1] == "2222"
    local = oh.restic_argv({**SETTINGS, "repository": "/srv/r"}, "init")
    assert "--option" not in local


def test_a_cache_of_another_user_is_not_used(tmp_path):
    mine = tmp_path / "cache"
    mine.mkdir()
    assert "--cache-dir" in oh.restic_argv({**SETTINGS, "cache_dir": str(mine)}, "init")
    if os.geteuid() != 0:
        pytest.skip("needs root to give a directory to another user")
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    os.chown(theirs, 65534, 65534)
    assert "--no-cache" in oh.restic_argv({**SETTINGS, "cache_dir": str(theirs)}, "init")


def test_env_drops_inherited_restic_variables():
    env = oh.restic_env(SETTINGS, {"RESTIC_PASSWORD": "leak", "RESTIC_REPOSITORY": "/x", "PATH": "/bin"})
    assert env == {"PATH": "/bin", "RESTIC_PASSWORD_FILE": SETTINGS["password_file"], "TZ": "UTC"}


def test_restic_error_picks_the_fatal_line():
    wrong = "reading\nFatal: wrong password or no key found\n"
    assert oh.restic_error(wrong) == "wrong password or no key found"
    text = "Fatal: unable to open config file: stat /r/config: no such\nIs there a repository at ...\n/r\n"
    assert oh.restic_error(text).endswith("(no repository there yet)")
    assert oh.restic_error("") == "no error output"
    assert oh.restic_error("ssh: connect to host x port 1: Connection refused\n").startswith("ssh: connect")


def _snap(backup_id, time, database="app", engine="postgresql", **extra):
    return {"id": backup_id.encode().hex().ljust(64, "0")[:64], "short_id": backup_id[:8], "time": time,
            "hostname": "db1", "tags": oh.backup_tags(engine, database, backup_id), **extra}


def test_parse_snapshots_reads_tags_times_and_skips_foreign_snapshots():
    text = json.dumps([
        _snap("pg-app-2", "2026-11-30T02:00:00.123456789Z"),
        _snap("mongodb-a_b-1", "2026-11-29T03:00:00+01:00", database="a,b", engine="mongodb"),
        {"id": "f" * 64, "time": "2026-11-30T02:00:00Z", "tags": ["other"]},
        {"id": "e" * 64, "time": "2026-11-30T02:00:00Z"},
        _snap("pg-x-1", "2026-11-30T02:00:00Z", engine="mysql"),
        _snap("..", "2026-11-30T02:00:00Z"),
        _snap("../../etc", "2026-11-30T02:00:00Z"),
        _snap(".hidden", "2026-11-30T02:00:00Z"),
    ])
    copies = oh.parse_snapshots(text)
    assert [(c.backup_id, c.engine, c.database) for c in copies] == [
        ("mongodb-a_b-1", "mongodb", "a,b"), ("pg-app-2", "postgresql", "app")]
    assert copies[0].time == dt.datetime(2026, 11, 29, 2, 0, tzinfo=UTC)
    assert copies[1].time == dt.datetime(2026, 11, 30, 2, 0, 0, 123456, tzinfo=UTC)
    assert oh.parse_snapshots("null") == []
    with pytest.raises(DbopsError, match="not JSON"):
        oh.parse_snapshots("{")


def test_backup_tags_survive_restic_comma_splitting():
    tags = oh.backup_tags("postgresql", "we,ird db", "pg-we_ird_db-1")
    assert all("," not in t for t in tags)
    assert "database=we%2Cird%20db" in tags


def _backup(backup_id, when, database="app"):
    manifest = {"id": backup_id, "engine": "postgresql", "database": database, "files": [],
                "started_at": catalog.format_time(when)}
    return catalog.Backup(id=backup_id, path=f"/r/{backup_id}", manifest=manifest)


def test_backup_args_set_time_host_tags_and_relative_path():
    args = oh.backup_args(_backup("pg-app-1", dt.datetime(2026, 11, 30, 2, 0, 5, 999, tzinfo=UTC)), "db1")
    assert args[:4] == ["backup", "--json", "--time", "2026-11-30 02:00:05"]
    assert args[args.index("--host") + 1] == "db1"
    assert args[-2:] == ["--", "pg-app-1"]
    tags = [args[i + 1] for i, a in enumerate(args) if a == "--tag"]
    assert tags == oh.backup_tags("postgresql", "app", "pg-app-1")


def test_missing_is_what_the_repository_lacks_oldest_first():
    t = dt.datetime(2026, 11, 1, tzinfo=UTC)
    backups = [_backup("pg-app-3", t + dt.timedelta(days=3)), _backup("pg-app-1", t), _backup("pg-app-2", t)]
    copies = oh.parse_snapshots(json.dumps([_snap("pg-app-2", "2026-11-01T00:00:00Z")]))
    assert [b.id for b in oh.missing(backups, copies)] == ["pg-app-1", "pg-app-3"]


def test_newest_per_database_with_age():
    copies = oh.parse_snapshots(json.dumps([_snap("pg-app-1", "2026-11-01T00:00:00Z"),
                                            _snap("pg-app-2", "2026-11-02T00:00:00Z"),
                                            _snap("pg-b-1", "2026-11-01T12:00:00Z", database="b")]))
    groups = oh.newest(copies, now=dt.datetime(2026, 11, 2, 1, 0, tzinfo=UTC))
    assert [(g["database"], g["count"], g["latest"], g["latest_age_s"]) for g in groups] == [
        ("app", 2, "pg-app-2", 3600.0), ("b", 1, "pg-b-1", 13 * 3600.0)]


def test_retention_plan_is_the_local_gfs_rule():
    t = dt.datetime(2026, 11, 1, 2, tzinfo=UTC)
    snaps = [_snap(f"pg-app-{n}", catalog.format_time(t + dt.timedelta(days=n))) for n in range(5)]
    copies = oh.parse_snapshots(json.dumps(snaps))
    decisions = oh.plan_retention(copies, retention.Policy(keep_daily=2))
    kept = {d.id for d in decisions if d.keep}
    assert kept == {c.snapshot for c in copies[-2:]}


def test_policy_options_take_the_local_value_unless_given():
    local = {"keep_daily": 7, "keep_weekly": 4, "partial_max_age": "1d"}
    merged = oh.policy_options({"keep_weekly": 12, "keep_monthly": None}, local)
    assert merged == {"keep_daily": 7, "keep_weekly": 12}
    assert oh.policy_options({}, None) == {}


@pytest.mark.parametrize(("offhost", "local", "problem"), [
    ({"keep_daily": 3}, {"keep_daily": 7}, "keep_daily 3 keeps less than the local 7"),
    ({"keep_daily": 3}, {"keep_daily": -1}, "keep_daily 3 keeps less than the local -1"),
    ({"keep_within": "1d"}, {"keep_within": "2d"}, "keep_within 1d keeps less than the local 2d"),
    ({"keep_daily": -1}, {"keep_daily": 7}, None),
    ({"keep_daily": 30}, {"keep_daily": 7}, None),
    ({"keep_weekly": 1}, {"keep_daily": 7}, None),
])
def test_shorter_than_local(offhost, local, problem):
    assert oh.shorter_than_local(offhost, local) == ([problem] if problem else [])


def test_select_copy():
    copies = oh.parse_snapshots(json.dumps([_snap("pg-app-1", "2026-11-01T00:00:00Z"),
                                            _snap("pg-app-2", "2026-11-02T00:00:00Z"),
                                            _snap("mongodb-app-1", "2026-11-03T00:00:00Z",
                                                  engine="mongodb")]))
    assert oh.select_copy(copies, "latest", "postgresql", "app", "R").backup_id == "pg-app-2"
    assert oh.select_copy(copies, "pg-app-1", None, None, "R").backup_id == "pg-app-1"
    with pytest.raises(DbopsError, match="find backup pg-app-9 in off-host repository R: no copy of it"):
        oh.select_copy(copies, "pg-app-9", None, None, "R")
    with pytest.raises(DbopsError, match="it is a mongodb backup, not postgresql"):
        oh.select_copy(copies, "mongodb-app-1", "postgresql", None, "R")
    with pytest.raises(DbopsError, match="no copy of postgresql/other"):
        oh.select_copy(copies, None, "postgresql", "other", "R")


def test_config_section_is_checked_by_the_one_spec(tmp_path):
    base = {"repository": "/srv/r", "password_file": "/p"}
    good = cli.check_offhost({**base, "keep_daily": 30}, {"keep_daily": 7}, "c.json")
    assert good["enabled"] is True and good["connect_timeout"] == 10 and good["host"]
    for values, message in (
        ({**base, "bogus": 1}, "c.json offhost: unknown option bogus"),
        ({"repository": "/srv/r"}, "password_file is required"),
        ({**base, "enabled": "maybe"}, "enabled must be true or false"),
        ({**base, "keep_within": "soon"}, "keep_within: parse duration"),
        ({**base, "connect_timeout": 0}, "connect_timeout must be between"),
        ({**base, "keep_daily": -5}, "keep_daily must be -1"),
    ):
        with pytest.raises(cli.ConfigError, match=message):
            cli.check_offhost(values, None, "c.json")
