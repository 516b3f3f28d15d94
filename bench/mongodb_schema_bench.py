"""mongodb_schema: 100 collections x 5 indexes, from scratch and re-applied unchanged, vs minimal pymongo.

Run: cd <checkout> && /work/main/.venv/bin/python -m bench.mongodb_schema_bench [--rounds 3] [--ansible]

The module's own code path (parse -> read live state -> plan -> execute) runs in-process against
the same server as the floor, which is the least a client must send:
  from scratch  create + createIndexes per collection
  unchanged     one listCollections + one listIndexes per collection
Commands are counted with pymongo command monitoring; the unchanged re-apply must send no write
command at all. With --ansible one unchanged run through ansible-playbook is timed too, to show
Ansible's fixed start-up cost separately. Uses DBOPS_TEST_MONGO_URI when set, otherwise starts
the test server (SecantusDB).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pymongo
from pymongo import monitoring

from tests.harness import mongo as mongo_harness
from tests.harness.runner import COLLECTIONS_PATH, AnsibleRunner, ensure_collection_link

ensure_collection_link()
sys.path.insert(0, str(COLLECTIONS_PATH))  # the checkout as ansible_collections.dbops.datastores

from ansible_collections.dbops.datastores.plugins.module_utils import _mongodb_schema as schema  # noqa: E402

COLLECTIONS = 100
INDEXES = 5
WRITE_COMMANDS = {
    "create",
    "createIndexes",
    "collMod",
    "drop",
    "dropIndexes",
    "insert",
    "update",
    "delete",
    "renameCollection",
    "dropDatabase",
}


class Counter(monitoring.CommandListener):
    def __init__(self) -> None:
        self.names: list[str] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        self.names.append(event.command_name)

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass

    def reset(self) -> None:
        self.names.clear()

    def writes(self) -> int:
        return sum(1 for n in self.names if n in WRITE_COMMANDS)


def declaration() -> list[dict[str, Any]]:
    collections = []
    for c in range(COLLECTIONS):
        indexes: list[dict[str, Any]] = [
            {"keys": {"createdAt": 1}, "expire_after_seconds": 86400 * (c % 30 + 1)},
            {"keys": [["tenantId", 1], ["createdAt", -1]]},
            {"keys": [["status", 1], ["priority", -1], ["createdAt", -1]]},
            {"keys": {"externalId": 1}, "unique": True, "sparse": True},
            {"keys": {"owner": 1}, "partial_filter": {"owner": {"$exists": True}}},
        ]
        collections.append({"name": f"coll_{c:03d}", "indexes": indexes[:INDEXES]})
    return collections


def run_module_path(db: Any, params: dict[str, Any]) -> schema.Plan:
    collections, views = schema.parse_schema(params)
    live = schema.read_live(db, [c.name for c in collections])
    plan = schema.plan_schema(params["database"], collections, views, live)
    schema.execute(db, plan.commands, (pymongo.errors.PyMongoError,))
    return plan


def floor_create(db: Any, params: dict[str, Any]) -> float:
    collections, _ = schema.parse_schema(params)  # the same documents, built outside the timing
    commands = [
        (c.create_command(), {"createIndexes": c.name, "indexes": [i.create_doc() for i in c.indexes]})
        for c in collections
    ]
    start = time.perf_counter()
    for create, indexes in commands:
        db.command(create)
        db.command(indexes)
    return time.perf_counter() - start


def floor_noop(db: Any) -> None:
    names = [c["name"] for c in db.list_collections()]
    for name in names:
        list(db[name].list_indexes())


def timed(func: Any, *args: Any) -> float:
    start = time.perf_counter()
    func(*args)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--noop-repeats", type=int, default=10)
    parser.add_argument("--ansible", action="store_true", help="also time one unchanged run through ansible")
    args = parser.parse_args()

    uri = os.environ.get("DBOPS_TEST_MONGO_URI")
    server = mongo_harness.external_server(uri) if uri else mongo_harness.start_server()
    counter = Counter()
    client = server.client(event_listeners=[counter])
    try:
        version = client.admin.command("buildInfo")["version"]
        decl = declaration()
        ours_create, floor_create_t, ours_noop, floor_noop_t = [], [], [], []
        noop_writes, noop_commands, floor_commands = [], [], []
        for _ in range(args.rounds):
            ours_db, floor_db = server.database_name("bench"), server.database_name("bench")
            params = {"database": ours_db, "collections": decl, "views": []}
            ours_create.append(timed(run_module_path, client[ours_db], params))
            floor_create_t.append(floor_create(client[floor_db], {**params, "database": floor_db}))

            # Unchanged re-apply: alternate ours and the floor (order flipped each time) so that
            # server noise hits both alike.
            for i in range(args.noop_repeats):
                pair = [
                    ("ours", run_module_path, (client[ours_db], params)),
                    ("floor", floor_noop, (client[floor_db],)),
                ]
                for label, func, fargs in pair if i % 2 == 0 else reversed(pair):
                    counter.reset()
                    elapsed = timed(func, *fargs)
                    if label == "ours":
                        ours_noop.append(elapsed)
                        noop_writes.append(counter.writes())
                        noop_commands.append(len(counter.names))
                    else:
                        floor_noop_t.append(elapsed)
                        floor_commands.append(len(counter.names))
            client.drop_database(ours_db)
            client.drop_database(floor_db)

        ansible_s = None
        if args.ansible:
            ansible_s = time_ansible(server, decl)

        def med(values: list[float]) -> float:
            return statistics.median(values)

        print(
            f"server: {'external ' + version if uri else 'SecantusDB (reports ' + version + ')'}; "
            f"{COLLECTIONS} collections x {INDEXES} indexes; medians of {args.rounds} rounds "
            f"({args.rounds * args.noop_repeats} unchanged re-applies)"
        )
        print(
            f"from scratch   ours {med(ours_create):7.3f} s   floor {med(floor_create_t):7.3f} s   "
            f"ratio {med(ours_create) / med(floor_create_t):.3f}x"
        )
        print(
            f"unchanged      ours {med(ours_noop):7.3f} s   floor {med(floor_noop_t):7.3f} s   "
            f"ratio {med(ours_noop) / med(floor_noop_t):.3f}x"
        )
        print(
            f"unchanged      commands ours {max(noop_commands)} vs floor {max(floor_commands)}; "
            f"write commands ours {max(noop_writes)}"
        )
        if ansible_s is not None:
            print(
                f"through ansible-playbook (unchanged, one run): {ansible_s:.2f} s "
                f"= in-process {med(ours_noop):.3f} s + ansible start-up/transfer "
                f"{ansible_s - med(ours_noop):.2f} s"
            )
        if max(noop_writes) != 0:
            raise SystemExit("FAIL: the unchanged re-apply sent write commands")
    finally:
        client.close()
        mongo_harness.stop_server(server)


def time_ansible(server: mongo_harness.MongoServer, decl: list[dict[str, Any]]) -> float:
    db = server.database_name("bench")
    runner = AnsibleRunner(Path(tempfile.mkdtemp(prefix="dbops-bench-")))
    args = {**server.params(), "database": db, "collections": decl}
    first = runner.module("mongodb_schema", args)
    assert first.get("changed") is True, first
    start = time.perf_counter()
    again = runner.module("mongodb_schema", args)
    elapsed = time.perf_counter() - start
    assert again.get("changed") is False, again
    with server.client() as client:
        client.drop_database(db)
    return elapsed


if __name__ == "__main__":
    main()
