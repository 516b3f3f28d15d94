"""The collection's MongoDB modules over TLS, through the shared connection options (tls, tls_ca_file).

The prod and staging inventories require TLS (docs/security.md); every module that talks to
MongoDB must work against a TLS-only server with the CA, and fail clearly without TLS.
"""

from __future__ import annotations

import pytest

from tests.harness import backups as bk


@pytest.fixture
def root(tmp_path):
    path = tmp_path / "backups"
    path.mkdir(mode=0o700)
    return path


SCHEMA = {"collections": [{"name": "events",
                           "indexes": [{"keys": {"createdAt": 1}, "expire_after_seconds": 60}]}]}


def test_schema_health_backup_verify_and_restore_over_tls(ansible, mongo_tls_server, root):
    server = mongo_tls_server
    database = server.database_name("tls")
    args = server.params(database=database, **SCHEMA)

    check = ansible.module("mongodb_schema", args, check=True)
    assert check.get("failed") is not True and check["changed"] is True, check
    applied = ansible.module("mongodb_schema", args)
    assert applied["changed"] is True, applied
    again = ansible.module("mongodb_schema", args)
    assert again["changed"] is False, again
    with server.client() as client:
        assert "createdAt_1" in client[database].events.index_information()
        bk.create_mongo_seed(client, database, docs=20)

    health = ansible.module("mongodb_health_info", server.params(databases=[database]))
    assert health.get("failed") is not True, health
    assert database in {c["database"] for c in health["collections"]}

    backup = ansible.module("mongodb_backup", server.params(root=str(root), database=database))
    assert backup.get("failed") is not True and backup["changed"] is True, backup
    verify = ansible.module("backup_verify", {"root": str(root), "engine": "mongodb", "database": database,
                                              "restore_test": True, "mongodb": server.params()})
    assert verify.get("failed") is not True, verify
    assert verify["verification"]["kind"] == "restore" and verify["verification"]["counts_ok"], verify
    target = server.database_name("tlsr")
    restored = ansible.module("mongodb_restore", server.params(root=str(root), source_database=database,
                                                               database=target))
    assert restored.get("failed") is not True and restored["restored"] is True, restored
    with server.client() as client:
        assert bk.mongo_snapshot(client, target) == bk.mongo_snapshot(client, database)


@pytest.mark.parametrize("module", ["mongodb_schema", "mongodb_health_info", "mongodb_backup"])
def test_plain_connection_to_a_tls_server_fails_clearly(ansible, mongo_tls_server, root, module):
    extra = {"mongodb_schema": {"database": "x", **SCHEMA}, "mongodb_health_info": {},
             "mongodb_backup": {"root": str(root), "database": "x"}}[module]
    result = ansible.module(module, mongo_tls_server.params(tls=False, connect_timeout=3, **extra))
    assert result["failed"] is True
    assert "it may require TLS (set tls: true)" in result["msg"], result
