"""The backup catalog: durations, recognising backups, writing them atomically, verification, removal."""

from __future__ import annotations

import datetime as dt
import json
import os

import pytest

from ansible_collections.dbops.datastores.plugins.module_utils import _backup_catalog as catalog
from ansible_collections.dbops.datastores.plugins.module_utils._errors import DbopsError
from tests.harness import backups as bk

UTC = dt.timezone.utc


@pytest.mark.parametrize(("text", "seconds"), [
    ("90", 90), (45, 45), ("30s", 30), ("15m", 900), ("24h", 86400), ("7d", 604800), ("2w", 1209600),
    ("1d12h", 129600), ("1h 30m", 5400), ("0s", 0),
])
def test_parse_duration(text, seconds):
    assert catalog.parse_duration(text).total_seconds() == seconds


@pytest.mark.parametrize("text", ["", "soon", "5x", "1d garbage", "-5", "h1", "99999999999999999999d",
                                  10**30, "1" * 400, float("inf"), float("nan"), True, None, [1]])
def test_parse_duration_rejects(text):
    with pytest.raises(DbopsError, match="parse duration"):
        catalog.parse_duration(text)


def test_scan_recognises_backups_and_ignores_everything_else(tmp_path):
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    good = bk.fake_backup(root, "postgresql", "app", dt.datetime(2026, 1, 1, tzinfo=UTC))
    (root / "readme.txt").write_text("x")
    (root / "random-dir").mkdir()
    (root / "bad.partial").mkdir()  # no marker: not ours
    (root / "broken").mkdir()
    (root / "broken" / "manifest.json").write_text("{not json")
    renamed = bk.fake_backup(root, "mongodb", "app", dt.datetime(2026, 1, 2, tzinfo=UTC))
    os.rename(root / renamed, root / "renamed")  # id no longer matches the directory
    linked = bk.fake_backup(outside, "postgresql", "app", dt.datetime(2026, 1, 3, tzinfo=UTC))
    os.symlink(outside / linked, root / linked)
    partial = bk.fake_partial(root, "pg-app-x", dt.datetime(2026, 1, 4, tzinfo=UTC), pid=os.getpid())

    cat = catalog.scan(str(root))
    assert [b.id for b in cat.backups] == [good]
    assert [p.name for p in cat.partials] == [partial]
    assert cat.partials[0].is_active() is True
    assert sorted(cat.ignored) == sorted(["readme.txt", "random-dir", "bad.partial", "broken", "renamed",
                                          linked])
    assert cat.latest("postgresql", "app").id == good
    assert cat.latest("mongodb") is None


def test_check_root_errors(tmp_path):
    with pytest.raises(DbopsError, match="does not exist"):
        catalog.check_root(str(tmp_path / "missing"))
    (tmp_path / "file").write_text("x")
    with pytest.raises(DbopsError, match="not a directory"):
        catalog.check_root(str(tmp_path / "file"))


def test_writer_publishes_with_manifest_written_last(tmp_path):
    with catalog.BackupWriter(str(tmp_path), "postgresql", "app db") as writer:
        assert writer.id.startswith("pg-app_db-")
        assert os.path.isdir(writer.partial)
        (tmp_path / (writer.id + ".partial") / "sub").mkdir()
        (tmp_path / (writer.id + ".partial") / "sub" / "data.bin").write_bytes(b"abc")
        assert catalog.scan(str(tmp_path)).backups == []  # not complete yet
        manifest = writer.publish({"format": "custom", "counts": {"public.t": 3}})
    assert manifest["files"] == [{"path": "sub/data.bin", "size": 3, "sha256":
                                  "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"}]
    cat = catalog.scan(str(tmp_path))
    assert [b.id for b in cat.backups] == [writer.id]
    assert catalog.verify_files(cat.backups[0]) == []
    assert not [n for n in os.listdir(tmp_path / writer.id) if n.startswith(".tmp-")]
    assert oct(os.stat(tmp_path / writer.id / "sub" / "data.bin").st_mode & 0o777) == "0o600"


def test_writer_removes_partial_on_error(tmp_path):
    with pytest.raises(RuntimeError), catalog.BackupWriter(str(tmp_path), "mongodb", "app") as writer:
        (tmp_path / (writer.id + ".partial") / "x").write_text("half")
        raise RuntimeError("dump failed")
    assert os.listdir(tmp_path) == []


def test_ids_do_not_collide(tmp_path):
    when = dt.datetime(2026, 1, 1, tzinfo=UTC)
    first = catalog.new_backup_id(str(tmp_path), "postgresql", "app", when)
    (tmp_path / first).mkdir()
    assert catalog.new_backup_id(str(tmp_path), "postgresql", "app", when) == first + "-2"


def test_verify_files_reports_changes(tmp_path):
    backup_id = bk.fake_backup(tmp_path, "postgresql", "app", dt.datetime(2026, 1, 1, tzinfo=UTC))
    backup = catalog.scan(str(tmp_path)).get(backup_id)
    bk.flip_byte(tmp_path / backup_id / "database.dump")
    (tmp_path / backup_id / "extra.txt").write_text("?")
    problems = catalog.verify_files(backup)
    assert problems[0] == "extra.txt: not listed in the manifest"
    assert problems[1].startswith("database.dump: sha256 ")
    os.unlink(tmp_path / backup_id / "database.dump")
    assert "database.dump: missing" in catalog.verify_files(backup)
    with pytest.raises(DbopsError, match=f"verify backup {backup_id}: 2 file"):
        catalog.require_intact(backup)


def test_verification_records(tmp_path):
    backup_id = bk.fake_backup(tmp_path, "postgresql", "app", dt.datetime(2026, 1, 1, tzinfo=UTC))
    backup = catalog.scan(str(tmp_path)).get(backup_id)
    assert catalog.verification_state(backup)["state"] == "unverified"
    t1, t2 = "2026-01-02T00:00:00.000000Z", "2026-01-03T00:00:00.000000Z"
    catalog.record_verification(backup, {"time": t1, "ok": True})
    catalog.record_verification(backup, {"time": t2, "ok": False})
    assert catalog.verification_state(backup) == {"state": "failed", "last": {"time": t2, "ok": False},
                                                  "malformed": 0}
    assert catalog.verify_files(backup) == []  # records are not payload
    assert json.loads((tmp_path / backup_id / "verifications.json").read_text())[0]["time"] == t1


def test_remove_entry_never_follows_links_or_leaves_root(tmp_path):
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    target = bk.fake_backup(outside, "postgresql", "app", dt.datetime(2026, 1, 1, tzinfo=UTC))
    os.symlink(outside / target, root / "link")
    with pytest.raises(DbopsError, match="not a backup directory"):
        catalog.remove_entry(str(root), str(root / "link"))
    with pytest.raises(DbopsError, match="not a backup directory"):
        catalog.remove_entry(str(root), str(outside / target))
    assert (outside / target / "manifest.json").exists()
    mine = bk.fake_backup(root, "postgresql", "app", dt.datetime(2026, 1, 2, tzinfo=UTC))
    catalog.remove_entry(str(root), str(root / mine))
    assert sorted(os.listdir(root)) == ["link"]


def test_readers_lock_never_follows_a_planted_symlink(tmp_path):
    root, victim = tmp_path / "root", tmp_path / "victim"
    root.mkdir()
    os.symlink(victim, root / catalog.READERS_LOCK)
    for exclusive in (False, True):
        with pytest.raises(DbopsError, match="symlink"), catalog.readers_lock(str(root), exclusive=exclusive):
            pass
    assert not victim.exists()


def test_readers_lock_belongs_to_the_root_owner_whoever_creates_it(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("needs root to create the lock for another user")
    root = tmp_path / "root"
    root.mkdir()
    os.chown(root, 65534, 65534)
    with catalog.readers_lock(str(root), exclusive=False):
        pass
    st = os.lstat(root / catalog.READERS_LOCK)
    assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (65534, 65534, 0o600)
    # A lock left behind by root (earlier versions) is handed back to the root's owner.
    os.chown(root / catalog.READERS_LOCK, 0, 0)
    os.chmod(root / catalog.READERS_LOCK, 0o644)
    with catalog.readers_lock(str(root), exclusive=False):
        pass
    st = os.lstat(root / catalog.READERS_LOCK)
    assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (65534, 65534, 0o600)


def test_two_writers_racing_to_one_id_both_keep_their_directories(tmp_path, monkeypatch):
    """Both writers choose their id in the same second; the loser must take the next id and never
    remove the winner's in-progress partial directory."""
    fixed = dt.datetime(2026, 1, 1, 12, tzinfo=UTC)
    monkeypatch.setattr(catalog, "utcnow", lambda: fixed)
    first = catalog.BackupWriter(str(tmp_path), "postgresql", "app")
    second = catalog.BackupWriter(str(tmp_path), "postgresql", "app")  # same moment, nothing on disk yet
    with first:
        (tmp_path / (first.id + ".partial") / "database.dump").write_bytes(b"PGDMP first")
        with second:
            assert second.id != first.id
            assert os.path.isdir(first.partial), "the second writer removed the first one's directory"
            (tmp_path / (second.id + ".partial") / "database.dump").write_bytes(b"PGDMP second")
            second.publish({"format": "custom"})
        assert (tmp_path / (first.id + ".partial") / "database.dump").read_bytes() == b"PGDMP first"
        first.publish({"format": "custom"})
    assert sorted(b.id for b in catalog.scan(str(tmp_path)).backups) == sorted([first.id, second.id])


def test_writers_in_threads_get_distinct_directories(tmp_path, monkeypatch):
    import threading

    fixed = dt.datetime(2026, 1, 1, 12, tzinfo=UTC)
    monkeypatch.setattr(catalog, "utcnow", lambda: fixed)
    barrier = threading.Barrier(8, timeout=30)
    ids, errors = [], []

    def write(n):
        try:
            writer = catalog.BackupWriter(str(tmp_path), "mongodb", "app")
            barrier.wait()
            with writer:
                (tmp_path / (writer.id + ".partial") / "data").write_bytes(str(n).encode())
                barrier.wait()
                writer.publish({"format": "mongodump"})
                ids.append(writer.id)
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(set(ids)) == 8
    assert len(catalog.scan(str(tmp_path)).backups) == 8


def test_publish_fsyncs_every_payload_file_before_the_manifest(tmp_path, monkeypatch):
    """mongodump writes without fsync: the writer must make the payload durable before the manifest
    marks the backup complete."""
    synced, real_fsync = set(), os.fsync

    def recording_fsync(fd):
        st = os.fstat(fd)
        manifest_written = any((tmp_path / n / catalog.MANIFEST).exists() for n in os.listdir(tmp_path))
        if not manifest_written:
            synced.add(st.st_ino)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    with catalog.BackupWriter(str(tmp_path), "mongodb", "app") as writer:
        dump = tmp_path / (writer.id + ".partial") / "dump" / "app"
        dump.mkdir(parents=True)
        for name in ("a.bson", "a.metadata.json"):
            (dump / name).write_bytes(b"x" * 10)  # as an external tool writes: no fsync
        inodes = {os.stat(dump / n).st_ino for n in os.listdir(dump)} | {os.stat(dump).st_ino}
        writer.publish({"format": "mongodump"})
    assert inodes <= synced


def test_a_verification_recorded_by_root_stays_readable_by_the_backup_owner(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("needs root to record for another user")
    backup_id = bk.fake_backup(tmp_path, "postgresql", "app", dt.datetime(2026, 1, 1, tzinfo=UTC))
    os.chown(tmp_path / backup_id, 65534, 65534)
    backup = catalog.scan(str(tmp_path)).get(backup_id)
    catalog.record_verification(backup, {"time": "2026-01-01T00:00:00Z", "ok": True, "kind": "files"})
    st = os.lstat(tmp_path / backup_id / catalog.VERIFICATIONS)
    assert (st.st_uid, st.st_gid) == (65534, 65534)


# --------------------------------------------------------------------------- untrusted manifests and records

def _two_databases_one_malformed(root, change):
    """A good backup of pg/app and one of pg/bad whose manifest ``change`` edits in place."""
    now = dt.datetime.now(UTC)
    good = bk.fake_backup(root, "postgresql", "app", now - dt.timedelta(hours=1))
    bad = bk.fake_backup(root, "postgresql", "bad", now - dt.timedelta(hours=2))
    path = root / bad / "manifest.json"
    manifest = json.loads(path.read_text())
    change(manifest)
    path.write_text(json.dumps(manifest))
    return good, bad


@pytest.mark.parametrize(("change", "reason"), [
    (lambda m: m.update(started_at="not a time"), "started_at"),
    (lambda m: m.update(started_at="2026-01-01T02:00:00"), "started_at"),  # no timezone
    (lambda m: m.update(started_at="0001-01-01T00:00:00+00:00"), "started_at"),
    (lambda m: m.update(started_at=1767225600), "started_at"),
    (lambda m: m.update(files=["data"]), "files"),
    (lambda m: m.update(files={"database.dump": 1}), "files"),
    (lambda m: m["files"][0].update(size="12"), "files"),
    (lambda m: m["files"][0].update(size=-1), "files"),
    (lambda m: m["files"][0].update(size=True), "files"),
    (lambda m: m["files"][0].pop("sha256"), "files"),
    (lambda m: m["files"][0].update(path=""), "files"),
    (lambda m: m["files"][0].update(path=["database.dump"]), "files"),
    (lambda m: m.update(tool="pg_dump"), "tool"),
    (lambda m: m.update(counts=["public.t"]), "counts"),
    (lambda m: m.update(counts={"public.t": "3"}), "counts"),
    (lambda m: m.update(format=None), "format"),
    (lambda m: m.update(database=""), "database"),
    (lambda m: m.update(engine="mysql"), "engine"),
    (lambda m: m.update(kind="other"), "kind"),
    (lambda m: m.update(id="pg-other"), "id"),
])
def test_a_malformed_manifest_is_ignored_with_its_reason_and_crashes_nothing(tmp_path, change, reason):
    from ansible_collections.dbops.datastores.plugins.module_utils import _backup_ops as ops

    good, bad = _two_databases_one_malformed(tmp_path, change)
    cat = catalog.scan(str(tmp_path))
    assert [b.id for b in cat.backups] == [good]
    assert cat.ignored == [bad]
    assert reason in cat.ignored_reasons[bad]
    info = ops.info(str(tmp_path), max_age="24h")
    assert info["stale"] is False and [b["id"] for b in info["backups"]] == [good]
    assert info["ignored"] == [bad] and reason in info["ignored_reasons"][bad]
    retention = ops.apply_retention(str(tmp_path), {"keep_last": 1})
    assert retention["keep"] == [good] and retention["ignored"] == [bad]
    assert bk.entries(tmp_path) == sorted([good, bad])  # an ignored entry is never removed
    assert ops.verify(str(tmp_path), database="app")["ok"] is True
    with pytest.raises(DbopsError, match="there is no complete backup of database bad"):
        ops.verify(str(tmp_path), database="bad")


def test_every_ignored_entry_has_a_reason(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "empty").mkdir()
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "manifest.json").write_text("{not json")
    (tmp_path / "list").mkdir()
    (tmp_path / "list" / "manifest.json").write_text("[]")
    (tmp_path / "deep").mkdir()
    (tmp_path / "deep" / "manifest.json").write_text("[" * 100000 + "]" * 100000)  # RecursionError in json
    cat = catalog.scan(str(tmp_path))
    assert sorted(cat.ignored_reasons) == sorted(cat.ignored) == ["broken", "deep", "empty", "list",
                                                                  "notes.txt"]
    assert "not valid JSON" in cat.ignored_reasons["broken"]
    assert "not valid JSON" in cat.ignored_reasons["deep"]
    assert "not a JSON object" in cat.ignored_reasons["list"]


@pytest.mark.parametrize("records", [
    ["x"], [1, None, []], [{"ok": True}], [{"time": "not a time", "ok": True}],
    [{"time": "2026-01-01T00:00:00", "ok": True}], [{"time": 5, "ok": True}],
    [{"time": "2026-01-01T00:00:00Z", "ok": "yes"}],
    [{"time": "2026-01-01T00:00:00Z", "ok": True, "kind": 3}],
])
def test_malformed_verification_records_are_skipped_and_counted(tmp_path, records):
    from ansible_collections.dbops.datastores.plugins.module_utils import _backup_ops as ops

    now = dt.datetime.now(UTC)
    good = bk.fake_backup(tmp_path, "postgresql", "app", now - dt.timedelta(hours=1))
    other = bk.fake_backup(tmp_path, "postgresql", "other", now - dt.timedelta(hours=1))
    valid = {"time": "2026-01-01T00:00:00.000000Z", "kind": "files", "ok": True}
    (tmp_path / good / catalog.VERIFICATIONS).write_text(json.dumps([valid, *records]))
    (tmp_path / other / catalog.VERIFICATIONS).write_text(json.dumps(records))
    cat = catalog.scan(str(tmp_path))
    assert cat.get(good).verifications() == [valid]
    assert catalog.verification_state(cat.get(good)) == {"state": "verified", "last": valid,
                                                         "malformed": len(records)}
    assert catalog.verification_state(cat.get(other))["state"] == "unverified"
    info = ops.info(str(tmp_path))
    malformed = {b["id"]: b["malformed_verifications"] for b in info["backups"]}
    assert malformed == {good: len(records), other: len(records)}
    assert ops.verify(str(tmp_path), database="app", min_interval="1h")["changed"] is True
    assert ops.verify(str(tmp_path), database="other", min_interval="1h")["changed"] is True


def test_verification_records_nested_too_deep_are_one_malformed_record(tmp_path):
    backup_id = bk.fake_backup(tmp_path, "postgresql", "app", dt.datetime(2026, 1, 1, tzinfo=UTC))
    (tmp_path / backup_id / catalog.VERIFICATIONS).write_text("[" * 100000 + "]" * 100000)
    state = catalog.verification_state(catalog.scan(str(tmp_path)).get(backup_id))
    assert state == {"state": "unverified", "last": None, "malformed": 1}


@pytest.mark.parametrize("started_at", ["0001-01-01T00:00:00+01:00", "soon", None, ["x"]])
def test_a_partial_whose_marker_time_is_malformed_uses_the_marker_mtime(tmp_path, started_at):
    from ansible_collections.dbops.datastores.plugins.module_utils import _backup_ops as ops

    name = bk.fake_partial(tmp_path, "pg-app-x", dt.datetime(2026, 1, 1, tzinfo=UTC), pid=bk.dead_pid())
    marker_path = tmp_path / name / catalog.MARKER
    marker = json.loads(marker_path.read_text())
    marker["started_at"] = started_at
    marker_path.write_text(json.dumps(marker))
    mtime = dt.datetime.fromtimestamp(os.lstat(marker_path).st_mtime, UTC)
    assert catalog.scan(str(tmp_path)).partials[0].started_at == mtime
    assert ops.info(str(tmp_path))["partials"][0]["name"] == name
    assert ops.apply_retention(str(tmp_path), {"keep_last": 1}, check=True)["stale_partials"] == []
