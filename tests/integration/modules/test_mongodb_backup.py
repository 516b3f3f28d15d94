"""mongodb_backup, mongodb_restore and backup_verify against the MongoDB-wire test server.

The test server has no mongodump/mongorestore (notes/mongodb-here.md), so these exercise the native
dump and restore; the mongorestore compatibility test runs only where MongoDB Database Tools exist.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import signal
import stat
import subprocess

import pytest

from tests.harness import backups as bk


@pytest.fixture
def root(tmp_path):
    path = tmp_path / "backups"
    path.mkdir(mode=0o700)
    return path


@pytest.fixture
def seeded(mongo_server, mongo_db):
    with mongo_server.client() as client:
        bk.create_mongo_seed(client, mongo_db)
    return mongo_db


def _manifest(root, backup_id):
    return json.loads((root / backup_id / "manifest.json").read_text())


def test_mongodb_backup_four_steps_and_mongodump_layout(ansible, mongo_server, seeded, root):
    args = mongo_server.params(root=str(root), database=seeded, min_interval="1h")

    check = ansible.module("mongodb_backup", args, check=True)
    assert check.get("failed") is not True, check
    assert check["changed"] is True and check["plan"]["tool"] == "native"
    assert bk.entries(root) == []

    first = ansible.module("mongodb_backup", args)
    assert first.get("failed") is not True, first
    assert first["changed"] is True
    backup_id = first["backup"]["id"]

    again = ansible.module("mongodb_backup", args)
    assert again["changed"] is False and again["backup"]["id"] == backup_id, again
    assert bk.entries(root) == [backup_id]

    manifest = _manifest(root, backup_id)
    assert manifest["engine"] == "mongodb" and manifest["format"] == "mongodump" and manifest["gzip"] is True
    assert manifest["tool"]["name"] == "dbops-native"
    assert manifest["views"] == ["daily_platform_summary"]
    with mongo_server.client() as client:
        db = client[seeded]
        expected = {name: db[name].count_documents({}) for name in db.list_collection_names()
                    if name != "daily_platform_summary"}
        uuids = {i["name"]: i["info"]["uuid"] for i in db.list_collections()}
    assert manifest["counts"] == expected
    for entry in manifest["files"]:
        data = (root / backup_id / entry["path"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"] and len(data) == entry["size"]

    # mongodump's layout: <db>/<coll>.bson.gz + <coll>.metadata.json.gz; views have metadata only.
    db_dir = root / backup_id / "dump" / seeded
    names = sorted(os.listdir(db_dir))
    assert "messages.bson.gz" in names and "messages.metadata.json.gz" in names
    assert "daily_platform_summary.metadata.json.gz" in names
    assert "daily_platform_summary.bson.gz" not in names
    meta = json.loads(gzip.decompress((db_dir / "messages.metadata.json.gz").read_bytes()))
    assert list(meta) == ["options", "indexes", "uuid", "collectionName", "type"]
    assert meta["collectionName"] == "messages" and meta["type"] == "collection"
    assert meta["uuid"] == bytes(uuids["messages"]).hex() and len(meta["uuid"]) == 32
    ttl = next(ix for ix in meta["indexes"] if ix["name"] == "ttl_created_at")
    assert ttl["expireAfterSeconds"] == {"$numberInt": str(7 * 86400)}  # canonical extended JSON
    view = json.loads(gzip.decompress((db_dir / "daily_platform_summary.metadata.json.gz").read_bytes()))
    assert view["type"] == "view" and view["options"]["viewOn"] == "messages"
    for dirpath, _dirs, files in os.walk(root / backup_id):
        assert stat.S_IMODE(os.stat(dirpath).st_mode) == 0o700
        for name in files:
            assert stat.S_IMODE(os.stat(os.path.join(dirpath, name)).st_mode) == 0o600


def test_mongodb_restore_four_steps_document_by_document(ansible, mongo_server, seeded, root):
    backup = ansible.module("mongodb_backup", mongo_server.params(root=str(root), database=seeded))
    assert backup.get("failed") is not True, backup
    target = mongo_server.database_name("r")
    args = mongo_server.params(root=str(root), source_database=seeded, database=target)

    check = ansible.module("mongodb_restore", args, check=True)
    assert check.get("failed") is not True, check
    assert check["changed"] is True
    with mongo_server.client() as client:
        assert client[target].list_collection_names() == []

    applied = ansible.module("mongodb_restore", args)
    assert applied["changed"] is True and applied["restored"] is True, applied

    again = ansible.module("mongodb_restore", args)
    assert again["changed"] is False and "not empty" in again["skipped_reason"], again

    with mongo_server.client() as client:
        original = bk.mongo_snapshot(client, seeded)
        assert bk.mongo_snapshot(client, target) == original
        assert original["messages"]["documents"]  # the comparison covered real documents
        client[target].messages.delete_many({"_id": {"$lt": 50}})
        client[target].alert_events.drop_index("severity_status")

    cleaned = ansible.module("mongodb_restore", dict(args, clean=True))
    assert cleaned["changed"] is True, cleaned
    with mongo_server.client() as client:
        assert bk.mongo_snapshot(client, target) == original


def test_uncompressed_round_trip(ansible, mongo_server, seeded, root):
    args = mongo_server.params(root=str(root), database=seeded, gzip=False)
    backup = ansible.module("mongodb_backup", args)
    assert "messages.bson" in os.listdir(root / backup["backup"]["id"] / "dump" / seeded)
    target = mongo_server.database_name("r")
    args = mongo_server.params(root=str(root), backup=backup["backup"]["id"], database=target)
    restore = ansible.module("mongodb_restore", args)
    assert restore["restored"] is True, restore
    with mongo_server.client() as client:
        assert bk.mongo_snapshot(client, target) == bk.mongo_snapshot(client, seeded)


def test_verify_restore_test_and_flipped_byte(ansible, mongo_server, seeded, root):
    backup = ansible.module("mongodb_backup", mongo_server.params(root=str(root), database=seeded))
    backup_id = backup["backup"]["id"]
    verified = ansible.module("backup_verify", {"root": str(root), "engine": "mongodb", "database": seeded,
                                                "restore_test": True, "mongodb": mongo_server.params()})
    assert verified.get("failed") is not True, verified
    record = verified["verification"]
    assert record["ok"] is True and record["counts_ok"] is True and record["rto_s"] > 0
    assert record["restored_counts"] == _manifest(root, backup_id)["counts"]
    with mongo_server.client() as client:
        assert record["scratch_database"] not in client.list_database_names()

    bk.flip_byte(root / backup_id / "dump" / seeded / "messages.bson.gz")
    refused = ansible.module("backup_verify", {"root": str(root), "backup": backup_id})
    assert refused["failed"] is True and "messages.bson.gz: sha256" in refused["msg"]
    target = mongo_server.database_name("r")
    restore = ansible.module("mongodb_restore", mongo_server.params(root=str(root), backup=backup_id,
                                                                    database=target))
    assert restore["failed"] is True and "sha256" in restore["msg"]
    with mongo_server.client() as client:
        assert target not in client.list_database_names()


def test_bad_inputs_fail_clearly_and_leave_nothing(  # noqa: PLR0917 - pytest fixtures
        ansible, mongo_server, mongo_auth_server, seeded, root, tmp_path):
    args = mongo_server.params(root=str(root), database="no_such_db")
    unknown = ansible.module("mongodb_backup", args)
    assert unknown["failed"] is True
    assert "back up MongoDB database no_such_db: the database does not exist" in unknown["msg"]

    args = mongo_server.params(root=str(tmp_path / "nope"), database=seeded)
    missing = ansible.module("mongodb_backup", args)
    assert missing["failed"] is True and "does not exist" in missing["msg"]

    wrong = ansible.module("mongodb_backup", mongo_auth_server.params(root=str(root), database="admin",
                                                                      login_password="wrong-pw"))
    assert wrong["failed"] is True and "authentication failed" in wrong["msg"].lower(), wrong
    assert "wrong-pw" not in json.dumps(wrong)
    assert bk.entries(root) == []

    with mongo_server.client() as client:
        client[seeded].filler.insert_many([{"i": i, "pad": os.urandom(256).hex()} for i in range(6000)])
    with bk.TinyFs(tmp_path / "full", size="1m") as fs:
        full = ansible.module("mongodb_backup", mongo_server.params(root=str(fs.path), database=seeded,
                                                                    gzip=False))
        assert full["failed"] is True, full
        assert "No space left on device" in full["msg"]
        assert bk.entries(fs.path) == []


@pytest.mark.slow
def test_native_dump_killed_mid_run_leaves_partial_that_retention_removes(ansible, mongo_server, mongo_db,
                                                                          root, tmp_path):
    with mongo_server.client() as client:
        for start in range(0, 30000, 5000):
            client[mongo_db].docs.insert_many(
                [{"i": i, "pad": os.urandom(512).hex()} for i in range(start, start + 5000)])
    config = tmp_path / "dbops-backup.json"
    config.write_text(json.dumps({"root": str(root), "mongodb": mongo_server.params(),
                                  "backups": [{"engine": "mongodb", "database": mongo_db,
                                               "tool": "native"}]}))
    proc = subprocess.Popen(bk.cli_command("backup", "--config", str(config)), env=bk.cli_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)

    def streaming():
        partials = [n for n in bk.entries(root) if n.endswith(".partial")]
        return partials and (root / partials[0] / "dump" / mongo_db / "docs.bson.gz").exists()

    bk.wait_for(streaming, what="the native dump to stream documents")
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    leftovers = bk.entries(root)
    assert len(leftovers) == 1 and leftovers[0].endswith(".partial"), leftovers
    assert not (root / leftovers[0] / "manifest.json").exists()
    assert not (root / leftovers[0] / "dump" / mongo_db / "docs.metadata.json.gz").exists()

    info = ansible.module("backup_info", {"root": str(root)})
    assert info["backups"] == [] and len(info["partials"]) == 1
    args = {"root": str(root), "keep_daily": 7, "partial_max_age": "0s"}
    removed = ansible.module("backup_retention", args)
    assert removed["removed_partials"] == leftovers
    assert bk.entries(root) == []


@pytest.mark.skipif(shutil.which("mongorestore") is None,
                    reason="MongoDB Database Tools (mongorestore) are not installed on this machine")
def test_real_mongorestore_reads_the_native_dump(ansible, mongo_server, seeded, root):
    backup = ansible.module("mongodb_backup", mongo_server.params(root=str(root), database=seeded,
                                                                  tool="native"))
    target = mongo_server.database_name("r")
    uri = f"mongodb://{mongo_server.host}:{mongo_server.port}"
    subprocess.run(["mongorestore", f"--uri={uri}", "--gzip", f"--nsFrom={seeded}.*", f"--nsTo={target}.*",
                    f"--dir={root / backup['backup']['id'] / 'dump'}"], check=True)
    with mongo_server.client() as client:
        assert bk.mongo_snapshot(client, target) == bk.mongo_snapshot(client, seeded)


def test_a_failed_restore_drops_the_database_it_created_so_a_rerun_restores(ansible, mongo_server, seeded,
                                                                            root):
    backup = ansible.module("mongodb_backup",
                            mongo_server.params(root=str(root), database=seeded, gzip=False))
    backup_id = backup["backup"]["id"]
    rel = f"dump/{seeded}/messages.bson"
    bson_path = root / backup_id / rel
    manifest_path = root / backup_id / "manifest.json"
    good_bson, good_manifest = bson_path.read_bytes(), manifest_path.read_text()
    target = mongo_server.database_name("r")
    args = mongo_server.params(root=str(root), backup=backup_id, database=target)

    # messages.bson cut mid-document (checksums forged to match): alert_events is restored before
    # the native restore reaches it and fails.
    cut = good_bson[: len(good_bson) // 2 + 7]
    bson_path.write_bytes(cut)
    manifest = json.loads(good_manifest)
    for entry in manifest["files"]:
        if entry["path"] == rel:
            entry.update(size=len(cut), sha256=hashlib.sha256(cut).hexdigest())
    manifest_path.write_text(json.dumps(manifest))
    failed = ansible.module("mongodb_restore", args)
    assert failed["failed"] is True, failed
    assert "truncated BSON document" in failed["msg"]
    assert failed["msg"].endswith(f"; the database {target} this run created was dropped"), failed["msg"]
    with mongo_server.client() as client:
        assert target not in client.list_database_names()

    bson_path.write_bytes(good_bson)
    manifest_path.write_text(good_manifest)
    restored = ansible.module("mongodb_restore", args)
    assert restored.get("failed") is not True, restored
    assert restored["changed"] is True and restored["restored"] is True
    with mongo_server.client() as client:
        assert bk.mongo_snapshot(client, target) == bk.mongo_snapshot(client, seeded)
