"""A full disk: a pgBackRest repository on a tmpfs too small for the next backup and for the WAL, and
a scratch restore into a tmpfs too small for the data directory. Clear errors, the earlier backup
still restorable, archiving and backups catch up once there is space, nothing half-restored and the
live data directory untouched."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness import pgbackrest as pgbr_harness
from tests.harness.proc import mount_tmpfs, resize_tmpfs, unmount

REPO_SIZE = "12m"  # an empty cluster's full backup and its WAL take about 8.5 MB here


@pytest.fixture(scope="module")
def small_repo() -> Iterator[pgbr_harness.PgbrStanza]:
    if os.environ.get("DBOPS_TEST_PG_DSN"):
        pytest.skip("the pgBackRest stanza is always local (DBOPS_TEST_PG_DSN is set)")
    try:
        stanza = pgbr_harness.start_stanza(repo_size=REPO_SIZE)
    except OSError as exc:
        pytest.skip(f"needs root to mount a tmpfs: {exc}")
    try:
        stanza.server.query("CREATE TABLE kept (name text PRIMARY KEY)")
        stanza.server.query("INSERT INTO kept VALUES ('before the disk filled')")
        stanza.backup("full")
        yield stanza
    finally:
        pgbr_harness.stop_stanza(stanza)


def _wait(server, sql: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not server.query(sql)[0][0]:
        assert time.monotonic() < deadline, f"timed out waiting for: {sql}"
        time.sleep(0.3)


def _wal_archiving(ansible, server) -> dict:
    result = ansible.module("pg_health_info", server.params())
    assert not result.get("failed"), result.get("msg")
    return next(c for c in result["checks"] if c["id"] == "wal_archiving")


def _files_digest(path: Path, names: tuple[str, ...]) -> str:
    digest = hashlib.sha256()
    for name in names:
        item = path / name
        digest.update(f"{name}:{item.stat().st_mtime_ns}:".encode() + item.read_bytes())
    return digest.hexdigest()


def test_full_repository_fails_archiving_and_backup_keeps_the_old_backup_and_catches_up(ansible, small_repo):
    stanza, server = small_repo, small_repo.server
    # ~7 MB of WAL after compression: more than the tmpfs has left
    server.query("CREATE TABLE big AS SELECT g AS id, md5(g::text) || md5((g + 1)::text) AS v "
                 "FROM generate_series(1, 200000) g")
    server.query("SELECT pg_switch_wal()")
    _wait(server, "SELECT failed_count >= 1 FROM pg_stat_archiver")
    check = _wal_archiving(ansible, server)
    assert check["status"] == "critical"

    # The scheduled job (cron running pgbackrest) fails: its start WAL segment cannot be archived.
    # (archive-timeout shortened from 60 s to keep the test cheap)
    failed = stanza.run("backup", "--type=full", "--archive-timeout=5", check=False)
    assert failed.returncode == 82, failed.stderr
    assert "was not archived before the 5000ms timeout" in failed.stderr

    # The earlier backup is still listed, and restores (to the end of the WAL that was archived).
    info = pgbr_harness.run_module_as(ansible, stanza, "pgbackrest_info",
                                      {"config": str(stanza.config), "stanza": "main"})
    assert not info.get("failed"), info.get("msg")
    [view] = info["stanzas"]
    assert view["status"] == {"code": 0, "message": "ok"}
    assert [b["type"] for b in view["backups"]] == ["full"]
    scratch = stanza.scratch_dir("earlier")
    done = pgbr_harness.run_module_as(ansible, stanza, "pgbackrest_restore",
                                      {"config": str(stanza.config), "stanza": "main",
                                       "data_directory": str(scratch)})
    assert not done.get("failed"), done.get("msg")
    copy, sock = pgbr_harness.start_copy(stanza, scratch)
    try:
        _wait(copy, "SELECT NOT pg_is_in_recovery()")
        assert copy.query("SELECT name FROM kept") == [("before the disk filled",)]
    finally:
        pgbr_harness.stop_copy(copy, sock)

    # Space freed: PostgreSQL retries the segments by itself, and the next backup succeeds.
    resize_tmpfs(stanza.repo, "96m")
    # after three failures the archiver sleeps up to 60 s; a new finished segment wakes it sooner
    server.query("SELECT pg_logical_emit_message(false, 'dbops-test', 'wake')")
    server.query("SELECT pg_switch_wal()")
    _wait(server, "SELECT last_archived_time > last_failed_time FROM pg_stat_archiver", timeout=120)
    assert _wal_archiving(ansible, server)["status"] == "warning"  # recovered, failed recently
    stanza.backup("full")
    info = pgbr_harness.run_module_as(ansible, stanza, "pgbackrest_info",
                                      {"config": str(stanza.config), "stanza": "main"})
    assert [b["type"] for b in info["stanzas"][0]["backups"]] == ["full", "full"]


def test_scratch_restore_onto_a_small_disk_is_refused_and_the_live_directory_untouched(ansible, small_repo):
    stanza, server = small_repo, small_repo.server
    live = server.datadir
    names = ("PG_VERSION", "postgresql.conf", "postgresql.auto.conf", "pg_hba.conf", "postmaster.pid")
    before = _files_digest(live, names)
    rows = server.query("SELECT count(*) FROM kept")
    disk = stanza.base / "scratch" / "small"
    disk.mkdir()
    try:
        mount_tmpfs(disk, "4m", mode="0750")
    except OSError as exc:
        pytest.skip(f"needs root to mount a tmpfs: {exc}")
    try:
        pgbr_harness.chown_to_cluster_user(disk)
        target = disk / "data"
        result = pgbr_harness.run_module_as(ansible, stanza, "pgbackrest_restore",
                                            {"config": str(stanza.config), "stanza": "main",
                                             "data_directory": str(target)})
        assert result.get("failed") is True and result["changed"] is False
        # refused before writing: pgBackRest's own error named a file and its retries, not the cause
        assert result["msg"].startswith(f"restore into {target}: the backup needs "), result["msg"]
        assert result["msg"].endswith(" free (nothing was changed)")
        assert not target.exists() and os.listdir(disk) == []  # nothing half-restored

        # the same disk with enough room: the restore goes through and the copy starts
        resize_tmpfs(disk, "160m")
        done = pgbr_harness.run_module_as(ansible, stanza, "pgbackrest_restore",
                                          {"config": str(stanza.config), "stanza": "main",
                                           "data_directory": str(target)})
        assert not done.get("failed"), done.get("msg")
        assert (target / "PG_VERSION").is_file()
    finally:
        unmount(disk)
    assert _files_digest(live, names) == before
    assert server.query("SELECT count(*) FROM kept") == rows
