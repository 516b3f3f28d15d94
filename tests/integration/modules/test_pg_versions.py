"""What differs between PostgreSQL majors: which client tools back up and restore, what the
manifest records, and the refusal of servers older than 13. Part of `make integration-matrix`."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.harness import backups as bk
from tests.harness import pg as pg_harness

pytestmark = pytest.mark.pg_matrix

DEBIAN_15 = Path("/usr/lib/postgresql/15/bin")


@pytest.fixture
def root(tmp_path):
    path = tmp_path / "backups"
    path.mkdir(mode=0o700)
    return path


def _manifest(root, backup_id):
    return json.loads((root / backup_id / "manifest.json").read_text())


def _exists(pg_server, name):
    return bool(pg_server.query("SELECT 1 FROM pg_database WHERE datname = %s", (name,)))


@pytest.mark.parametrize("fmt", ["custom", "plain"])
def test_dump_tool_is_never_older_than_the_server_and_the_round_trip_is_exact(
        ansible, pg_server, pg_db, root, fmt):
    bk.create_pg_seed(pg_server, pg_db)
    backup = ansible.module("pg_backup", pg_server.params(root=str(root), database=pg_db, format=fmt))
    assert backup.get("failed") is not True, backup
    tool = _manifest(root, backup["backup"]["id"])["tool"]
    assert tool["major"] >= pg_server.major
    assert tool["version"].startswith(f"pg_dump (PostgreSQL) {tool['major']}.")
    # The tools of the server's own major when installed (Debian's 15), else the newest (18).
    assert tool["major"] == (15 if pg_server.major == 15 and DEBIAN_15.is_dir() else 18)

    # Restored by tools at least as new as pg_dump; tools of 17+ into a server before 17 must not
    # send SET transaction_timeout (the restore fails on 13-16 if they do).
    target = f"{pg_db}_copy"
    pg_server._created.append(target)
    restored = ansible.module("pg_restore", pg_server.params(root=str(root), backup=backup["backup"]["id"],
                                                             database=target, create=True))
    assert restored.get("failed") is not True, restored
    assert restored["changed"] is True
    assert bk.pg_snapshot(pg_server, target) == bk.pg_snapshot(pg_server, pg_db)

    if fmt == "custom":  # the restore test takes the same path as the restore
        verified = ansible.module("backup_verify", {"root": str(root), "backup": backup["backup"]["id"],
                                                    "restore_test": True, "postgres": pg_server.params()})
        assert verified.get("failed") is not True, verified
        assert verified["verification"]["counts_ok"] is True


def test_restore_refuses_a_dump_its_pg_restore_cannot_read(ansible, pg_server, pg_db, root):
    tools = pg_harness.client_tools_dir()
    if tools is None or not DEBIAN_15.is_dir():
        pytest.skip("needs the PostgreSQL 18 client tools (scripts/setup_pg_majors.sh) and Debian's 15")
    pg_server.query("CREATE TABLE t (id int); INSERT INTO t VALUES (1)", dbname=pg_db)
    backup = ansible.module("pg_backup", pg_server.params(root=str(root), database=pg_db, bin_dir=str(tools)))
    assert backup.get("failed") is not True, backup
    backup_id = backup["backup"]["id"]
    assert _manifest(root, backup_id)["tool"]["major"] == 18

    target = f"{pg_db}_old_tools"
    refused = ansible.module("pg_restore", pg_server.params(root=str(root), backup=backup_id,
                                                            database=target, create=True,
                                                            bin_dir=str(DEBIAN_15)))
    assert refused["failed"] is True
    assert f"restore backup {backup_id}: it was written by pg_dump 18, which only pg_restore 18 or newer " \
           "reads" in refused["msg"]
    assert "found: 15 (/usr/lib/postgresql/15/bin/pg_restore)" in refused["msg"]
    assert not _exists(pg_server, target)  # refused before anything was created

    scratch = f"{pg_db}_scratch"
    verify = ansible.module("backup_verify", {"root": str(root), "backup": backup_id, "restore_test": True,
                                              "scratch_database": scratch, "postgres": pg_server.params()},
                            task_env={"DBOPS_PG_BIN_DIRS": ""})
    assert verify["failed"] is True, verify
    assert "it was written by pg_dump 18, which only pg_restore 18 or newer reads" in verify["msg"]
    assert not _exists(pg_server, scratch)


@pytest.fixture(scope="module")
def pg12_server():
    if os.environ.get("DBOPS_TEST_PG_DSN"):
        pytest.skip("the PostgreSQL 12 cluster is always local (DBOPS_TEST_PG_DSN is set)")
    server = pg_harness.start_cluster(major=12)
    yield server
    pg_harness.stop_cluster(server)


def test_a_server_older_than_13_is_refused_by_every_module(ansible, pg12_server, tmp_path):
    expected = "server version 12.22 is not supported (dbops.datastores supports PostgreSQL 13 and newer"
    ping = ansible.module("pg_ping", pg12_server.params())
    assert ping["failed"] is True and expected in ping["msg"], ping
    (tmp_path / "sql").mkdir()
    (tmp_path / "sql" / "V1__t.sql").write_text("CREATE TABLE t (id int);")
    migrate = ansible.module("pg_migrate", pg12_server.params(path=str(tmp_path / "sql")))
    assert migrate["failed"] is True and expected in migrate["msg"], migrate
    assert pg12_server.query("SELECT to_regclass('public.t') IS NULL")[0][0] is True
    health = ansible.module("pg_health_info", pg12_server.params(), check=True)
    assert health["failed"] is True and expected in health["msg"], health
    (tmp_path / "b").mkdir(mode=0o700)
    backup = ansible.module("pg_backup", pg12_server.params(root=str(tmp_path / "b"), database="postgres"))
    assert backup["failed"] is True and expected in backup["msg"], backup
    assert list((tmp_path / "b").iterdir()) == []
