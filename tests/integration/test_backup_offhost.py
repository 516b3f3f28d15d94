"""Off-host copies (restic) of the backup catalog: dbops-backup copy/catch-up/retention, restore from
the off-host copy after the local one is gone, and what the repository shows.

Real restic repositories: a local path for the logic, and an SFTP repository on a throwaway sshd
(tests/harness/sftp.py) for the transfer the repository host uses.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess

import pytest

from tests.harness import backups as bk
from tests.harness import sftp
from tests.harness.proc import free_port, mount_tmpfs, resize_tmpfs, unmount
from tests.harness.runner import REPO_ROOT

TABLE = "message_classifications"  # a table of the PostgreSQL seed


def _run(*args):
    proc = subprocess.run(bk.cli_command(*args), env=bk.cli_env(), capture_output=True, text=True,
                          timeout=600, check=False)
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1, proc.stdout + proc.stderr  # one JSON line per run
    return proc.returncode, json.loads(lines[0])


def _restic(offhost, *args):
    env = {k: v for k, v in os.environ.items() if not k.startswith("RESTIC_")}
    env.update(RESTIC_PASSWORD_FILE=offhost["password_file"], TZ="UTC")
    from ansible_collections.dbops.datastores.plugins.module_utils import _offhost

    proc = subprocess.run(_offhost.restic_argv({**offhost, "connect_timeout": 10}, *args), env=env,
                          capture_output=True, text=True, check=False, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.fixture(scope="module")
def sftp_server(tmp_path_factory):
    if not sftp.available():
        pytest.skip("openssh-server is not installed (scripts/setup.sh installs it)")
    server = sftp.start(tmp_path_factory.mktemp("sshd"))
    yield server
    sftp.stop(server)


@pytest.fixture
def password_file(tmp_path):
    path = tmp_path / "restic.pass"
    path.write_text("correct horse battery staple\n")
    path.chmod(0o600)
    return str(path)


@pytest.fixture
def local_offhost(tmp_path, password_file):
    return {"repository": str(tmp_path / "repo"), "password_file": password_file}


@pytest.fixture
def sftp_offhost(tmp_path, password_file, sftp_server):
    return {"repository": sftp_server.repository(str(tmp_path / "sftp-repo")), "password_file": password_file,
            "ssh_key_file": sftp_server.key_file, "known_hosts_file": sftp_server.known_hosts_file,
            "connect_timeout": 5}


def _config(tmp_path, data):
    root = tmp_path / "backups"
    root.mkdir(mode=0o700, exist_ok=True)
    config = tmp_path / "backup.json"
    config.write_text(json.dumps({"root": str(root), **data}))
    config.chmod(0o600)
    return root, config


def _snapshots(offhost):
    return json.loads(_restic(offhost, "snapshots", "--json"))


def test_run_copies_over_sftp_catches_up_after_an_outage_and_the_repository_holds_no_plaintext(
        pg_server, pg_db, sftp_server, sftp_offhost, tmp_path):
    bk.create_pg_seed(pg_server, pg_db, rows=200)
    repo_dir = str(tmp_path / "sftp-repo")
    closed = f"sftp://{sftp_server.user}@127.0.0.1:{free_port()}/{repo_dir}"  # nothing listens there
    down = {**sftp_offhost, "repository": closed}
    root, config = _config(tmp_path, {"postgres": pg_server.params(), "offhost": down,
                                      "backups": [{"engine": "postgresql", "database": pg_db}]})

    # Repository host unreachable: the local backup is written and stays; the run fails loudly.
    code, line = _run("run", "--config", str(config))
    assert code == 1, line
    assert line["ok"] is False and line["backups"][0]["ok"] is True
    assert line["offhost"]["ok"] is False and "list off-host copies in" in line["offhost"]["error"]
    first = line["backups"][0]["id"]
    assert bk.entries(root) == [first]

    # Repository back: the next run copies its own backup and the one the outage left behind.
    config.write_text(json.dumps({**json.loads(config.read_text()), "offhost": sftp_offhost}))
    code, line = _run("run", "--config", str(config), "--ignore-min-interval")
    assert code == 0, line
    second = line["backups"][0]["id"]
    assert line["offhost"]["initialised"] is True
    assert [c["id"] for c in line["offhost"]["copied"]] == [first, second]
    assert line["offhost"]["groups"][0]["latest"] == second and line["offhost"]["groups"][0]["count"] == 2
    tags = sorted(tuple(s["tags"]) for s in _snapshots(sftp_offhost))
    assert tags == sorted(("dbops", "engine=postgresql", f"database={pg_db}", f"backup={b}")
                          for b in (first, second))

    code, line = _run("copy", "--config", str(config))
    assert code == 0 and line["offhost"]["copied"] == [], line  # nothing missing: nothing sent

    # The repository holds ciphertext only: the dump names the table, no repository file does.
    dump = subprocess.run(["grep", "-rl", "-a", TABLE, str(root / first)], capture_output=True, check=False)
    assert dump.returncode == 0  # the check can fail: the plaintext is there to find
    grep = subprocess.run(["grep", "-rl", "-a", TABLE, repo_dir], capture_output=True, text=True, check=False)
    assert grep.returncode == 1, grep.stdout
    assert os.listdir(repo_dir) and "config" in os.listdir(repo_dir)

    code, info = _run("info", "--config", str(config), "--max-age", "1h")
    assert code == 0, info
    group = info["offhost"]["groups"][0]
    assert group["database"] == pg_db and group["latest_age_s"] < 3600


def test_restore_from_offhost_after_the_local_copy_is_gone_postgresql(
        ansible, pg_server, pg_db, local_offhost, tmp_path):
    bk.create_pg_seed(pg_server, pg_db, rows=150)
    before = bk.pg_snapshot(pg_server, pg_db)
    root, config = _config(tmp_path, {"postgres": pg_server.params(), "offhost": local_offhost,
                                      "backups": [{"engine": "postgresql", "database": pg_db}]})
    code, line = _run("backup", "--config", str(config))
    assert code == 0, line
    backup_id = line["backups"][0]["id"]
    shutil.rmtree(root / backup_id)
    assert bk.entries(root) == []

    target = f"{pg_db}_from_offhost"
    args = pg_server.params(root=str(root), source_database=pg_db, database=target, create=True,
                            source="offhost", offhost=local_offhost)
    check = ansible.module("pg_restore", args, check=True)
    assert check.get("failed") is not True, check
    assert check["changed"] is True and check["restored"] is False and check["offhost"]["fetched"] is False
    assert bk.entries(root) == []  # check mode fetched nothing

    done = ansible.module("pg_restore", args)
    assert done.get("failed") is not True, done
    assert done["changed"] is True and done["restored"] is True and done["offhost"]["fetched"] is True
    assert done["backup"]["id"] == backup_id and bk.entries(root) == [backup_id]
    assert bk.pg_snapshot(pg_server, target) == before

    again = ansible.module("pg_restore", args)
    assert again["changed"] is False and again["offhost"]["fetched"] is False, again
    assert "not empty" in again["skipped_reason"]


def test_restore_from_offhost_after_the_local_copy_is_gone_mongodb(
        ansible, mongo_server, mongo_db, local_offhost, tmp_path):
    with mongo_server.client() as client:
        bk.create_mongo_seed(client, mongo_db, docs=80)
        before = bk.mongo_snapshot(client, mongo_db)
    root, config = _config(tmp_path, {"mongodb": mongo_server.params(), "offhost": local_offhost,
                                      "backups": [{"engine": "mongodb", "database": mongo_db}]})
    code, line = _run("run", "--config", str(config))
    assert code == 0, line
    backup_id = line["backups"][0]["id"]
    shutil.rmtree(root / backup_id)

    target = f"{mongo_db}_offhost"
    args = mongo_server.params(root=str(root), source_database=mongo_db, database=target, source="offhost",
                               offhost=local_offhost)
    done = ansible.module("mongodb_restore", args)
    assert done.get("failed") is not True, done
    assert done["restored"] is True and done["offhost"]["fetched"] is True
    assert done["backup"]["id"] == backup_id
    with mongo_server.client() as client:
        assert bk.mongo_snapshot(client, target) == before

    info = ansible.module("backup_info", {"root": str(root), "offhost": local_offhost, "max_age": "1h"})
    assert info["offhost"]["groups"][0]["latest"] == backup_id and info["stale"] is False, info


def test_offhost_retention_applies_the_local_policy_with_longer_keep(local_offhost, tmp_path):
    root, config = _config(tmp_path, {})
    start = dt.datetime(2026, 11, 1, 2, 0, tzinfo=dt.timezone.utc)
    ids = [bk.fake_backup(root, "postgresql", "app", start + dt.timedelta(days=n)) for n in range(10)]
    data = {"root": str(root), "retention": {"keep_daily": 3},
            "offhost": {**local_offhost, "keep_daily": 6}}
    config.write_text(json.dumps(data))
    code, line = _run("copy", "--config", str(config))
    assert code == 0 and len(line["offhost"]["copied"]) == 10, line

    code, line = _run("retention", "--config", str(config), "--dry-run")
    assert code == 0, line
    planned = line["offhost"]["retention"]
    assert sorted(planned["remove"]) == ids[:4] and planned["removed"] == []
    assert len(_snapshots(local_offhost)) == 10

    code, line = _run("retention", "--config", str(config))
    assert code == 0, line
    assert sorted(line["retention"]["removed"]) == ids[:7]  # local: 3 days
    assert sorted(line["offhost"]["retention"]["removed"]) == ids[:4]  # off-host: 6 days
    left = sorted(t.split("=", 1)[1] for s in _snapshots(local_offhost) for t in s["tags"]
                  if t.startswith("backup="))
    assert left == ids[4:]

    code, line = _run("copy", "--config", str(config))  # what stays local is off-host already
    assert code == 0 and line["offhost"]["copied"] == [], line


def test_bad_input_is_refused_clearly(pg_server, pg_db, local_offhost, tmp_path):
    root, config = _config(tmp_path, {"postgres": pg_server.params(),
                                      "offhost": {**local_offhost, "bogus": 1},
                                      "backups": [{"engine": "postgresql", "database": pg_db}]})
    code, line = _run("run", "--config", str(config))
    assert code == 2 and "offhost: unknown option bogus" in line["error"], line
    assert bk.entries(root) == []  # refused before anything ran

    data = json.loads(config.read_text())
    data.update(retention={"keep_daily": 7}, offhost={**local_offhost, "keep_daily": 3})
    config.write_text(json.dumps(data))
    code, line = _run("backup", "--config", str(config))
    assert code == 2 and "keep_daily 3 keeps less than the local 7" in line["error"], line

    data["offhost"] = {**local_offhost, "repository": "s3:bucket/x"}
    config.write_text(json.dumps(data))
    code, line = _run("backup", "--config", str(config))
    assert code == 2 and "only sftp:user@host:/path" in line["error"], line

    # A repository made with another password: the copy fails naming the password file, the backup stays.
    data["offhost"] = local_offhost
    config.write_text(json.dumps(data))
    assert _run("copy", "--config", str(config))[0] == 0  # creates the repository
    wrong = tmp_path / "wrong.pass"
    wrong.write_text("not the password\n")
    data["offhost"] = {**local_offhost, "password_file": str(wrong)}
    config.write_text(json.dumps(data))
    code, line = _run("backup", "--config", str(config))
    assert code == 1 and line["backups"][0]["ok"] is True, line
    assert f"wrong password or no key found (password_file {wrong})" in line["offhost"]["error"]
    assert "not the password" not in json.dumps(line)
    assert bk.entries(root) == [line["backups"][0]["id"]]

    # --no-offhost (migrate.yml's pre-migration backup): the copy waits for the next run.
    code, line = _run("backup", "--config", str(config), "--no-offhost")
    assert code == 0 and "offhost" not in line, line


def test_restore_playbook_takes_the_offhost_copy_when_the_local_one_is_gone(
        ansible, pg_server, pg_db, local_offhost, tmp_path):
    bk.create_pg_seed(pg_server, pg_db, rows=60)
    before = bk.pg_snapshot(pg_server, pg_db)
    config_dir = tmp_path / "etc"
    config_dir.mkdir()
    root, config = _config(config_dir, {"postgres": pg_server.params(), "offhost": local_offhost,
                                        "backups": [{"engine": "postgresql", "database": pg_db}]})
    shutil.move(str(config), str(config_dir / "backup.json"))
    code, line = _run("backup", "--config", str(config_dir / "backup.json"))
    assert code == 0 and len(line["offhost"]["copied"]) == 1, line
    shutil.rmtree(root / line["backups"][0]["id"])

    login = pg_server.params()
    target = f"{pg_db}_play"
    extra = {"dbops_restore_host": "localhost", "dbops_restore_engine": "postgresql",
             "dbops_restore_database": target, "dbops_restore_confirm": target,
             "dbops_restore_source_database": pg_db, "db_backup_root": str(root),
             "db_backup_config_dir": str(config_dir), "db_backup_postgresql_login_host": login["login_host"],
             "db_backup_postgresql_login_port": login["login_port"],
             "db_backup_postgresql_login_user": login["login_user"],
             "db_backup_postgresql_password": login["login_password"]}
    local = ansible.playbook(REPO_ROOT / "playbooks" / "restore.yml", extra_vars=extra)
    assert local.rc != 0 and "there is no complete PostgreSQL backup" in local.stdout  # source: local

    run = ansible.playbook(REPO_ROOT / "playbooks" / "restore.yml",
                           extra_vars={**extra, "dbops_restore_source": "offhost"})
    assert run.rc == 0, run.stdout + run.stderr
    assert bk.pg_snapshot(pg_server, target) == before


def test_a_backup_whose_files_do_not_match_its_manifest_is_never_copied(local_offhost, tmp_path):
    root, config = _config(tmp_path, {})
    start = dt.datetime(2026, 11, 1, 2, 0, tzinfo=dt.timezone.utc)
    good = bk.fake_backup(root, "postgresql", "app", start)
    bad = bk.fake_backup(root, "postgresql", "app", start + dt.timedelta(days=1))
    bk.flip_byte(root / bad / "database.dump")
    config.write_text(json.dumps({"root": str(root), "offhost": local_offhost}))
    code, line = _run("copy", "--config", str(config))
    assert code == 1, line
    assert [c["id"] for c in line["offhost"]["copied"]] == [good]
    assert [f["id"] for f in line["offhost"]["failed"]] == [bad]
    assert "do not match the manifest, not copied: database.dump: sha256" in line["offhost"]["error"]
    tags = [t for s in _snapshots(local_offhost) for t in s["tags"] if t.startswith("backup=")]
    assert tags == [f"backup={good}"]


def test_status_playbook_shows_the_newest_offhost_copy_and_its_age(ansible, local_offhost, tmp_path):
    root, config = _config(tmp_path, {})
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    backup_id = bk.fake_backup(root, "mongodb", "shop", now - dt.timedelta(hours=2))
    config.write_text(json.dumps({"root": str(root), "offhost": local_offhost}))
    assert _run("copy", "--config", str(config))[0] == 0
    run = ansible.playbook(REPO_ROOT / "playbooks" / "status.yml",
                           extra_vars={"dbops_status_hosts": "localhost", "db_backup_root": str(root),
                                       "db_backup_config_dir": str(tmp_path)})
    assert run.rc == 0, run.stdout + run.stderr
    shown = next(r for r in run.task_results() if r["_task"] == "Show the status")["msg"]
    line = next(x for x in shown if x.startswith("Off-host copies of mongodb shop"))
    age = int(line.split("(")[1].split()[0])
    assert line.startswith(f"Off-host copies of mongodb shop: 1, newest {backup_id} (")
    assert 7200 <= age < 7800, shown


def test_a_full_offhost_disk_fails_the_copy_loudly_and_the_next_run_catches_up(
        pg_server, pg_db, sftp_server, sftp_offhost, tmp_path):
    bk.create_pg_seed(pg_server, pg_db, rows=50)
    # ~3 MB of random bytes: incompressible, larger than the off-host disk
    pg_server.query("CREATE TABLE blob AS SELECT decode(md5(random()::text) || md5(random()::text), 'hex') "
                    "AS b FROM generate_series(1, 100000)", dbname=pg_db)
    disk = tmp_path / "small"
    disk.mkdir()
    try:
        mount_tmpfs(disk, "1m")
    except OSError as exc:
        pytest.skip(f"needs root to mount a tmpfs: {exc}")
    try:
        offhost = {**sftp_offhost, "repository": sftp_server.repository(str(disk / "repo"))}
        root, config = _config(tmp_path, {"postgres": pg_server.params(), "offhost": offhost,
                                          "backups": [{"engine": "postgresql", "database": pg_db}]})
        code, line = _run("run", "--config", str(config))
        assert code == 1, line
        assert line["ok"] is False and line["backups"][0]["ok"] is True  # the local backup completes
        first = line["backups"][0]["id"]
        assert bk.entries(root) == [first]
        assert line["offhost"]["ok"] is False
        assert line["offhost"]["error"].startswith("copy "), line["offhost"]
        # SFTP version 3 reports the server's ENOSPC as a bare failure: the message says what it means
        assert line["offhost"]["error"].endswith(
            '(SSH_FX_FAILURE) (the SFTP server refused a write: usually a full disk or a quota on the '
            'repository host)'), line["offhost"]

        # space again: restic's repository is intact and the next run copies what is missing
        resize_tmpfs(disk, "64m")
        _restic(offhost, "check")
        code, line = _run("run", "--config", str(config), "--ignore-min-interval")
        assert code == 0, line
        second = line["backups"][0]["id"]
        assert [c["id"] for c in line["offhost"]["copied"]] == [first, second]
        _restic(offhost, "check")
    finally:
        unmount(disk)


@pytest.mark.parametrize("untrusted", ["owned by nobody", "group-writable", "symlink"])
def test_restore_and_status_refuse_a_backup_configuration_root_does_not_own(
        ansible, pg_server, local_offhost, tmp_path, untrusted):
    """restore.yml and status.yml run restic from backup.json's offhost section as root: a file the
    backup user (or anyone but root) could write must not choose the program root runs."""
    marker = tmp_path / "ran-as-root"
    planted = tmp_path / "planted-restic"
    planted.write_text(f"#!/bin/sh\nid -u > {marker}\nexit 1\n")
    planted.chmod(0o755)
    config_dir = tmp_path / "etc"
    config_dir.mkdir(mode=0o750)
    root, config = _config(config_dir, {"offhost": {**local_offhost, "restic_bin": str(planted)}})
    target = config_dir / "backup.json"
    if untrusted == "symlink":
        real = shutil.move(str(config), str(tmp_path / "real.json"))
        target.symlink_to(real)
    elif untrusted == "owned by nobody":
        os.chown(target, 65534, 65534)
    else:
        target.chmod(0o660)
    expected = {"owned by nobody": "the file is owned by nobody, not root",
                "group-writable": "the file is writable by its group",
                "symlink": "the file is a symbolic link"}[untrusted]

    login = pg_server.params()
    paths = {"db_backup_root": str(root), "db_backup_config_dir": str(config_dir)}
    restore = ansible.playbook(REPO_ROOT / "playbooks" / "restore.yml", extra_vars={
        "dbops_restore_host": "localhost", "dbops_restore_engine": "postgresql",
        "dbops_restore_database": "never_restored", "dbops_restore_confirm": "never_restored",
        "dbops_restore_source": "offhost", **paths,
        "db_backup_postgresql_login_host": login["login_host"],
        "db_backup_postgresql_login_port": login["login_port"],
        "db_backup_postgresql_login_user": login["login_user"],
        "db_backup_postgresql_password": login["login_password"]})
    assert restore.rc != 0
    failed = next(r for r in restore.task_results() if r.get("failed"))
    assert expected in failed["msg"] and failed["msg"].endswith("nothing was restored"), failed["msg"]
    assert not marker.exists()

    status = ansible.playbook(REPO_ROOT / "playbooks" / "status.yml",
                              extra_vars={"dbops_status_hosts": "localhost", **paths})
    assert status.rc == 0, status.stdout + status.stderr
    shown = next(r for r in status.task_results() if r["_task"] == "Show the status")["msg"]
    line = next(x for x in shown if x.startswith("Off-host copies: not read, the backup configuration"))
    assert expected in line, shown
    assert not marker.exists()
