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
    # an explicit id and a source database that disagree: refused, not the id's database restored
    assert ops.select_backup(cat, pg_old, "postgresql", "app").id == pg_old
    with pytest.raises(DbopsError) as refused:
        ops.select_backup(cat, pg_old, "postgresql", "billing")
    assert refused.value.msg == (f"use backup {pg_old}: it is a backup of database app, not of billing (the"
                                 " source database given); nothing was changed")


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


# --------------------------------------------------------------------------- backups dated in the future

def _daily_and_one_from_the_future(root, newest_age=dt.timedelta(hours=2)):
    """Five daily backups of pg/app, the newest ``newest_age`` old, and one dated 2031-01-01 (taken
    while the host clock was wrong, later corrected)."""
    now = dt.datetime.now(UTC)
    real = [bk.fake_backup(root, "postgresql", "app", now - newest_age - dt.timedelta(days=d))
            for d in range(5)]
    future = bk.fake_backup(root, "postgresql", "app", dt.datetime(2031, 1, 1, tzinfo=UTC))
    return real, future


def _offline_engines(monkeypatch):
    """The PostgreSQL adapter without a server: plan and preflight do nothing."""
    import dataclasses

    engine = dataclasses.replace(ops.ENGINES["postgresql"], plan=lambda options: {"engine": "postgresql"},
                                 preflight=lambda params, options: None)
    monkeypatch.setitem(ops.ENGINES, "postgresql", engine)


def test_retention_never_removes_real_backups_because_of_one_from_the_future(tmp_path):
    real, future = _daily_and_one_from_the_future(tmp_path)
    result = ops.apply_retention(str(tmp_path), {"keep_within": "7d"})
    assert result["remove"] == [] and result["removed"] == []
    assert sorted(result["keep"]) == sorted([*real, future])
    assert result["future"] == [future]
    assert future in result["warnings"][0]
    reasons = {d["id"]: d["reasons"] for d in result["decisions"]}
    assert reasons[future] == ["future"] and reasons[real[0]] == ["within"]
    # Count rules do not spend a slot on it either, and it is not removed by them.
    daily = ops.apply_retention(str(tmp_path), {"keep_daily": 2}, check=True)
    assert sorted(daily["keep"]) == sorted([future, *real[:2]])


def test_latest_prefers_the_newest_backup_not_from_the_future(tmp_path):
    real, future = _daily_and_one_from_the_future(tmp_path)
    cat = catalog.scan(str(tmp_path))
    assert cat.latest("postgresql", "app").id == real[0]
    assert ops.select_backup(cat, "latest", "postgresql", "app").id == real[0]
    assert [b.id for b in cat.future("postgresql", "app")] == [future]
    # Only backups from the future: the newest of them (restore still finds a backup).
    only = tmp_path / "only"
    only.mkdir()
    bk.fake_backup(only, "postgresql", "app", dt.datetime(2031, 1, 1, tzinfo=UTC))
    later = bk.fake_backup(only, "postgresql", "app", dt.datetime(2032, 1, 1, tzinfo=UTC))
    assert catalog.scan(str(only)).latest("postgresql", "app").id == later


def test_min_interval_is_not_satisfied_by_a_backup_from_the_future(tmp_path, monkeypatch):
    _offline_engines(monkeypatch)
    _real, future = _daily_and_one_from_the_future(tmp_path, newest_age=dt.timedelta(days=1))
    result = ops.backup("postgresql", {}, str(tmp_path), {"database": "app"}, min_interval="20h", check=True)
    assert result["changed"] is True and "skipped_reason" not in result
    assert future in result["warnings"][0]
    # A real backup younger than min_interval still skips the run.
    young = bk.fake_backup(tmp_path, "postgresql", "app", dt.datetime.now(UTC) - dt.timedelta(hours=1))
    skipped = ops.backup("postgresql", {}, str(tmp_path), {"database": "app"}, min_interval="20h", check=True)
    assert skipped["changed"] is False and young in skipped["skipped_reason"]


def test_a_clock_a_little_ahead_is_not_the_future(tmp_path, monkeypatch):
    _offline_engines(monkeypatch)
    ahead = bk.fake_backup(tmp_path, "postgresql", "app", dt.datetime.now(UTC) + dt.timedelta(minutes=1))
    result = ops.backup("postgresql", {}, str(tmp_path), {"database": "app"}, min_interval="20h", check=True)
    assert result["changed"] is False and ahead in result["skipped_reason"]
    assert ops.info(str(tmp_path), max_age="1h")["stale"] is False


def test_info_does_not_count_a_backup_from_the_future_as_fresh(tmp_path):
    real, future = _daily_and_one_from_the_future(tmp_path, newest_age=dt.timedelta(hours=30))
    result = ops.info(str(tmp_path), max_age="24h")
    assert result["stale"] is True, result["stale_reasons"]
    assert result["future"] == [future] and future in result["warnings"][0]
    group = result["groups"][0]
    assert group["latest"] == real[0] and group["future"] == [future] and group["count"] == 6
    assert result["newest_age_s"] > 29 * 3600
    assert {b["id"]: b["future"] for b in result["backups"]} == {**dict.fromkeys(real, False),
                                                                 future: True}
    assert ops.info(str(tmp_path), max_age="48h")["stale"] is False

    only = tmp_path / "only"
    only.mkdir()
    bk.fake_backup(only, "postgresql", "app", dt.datetime(2031, 1, 1, tzinfo=UTC))
    alone = ops.info(str(only), max_age="24h")
    assert alone["stale"] is True and "only backups dated in the future" in alone["stale_reasons"][0]
    assert alone["newest_age_s"] is None


def test_a_verification_dated_in_the_future_does_not_satisfy_min_interval(tmp_path):
    backup_id = bk.fake_backup(tmp_path, "postgresql", "app", dt.datetime(2026, 1, 1, tzinfo=UTC))
    catalog.record_verification(catalog.scan(str(tmp_path)).get(backup_id),
                                {"time": "2031-01-01T00:00:00.000000Z", "kind": "files", "ok": True})
    assert ops.verify(str(tmp_path), min_interval="1h")["changed"] is True


# --------------------------------------------------------------------------- failed restore, new database

class _FakePg:
    """The _pg_backup calls a restore makes, recorded, with the failures a test asks for."""

    def __init__(self, monkeypatch, *, exists=False, restore_error=None, counts=None, drop_error=None):
        self.calls = []
        self.exists = exists
        pg = ops._pg_backup
        for name, value in {
            "maintenance_connect": lambda params: self,
            "database_exists": lambda conn, name: self.exists,
            "database_is_empty": lambda params, name: True,
            "owner_for_restore": lambda conn, manifest: None,
            "server_facts": lambda conn: {"server_major": 17},
            "restore_tool": lambda manifest, bin_dir, major: ("pg_restore", 17),
            "create_database": lambda conn, name, owner=None: self.record("create", name),
            "run_restore": lambda *a, **k: self.fail("restore", restore_error),
            "counts_in": lambda params, name: counts or {},
            "drop_database": lambda conn, name: self.fail("drop", drop_error, name),
        }.items():
            monkeypatch.setattr(pg, name, value)

    def record(self, what, *args):
        self.calls.append((what, *args))

    def fail(self, what, error, *args):
        self.record(what, *args)
        if error is not None:
            raise error

    def close(self):
        self.record("close")


def _with_counts(root, backup_id, counts):
    import json

    path = root / backup_id / catalog.MANIFEST
    manifest = json.loads(path.read_text())
    manifest["counts"] = counts
    path.write_text(json.dumps(manifest))


def test_a_failed_restore_drops_the_database_this_run_created(tmp_path, monkeypatch):
    bk.fake_backup(tmp_path, "postgresql", "app", dt.datetime(2026, 1, 1, tzinfo=UTC))
    fake = _FakePg(monkeypatch, restore_error=DbopsError("restore backup b into PostgreSQL database t: "
                                                         "pg_restore: error: could not read input file"))
    with pytest.raises(DbopsError) as failed:
        ops.restore("postgresql", {}, str(tmp_path), {"database": "t", "create": True})
    assert failed.value.msg == ("restore backup b into PostgreSQL database t: pg_restore: error: could not "
                                "read input file; the database t this run created was dropped")
    assert failed.value.details["database_dropped"] is True
    assert [c[0] for c in fake.calls] == ["create", "restore", "drop", "close"]


def test_a_restore_whose_counts_differ_drops_the_database_this_run_created(tmp_path, monkeypatch):
    backup_id = bk.fake_backup(tmp_path, "postgresql", "app", dt.datetime(2026, 1, 1, tzinfo=UTC))
    _with_counts(tmp_path, backup_id, {"public.t": 3})
    fake = _FakePg(monkeypatch, counts={"public.t": 1})
    with pytest.raises(DbopsError, match=r"counts differ from the manifest: public\.t: 1 after restore, "
                                         r"manifest says 3; the database t this run created was dropped"):
        ops.restore("postgresql", {}, str(tmp_path), {"database": "t", "create": True})
    assert ("drop", "t") in fake.calls


def test_when_the_drop_fails_too_the_error_says_to_drop_it_by_hand(tmp_path, monkeypatch):
    bk.fake_backup(tmp_path, "postgresql", "app", dt.datetime(2026, 1, 1, tzinfo=UTC))
    _FakePg(monkeypatch, restore_error=DbopsError("restore backup b into PostgreSQL database t: killed"),
            drop_error=OSError("server closed the connection unexpectedly"))
    with pytest.raises(DbopsError) as failed:
        ops.restore("postgresql", {}, str(tmp_path), {"database": "t", "create": True})
    assert failed.value.msg == (
        "restore backup b into PostgreSQL database t: killed; the database t this run created could not be "
        "dropped (server closed the connection unexpectedly): it is incomplete and must be dropped by hand")
    assert failed.value.details["database_dropped"] is False


def test_a_failed_restore_into_an_existing_database_drops_nothing(tmp_path, monkeypatch):
    bk.fake_backup(tmp_path, "postgresql", "app", dt.datetime(2026, 1, 1, tzinfo=UTC))
    fake = _FakePg(monkeypatch, exists=True, restore_error=DbopsError("restore backup b: failed"))
    with pytest.raises(DbopsError, match=r"^restore backup b: failed$"):
        ops.restore("postgresql", {}, str(tmp_path), {"database": "t", "clean": True})
    assert "drop" not in [c[0] for c in fake.calls]


class _FakeMongoClient:
    def __init__(self, collections):
        self.collections = collections
        self.dropped = []

    def __getitem__(self, name):
        client = self

        class _Db:
            def list_collection_names(self):
                return list(client.collections)
        return _Db()

    def drop_database(self, name):
        self.dropped.append(name)

    def close(self):
        pass


@pytest.mark.parametrize(("collections", "dropped"), [([], ["t"]), (["old"], [])])
def test_a_failed_mongodb_restore_drops_the_database_only_when_this_run_created_it(
        tmp_path, monkeypatch, collections, dropped):
    from ansible_collections.dbops.datastores.plugins.module_utils import _mongodb

    bk.fake_backup(tmp_path, "mongodb", "app", dt.datetime(2026, 1, 1, tzinfo=UTC))
    client = _FakeMongoClient(collections)
    monkeypatch.setattr(_mongodb, "connect", lambda params: client)
    monkeypatch.setattr(ops._mongodb_backup, "choose_tool", lambda *a: None)

    def broken_restore(*args, **kwargs):
        raise DbopsError("restore backup b into MongoDB database t: truncated BSON document")

    monkeypatch.setattr(ops._mongodb_backup, "restore", broken_restore)
    with pytest.raises(DbopsError) as failed:
        ops.restore("mongodb", {}, str(tmp_path), {"database": "t", "clean": True})
    assert client.dropped == dropped
    assert ("this run created was dropped" in failed.value.msg) is bool(dropped)
