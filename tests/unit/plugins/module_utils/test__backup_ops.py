"""Backup operations that need no server: selection, scratch names, count comparison, info, retention."""

from __future__ import annotations

import datetime as dt
import fcntl
import os

import pytest

from ansible_collections.dbops.datastores.plugins.module_utils import _backup_catalog as catalog
from ansible_collections.dbops.datastores.plugins.module_utils import _backup_ops as ops
from ansible_collections.dbops.datastores.plugins.module_utils._errors import DbopsError
from tests.harness import backups as bk

UTC = dt.timezone.utc


def test_compare_counts():
    assert ops.compare_counts({"a": 1, "b": 2}, {"a": 1, "b": 2, "extra": 5}) == []
    assert ops.compare_counts({"a": 1, "b": 2}, {"a": 0}) == [
        "a: 0 after restore, manifest says 1", "b: missing after restore (expected 2)"]


def test_scratch_name_is_a_valid_identifier_within_limits():
    name = ops.scratch_name("pg-" + "x" * 80 + "-20261124T020000Z")
    assert name.startswith("dbops_verify_pg_") and len(name) <= 63 and "-" not in name


def test_select_backup(tmp_path):
    t = dt.datetime(2026, 1, 1, tzinfo=UTC)
    pg_old = bk.fake_backup(tmp_path, "postgresql", "app", t)
    pg_new = bk.fake_backup(tmp_path, "postgresql", "app", t + dt.timedelta(days=1))
    mongo = bk.fake_backup(tmp_path, "mongodb", "app", t + dt.timedelta(days=2))
    cat = catalog.scan(str(tmp_path))
    assert ops.select_backup(cat, "latest", "postgresql", "app").id == pg_new
    assert ops.select_backup(cat, None, None, None).id == mongo
    assert ops.select_backup(cat, pg_old, "postgresql", None).id == pg_old
    with pytest.raises(DbopsError, match="it is a MongoDB backup, not PostgreSQL"):
        ops.select_backup(cat, mongo, "postgresql", None)
    with pytest.raises(DbopsError, match="there is no complete PostgreSQL backup of database billing"):
        ops.select_backup(cat, "latest", "postgresql", "billing")
    with pytest.raises(DbopsError, match="no complete backup with that id"):
        ops.select_backup(cat, "pg-nope", None, None)


def test_files_only_verification_is_recorded_and_failures_raise(tmp_path):
    backup_id = bk.fake_backup(tmp_path, "postgresql", "app", dt.datetime(2026, 1, 1, tzinfo=UTC))
    planned = ops.verify(str(tmp_path), check=True)
    assert planned["ok"] is True and not (tmp_path / backup_id / catalog.VERIFICATIONS).exists()
    done = ops.verify(str(tmp_path))
    assert done["verification"]["kind"] == "files" and done["backup"]["verification"] == "verified"
    assert ops.verify(str(tmp_path), min_interval="1h")["changed"] is False
    bk.flip_byte(tmp_path / backup_id / "database.dump")
    with pytest.raises(DbopsError, match=r"database\.dump: sha256") as failed:
        ops.verify(str(tmp_path))
    assert failed.value.details["ok"] is False
    assert catalog.verification_state(catalog.scan(str(tmp_path)).get(backup_id))["state"] == "failed"


def test_info_groups_and_staleness(tmp_path):
    now = dt.datetime.now(UTC)
    bk.fake_backup(tmp_path, "postgresql", "app", now - dt.timedelta(hours=5))
    newest = bk.fake_backup(tmp_path, "postgresql", "app", now - dt.timedelta(hours=1))
    result = ops.info(str(tmp_path), max_age="2h")
    assert result["stale"] is False and result["groups"][0]["latest"] == newest
    assert result["groups"][0]["count"] == 2
    assert ops.info(str(tmp_path), max_age="30m")["stale"] is True
    assert "stale" not in ops.info(str(tmp_path))


def test_retention_does_not_remove_while_a_reader_holds_the_root(tmp_path):
    t = dt.datetime(2026, 1, 1, tzinfo=UTC)
    ids = [bk.fake_backup(tmp_path, "postgresql", "app", t + dt.timedelta(days=d)) for d in range(3)]
    fd = os.open(tmp_path / catalog.READERS_LOCK, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)  # what a running restore or verification holds
        assert sorted(ops.apply_retention(str(tmp_path), {"keep_last": 1}, check=True)["remove"]) == ids[:2]
        with pytest.raises(DbopsError, match="a restore or verification is reading them"):
            ops.apply_retention(str(tmp_path), {"keep_last": 1})
        assert bk.entries(tmp_path) == ids
        assert ops.verify(str(tmp_path))["ok"] is True  # readers share the lock
    finally:
        os.close(fd)
    assert sorted(ops.apply_retention(str(tmp_path), {"keep_last": 1})["removed"]) == ids[:2]
