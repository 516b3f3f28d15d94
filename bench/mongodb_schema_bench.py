"""mongodb_schema: 100 collections x 5 indexes, from scratch and re-applied unchanged, vs minimal pymongo.

Run: cd <checkout> && .venv/bin/python -m bench.mongodb_schema_bench [--rounds 3] [--ansible]

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
from dataclasses import dataclass, field
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
    collections, _views = schema.parse_schema(params)  # the same documents, built outside the timing
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
    """One listCollections, then one listIndexes per collection, sent the cheapest way pymongo has."""
    names = [c["name"] for c in db.list_collections()]
    for name in names:
        db.command({"listIndexes": name})


def timed(func: Any, *args: Any) -> float:
    start = time.perf_counter()
    func(*args)
    return time.perf_counter() - start


@dataclass
class Results:
    ours_create: list[float] = field(default_factory=list)
    floor_create: list[float] = field(default_factory=list)
    ours_noop: list[float] = field(default_factory=list)
    floor_noop: list[float] = field(default_factory=list)
    noop_writes: list[int] = field(default_factory=list)
    noop_commands: list[int] = field(default_factory=list)
    floor_commands: list[int] = field(default_factory=list)
    live_docs: dict[str, Any] = field(default_factory=dict)


def measure_round(
    server: Any, client: Any, counter: Counter, decl: list[dict[str, Any]], *, noop_repeats: int, res: Results
) -> None:
    ours_db, floor_db = server.database_name("bench"), server.database_name("bench")
    params = {"database": ours_db, "collections": decl, "views": []}
    floor_params = {**params, "database": floor_db}
    # From scratch: which of the two goes first alternates between rounds.
    if len(res.ours_create) % 2 == 0:
        res.ours_create.append(timed(run_module_path, client[ours_db], params))
        res.floor_create.append(floor_create(client[floor_db], floor_params))
    else:
        res.floor_create.append(floor_create(client[floor_db], floor_params))
        res.ours_create.append(timed(run_module_path, client[ours_db], params))
    # Unchanged re-apply: both read the same database, alternating (order flipped each time) so
    # that server noise hits both alike.
    for i in range(noop_repeats):
        pair = [
            ("ours", run_module_path, (client[ours_db], params)),
            ("floor", floor_noop, (client[ours_db],)),
        ]
        for label, func, fargs in pair if i % 2 == 0 else reversed(pair):
            counter.reset()
            elapsed = timed(func, *fargs)
            if label == "ours":
                res.ours_noop.append(elapsed)
                res.noop_writes.append(counter.writes())
                res.noop_commands.append(len(counter.names))
            else:
                res.floor_noop.append(elapsed)
                res.floor_commands.append(len(counter.names))
    if not res.live_docs:
        res.live_docs = {
            d["name"]: (d, schema.list_indexes(client[ours_db], d["name"]))
            for d in client[ours_db].list_collections()
        }
    client.drop_database(ours_db)
    client.drop_database(floor_db)


def report(
    res: Results, server_label: str, *, rounds: int, noop_repeats: int, cpu: float, ansible_s: float | None
) -> None:
    med = statistics.median
    print(
        f"server: {server_label}; {COLLECTIONS} collections x {INDEXES} indexes; medians of {rounds} rounds "
        f"({rounds * noop_repeats} unchanged re-applies)"
    )
    print(
        f"from scratch   ours {med(res.ours_create):7.3f} s   floor {med(res.floor_create):7.3f} s   "
        f"ratio {med(res.ours_create) / med(res.floor_create):.3f}x"
    )
    print(
        f"unchanged      ours {med(res.ours_noop):7.3f} s   floor {med(res.floor_noop):7.3f} s   "
        f"ratio {med(res.ours_noop) / med(res.floor_noop):.3f}x"
    )
    print(
        f"unchanged      commands ours {max(res.noop_commands)} vs floor {max(res.floor_commands)}; "
        f"write commands ours {max(res.noop_writes)}"
    )
    print(
        f"unchanged      the module's own CPU work without the server (parse, normalise the live "
        f"documents, plan): {cpu * 1000:.1f} ms"
    )
    if ansible_s is not None:
        print(
            f"through ansible-playbook (unchanged, one run): {ansible_s:.2f} s = in-process "
            f"{med(res.ours_noop):.3f} s + ansible start-up/transfer {ansible_s - med(res.ours_noop):.2f} s"
        )


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
        res = Results()
        for _round in range(args.rounds):
            measure_round(server, client, counter, decl, noop_repeats=args.noop_repeats, res=res)
        ansible_s = time_ansible(server, decl) if args.ansible else None
        label = f"external {version}" if uri else f"SecantusDB (reports {version})"
        report(
            res,
            label,
            rounds=args.rounds,
            noop_repeats=args.noop_repeats,
            cpu=cpu_work(decl, res.live_docs),
            ansible_s=ansible_s,
        )
        if max(res.noop_writes) != 0:
            raise SystemExit("FAIL: the unchanged re-apply sent write commands")
    finally:
        client.close()
        mongo_harness.stop_server(server)


def cpu_work(decl: list[dict[str, Any]], live_docs: dict[str, Any], repeats: int = 30) -> float:
    """Median time of the module's pure work for an unchanged re-apply, the server's replies given."""
    params = {"database": "bench", "collections": decl, "views": []}
    samples = []
    for _round in range(repeats):
        start = time.perf_counter()
        collections, views = schema.parse_schema(params)
        live = {}
        for name, (coll_doc, index_docs) in live_docs.items():
            coll = schema.live_collection(coll_doc)
            coll.indexes = [schema.live_index(d) for d in index_docs]
            live[name] = coll
        plan = schema.plan_schema("bench", collections, views, live)
        samples.append(time.perf_counter() - start)
        assert plan.commands == []
    return statistics.median(samples)


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
