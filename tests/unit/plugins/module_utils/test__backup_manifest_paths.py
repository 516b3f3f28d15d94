"""Paths read from a manifest stay inside their backup directory and are covered by its checksums.

A backup root is writable by the backup user while restores run as root: a forged manifest must not
make a restore read a file elsewhere on the host (issue: restore trusted ``manifest["payload"]``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os

import pytest

from ansible_collections.dbops.datastores.plugins.module_utils import _backup_catalog as catalog
from ansible_collections.dbops.datastores.plugins.module_utils import _mongodb_backup as md
from ansible_collections.dbops.datastores.plugins.module_utils import _pg_backup as pgb
from ansible_collections.dbops.datastores.plugins.module_utils._errors import DbopsError
from tests.harness import backups as bk

UTC = dt.timezone.utc


def _forge(root, payload, fmt="plain", extra_files=None):
    """A complete-looking backup whose manifest points ``payload`` wherever it likes."""
    backup_id = bk.fake_backup(root, "postgresql", "app", dt.datetime(2026, 1, 1, tzinfo=UTC))
    path = os.path.join(str(root), backup_id)
    manifest = catalog.read_json(os.path.join(path, catalog.MANIFEST))
    manifest.update(format=fmt, payload=payload)
    for rel, data in (extra_files or {}).items():
        os.makedirs(os.path.dirname(os.path.join(path, rel)), exist_ok=True)
        with open(os.path.join(path, rel), "wb") as handle:
            handle.write(data)
        manifest["files"].append({"path": rel, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()})
    with open(os.path.join(path, catalog.MANIFEST), "w") as handle:
        json.dump(manifest, handle)
    return catalog.scan(str(root)).get(backup_id)


@pytest.fixture
def outside(tmp_path):
    target = tmp_path / "outside.sql"
    target.write_text("CREATE ROLE evil SUPERUSER;\n")
    root = tmp_path / "root"
    root.mkdir()
    return root, target


@pytest.mark.parametrize("payload_of", [
    str,                                            # absolute path outside the root
    lambda target: "../../outside.sql",             # climbs out
    lambda target: "./database.dump/../../../outside.sql",
])
def test_pg_restore_refuses_a_payload_outside_the_backup(outside, payload_of):
    root, target = outside
    backup = _forge(root, payload_of(target), fmt="custom")
    assert catalog.verify_files(backup) == []  # the checksums alone do not notice
    with pytest.raises(DbopsError, match="payload of backup"):
        pgb.restore_command(backup.manifest, backup.path, "target", {}, "pg_restore")
    with pytest.raises(DbopsError, match="payload of backup"):
        pgb.run_restore({}, backup.manifest, backup.path, "target", options={"bin_dir": "/bin"},
                        server_major=None)


def test_pg_restore_refuses_a_payload_behind_a_symlink(outside):
    root, target = outside
    backup = _forge(root, "link.sql")
    os.symlink(target, os.path.join(backup.path, "link.sql"))
    with pytest.raises(DbopsError, match="symlink"):
        pgb.run_restore({}, backup.manifest, backup.path, "target", options={"bin_dir": "/bin"},
                        server_major=None)


def test_pg_restore_refuses_a_payload_not_covered_by_checksums(outside):
    root, _target = outside
    backup = _forge(root, "database.dump")
    with open(os.path.join(backup.path, "unlisted.sql"), "w") as handle:
        handle.write("SELECT 1;")
    backup.manifest["payload"] = "unlisted.sql"
    with pytest.raises(DbopsError, match="not covered by the manifest's checksums"):
        pgb.restore_command(backup.manifest, backup.path, "target", {}, "psql")


def test_mongodb_restore_refuses_a_dump_directory_outside_the_backup(outside, tmp_path):
    root, _target = outside
    elsewhere = tmp_path / "elsewhere" / "db"
    elsewhere.mkdir(parents=True)
    (elsewhere / "c.metadata.json").write_text('{"options": {}, "indexes": [], "type": "collection"}')
    backup = _forge(root, "../../elsewhere/db", fmt="mongodump")
    with pytest.raises(DbopsError, match="payload of backup"):
        md.restore({}, backup.manifest, backup.path, "target", options={"tool": "native"}, client=None)


def test_valid_payloads_resolve(outside):
    root, _target = outside
    backup = _forge(root, "dump/app", fmt="mongodump",
                    extra_files={"dump/app/c.bson": b"", "dump/app/c.metadata.json": b"{}"})
    expected = os.path.join(backup.path, "dump", "app")
    assert catalog.manifest_path(backup.path, backup.manifest, "dump/app") == expected
    assert catalog.manifest_path(backup.path, backup.manifest, "database.dump").endswith("/database.dump")
    for bad in (None, "", 5, "dump//app", "dump/app/", "a\0b", "/etc/passwd"):
        with pytest.raises(DbopsError, match="payload of backup"):
            catalog.manifest_path(backup.path, backup.manifest, bad)
