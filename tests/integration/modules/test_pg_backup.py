"""pg_backup, pg_restore and backup_verify against a real PostgreSQL cluster, through ansible-playbook."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import stat
import subprocess
import uuid

import pytest

from tests.harness import backups as bk


@pytest.fixture
def root(tmp_path):
    path = tmp_path / "backups"
    path.mkdir(mode=0o700)
    return path


@pytest.fixture
def seeded_db(pg_server, pg_db):
    bk.create_pg_seed(pg_server, pg_db)
    return pg_db


def _manifest(root, backup_id):
    return json.loads((root / backup_id / "manifest.json").read_text())


def _database_exists(pg_server, name):
    return bool(pg_server.query("SELECT 1 FROM pg_database WHERE datname = %s", (name,)))


def test_pg_backup_four_steps(ansible, pg_server, seeded_db, root):
    args = pg_server.params(root=str(root), database=seeded_db, min_interval="1h")

    check = ansible.module("pg_backup", args, check=True, diff=True)
    assert check.get("failed") is not True, check
    assert check["changed"] is True
    assert check["plan"]["commands"][0].startswith("pg_dump --format=custom --snapshot=<exported>")
    assert check["diff"] == {"before": {"backup": None}, "after": {"backup": "(new backup)"}}
    assert bk.entries(root) == []

    first = ansible.module("pg_backup", args)
    assert first.get("failed") is not True, first
    assert first["changed"] is True
    backup_id = first["backup"]["id"]
    assert bk.entries(root) == [backup_id]

    again = ansible.module("pg_backup", args)
    assert again["changed"] is False, again
    assert again["backup"]["id"] == backup_id
    assert "min_interval" in again["skipped_reason"]
    assert bk.entries(root) == [backup_id]

    # On disk: the manifest describes exactly the files, with the server's row counts.
    manifest = _manifest(root, backup_id)
    assert manifest["engine"] == "postgresql" and manifest["database"] == seeded_db
    assert manifest["format"] == "custom"
    assert manifest["server_version"] == pg_server.query("SHOW server_version")[0][0]
    assert "pg_dump (PostgreSQL)" in manifest["tool"]["version"]
    for entry in manifest["files"]:
        data = (root / backup_id / entry["path"]).read_bytes()
        assert len(data) == entry["size"]
        assert hashlib.sha256(data).hexdigest() == entry["sha256"]
    for table, count in manifest["counts"].items():
        schema, name = table.split(".")
        assert pg_server.query(f'SELECT count(*) FROM "{schema}"."{name}"', dbname=seeded_db)[0][0] == count
    assert manifest["counts"]["public.messages"] == 300
    assert len(manifest["counts"]) == 6
    # Permissions: directories 0700, files 0600.
    for dirpath, _dirs, files in os.walk(root / backup_id):
        assert stat.S_IMODE(os.stat(dirpath).st_mode) == 0o700
        for name in files:
            assert stat.S_IMODE(os.stat(os.path.join(dirpath, name)).st_mode) == 0o600


@pytest.mark.parametrize(("fmt", "jobs", "compression", "globals_"), [
    ("custom", 1, None, True),
    ("directory", 2, 6, False),
    ("plain", 1, 6, False),
])
def test_round_trip_is_identical_row_by_row(  # noqa: PLR0917 - pytest fixtures and parameters
        ansible, pg_server, seeded_db, root, fmt, jobs, compression, globals_):
    args = pg_server.params(root=str(root), database=seeded_db, format=fmt, jobs=jobs, globals=globals_)
    if compression is not None:
        args["compression"] = compression
    backup = ansible.module("pg_backup", args)
    assert backup.get("failed") is not True, backup
    manifest = _manifest(root, backup["backup"]["id"])
    if globals_:
        assert manifest["globals"] == "globals.sql"
        assert "CREATE ROLE postgres" in (root / backup["backup"]["id"] / "globals.sql").read_text()
    if fmt == "plain":
        assert manifest["payload"] == "database.sql.gz"

    target = f"r_{uuid.uuid4().hex[:10]}"
    pg_server._created.append(target)
    restore = ansible.module("pg_restore", pg_server.params(
        root=str(root), backup=backup["backup"]["id"], database=target, create=True,
        jobs=jobs if fmt != "plain" else 1))
    assert restore.get("failed") is not True, restore
    assert restore["restored"] is True
    assert bk.pg_snapshot(pg_server, target) == bk.pg_snapshot(pg_server, seeded_db)


def test_pg_restore_four_steps_and_clean(ansible, pg_server, seeded_db, root):
    backup = ansible.module("pg_backup", pg_server.params(root=str(root), database=seeded_db))
    target = f"r_{uuid.uuid4().hex[:10]}"
    pg_server._created.append(target)
    args = pg_server.params(root=str(root), source_database=seeded_db, database=target, create=True)

    check = ansible.module("pg_restore", args, check=True)
    assert check.get("failed") is not True, check
    assert check["changed"] is True
    assert check["commands"][0].startswith("CREATE DATABASE")
    assert not _database_exists(pg_server, target)

    applied = ansible.module("pg_restore", args, diff=True)
    assert applied["changed"] is True, applied
    assert applied["backup"]["id"] == backup["backup"]["id"]
    assert applied["diff"]["after"]["restored_from"] == backup["backup"]["id"]

    again = ansible.module("pg_restore", args)
    assert again["changed"] is False, again
    assert "not empty" in again["skipped_reason"]
    original = bk.pg_snapshot(pg_server, seeded_db)
    assert bk.pg_snapshot(pg_server, target) == original

    # clean: true puts the backup's rows back over local changes.
    pg_server.query("DELETE FROM message_classifications; UPDATE messages SET content = 'changed'",
                    dbname=target)
    cleaned = ansible.module("pg_restore", dict(args, clean=True, create=False))
    assert cleaned["changed"] is True, cleaned
    assert bk.pg_snapshot(pg_server, target) == original


def test_verify_restore_test_records_rto_and_drops_scratch(ansible, pg_server, seeded_db, root):
    backup = ansible.module("pg_backup", pg_server.params(root=str(root), database=seeded_db,
                                                          format="directory", jobs=2))
    backup_id = backup["backup"]["id"]
    args = {"root": str(root), "backup": backup_id, "restore_test": True, "jobs": 2, "min_interval": "1h",
            "postgres": pg_server.params()}

    check = ansible.module("backup_verify", args, check=True)
    assert check.get("failed") is not True, check
    assert check["changed"] is True
    assert "scratch database" in check["verification"]["plan"]
    assert not (root / backup_id / "verifications.json").exists()

    verified = ansible.module("backup_verify", args)
    assert verified.get("failed") is not True, verified
    record = verified["verification"]
    assert verified["changed"] is True and verified["ok"] is True
    assert record["kind"] == "restore" and record["counts_ok"] is True and record["files_ok"] is True
    assert record["rto_s"] > 0
    assert record["restored_counts"] == _manifest(root, backup_id)["counts"]
    assert not _database_exists(pg_server, record["scratch_database"])

    again = ansible.module("backup_verify", args)
    assert again["changed"] is False, again
    assert "min_interval" in again["skipped_reason"]

    stored = json.loads((root / backup_id / "verifications.json").read_text())
    assert len(stored) == 1 and stored[0]["ok"] is True and stored[0]["rto_s"] == record["rto_s"]
    info = ansible.module("backup_info", {"root": str(root)})
    assert info["backups"][0]["verification"] == "verified"
    assert info["groups"][0]["latest_verified"] == backup_id

    # An existing scratch database is refused and left alone.
    pg_server.query(f'CREATE DATABASE "{record["scratch_database"]}"')
    pg_server._created.append(record["scratch_database"])
    refused = ansible.module("backup_verify", dict(args, min_interval=None))
    assert refused["failed"] is True
    assert "already exists" in refused["msg"]
    assert _database_exists(pg_server, record["scratch_database"])


def test_flipped_byte_is_refused_by_verify_and_restore(ansible, pg_server, seeded_db, root):
    backup = ansible.module("pg_backup", pg_server.params(root=str(root), database=seeded_db))
    backup_id = backup["backup"]["id"]
    bk.flip_byte(root / backup_id / "database.dump")

    verify = ansible.module("backup_verify", {"root": str(root), "backup": backup_id})
    assert verify["failed"] is True
    assert "database.dump: sha256" in verify["msg"]
    assert verify["ok"] is False

    target = f"r_{uuid.uuid4().hex[:10]}"
    restore = ansible.module("pg_restore", pg_server.params(root=str(root), backup=backup_id, database=target,
                                                            create=True))
    assert restore["failed"] is True
    assert f"verify backup {backup_id}" in restore["msg"] and "sha256" in restore["msg"]
    assert not _database_exists(pg_server, target)
    info = ansible.module("backup_info", {"root": str(root)})
    assert info["backups"][0]["verification"] == "failed"


def test_bad_inputs_fail_clearly_and_leave_nothing(ansible, pg_server, pg_db, root, tmp_path):
    missing = ansible.module("pg_backup", pg_server.params(root=str(tmp_path / "nope"), database=pg_db))
    assert missing["failed"] is True
    assert "does not exist" in missing["msg"] and "nope" in missing["msg"]

    unknown = ansible.module("pg_backup", pg_server.params(root=str(root), database="no_such_db"), check=True)
    assert unknown["failed"] is True  # check mode finds it too
    assert "back up PostgreSQL database no_such_db: the database does not exist" in unknown["msg"]

    wrong = ansible.module("pg_backup", pg_server.params(root=str(root), database=pg_db,
                                                         login_password="wrong-pw"))
    assert wrong["failed"] is True
    assert "password authentication failed" in wrong["msg"]
    assert "wrong-pw" not in json.dumps(wrong)
    assert bk.entries(root) == []

    with bk.TinyFs(tmp_path / "ro", readonly=True) as ro:
        unwritable = ansible.module("pg_backup", pg_server.params(root=str(ro.path), database=pg_db))
        assert unwritable["failed"] is True
        assert "not writable" in unwritable["msg"]


def test_disk_full_fails_and_leaves_no_partial(ansible, pg_server, pg_db, tmp_path):
    pg_server.query("CREATE TABLE filler AS SELECT g, md5(g::text) || md5((g * 7)::text) AS v "
                    "FROM generate_series(1, 40000) g", dbname=pg_db)
    with bk.TinyFs(tmp_path / "full", size="1m") as fs:
        result = ansible.module("pg_backup", pg_server.params(root=str(fs.path), database=pg_db,
                                                              compression=0))
        assert result["failed"] is True, result
        assert "No space left on device" in result["msg"]
        assert bk.entries(fs.path) == []


def _write_config(tmp_path, root, pg_server, database):
    config = tmp_path / "dbops-backup.json"
    config.write_text(json.dumps({
        "root": str(root),
        "postgres": pg_server.params(),
        "backups": [{"engine": "postgresql", "database": database}],
        "retention": {"keep_last": 3},
    }))
    config.chmod(0o600)
    return config


def _hold_lock(pg_server, database):
    """Block pg_dump: it waits for ACCESS SHARE on a table locked exclusively here."""
    conn = pg_server.connect(database, autocommit=False)
    with conn.cursor() as cur:
        cur.execute("LOCK TABLE messages IN ACCESS EXCLUSIVE MODE")
    return conn


def test_pg_dump_killed_mid_run_leaves_no_complete_backup(pg_server, seeded_db, root, tmp_path):
    config = _write_config(tmp_path, root, pg_server, seeded_db)
    lock = _hold_lock(pg_server, seeded_db)
    proc = subprocess.Popen(bk.cli_command("backup", "--config", str(config)), env=bk.cli_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        pids = bk.wait_for(lambda: bk.processes_matching("pg_dump", str(root)), what="pg_dump to start")
        assert any(name.endswith(".partial") for name in bk.entries(root))
        os.kill(pids[0], signal.SIGKILL)
    finally:
        lock.rollback()
        lock.close()
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, (out, err)
    line = json.loads(out.strip().splitlines()[-1])
    assert line["ok"] is False
    assert "killed by signal 9" in line["backups"][0]["error"]
    assert bk.entries(root) == []  # the failed backup removed its partial directory


def test_backup_process_killed_leaves_partial_that_retention_removes(ansible, pg_server, seeded_db, root,
                                                                     tmp_path):
    config = _write_config(tmp_path, root, pg_server, seeded_db)
    lock = _hold_lock(pg_server, seeded_db)
    proc = subprocess.Popen(bk.cli_command("backup", "--config", str(config)), env=bk.cli_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        bk.wait_for(lambda: bk.processes_matching("pg_dump", str(root)), what="pg_dump to start")
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        lock.rollback()
        lock.close()
    bk.wait_for(lambda: not bk.processes_matching("pg_dump", str(root)), what="pg_dump to exit")
    leftovers = bk.entries(root)
    assert len(leftovers) == 1 and leftovers[0].endswith(".partial")
    assert not (root / leftovers[0] / "manifest.json").exists()

    info = ansible.module("backup_info", {"root": str(root), "max_age": "1d"})
    assert info["backups"] == []
    assert info["stale"] is True
    assert [p["name"] for p in info["partials"]] == leftovers
    assert info["partials"][0]["active"] is False

    young = ansible.module("backup_retention", {"root": str(root), "keep_last": 1})
    assert young["changed"] is False and young["stale_partials"] == []
    assert bk.entries(root) == leftovers

    removed = ansible.module("backup_retention", {"root": str(root), "keep_last": 1, "partial_max_age": "0s"})
    assert removed["changed"] is True
    assert removed["removed_partials"] == leftovers
    assert bk.entries(root) == []


@pytest.mark.slow
def test_pg_dump_killed_while_writing_data(pg_server, pg_db, root, tmp_path):
    """Kill pg_dump once it has written part of the table data (not while it waits for locks)."""
    pg_server.query("CREATE TABLE messages AS SELECT g AS id, repeat(md5(g::text), 8) AS body "
                    "FROM generate_series(1, 400000) g", dbname=pg_db)
    config = _write_config(tmp_path, root, pg_server, pg_db)
    job = {"engine": "postgresql", "database": pg_db, "compression": 0}
    config.write_text(json.dumps({**json.loads(config.read_text()), "backups": [job]}))
    proc = subprocess.Popen(bk.cli_command("backup", "--config", str(config)), env=bk.cli_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)

    def writing():
        partials = [n for n in bk.entries(root) if n.endswith(".partial")]
        dump = root / partials[0] / "database.dump" if partials else None
        return dump is not None and dump.exists() and dump.stat().st_size > 4 * 1024 * 1024

    bk.wait_for(writing, what="pg_dump to write 4 MB of data")
    for pid in bk.processes_matching("pg_dump", str(root)):
        os.kill(pid, signal.SIGKILL)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, (out, err)
    assert "killed by signal 9" in json.loads(out.strip().splitlines()[-1])["backups"][0]["error"]
    assert bk.entries(root) == []


def test_backup_login_member_of_the_owner_backs_up_verifies_and_restores(ansible, pg_server, pg_db, root):
    """The inventories' dbops_backup: CREATEDB and a member of the application role, not a superuser."""
    suffix = uuid.uuid4().hex[:8]
    owner, backup_login, password = f"app_{suffix}", f"bk_{suffix}", f"pw-{suffix}"
    pg_server.query(f"CREATE ROLE {owner} NOLOGIN; CREATE ROLE {backup_login} LOGIN CREATEDB"
                    f" PASSWORD '{password}' IN ROLE {owner}; ALTER DATABASE {pg_db} OWNER TO {owner}")
    pg_server.query(f"SET ROLE {owner}; CREATE TABLE orders (id int PRIMARY KEY, note text);"
                    "INSERT INTO orders SELECT g, 'n' || g FROM generate_series(1, 50) g;"
                    "CREATE VIEW recent AS SELECT * FROM orders WHERE id > 40", dbname=pg_db)
    login = pg_server.params(login_user=backup_login, login_password=password)

    backup = ansible.module("pg_backup", {**login, "root": str(root), "database": pg_db})
    assert backup.get("failed") is not True, backup
    backup_id = backup["backup"]["id"]
    assert _manifest(root, backup_id)["database_owner"] == owner

    verified = ansible.module("backup_verify", {"root": str(root), "backup": backup_id,
                                                "restore_test": True, "postgres": login})
    assert verified.get("failed") is not True, verified
    assert verified["verification"]["counts_ok"] is True

    target = f"r_{suffix}"
    pg_server._created.append(target)
    restored = ansible.module("pg_restore", {**login, "root": str(root), "backup": backup_id,
                                             "database": target, "create": True})
    assert restored.get("failed") is not True, restored
    assert f"CREATE DATABASE {target} TEMPLATE template0 OWNER {owner}" in restored["commands"]
    assert pg_server.query("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = %s",
                           (target,)) == [(owner,)]
    owners = pg_server.query("SELECT DISTINCT pg_get_userbyid(relowner) FROM pg_class c"
                             " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public'",
                             dbname=target)
    assert owners == [(owner,)]
    assert pg_server.query("SELECT count(*) FROM orders", dbname=target) == [(50,)]
    # The databases go with the fixtures' teardown, the roles with the throwaway cluster.


def test_globals_dump_of_a_database_whose_name_looks_like_a_conninfo(ansible, pg_server, root):
    """pg_dumpall --database parses its value as a connection string: the name must be quoted."""
    name = f"dbops_{uuid.uuid4().hex[:6]} host=/nonexistent port=1"
    pg_server.query(f'CREATE DATABASE "{name}"')
    pg_server._created.append(name)
    pg_server.query("CREATE TABLE t (id int)", dbname=name)
    backup = ansible.module("pg_backup", pg_server.params(root=str(root), database=name, globals=True))
    assert backup.get("failed") is not True, backup
    globals_sql = (root / backup["backup"]["id"] / "globals.sql").read_text()
    assert "CREATE ROLE postgres" in globals_sql


def test_restore_refuses_a_forged_manifest_payload_outside_the_backup(ansible, pg_server, pg_db, root,
                                                                      tmp_path):
    """Whoever can write the backup root must not make a root restore run any file on the host."""
    pg_server.query("CREATE TABLE t (id int)", dbname=pg_db)
    backup = ansible.module("pg_backup", pg_server.params(root=str(root), database=pg_db, format="plain"))
    assert backup.get("failed") is not True, backup
    role = f"evil_{uuid.uuid4().hex[:8]}"
    outside = tmp_path / "outside.sql"
    outside.write_text(f"CREATE ROLE {role} SUPERUSER;\n")
    manifest_path = root / backup["backup"]["id"] / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["payload"] = os.path.relpath(outside, root / backup["backup"]["id"])
    manifest_path.write_text(json.dumps(manifest))
    target = f"r_{uuid.uuid4().hex[:10]}"
    pg_server._created.append(target)
    restore = ansible.module("pg_restore", pg_server.params(root=str(root), backup=backup["backup"]["id"],
                                                            database=target, create=True))
    created = pg_server.query("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,))
    pg_server.query(f'DROP ROLE IF EXISTS "{role}"')
    assert created == [], "the forged payload was run as SQL"
    assert restore["failed"] is True
    assert "is not a plain relative path inside the backup directory" in restore["msg"]


def _match_manifest(root, backup_id, rel):
    """Make the manifest's size and sha256 of ``rel`` match the file as it is now (a forged backup
    that passes the checksum check)."""
    manifest_path = root / backup_id / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    data = (root / backup_id / rel).read_bytes()
    for entry in manifest["files"]:
        if entry["path"] == rel:
            entry.update(size=len(data), sha256=hashlib.sha256(data).hexdigest())
    manifest_path.write_text(json.dumps(manifest))


def test_a_failed_restore_drops_the_database_it_created_so_a_rerun_restores(ansible, pg_server, seeded_db,
                                                                            root):
    backup = ansible.module("pg_backup", pg_server.params(root=str(root), database=seeded_db))
    backup_id = backup["backup"]["id"]
    dump = root / backup_id / "database.dump"
    manifest_path = root / backup_id / "manifest.json"
    good_dump, good_manifest = dump.read_bytes(), manifest_path.read_text()
    target = f"r_{uuid.uuid4().hex[:10]}"
    pg_server._created.append(target)
    args = pg_server.params(root=str(root), backup=backup_id, database=target, create=True)

    # A dump cut short (its checksums forged to match): pg_restore creates the tables, then fails.
    dump.write_bytes(good_dump[: len(good_dump) * 2 // 3])
    _match_manifest(root, backup_id, "database.dump")
    failed = ansible.module("pg_restore", args)
    assert failed["failed"] is True, failed
    assert f"restore backup {backup_id} into PostgreSQL database {target}: " in failed["msg"]
    assert failed["msg"].endswith(f"; the database {target} this run created was dropped"), failed["msg"]
    assert failed["database_dropped"] is True
    assert not _database_exists(pg_server, target)

    # The whole dump, but the manifest's counts say otherwise: the restored database is dropped too.
    dump.write_bytes(good_dump)
    manifest = json.loads(good_manifest)
    manifest["counts"]["public.messages"] += 1
    manifest_path.write_text(json.dumps(manifest))
    mismatch = ansible.module("pg_restore", args)
    assert mismatch["failed"] is True, mismatch
    assert "counts differ from the manifest: public.messages" in mismatch["msg"]
    assert f"the database {target} this run created was dropped" in mismatch["msg"]
    assert not _database_exists(pg_server, target)

    # The backup mended: the re-run restores (it used to report changed=false, "not empty").
    manifest_path.write_text(good_manifest)
    restored = ansible.module("pg_restore", args)
    assert restored.get("failed") is not True, restored
    assert restored["changed"] is True and restored["restored"] is True
    assert bk.pg_snapshot(pg_server, target) == bk.pg_snapshot(pg_server, seeded_db)
