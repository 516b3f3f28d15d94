"""Pure helpers of the native MongoDB dump: names, BSON framing, mongodump metadata."""

from __future__ import annotations

import gzip
import json
import uuid

import bson
import pytest
from bson.binary import Binary

from ansible_collections.dbops.datastores.plugins.module_utils import _mongodb_backup as md
from ansible_collections.dbops.datastores.plugins.module_utils._errors import DbopsError


@pytest.mark.parametrize("name", ["messages", "a.b", "we/ird name%", "日志", "x$y"])
def test_escape_round_trip(name):
    escaped = md.escape_name(name)
    assert "/" not in escaped and " " not in escaped
    assert md.unescape_name(escaped) == name


def test_count_and_iterate_bson(tmp_path):
    docs = [bson.encode({"_id": i, "v": "x" * i}) for i in range(5)]
    assert md.count_bson_documents(b"".join(docs)) == 5
    path = tmp_path / "c.bson.gz"
    path.write_bytes(gzip.compress(b"".join(docs)))
    assert list(md.iter_bson_file(str(path), True)) == docs
    (tmp_path / "t.bson").write_bytes(b"".join(docs)[:-3])
    with pytest.raises(DbopsError, match="truncated BSON document"):
        list(md.iter_bson_file(str(tmp_path / "t.bson"), False))


def test_metadata_matches_mongodump_format():
    uid = uuid.UUID("12345678-1234-5678-1234-567812345678")
    info = {"name": "events", "type": "collection", "options": {"capped": True, "size": 4096},
            "info": {"readOnly": False, "uuid": Binary(uid.bytes, 4)}}
    indexes = [{"v": 2, "key": {"_id": 1}, "name": "_id_", "ns": "app.events"},
               {"v": 2, "key": {"ts": 1}, "name": "ts_1", "expireAfterSeconds": 3600}]
    meta = json.loads(md.metadata_json(md.metadata_document(info, indexes)))
    assert list(meta) == ["options", "indexes", "uuid", "collectionName", "type"]
    assert meta["uuid"] == uid.hex
    assert meta["options"] == {"capped": True, "size": {"$numberInt": "4096"}}
    assert meta["indexes"][1] == {"v": {"$numberInt": "2"}, "key": {"ts": {"$numberInt": "1"}},
                                  "name": "ts_1", "expireAfterSeconds": {"$numberInt": "3600"}}
    assert "ns" not in meta["indexes"][0]


def test_choose_tool(tmp_path):
    assert md.choose_tool("native", None) is None
    assert md.choose_tool("auto", str(tmp_path / "missing")) is None
    with pytest.raises(DbopsError, match="find mongodump: not installed"):
        md.choose_tool("mongodump", str(tmp_path / "missing"))
