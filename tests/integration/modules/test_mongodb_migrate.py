"""mongodb_migrate against the MongoDB-wire test server (or a real mongod), through ansible-playbook."""

from __future__ import annotations

import datetime
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pymongo
import pymongo.errors
import pytest

from ansible_collections.dbops.datastores.plugins.module_utils import _mongodb_migrate as mm
from ansible_collections.dbops.datastores.plugins.module_utils._errors import DbopsError
from tests.harness.runner import REPO_ROOT, AnsibleRunner

SEED_MIGRATIONS = REPO_ROOT / "tests" / "fixtures" / "mongodb" / "migrations" / "octopus"


def ok(result):
    assert result.get("failed") is not True, result
    return result


def write(directory: Path, name: str, text: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(textwrap.dedent(text))
    return path


def history(server, db):
    with server.client() as client:
        return list(client[db].dbops_schema_history.find({}, {"_id": 0}).sort("rank", 1))


def test_seed_data_migration_and_rollback(ansible, any_mongo, tmp_path):
    db = any_mongo.database_name("octopus")
    path = tmp_path / "migrations"
    shutil.copytree(SEED_MIGRATIONS, path)
    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    conversations = [
        {
            "messageId": f"msg-{i}",
            "conversationId": "conv-1",
            "tenantId": "tenant-a",
            "content": f"hello {i}",
            "metadata": {"platform": "telegram"},
            "timestamp": now - datetime.timedelta(hours=i),
        }
        for i in range(5)
    ]
    with any_mongo.client() as client:
        client[db].conversations.insert_many(conversations)
        client[db].messages.insert_one({"_id": "native-1", "tenantId": "tenant-a", "storageLevel": "warm"})
    args = {**any_mongo.params(), "database": db, "path": str(path)}

    planned = ok(ansible.module("mongodb_migrate", args, check=True))
    assert planned["changed"] is True
    assert [(s["action"], s["version"]) for s in planned["plan"]] == [("apply", "1"), ("apply", "2")]
    assert planned["plan"][0]["commands"][0]["pipeline"][1]["$merge"]["on"] == "_id"
    assert planned["version_before"] is None and planned["version"] == "2"
    with any_mongo.client() as client:
        assert client[db].messages.count_documents({}) == 1, "check mode wrote documents"
        assert "dbops_schema_history" not in client[db].list_collection_names()

    applied = ok(ansible.module("mongodb_migrate", args))
    assert applied["changed"] is True
    assert [a["script"] for a in applied["applied"]] == [
        "V1__conversations_to_messages.yml",
        "V2__messages_storage_level_index.yml",
    ]
    again = ok(ansible.module("mongodb_migrate", args))
    assert again["changed"] is False and again["applied"] == [] and again["version"] == "2"

    with any_mongo.client() as client:
        migrated = {d["_id"]: d for d in client[db].messages.find({"migratedFrom": "conversations"})}
        index = client[db].messages.index_information()["tenantId_1_storageLevel_1_timestamp_-1"]
    assert sorted(migrated) == [f"msg-{i}" for i in range(5)]
    assert {d["storageLevel"] for d in migrated.values()} == {"hot"}
    assert migrated["msg-0"]["content"] == "hello 0" and migrated["msg-0"]["tenantId"] == "tenant-a"
    assert index["key"] == [("tenantId", 1), ("storageLevel", 1), ("timestamp", -1)]
    rows = history(any_mongo, db)
    assert [(r["version"], r["type"], r["success"]) for r in rows] == [
        ("1", "versioned", True),
        ("2", "versioned", True),
    ]
    assert all(len(r["checksum"]) == 64 and r["execution_ms"] >= 0 and r["installed_on"] for r in rows)

    # Rollback: refused without allow_downgrade, then the down: sections run, highest first.
    refused = ansible.module("mongodb_migrate", {**args, "target": "0"})
    assert refused["failed"] is True and "needs allow_downgrade=true" in refused["msg"]
    rolled = ok(ansible.module("mongodb_migrate", {**args, "target": "0", "allow_downgrade": True}))
    assert [(a["action"], a["version"]) for a in rolled["applied"]] == [("undo", "2"), ("undo", "1")]
    assert rolled["version"] is None
    with any_mongo.client() as client:
        assert [d["_id"] for d in client[db].messages.find()] == ["native-1"]
        assert "tenantId_1_storageLevel_1_timestamp_-1" not in client[db].messages.index_information()
        assert client[db].conversations.count_documents({}) == 5


def test_partial_apply_resumes_after_the_commands_that_ran(ansible, any_mongo, tmp_path):
    db = any_mongo.database_name()
    path = tmp_path / "migrations"
    with any_mongo.client() as client:
        client[db].tenants.insert_one({"_id": "acme", "plan": "legacy"})
    failing = """\
        up:
          - {insert: audit, documents: [{event: started}]}
          - {insert: tenants, documents: [{_id: acme, plan: pro}]}
          - {insert: audit, documents: [{event: finished}]}
        """
    write(path, "V1__tenants.yml", failing)
    write(path, "V2__later.yml", "up:\n  - {insert: audit, documents: [{event: v2}]}\n")
    args = {**any_mongo.params(), "database": db, "path": str(path)}

    failed = ansible.module("mongodb_migrate", args)
    assert failed["failed"] is True
    assert "apply migration V1__tenants.yml: command 2 of 3 failed" in failed["msg"]
    assert "duplicate key" in failed["msg"]
    assert "1 command(s) of it ran; the next run resumes after them" in failed["msg"]
    [row] = history(any_mongo, db)
    assert row["success"] is False and row["commands_done"] == 1

    # The operator fixes the failing command; the next run resumes at it.
    write(
        path,
        "V1__tenants.yml",
        failing.replace(
            "{insert: tenants, documents: [{_id: acme, plan: pro}]}",
            "{update: tenants, updates: [{q: {_id: acme}, u: {$set: {plan: pro}}}]}",
        ),
    )
    planned = ok(ansible.module("mongodb_migrate", args, check=True))
    assert planned["plan"][0]["resume_after"] == 1
    resumed = ok(ansible.module("mongodb_migrate", args))
    assert [(a["version"], a["resumed_after"]) for a in resumed["applied"]] == [("1", 1), ("2", 0)]
    assert ok(ansible.module("mongodb_migrate", args))["changed"] is False
    with any_mongo.client() as client:
        events = [d["event"] for d in client[db].audit.find().sort("_id", 1)]
        assert events == ["started", "finished", "v2"], "a completed command ran twice"
        assert client[db].tenants.find_one({"_id": "acme"})["plan"] == "pro"
    assert [(r["version"], r["success"]) for r in history(any_mongo, db)] == [("1", True), ("2", True)]


def test_transactional_migration_rolls_back_on_error(ansible, any_mongo, tmp_path):
    db = any_mongo.database_name()
    path = tmp_path / "migrations"
    with any_mongo.client() as client:
        client[db].tenants.insert_one({"_id": "acme"})
    text = """\
        transaction: true
        up:
          - {insert: audit, documents: [{event: started}]}
          - {insert: tenants, documents: [{_id: acme}]}
        """
    write(path, "V1__tx.yml", text)
    args = {**any_mongo.params(), "database": db, "path": str(path)}
    failed = ansible.module("mongodb_migrate", args)
    assert failed["failed"] is True and "the transaction was rolled back" in failed["msg"]
    with any_mongo.client() as client:
        assert client[db].audit.count_documents({}) == 0
    write(path, "V1__tx.yml", text.replace("[{_id: acme}]", "[{_id: globex}]"))
    applied = ok(ansible.module("mongodb_migrate", args))
    assert applied["applied"][0]["transaction"] is True and applied["applied"][0]["resumed_after"] == 0
    with any_mongo.client() as client:
        assert client[db].audit.count_documents({}) == 1
        assert client[db].tenants.count_documents({}) == 2


def _log_migrations(path: Path, count: int) -> None:
    for version in range(1, count + 1):
        write(
            path,
            f"V{version}__step_{version}.yml",
            f"up:\n  - {{insert: applied_log, documents: [{{version: {version}}}]}}\n",
        )


def test_concurrent_runners_apply_each_migration_once(any_mongo, tmp_path):
    db = any_mongo.database_name()
    path = tmp_path / "migrations"
    _log_migrations(path, 5)
    args = {**any_mongo.params(), "database": db, "path": str(path), "lock_timeout": 120}
    runners = [AnsibleRunner(tmp_path / f"runner{i}") for i in range(2)]
    results: list[dict] = [{}, {}]

    def run(i: int) -> None:
        results[i] = runners[i].module("mongodb_migrate", args)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for result in results:
        ok(result)
    assert sum(len(r["applied"]) for r in results) == 5
    with any_mongo.client() as client:
        versions = sorted(d["version"] for d in client[db].applied_log.find())
        assert client[db].dbops_migration_lock.count_documents({}) == 0, "the lock was not released"
    assert versions == [1, 2, 3, 4, 5]
    assert [r["version"] for r in history(any_mongo, db)] == ["1", "2", "3", "4", "5"]


def test_many_in_process_runners_race_for_the_lock(mongo_server, tmp_path):
    """The module's code path run by eight threads at once: every migration is applied once."""
    db = mongo_server.database_name()
    path = tmp_path / "migrations"
    _log_migrations(path, 8)
    barrier = threading.Barrier(8)
    applied: list[int] = []
    errors: list[BaseException] = []

    def run(i: int) -> None:
        settings = mm.settings_from_params({"database": db, "path": str(path), "lock_timeout": 120})
        with mongo_server.client() as client:
            barrier.wait()
            try:
                result = mm.migrate(
                    client,
                    settings,
                    check_mode=False,
                    error_types=(pymongo.errors.PyMongoError,),
                    duplicate_key_error=pymongo.errors.DuplicateKeyError,
                    owner=f"runner-{i}",
                )
                applied.append(len(result["applied"]))
            except Exception as exc:  # collected and asserted below
                errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sum(applied) == 8
    with mongo_server.client() as client:
        assert sorted(d["version"] for d in client[db].applied_log.find()) == list(range(1, 9))


HOLDER = """
import sys, time
import pymongo
from ansible_collections.dbops.datastores.plugins.module_utils import _mongodb_migrate as mm
client = pymongo.MongoClient(sys.argv[1])
lock = mm.MigrationLock(client[sys.argv[2]]["dbops_migration_lock"], "dbops_schema_history", "doomed-runner",
                        int(sys.argv[3]), duplicate_key_error=pymongo.errors.DuplicateKeyError)
lock.acquire(10)
print("locked", flush=True)
time.sleep(600)
"""


@pytest.mark.slow
def test_killed_runners_lock_is_taken_over_after_expiry(ansible, mongo_server, tmp_path):
    db = mongo_server.database_name()
    path = tmp_path / "migrations"
    _log_migrations(path, 1)
    server_uri = mongo_server.uri or f"mongodb://{mongo_server.host}:{mongo_server.port}/"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT / ".build" / "collections")}
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, server_uri, db, "15"], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
    args = {**mongo_server.params(), "database": db, "path": str(path)}

    # Right after the kill the lock is still within its expiry: another runner waits, then gives up
    # naming the holder (the module's code path in-process, so the timing does not depend on how
    # fast ansible-playbook starts on a busy machine).
    settings = mm.settings_from_params({"database": db, "path": str(path), "lock_timeout": 1})
    with mongo_server.client() as client:
        with pytest.raises(DbopsError) as blocked:
            mm.migrate(
                client,
                settings,
                check_mode=False,
                error_types=(pymongo.errors.PyMongoError,),
                duplicate_key_error=pymongo.errors.DuplicateKeyError,
            )
        assert client[db].applied_log.count_documents({}) == 0
    assert "acquire migration lock dbops_schema_history: held by doomed-runner" in blocked.value.msg

    # The module through ansible-playbook waits for the expiry, then proceeds. It takes the expired
    # lock over, unless the server's TTL monitor (the lock's backstop index) removed the expired
    # document first: which one happens depends on when the monitor runs (every 60 s on mongod,
    # sooner on the test server), so both outcomes are correct here.
    taken = ok(ansible.module("mongodb_migrate", {**args, "lock_timeout": 60}))
    if taken.get("lock_taken_over_from"):
        assert taken["lock_taken_over_from"]["owner"] == "doomed-runner"
    assert [a["version"] for a in taken["applied"]] == ["1"]
    with mongo_server.client() as client:
        assert client[db].dbops_migration_lock.count_documents({}) == 0


def test_checksums_and_out_of_order(ansible, mongo_server, tmp_path):
    db = mongo_server.database_name()
    path = tmp_path / "migrations"
    write(path, "V1__one.yml", "up:\n  - {insert: log, documents: [{v: 1}]}\n")
    write(path, "V3__three.json", json.dumps({"up": [{"insert": "log", "documents": [{"v": 3}]}]}))
    args = {**mongo_server.params(), "database": db, "path": str(path)}
    ok(ansible.module("mongodb_migrate", args))

    write(path, "V1__one.yml", "up:\n  - {insert: log, documents: [{v: 100}]}\n")
    write(path, "V2__two.yml", "up:\n  - {insert: log, documents: [{v: 2}]}\n")
    refused = ansible.module("mongodb_migrate", args)
    assert refused["failed"] is True
    assert "checksum mismatch for applied migration V1__one.yml" in refused["msg"]
    assert "out-of-order pending migrations V2__two.yml" in refused["msg"]

    planned = ok(
        ansible.module(
            "mongodb_migrate", {**args, "validate_checksums": False, "out_of_order": True}, check=True
        )
    )
    assert [s["script"] for s in planned["plan"]] == ["V2__two.yml"]
    ok(ansible.module("mongodb_migrate", {**args, "validate_checksums": False, "out_of_order": True}))
    with mongo_server.client() as client:
        assert sorted(d["v"] for d in client[db].log.find()) == [1, 2, 3]

    # A repeatable migration runs again whenever its file changes, after the versioned ones.
    args = {**args, "validate_checksums": False}
    write(path, "R__refresh.yml", "up:\n  - {insert: refresh_log, documents: [{run: 1}]}\n")
    first = ok(ansible.module("mongodb_migrate", args))
    assert [(a["action"], a["script"]) for a in first["applied"]] == [("repeatable", "R__refresh.yml")]
    assert ok(ansible.module("mongodb_migrate", args))["changed"] is False
    write(path, "R__refresh.yml", "up:\n  - {insert: refresh_log, documents: [{run: 2}]}\n")
    assert [a["action"] for a in ok(ansible.module("mongodb_migrate", args))["applied"]] == ["repeatable"]
    with mongo_server.client() as client:
        assert sorted(d["run"] for d in client[db].refresh_log.find()) == [1, 2]


@pytest.mark.parametrize("server_fixture", ["mongo_server", "mongo_auth_server"])
def test_bad_migration_files_fail_clearly_and_change_nothing(ansible, request, server_fixture, tmp_path):
    server = request.getfixturevalue(server_fixture)
    db = server.database_name()
    cases = {
        "malformed YAML": (
            "V2__broken.yml",
            "up:\n  - {insert: a, documents: [{x: 1}\n",
            "read migration V2__broken.yml: malformed YAML",
        ),
        "unknown key": (
            "V2__typo.yml",
            "upp:\n  - {ping: 1}\n",
            "read migration V2__typo.yml: unknown keys upp",
        ),
        "bad name": ("V2_missing_separator.yml", "up: [{ping: 1}]\n", "unparsable migration name"),
    }
    tasks = []
    for label, (name, text, _message) in cases.items():
        directory = tmp_path / label.replace(" ", "_")
        write(directory, "V1__good.yml", "up:\n  - {insert: good, documents: [{x: 1}]}\n")
        write(directory, name, text)
        tasks.append(
            {
                "name": label,
                "dbops.datastores.mongodb_migrate": {
                    **server.params(),
                    "database": db,
                    "path": str(directory),
                },
                "register": "r",
                "ignore_errors": True,
            }
        )
    playbook = ansible.workdir / "bad_migrations.yml"
    playbook.write_text(json.dumps([{"hosts": "localhost", "gather_facts": False, "tasks": tasks}]))
    results = {r["_task"]: r for r in ansible.playbook(playbook).task_results()}
    for label, (_name, _text, message) in cases.items():
        assert results[label]["failed"] is True, label
        assert message in results[label]["msg"], (label, results[label]["msg"])
        assert results[label]["changed"] is False
    with server.client() as client:
        assert client[db].list_collection_names() == [], "a refused run wrote to the database"


def test_baseline_adopts_an_existing_database_and_repair_reruns_a_failed_migration(
    ansible, mongo_server, tmp_path
):
    db = mongo_server.database_name()
    path = tmp_path / "migrations"
    _log_migrations(path, 2)  # already applied by hand on this database
    write(
        path,
        "V3__three.yml",
        "up:\n  - {insert: applied_log, documents: [{version: 3}]}\n"
        "  - {insert: applied_log, documents: [{_id: taken}]}\n",
    )
    with mongo_server.client() as client:
        client[db].applied_log.insert_many([{"version": 1}, {"version": 2}, {"_id": "taken"}])
    args = {**mongo_server.params(), "database": db, "path": str(path), "baseline_version": "2"}

    planned = ok(ansible.module("mongodb_migrate", args, check=True))
    assert [(s["action"], s["version"]) for s in planned["plan"]] == [("baseline", "2"), ("apply", "3")]
    failed = ansible.module("mongodb_migrate", args)
    assert failed["failed"] is True and "command 2 of 2 failed" in failed["msg"]
    assert [(r["type"], r["version"], r["success"]) for r in history(mongo_server, db)] == [
        ("baseline", "2", True),
        ("versioned", "3", False),
    ]

    # The first command is edited although it already ran: resuming would be wrong, so it refuses.
    write(
        path,
        "V3__three.yml",
        "up:\n  - {insert: applied_log, documents: [{version: 3, fixed: true}]}\n"
        "  - {insert: applied_log, documents: [{_id: free}]}\n",
    )
    refused = ansible.module("mongodb_migrate", args)
    assert refused["failed"] is True and "those commands have changed since" in refused["msg"]

    with mongo_server.client() as client:  # the operator undoes the half-applied migration by hand
        client[db].applied_log.delete_one({"version": 3})
    repaired = ok(ansible.module("mongodb_migrate", {**args, "repair": True}))
    assert [a["action"] for a in repaired["applied"]] == ["repair", "apply"]
    with mongo_server.client() as client:
        assert sorted(str(d.get("version", d["_id"])) for d in client[db].applied_log.find()) == [
            "1",
            "2",
            "3",
            "free",
            "taken",
        ]
        assert client[db].applied_log.count_documents({"fixed": True}) == 1
    assert [(r["type"], r["version"], r["success"]) for r in history(mongo_server, db)] == [
        ("baseline", "2", True),
        ("versioned", "3", True),
    ]


def test_lock_expiry_follows_the_servers_clock_not_the_runners(mongo_server, monkeypatch):
    """The TTL index deletes by the server's clock: a runner whose clock is 2 h ahead must not write
    an expiry 2 h late (nor, 2 h behind, an already expired lock)."""
    import pymongo

    class Skewed(datetime.datetime):
        @classmethod
        def now(cls, tz=None):
            return datetime.datetime.now(tz) + datetime.timedelta(hours=2)

    fake = type("FakeDatetimeModule", (), {"datetime": Skewed, "timedelta": datetime.timedelta,
                                           "timezone": datetime.timezone, "date": datetime.date})
    monkeypatch.setattr(mm, "datetime", fake)

    def utc(value):
        return value.replace(tzinfo=datetime.timezone.utc) if value.tzinfo is None else value

    db = mongo_server.database_name()
    with mongo_server.client() as client:
        lock = mm.MigrationLock(client[db]["dbops_migration_lock"], "hist", "runner", 60,
                                duplicate_key_error=pymongo.errors.DuplicateKeyError)
        assert lock.try_acquire()
        server_now = utc(client.admin.command("hello")["localTime"])
        doc = lock.holder()
        assert abs((utc(doc["expires_at"]) - server_now).total_seconds() - 60) < 10, (doc, server_now)
        assert lock.heartbeat()
        doc = lock.holder()
        server_now = utc(client.admin.command("hello")["localTime"])
        assert abs((utc(doc["heartbeat_at"]) - server_now).total_seconds()) < 10
        lock.release()


def test_a_big_run_lists_its_first_and_last_steps(ansible, mongo_server, tmp_path):
    db = mongo_server.database_name()
    path = tmp_path / "migrations"
    _log_migrations(path, 120)
    args = {**mongo_server.params(), "database": db, "path": str(path)}
    compact = ok(ansible.module("mongodb_migrate", args))
    assert (compact["applied_count"], compact["applied_omitted"]) == (120, 20)
    assert [a["version"] for a in compact["applied"]] == [str(i) for i in (*range(1, 51), *range(71, 121))]
    assert len(history(mongo_server, db)) == 120
    full = ok(ansible.module("mongodb_migrate", {**args, "history_collection": "second_history",
                                                 "applied_detail": "full"}))
    assert (full["applied_count"], full["applied_omitted"]) == (120, 0)
    assert [a["version"] for a in full["applied"]] == [str(i) for i in range(1, 121)]
