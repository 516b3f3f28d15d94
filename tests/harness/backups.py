"""Seed data for backup tests, modelled on the seed 000 write-up (Octopus Messenger migration 009).

PostgreSQL: messages and message_classifications with the five added columns each, four of the ten
new tables, two of the five summary views, a sequence, and values that stress a dump (jsonb,
numeric, bytea, arrays, timestamps with time zones, NULLs, Chinese text, quotes).
MongoDB: the hot/warm/cold message collections with their TTLs (7 days, 30 days, 1 year), the
alert_events collection (90 days), compound indexes, a capped log and an aggregation view.

Plus row-by-row / document-by-document snapshots used to prove a restore is identical.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

PG_SCHEMA = """
CREATE TABLE messages (
  id bigserial PRIMARY KEY,
  platform varchar(32) NOT NULL,
  content text,
  created_at timestamptz NOT NULL DEFAULT now(),
  storage_level varchar(20) DEFAULT 'hot',
  content_ref varchar(255),
  compression_enabled boolean DEFAULT false,
  original_size bigint,
  compressed_size bigint
);
CREATE TABLE message_classifications (
  id serial PRIMARY KEY,
  message_id bigint REFERENCES messages(id),
  category text,
  confidence numeric(5,4),
  classifier_used varchar(50),
  processing_time integer,
  cache_hit boolean,
  performance_score decimal(5,2)
);
CREATE TABLE service_instances (
  id serial PRIMARY KEY,
  service_name varchar(100) NOT NULL,
  instance_url text NOT NULL,
  healthy boolean NOT NULL DEFAULT true,
  metadata jsonb,
  UNIQUE (service_name, instance_url)
);
CREATE TABLE service_metrics (
  id bigserial PRIMARY KEY,
  service_name varchar(100) NOT NULL,
  metric_type varchar(50) NOT NULL,
  metric_value double precision,
  tags text[],
  recorded_at timestamptz NOT NULL
);
CREATE INDEX service_metrics_name_time ON service_metrics (service_name, recorded_at DESC);
CREATE TABLE system_alerts (
  alert_id uuid PRIMARY KEY,
  severity varchar(10) CHECK (severity IN ('info', 'warning', 'critical')),
  status varchar(20) NOT NULL,
  message text,
  payload bytea,
  created_at timestamptz
);
CREATE TABLE cache_performance_stats (
  cache_type varchar(30) PRIMARY KEY,
  hit_rate numeric(6,3),
  avg_response_time interval
);
CREATE VIEW service_health_summary AS
  SELECT service_name, count(*) AS instances, count(*) FILTER (WHERE healthy) AS healthy
    FROM service_instances GROUP BY service_name;
CREATE VIEW active_alerts_summary AS
  SELECT severity, count(*) AS open_alerts FROM system_alerts WHERE status = 'open' GROUP BY severity;
CREATE SEQUENCE alert_seq START 1000;
SELECT setval('alert_seq', 1234);
"""

PG_DATA = """
INSERT INTO messages (platform, content, created_at, storage_level, content_ref, compression_enabled,
                      original_size, compressed_size)
SELECT (ARRAY['telegram','discord','slack','wechat'])[1 + g % 4],
       CASE WHEN g % 10 = 0 THEN NULL ELSE '消息 #' || g || ' it''s "quoted" \\ backslash' END,
       timestamptz '2026-01-01 00:00:00+08' + g * interval '37 minutes',
       (ARRAY['hot','warm','cold'])[1 + g % 3], 'ref/' || md5(g::text), g % 2 = 0, g * 100, g * 40
  FROM generate_series(1, {rows}) g;
INSERT INTO message_classifications (message_id, category, confidence, classifier_used, processing_time,
                                     cache_hit, performance_score)
SELECT id, 'cat-' || (id % 7), (id % 10000) / 10000.0, 'bert-v' || (id % 3), (id % 500)::int,
       id % 5 = 0, (id % 100) + 0.25
  FROM messages;
INSERT INTO service_instances (service_name, instance_url, healthy, metadata)
SELECT 'svc-' || g, 'http://10.0.0.' || g || ':8080', g % 4 <> 0,
       jsonb_build_object('zone', 'cn-north-' || (g % 3), 'weights', jsonb_build_array(g, g * 2))
  FROM generate_series(1, 20) g;
INSERT INTO service_metrics (service_name, metric_type, metric_value, tags, recorded_at)
SELECT 'svc-' || (g % 20), 'latency_ms', g * 1.5, ARRAY['p95', 'region-' || (g % 2)],
       timestamptz '2026-03-01 12:00:00Z' + g * interval '1 second'
  FROM generate_series(1, {rows}) g;
INSERT INTO system_alerts (alert_id, severity, status, message, payload, created_at)
SELECT md5('alert' || g)::uuid, (ARRAY['info','warning','critical'])[1 + g % 3],
       CASE WHEN g % 2 = 0 THEN 'open' ELSE 'resolved' END, '告警 ' || g, decode(md5(g::text), 'hex'),
       CASE WHEN g % 5 = 0 THEN NULL ELSE timestamptz '2026-02-01Z' + g * interval '1 hour' END
  FROM generate_series(1, 50) g;
INSERT INTO cache_performance_stats VALUES ('redis', 97.125, interval '3 milliseconds'),
  ('local', 88.5, interval '150 microseconds');
"""


def create_pg_seed(server: Any, dbname: str, rows: int = 300) -> None:
    server.query(PG_SCHEMA, dbname=dbname)
    server.query(PG_DATA.replace("{rows}", str(int(rows))), dbname=dbname)


def pg_snapshot(server: Any, dbname: str) -> dict[str, Any]:
    """Every row of every table (as JSON text, in primary-key order), view definitions, sequences."""
    tables = [r[0] for r in server.query(
        "SELECT format('%I.%I', schemaname, tablename) FROM pg_tables "
        "WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1", dbname=dbname)]
    snapshot: dict[str, Any] = {}
    for table in tables:
        rows = server.query(f"SELECT row_to_json(t)::text FROM {table} t ORDER BY 1", dbname=dbname)
        snapshot[table] = [r[0] for r in rows]
    snapshot["_views"] = server.query(
        "SELECT viewname, definition FROM pg_views WHERE schemaname = 'public' ORDER BY 1", dbname=dbname)
    snapshot["_sequences"] = server.query(
        "SELECT sequencename, last_value FROM pg_sequences WHERE schemaname = 'public' ORDER BY 1",
        dbname=dbname)
    snapshot["_indexes"] = server.query(
        "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1", dbname=dbname)
    return snapshot


def create_mongo_seed(client: Any, dbname: str, docs: int = 300) -> None:
    db = client[dbname]
    base = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    for name, ttl in (("messages", 7 * 86400), ("messages_archive", 30 * 86400),
                      ("messages_cold_archive", 365 * 86400)):
        db[name].create_index("created_at", expireAfterSeconds=ttl, name="ttl_created_at")
        db[name].create_index([("platform", 1), ("created_at", -1)], name="platform_created")
    far_future = dt.datetime(2100, 1, 1, tzinfo=dt.timezone.utc)  # TTL must not expire test data
    db.messages.insert_many([
        {"_id": i, "platform": ["telegram", "discord", "slack"][i % 3], "content": f"消息 {i} \"quoted\"",
         "created_at": far_future + dt.timedelta(minutes=i), "size": i * 100, "ratio": i / 7,
         "tags": ["a", "b"][: i % 3], "meta": {"nested": {"deep": i, "none": None}},
         "blob": bytes([i % 256]) * 8}
        for i in range(docs)
    ])
    db.messages_archive.insert_many([
        {"platform": "slack", "created_at": far_future, "n": i} for i in range(docs // 3)])
    db.alert_events.create_index("ts", expireAfterSeconds=90 * 86400, name="ttl_ts")
    db.alert_events.create_index([("severity", 1), ("status", 1)], name="severity_status",
                                 partialFilterExpression={"status": "open"})
    db.alert_events.insert_many([
        {"alert_id": f"a{i}", "severity": ["info", "warning", "critical"][i % 3],
         "status": "open" if i % 2 else "resolved", "ts": far_future, "at": base + dt.timedelta(hours=i)}
        for i in range(40)])
    db.create_collection("system_health_logs", capped=True, size=1024 * 1024)
    db.system_health_logs.insert_many([{"check": i, "ok": i % 4 != 0} for i in range(25)])
    db.command("create", "daily_platform_summary", viewOn="messages",
               pipeline=[{"$group": {"_id": "$platform", "count": {"$sum": 1}}}])


def mongo_snapshot(client: Any, dbname: str) -> dict[str, Any]:
    """Raw BSON bytes of every document in _id order, index definitions, collection options, views."""
    import bson
    import bson.json_util
    from bson.codec_options import CodecOptions
    from bson.raw_bson import RawBSONDocument

    db = client[dbname]
    raw = CodecOptions(document_class=RawBSONDocument)
    snapshot: dict[str, Any] = {}
    for info in sorted(db.list_collections(), key=lambda i: i["name"]):
        name = info["name"]
        if name.startswith("system.") and name != "system.js":
            continue
        entry: dict[str, Any] = {"type": info.get("type", "collection"),
                                 "options": bson.json_util.dumps(info.get("options", {}), sort_keys=True)}
        if entry["type"] == "collection":
            coll = db.get_collection(name, codec_options=raw)
            entry["documents"] = [doc.raw for doc in coll.find({}, sort=[("_id", 1)])]
            entry["indexes"] = sorted(
                bson.json_util.dumps({k: v for k, v in ix.items() if k not in ("ns", "v")})
                for ix in db[name].list_indexes())
        snapshot[name] = entry
    return snapshot


# --------------------------------------------------------------------------- helpers for backup tests

def entries(root: Any) -> list[str]:
    """Names in a backup root (without the lock files)."""
    import os

    return sorted(n for n in os.listdir(root) if n not in (".dbops-backup.lock", ".dbops-readers.lock"))


def flip_byte(path: Any, offset: int | None = None) -> None:
    """Invert one byte of a file in place (the middle one by default)."""
    with open(path, "r+b") as handle:
        handle.seek(0, 2)
        size = handle.tell()
        pos = size // 2 if offset is None else offset
        handle.seek(pos)
        byte = handle.read(1)
        handle.seek(pos)
        handle.write(bytes([byte[0] ^ 0xFF]))


class TinyFs:
    """A size-limited tmpfs (disk full) or a read-only one (unwritable root); needs root."""

    def __init__(self, path: Any, size: str = "1m", readonly: bool = False) -> None:
        self.path = path
        self.size = size
        self.readonly = readonly
        self.mounted = False

    def __enter__(self) -> TinyFs:
        import os
        import subprocess

        import pytest

        os.makedirs(self.path, exist_ok=True)
        opts = f"size={self.size},mode=0700" + (",ro" if self.readonly else "")
        proc = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(self.path)],
                              capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here ({proc.stderr.strip() or 'not root'})")
        self.mounted = True
        return self

    def __exit__(self, *exc: Any) -> None:
        import subprocess

        if self.mounted:
            subprocess.run(["umount", "-l", str(self.path)], check=False)


def cli_command(*args: str) -> list[str]:
    """argv for the dbops-backup launcher run with the test interpreter."""
    import sys
    from pathlib import Path

    launcher = Path(__file__).resolve().parents[2] / "roles" / "db_backup" / "files" / "dbops-backup"
    return [sys.executable, str(launcher), *args]


def cli_env() -> dict[str, str]:
    import os
    from pathlib import Path

    env = dict(os.environ)
    env["DBOPS_COLLECTIONS_PATH"] = str(Path(__file__).resolve().parents[2] / ".build" / "collections")
    return env


def processes_matching(*needles: str) -> list[int]:
    """PIDs whose command line contains every needle (Linux /proc)."""
    import os

    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as handle:
                cmdline = handle.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if all(n in cmdline for n in needles):
            found.append(int(pid))
    return found


def wait_for(predicate: Any, timeout: float = 30.0, what: str = "condition") -> Any:
    import time

    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def fake_backup(root: Any, engine: str, database: str, started: Any, backup_id: str | None = None) -> str:
    """Write a complete backup in the documented catalog format (one small payload file)."""
    import hashlib
    import json
    import os

    prefix = {"postgresql": "pg", "mongodb": "mongodb"}[engine]
    backup_id = backup_id or f"{prefix}-{database}-{started.strftime('%Y%m%dT%H%M%SZ')}"
    path = os.path.join(str(root), backup_id)
    os.mkdir(path, 0o700)
    payload = f"{engine} {database} {started.isoformat()}".encode()
    with open(os.path.join(path, "database.dump"), "wb") as handle:
        handle.write(payload)
    stamp = started.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    manifest = {"kind": "dbops.datastores/backup", "format_version": 1, "id": backup_id, "engine": engine,
                "database": database, "format": "custom", "payload": "database.dump",
                "started_at": stamp, "finished_at": stamp, "duration_s": 0.0, "counts": {},
                "files": [{"path": "database.dump", "size": len(payload),
                           "sha256": hashlib.sha256(payload).hexdigest()}]}
    with open(os.path.join(path, "manifest.json"), "w") as handle:
        json.dump(manifest, handle)
    return backup_id


def fake_partial(root: Any, name: str, started: Any, pid: int, host: str | None = None) -> str:
    import json
    import os
    import socket

    path = os.path.join(str(root), name + ".partial")
    os.mkdir(path, 0o700)
    marker = {"kind": "dbops.datastores/backup", "id": name, "engine": "postgresql", "database": "app",
              "pid": pid, "host": host or socket.gethostname(),
              "started_at": started.strftime("%Y-%m-%dT%H:%M:%S.%fZ")}
    with open(os.path.join(path, ".dbops-backup"), "w") as handle:
        json.dump(marker, handle)
    with open(os.path.join(path, "database.dump"), "wb") as handle:
        handle.write(b"PGDMP partial")
    return name + ".partial"


def dead_pid() -> int:
    """The PID of a process that has exited."""
    import subprocess

    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid
