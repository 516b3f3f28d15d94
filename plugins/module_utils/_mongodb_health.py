# Copyright: dbops.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Health facts from a MongoDB server, read-only, as a ``clusterMonitor`` + ``read`` user.

Sources: ``serverStatus`` (connections, opcounters, memory, WiredTiger cache, lock queues),
``hello`` and ``replSetGetStatus`` (replication), ``listDatabases``/``dbStats`` (sizes),
``collStats`` (collection and index sizes; ``$collStats`` where the command is gone),
``$indexStats`` (unused indexes) and ``currentOp`` (long operations).

What the server does not report stays absent (a missing key, or ``None`` for a whole section),
never 0: ``absent`` lists the serverStatus sections the server did not send. The checks live in
``_mongodb_health_checks``, the scoring model in ``_health``.
"""

from __future__ import annotations

import datetime
from typing import Any

from ansible_collections.dbops.datastores.plugins.module_utils._mongodb import error_text
from ansible_collections.dbops.datastores.plugins.module_utils._query_text import mongo_command_shape

SYSTEM_DATABASES = ("admin", "local", "config")
SERVER_STATUS_SECTIONS = (
    "connections",
    "opcounters",
    "mem",
    "network",
    "wiredTiger",
    "globalLock",
    "asserts",
)
COMMAND_NOT_FOUND = 59


def _iso(value: Any) -> str | None:
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=datetime.timezone.utc)
        return value.astimezone(datetime.timezone.utc).isoformat()
    return None if value is None else str(value)


def _percent(part: float | None, whole: float | None) -> float | None:
    if part is None or not whole:
        return None
    return round(100.0 * float(part) / float(whole), 1)


def _plain(doc: dict[str, Any]) -> dict[str, Any]:
    """Numbers as int/float (Int64 and friends are JSON-serialisable ints already)."""
    return {k: v for k, v in doc.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def server_facts(status: dict[str, Any]) -> dict[str, Any]:
    """Pure: the serverStatus parts the report uses; absent sections stay absent."""
    facts: dict[str, Any] = {
        "server": {
            "version": status.get("version"),
            "host": status.get("host"),
            "process": status.get("process"),
            "uptime_seconds": status.get("uptime"),
        },
        "absent": [s for s in SERVER_STATUS_SECTIONS if s not in status],
    }
    conn = status.get("connections")
    if isinstance(conn, dict):
        current, available = conn.get("current"), conn.get("available")
        info: dict[str, Any] = _plain(conn)
        if available == 0 and not str(status.get("process") or "").startswith(("mongod", "mongos")):
            # A server other than mongod/mongos that answers this check but claims no free
            # connection does not report the figure (a test server sends 0 for "unbounded").
            info.pop("available", None)
            available = None
            info["available_reported"] = False
        if current is not None and available is not None:
            info["max"] = current + available
            info["usage_percent"] = _percent(current, current + available)
        facts["connections"] = info
    else:
        facts["connections"] = None
    facts["opcounters"] = _plain(status["opcounters"]) if isinstance(status.get("opcounters"), dict) else None
    mem = status.get("mem")
    facts["memory_mb"] = (
        {k: v for k, v in _plain(mem).items() if k in ("resident", "virtual")}
        if isinstance(mem, dict)
        else None
    )
    cache = (status.get("wiredTiger") or {}).get("cache")
    if isinstance(cache, dict) and "maximum bytes configured" in cache:
        used = cache.get("bytes currently in the cache")
        dirty = cache.get("tracked dirty bytes in the cache")
        maximum = cache.get("maximum bytes configured")
        facts["cache"] = {
            "bytes": used,
            "dirty_bytes": dirty,
            "max_bytes": maximum,
            "used_percent": _percent(used, maximum),
            "dirty_percent": _percent(dirty, maximum),
        }
    else:
        facts["cache"] = None
    queue = (status.get("globalLock") or {}).get("currentQueue")
    facts["operations"] = (
        {"queued": queue.get("total")} if isinstance(queue, dict) and "total" in queue else {}
    )
    return facts


def replication_facts(status: dict[str, Any] | None) -> dict[str, Any] | None:
    """Pure: members with their lag behind the primary from a replSetGetStatus reply."""
    if not status:
        return None
    members = status.get("members") or []
    primary = next((m for m in members if m.get("stateStr") == "PRIMARY"), None)
    primary_time = primary.get("optimeDate") if primary else None
    result = []
    for member in members:
        optime = member.get("optimeDate")
        lag = None
        if (
            member.get("stateStr") == "SECONDARY"
            and isinstance(primary_time, datetime.datetime)
            and isinstance(optime, datetime.datetime)
        ):
            lag = max(0.0, (primary_time - optime).total_seconds())
        result.append(
            {
                "name": member.get("name"),
                "state_str": member.get("stateStr"),
                "health": member.get("health"),
                "optime_date": _iso(optime),
                "lag_seconds": lag,
                "self": bool(member.get("self")),
            }
        )
    return {"set": status.get("set"), "my_state": status.get("myState"), "members": result}


def long_operations(inprog: list[dict[str, Any]], min_seconds: float) -> list[dict[str, Any]]:
    """Pure: client operations running at least ``min_seconds``, longest first.

    Internal threads (no ``client``), waits on the oplog and the ``currentOp`` call itself are
    left out. Durations use ``microsecs_running`` when reported.
    """
    result = []
    for op in inprog:
        if not op.get("active") or not op.get("client") or op.get("op") in (None, "none"):
            continue
        command = op.get("command") or {}
        if "currentOp" in command or "$currentOp" in str(command.get("pipeline", "")):
            continue
        if str(op.get("ns") or "").startswith("local.oplog"):
            continue
        if op.get("microsecs_running") is not None:
            running = op["microsecs_running"] / 1e6
        elif op.get("secs_running") is not None:
            running = float(op["secs_running"])
        else:
            continue
        if running < min_seconds:
            continue
        result.append(
            {
                "opid": op.get("opid"),
                "op": op.get("op"),
                "ns": op.get("ns") or None,
                "secs_running": round(running, 3),
                "client": op.get("client"),
                "desc": op.get("desc"),
                "command": mongo_command_shape(command),
                "waiting_for_lock": op.get("waitingForLock"),
            }
        )
    result.sort(key=lambda o: -o["secs_running"])
    return result[:50]


def _collection_stats(db: Any, name: str) -> dict[str, Any]:
    import pymongo.errors  # noqa: PLC0415 - the driver is checked by _mongodb.require_driver()

    try:
        stats = db.command("collStats", name)
    except pymongo.errors.OperationFailure as exc:
        if exc.code != COMMAND_NOT_FOUND:
            raise
        docs = list(db[name].aggregate([{"$collStats": {"storageStats": {}}}]))
        stats = (docs[0] if docs else {}).get("storageStats", {})
    result = {
        "count": stats.get("count"),
        "size_bytes": stats.get("size"),
        "storage_bytes": stats.get("storageSize"),
        "index_bytes": stats.get("totalIndexSize"),
        "index_sizes": dict(stats.get("indexSizes") or {}),
        "indexes": stats.get("nindexes"),
    }
    return {k: v for k, v in result.items() if v is not None}


def _unused(db: Any, database: str, name: str, index_sizes: dict[str, Any]) -> list[dict[str, Any]]:
    specs = {ix["name"]: ix for ix in db[name].list_indexes()}
    unused = []
    for stat in db[name].aggregate([{"$indexStats": {}}]):
        index_name = stat.get("name")
        spec = specs.get(index_name, {})
        if index_name == "_id_" or spec.get("unique") or "expireAfterSeconds" in spec:
            continue
        accesses = stat.get("accesses") or {}
        if accesses.get("ops") != 0:
            continue
        item = {
            "database": database,
            "collection": name,
            "name": index_name,
            "key": dict(spec.get("key", {})),
            "since": _iso(accesses.get("since")),
        }
        if index_name in index_sizes:
            item["size_bytes"] = index_sizes[index_name]
        unused.append(item)
    return unused


def gather(client: Any, databases: list[str] | None, thresholds: dict[str, float]) -> dict[str, Any]:
    """Collect the facts over an open, authenticated MongoClient."""
    import pymongo.errors  # noqa: PLC0415 - the driver is checked by _mongodb.require_driver()

    admin = client.admin
    facts = server_facts(admin.command("serverStatus"))
    facts["collected_at"] = _iso(datetime.datetime.now(datetime.timezone.utc))
    facts["errors"] = []
    hello = admin.command("hello")
    facts["server"]["is_primary"] = bool(hello.get("isWritablePrimary", hello.get("ismaster")))
    facts["server"]["replica_set"] = hello.get("setName")
    repl_status = None
    if hello.get("setName"):
        repl_status = admin.command("replSetGetStatus")
    facts["replication"] = replication_facts(repl_status)

    min_op = min(thresholds["long_operation_warning_seconds"], thresholds["long_operation_critical_seconds"])
    try:
        inprog = admin.command("currentOp", active=True).get("inprog", [])
        facts["long_operations"] = long_operations(inprog, min_op)
    except pymongo.errors.OperationFailure as exc:
        facts["long_operations"] = None
        facts["errors"].append(f"currentOp: {error_text(exc)}")

    listed = admin.command("listDatabases")["databases"]
    names = [d["name"] for d in listed]
    targets = list(databases) if databases else [n for n in names if n not in SYSTEM_DATABASES]
    facts["databases"] = []
    facts["collections"] = []
    unused: list[dict[str, Any]] | None = []
    for name in targets:
        db = client[name]
        stats = db.command("dbStats")
        facts["databases"].append(
            {
                k: v
                for k, v in {
                    "name": name,
                    "collections": stats.get("collections"),
                    "objects": stats.get("objects"),
                    "data_bytes": stats.get("dataSize"),
                    "storage_bytes": stats.get("storageSize"),
                    "index_bytes": stats.get("indexSize"),
                    "total_bytes": stats.get("totalSize"),
                }.items()
                if v is not None
            }
        )
        for info in db.list_collections(filter={"type": "collection"}):
            coll = info["name"]
            if coll.startswith("system."):
                continue
            entry = {"database": name, "name": coll, **_collection_stats(db, coll)}
            facts["collections"].append(entry)
            if unused is not None:
                try:
                    unused.extend(_unused(db, name, coll, entry.get("index_sizes", {})))
                except pymongo.errors.OperationFailure as exc:
                    facts["errors"].append(f"$indexStats on {name}.{coll}: {error_text(exc)}")
                    unused = None
    facts["unused_indexes"] = unused
    facts["collections"].sort(
        key=lambda c: (-(c.get("storage_bytes") or c.get("size_bytes") or 0), c["database"], c["name"])
    )
    sizes = [d.get("total_bytes", d.get("storage_bytes")) for d in facts["databases"]]
    facts["size_bytes"] = (
        sum(s for s in sizes if s is not None) if any(s is not None for s in sizes) else None
    )
    return facts


def summarize(facts: dict[str, Any], max_collections: int) -> dict[str, Any]:
    result = dict(facts)
    collections = result.pop("collections")
    result["collections"] = collections[:max_collections]
    result["collections_total"] = len(collections)
    return result
