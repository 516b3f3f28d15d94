# Copyright: dbops.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""``dbops-backup health``: the scheduled health run, the same code as the health modules.

    dbops-backup health --config FILE

Gathers the facts of ``pg_health_info`` / ``mongodb_health_info`` for each engine the config
names under ``health``, scores them with the same checks, and writes
``dbops_health_<engine>.prom`` into ``metrics.textfile_dir`` (metrics in docs/monitoring.md).
Prints one JSON line (and appends it to ``log_file``); exits 0 when every engine was read, 1 when
one could not be read (its ``dbops_health_up`` is then 0), 2 for a wrong command line or config.
The health status itself does not change the exit code: the alert rules and ``health.yml``'s
``health_fail_on`` decide what is an alarm.

Config (JSON, or YAML with PyYAML)::

    {"postgres": {... connection options as in the dbops-backup config ...},
     "mongodb": {...},
     "metrics": {"textfile_dir": "/var/lib/prometheus/node-exporter"},
     "log_file": "/var/log/dbops/dbops-health.log",
     "health": {"postgresql": {"databases": [...], "thresholds": {...}},
                "mongodb": {"databases": [...], "thresholds": {...}}}}
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import time
from typing import Any

from ansible_collections.dbops.datastores.plugins.module_utils import (
    _backup_catalog,
    _backup_cli,
    _health,
    _health_metrics,
    _metrics,
    _mongodb,
    _mongodb_health,
    _mongodb_health_checks,
    _pg_health,
    _pg_health_checks,
    _postgres,
    _query_text,
)
from ansible_collections.dbops.datastores.plugins.module_utils._errors import DbopsError

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
TOP_KEYS = {"postgres", "mongodb", "metrics", "log_file", "health"}
ENGINE_KEYS = {"databases", "thresholds", "migration_table"}
THRESHOLDS = {
    "postgresql": _pg_health_checks.PG_THRESHOLDS,
    "mongodb": _mongodb_health_checks.MONGODB_THRESHOLDS,
}

_WAL_SQL = """
    SELECT current_setting('archive_mode') <> 'off' AS archiving,
           a.failed_count,
           extract(epoch FROM a.last_archived_time) AS last_archived,
           extract(epoch FROM a.last_failed_time) AS last_failed,
           pg_is_in_recovery() AS in_recovery,
           (SELECT status FROM pg_stat_wal_receiver) AS receiver
    FROM pg_stat_archiver a
"""


ConfigError = _backup_cli.ConfigError


def load_config(path: str) -> dict[str, Any]:
    """Read the file as dbops-backup reads its own (JSON, or YAML when PyYAML is installed)."""
    data = _backup_cli.check_keys(_backup_cli.read_config(path)[0], TOP_KEYS, path)
    health = data.get("health")
    if not isinstance(health, dict) or not health or set(health) - set(THRESHOLDS):
        raise ConfigError(f"read config {path}: health must map postgresql and/or mongodb to options")
    for engine, given in health.items():
        options = given or {}
        if not isinstance(options, dict) or set(options) - ENGINE_KEYS:
            allowed = ", ".join(sorted(ENGINE_KEYS))
            raise ConfigError(f"read config {path} health.{engine}: options are {allowed}")
        try:
            _health.merge_thresholds(THRESHOLDS[engine], options.get("thresholds"))
        except ValueError as exc:
            raise ConfigError(f"read config {path} health.{engine}: {exc}") from exc
        health[engine] = options
    metrics = data.get("metrics")
    textfile_dir = metrics.get("textfile_dir") if isinstance(metrics, dict) else None
    if metrics is not None and not isinstance(textfile_dir, str):
        raise ConfigError(f"read config {path} metrics: textfile_dir (a directory) is required")
    return data


def wal_facts(conn: Any) -> dict[str, Any]:
    """Archiver and WAL receiver state (read-only; pg_monitor can read both views)."""
    with conn.cursor() as cur:
        cur.execute(_WAL_SQL)
        names = [d[0] for d in cur.description]
        row = dict(zip(names, cur.fetchone()))
    facts: dict[str, Any] = {}
    if row["archiving"]:
        facts["archive_failed_count"] = row["failed_count"]
        facts["archive_last_success"] = None if row["last_archived"] is None else float(row["last_archived"])
        facts["archive_last_failure"] = None if row["last_failed"] is None else float(row["last_failed"])
    if row["in_recovery"]:
        facts["standby_streaming"] = row["receiver"] == "streaming"
    return facts


def run_postgresql(config: dict[str, Any], options: dict[str, Any], where: str) -> tuple[dict, dict]:
    params = _backup_cli.connection_params("postgresql", config.get("postgres"), f"{where} postgres")
    thresholds = _health.merge_thresholds(THRESHOLDS["postgresql"], options.get("thresholds"))
    _postgres.require_driver()

    def connect(db: str | None) -> Any:
        return _postgres.connect(params, database=db, autocommit=True)

    facts = _pg_health.gather(connect, options.get("databases"), thresholds,
                              options.get("migration_table", "dbops_schema_history") or None)
    _query_text.shape_pg_facts(facts)
    conn = connect(None)
    try:
        facts["wal"] = wal_facts(conn)
    finally:
        conn.close()
    return facts, _pg_health_checks.evaluate_pg(facts, thresholds)


def run_mongodb(config: dict[str, Any], options: dict[str, Any], where: str) -> tuple[dict, dict]:
    params = _backup_cli.connection_params("mongodb", config.get("mongodb"), f"{where} mongodb")
    thresholds = _health.merge_thresholds(THRESHOLDS["mongodb"], options.get("thresholds"))
    client = _mongodb.connect(params)
    try:
        facts = _mongodb_health.gather(client, options.get("databases"), thresholds)
    except _mongodb.pymongo.errors.PyMongoError as exc:
        raise DbopsError(f"read health facts from MongoDB: {_mongodb.error_text(exc)}") from None
    finally:
        client.close()
    return facts, _mongodb_health_checks.evaluate_mongodb(facts, thresholds)


RUNNERS = {"postgresql": run_postgresql, "mongodb": run_mongodb}


def execute(config: dict[str, Any], path: str, log: dict[str, Any]) -> bool:
    ok = True
    log["engines"] = {}
    for engine, options in config["health"].items():
        entry: dict[str, Any] = {}
        facts = report = None
        try:
            facts, report = RUNNERS[engine](config, options, path)
            entry.update(ok=True, score=report["score"], status=report["status"],
                         findings=len([f for f in report["findings"] if f["severity"] != "info"]))
        except ConfigError:
            raise
        except DbopsError as exc:
            entry.update(ok=False, error=exc.msg)
            ok = False
        log["engines"][engine] = entry
        metrics = config.get("metrics")
        if metrics:
            text = _metrics.render(_health_metrics.health_metrics(engine, facts, report, time.time()))
            try:
                _metrics.write_textfile(metrics["textfile_dir"], f"dbops_health_{engine}.prom", text)
            except DbopsError as exc:
                log.setdefault("metrics_error", exc.msg)
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dbops-backup health", description="Scheduled health run")
    parser.add_argument("--config", required=True, help="config file (JSON, or YAML with PyYAML)")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    started = time.monotonic()
    log: dict[str, Any] = {"time": _backup_catalog.format_time(_backup_catalog.utcnow()),
                           "host": socket.gethostname(), "program": "dbops-health", "command": "health"}
    config: dict[str, Any] = {}
    try:
        config = load_config(args.config)
        code = EXIT_OK if execute(config, args.config, log) else EXIT_FAILED
    except ConfigError as exc:
        log["error"] = exc.msg
        code = EXIT_USAGE
    except DbopsError as exc:
        log["error"] = exc.msg
        code = EXIT_FAILED
    except Exception as exc:  # a crash still leaves its JSON line
        log["error"] = f"run dbops-health: unexpected {type(exc).__name__}: {exc}"
        code = EXIT_FAILED
    log["ok"] = code == EXIT_OK
    log["duration_s"] = round(time.monotonic() - started, 3)
    line = json.dumps(log, sort_keys=True, default=str)
    sys.stdout.write(line + "\n")
    sys.stdout.flush()
    if config.get("log_file"):
        try:
            fd = os.open(config["log_file"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
            with os.fdopen(fd, "a", encoding="utf-8") as handle:
                handle.write(line + "\n")
        except OSError:
            code = code or EXIT_FAILED
    return code
