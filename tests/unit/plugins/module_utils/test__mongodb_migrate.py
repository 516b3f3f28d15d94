"""MongoDB migration engine: documents, history rows, resume bookkeeping and the lock document."""

from __future__ import annotations

import datetime

import pytest
from bson import ObjectId

from ansible_collections.dbops.datastores.plugins.module_utils import _migrations as core
from ansible_collections.dbops.datastores.plugins.module_utils import _mongodb_migrate as mm
from ansible_collections.dbops.datastores.plugins.module_utils._errors import DbopsError

# --- documents -----------------------------------------------------------------------------


def test_yaml_document_with_up_down_and_transaction():
    doc = mm.parse_document(
        "transaction: true\nup:\n  - {insert: a, documents: [{x: 1}]}\ndown:\n  - {delete: a, deletes: []}\n",
        "V1__a.yml",
    )
    assert doc.transaction is True
    assert doc.up == [{"insert": "a", "documents": [{"x": 1}]}]
    assert doc.down == [{"delete": "a", "deletes": []}]


def test_yaml_12_booleans_keep_on_and_off_as_strings():
    doc = mm.parse_document(
        "up:\n  - aggregate: a\n    pipeline: [{$merge: {into: b, on: _id}}]\n    cursor: {}\n"
        "  - {collMod: a, validationLevel: off}\n",
        "V1__a.yml",
    )
    assert doc.up[0]["pipeline"][0]["$merge"] == {"into": "b", "on": "_id"}
    assert doc.up[1]["validationLevel"] == "off"


def test_extended_json_becomes_bson_values():
    doc = mm.parse_document(
        '{"up": [{"insert": "a", "documents": [{"_id": {"$oid": "5f1d7f1d7f1d7f1d7f1d7f1d"},'
        ' "at": {"$date": "2026-01-02T03:04:05Z"}}]}]}',
        "V1__a.json",
    )
    inserted = doc.up[0]["documents"][0]
    assert inserted["_id"] == ObjectId("5f1d7f1d7f1d7f1d7f1d7f1d")
    assert inserted["at"] == datetime.datetime(2026, 1, 2, 3, 4, 5)  # BSON dates are UTC


def test_yaml_timestamps_stay_dates():
    doc = mm.parse_document(
        "up:\n  - {insert: a, documents: [{at: 2026-01-02T03:04:05Z, day: 2026-01-02}]}\n", "V1__a.yml"
    )
    inserted = doc.up[0]["documents"][0]
    assert inserted["at"] == datetime.datetime(2026, 1, 2, 3, 4, 5)
    assert inserted["day"] == datetime.datetime(2026, 1, 2)


def test_bare_list_is_the_up_section_and_undo_file_uses_down():
    assert mm.parse_document("- {ping: 1}\n", "V1__a.yml").up == [{"ping": 1}]
    undo = mm.parse_document("down:\n  - {drop: a}\n", "U1__a.yml")
    assert undo.down == [{"drop": "a"}]
    assert mm.parse_document("- {drop: a}\n", "sub/U1__a.yml").down == [{"drop": "a"}]


@pytest.mark.parametrize(
    ("text", "script", "message"),
    [
        ("up: [{insert: a\n", "V1__a.yml", "read migration V1__a.yml: malformed YAML"),
        ('{"up": [', "V1__a.json", "read migration V1__a.json: malformed JSON"),
        ("up: [{insert: a}]\nupp: []\n", "V1__a.yml", "unknown keys upp"),
        ("up: {insert: a}\n", "V1__a.yml", "up must be a list of commands"),
        ("up: [[insert, a]]\n", "V1__a.yml", "up command 1 must be a mapping"),
        ("up: [{$match: {}}]\n", "V1__a.yml", "does not start with a command name"),
        ("up: []\n", "V1__a.yml", "up: must list at least one command"),
        ("up: [{ping: 1}]\n", "U1__a.yml", None),
        ("transaction: yes\nup: [{ping: 1}]\n", "V1__a.yml", "transaction must be true or false"),
        ("42\n", "V1__a.yml", "expected a mapping"),
    ],
)
def test_bad_documents_are_refused(text, script, message):
    if message is None:  # an undo file may keep its commands under up:
        assert mm.parse_document(text, script).down == [{"ping": 1}]
        return
    with pytest.raises(DbopsError) as err:
        mm.parse_document(text, script)
    assert message in err.value.msg


def test_command_checksum_is_stable_and_order_sensitive():
    a = mm.command_checksum({"insert": "a", "documents": [{"x": 1, "y": 2}]})
    assert a == mm.command_checksum({"insert": "a", "documents": [{"x": 1, "y": 2}]})
    assert a != mm.command_checksum({"insert": "a", "documents": [{"y": 2, "x": 1}]})


# --- history -------------------------------------------------------------------------------


def _doc(rank, version, success=True, **extra):
    return {
        "rank": rank,
        "type": "versioned",
        "version": version,
        "description": f"m{version}",
        "script": f"V{version}__m.yml",
        "checksum": "c",
        "success": success,
        **extra,
    }


def test_resumable_failures_are_kept_from_the_planner_unless_repairing():
    history = mm.History(
        [
            _doc(1, "1"),
            _doc(2, "2", success=False, commands_done=1, command_checksums=["x"]),
            _doc(3, "3", success=False),
        ]
    )
    assert [r.version for r in history.rows(include_resumable=False)] == ["1", "3"]
    assert [r.version for r in history.rows(include_resumable=True)] == ["1", "2", "3"]
    assert list(history.resumable()) == [mm.resume_key("versioned", "2", "")]
    assert mm.resume_key("versioned", "002", "") == mm.resume_key("versioned", "2.0", "")
    assert history.next_rank == 4


def test_history_row_conversion():
    when = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
    row = mm.history_row({**_doc(1, "1"), "installed_on": when, "execution_ms": 5})
    assert row == core.HistoryRow(
        1, "versioned", "1", "m1", "V1__m.yml", "c", True, None, when.isoformat(), 5
    )


def test_resume_refuses_when_completed_commands_changed():
    cmds = [{"insert": "a", "documents": [{"x": 1}]}, {"insert": "b", "documents": []}]
    step = core.Step("apply", core.parse_version("1"), "m", "V1__m.yml", "c")
    runner = mm.Runner.__new__(mm.Runner)
    same = {"commands_done": 1, "command_checksums": [mm.command_checksum(cmds[0])]}
    assert runner._resume_from(step, cmds, same) == 1
    assert runner._resume_from(step, cmds, None) == 0
    changed = {"commands_done": 1, "command_checksums": ["0" * 64]}
    with pytest.raises(DbopsError, match="those commands have changed since"):
        runner._resume_from(step, cmds, changed)


def test_write_errors_in_an_ok_reply_are_failures():
    mm.check_write_reply({"ok": 1, "n": 1}, "insert a")
    with pytest.raises(RuntimeError, match=r"insert a: E11000 duplicate key \(code 11000, 1 write error"):
        mm.check_write_reply(
            {"ok": 1, "writeErrors": [{"code": 11000, "errmsg": "E11000 duplicate key"}]}, "insert a"
        )


# --- lock ----------------------------------------------------------------------------------


class DuplicateKey(Exception):
    pass


class FakeLockCollection:
    """Just the operations MigrationLock uses, with mongod's semantics for one document."""

    def __init__(self):
        self.docs = {}

    def create_index(self, *args, **kwargs):
        return "expires_at_ttl"

    def insert_one(self, doc):
        if doc["_id"] in self.docs:
            raise DuplicateKey
        self.docs[doc["_id"]] = dict(doc)

    def find_one(self, query):
        return self.docs.get(query["_id"])

    def find_one_and_update(self, query, update):
        doc = self.docs.get(query["_id"])
        if doc is None or not doc["expires_at"] < query["expires_at"]["$lt"]:
            return None
        previous = dict(doc)
        doc.update(update["$set"])
        return previous

    def update_one(self, query, update):
        doc = self.docs.get(query["_id"])
        matched = doc is not None and doc["owner"] == query["owner"]
        if matched:
            doc.update(update["$set"])
        return type("Result", (), {"matched_count": int(matched)})()

    def delete_one(self, query):
        doc = self.docs.get(query["_id"])
        if doc is not None and doc["owner"] == query["owner"]:
            del self.docs[query["_id"]]


class Clock:
    def __init__(self):
        self.now = datetime.datetime(2026, 11, 24, 12, 0, tzinfo=datetime.timezone.utc)

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += datetime.timedelta(seconds=seconds)


def lock(coll, owner, clock, ttl=30):
    return mm.MigrationLock(
        coll, "hist", owner, ttl, duplicate_key_error=DuplicateKey, clock=clock, sleep=clock.sleep
    )


def test_second_runner_cannot_take_a_live_lock_but_takes_an_expired_one():
    coll, clock = FakeLockCollection(), Clock()
    first, second = lock(coll, "a", clock), lock(coll, "b", clock)
    assert first.try_acquire() is True
    assert coll.docs["hist"]["expires_at"] == clock.now + datetime.timedelta(seconds=30)
    assert second.try_acquire() is False
    clock.now += datetime.timedelta(seconds=20)
    assert first.heartbeat() is True  # renewed: expires 30 s after this beat
    clock.now += datetime.timedelta(seconds=20)
    assert second.try_acquire() is False
    clock.now += datetime.timedelta(seconds=11)  # no beat for 31 s: the holder is gone
    assert second.try_acquire() is True
    assert second.taken_over_from["owner"] == "a"
    assert coll.docs["hist"]["owner"] == "b"
    # the old holder notices at its next heartbeat and stops before its next command
    assert first.heartbeat() is False
    with pytest.raises(DbopsError, match="taken over by another runner"):
        first.check()
    first.release()
    assert coll.docs["hist"]["owner"] == "b", "releasing must not delete another owner's lock"


def test_acquire_times_out_naming_the_holder(monkeypatch):
    coll, clock = FakeLockCollection(), Clock()
    assert lock(coll, "holder-1", clock, ttl=600).try_acquire()
    waiting = lock(coll, "b", clock, ttl=600)
    with pytest.raises(DbopsError) as err:
        waiting.acquire(timeout=0)
    assert err.value.msg.startswith(
        "acquire migration lock hist: held by holder-1 (last heartbeat 2026-11-24T12:00"
    )
    assert "lock_timeout" in err.value.msg


def test_placeholders_substitute_in_string_values_keeping_whole_value_types():
    cmds = [
        {
            "insert": "${coll}",
            "documents": [
                {"days": "${days}", "note": "keep ${days} days in ${coll}", "literal": "$${not_a_placeholder"}
            ],
        }
    ]
    out = mm.substitute(cmds, {"coll": "archive", "days": 30}, "V1__a.yml")
    assert out == [
        {
            "insert": "archive",
            "documents": [{"days": 30, "note": "keep 30 days in archive", "literal": "$${not_a_placeholder"}],
        }
    ]
    with pytest.raises(DbopsError) as err:
        mm.substitute(cmds, {"coll": "archive"}, "V1__a.yml")
    assert err.value.msg == (
        "substitute placeholders in V1__a.yml: no value for ${days} (placeholders given: coll)"
    )


class EmptyDb:
    """A database without a history collection (all prepare() reads)."""

    def __getitem__(self, name):
        return self

    def find(self, *args, **kwargs):
        return []


def test_prepare_plans_from_files_with_placeholders(tmp_path):
    (tmp_path / "V1__archive.yml").write_text("up:\n  - {create: '${archive}'}\n")
    (tmp_path / "V2__ttl.json").write_text(
        '{"up": [{"collMod": "${archive}", "expireAfterSeconds": "${ttl}"}]}'
    )
    settings = mm.settings_from_params(
        {"database": "app", "path": str(tmp_path), "placeholders": {"archive": "messages_2026", "ttl": 86400}}
    )
    prepared = mm.prepare(EmptyDb(), settings)
    steps = mm.plan_dicts(prepared)
    assert [s["commands"] for s in steps] == [
        [{"create": "messages_2026"}],
        [{"collMod": "messages_2026", "expireAfterSeconds": 86400}],
    ]
    assert steps[0]["checksum"] == core.checksum(b"up:\n  - {create: '${archive}'}\n")
    assert mm.result_fields(prepared) == {"version_before": None, "version": "2", "pending": []}


@pytest.mark.parametrize(
    ("hello", "expected"),
    [({"isWritablePrimary": True}, False), ({"setName": "rs0"}, True), ({"msg": "isdbgrid"}, True)],
)
def test_transactions_need_a_replica_set_or_mongos(hello, expected):
    class Admin:
        def command(self, name):
            assert name == "hello"
            return hello

    client = type("Client", (), {"admin": Admin()})()
    assert mm.supports_transactions(client) is expected


@pytest.mark.parametrize("text", [
    # found by tests/unit/fuzz: bson's Extended JSON parser raised its own errors through the loader
    '{"up":[{08:{"$date":253402300800000}}],"down":[{0:{}}]}',
    '{"up":[{08:{"$date":000008}}],"down":[{0:{}}]}',
    '{"up":[{08:{"$date":Null}}],"down":[{0:{}}]}',
    '{"up":[{08:{"$date":""}}],"down":[{0:{}}]}',
    '{"up":[{08,"$oid"}],"down":[0:{}]}',
    '{"up":[{08,"$date"}],"down":[{}]}',
])
def test_malformed_extended_json_is_a_clear_error(text):
    with pytest.raises(DbopsError, match=r"read migration V1__fuzz\.yml"):
        mm.parse_document(text, "V1__fuzz.yml")
