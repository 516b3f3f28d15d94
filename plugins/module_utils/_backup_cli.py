# Copyright: dbops.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""``dbops-backup``: the scheduled (cron) entry point, running the same code as the modules.

    dbops-backup run --config FILE          backups, verification, retention as configured
    dbops-backup backup --config FILE       only the backups
    dbops-backup verify --config FILE [--restore-test]
        run, backup and verify take --only ENGINE:DATABASE (repeatable) to act on some jobs only;
        run and backup take --skip-missing (a database that does not exist yet is skipped, not failed)
        and --ignore-min-interval (back up now even when a job's min_interval says a recent one exists)
    dbops-backup retention --config FILE [--dry-run]
    dbops-backup info --config FILE [--max-age 24h]

Every invocation prints one JSON line (and appends it to ``log_file`` when configured) and exits
0 on success, 1 when a step failed, 2 when the command line or the config file is wrong.
The config file format is described in docs/backups.md.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import socket
import stat
import sys
import time
from collections.abc import Iterator
from typing import Any

from ansible_collections.dbops.datastores.plugins.module_utils import _backup_catalog as catalog
from ansible_collections.dbops.datastores.plugins.module_utils import _backup_ops as ops
from ansible_collections.dbops.datastores.plugins.module_utils import _mongodb, _postgres
from ansible_collections.dbops.datastores.plugins.module_utils._errors import DatabaseMissingError, DbopsError

LOCK_FILE = catalog.LOCK_FILE
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

_TOP_KEYS = {"root", "log_file", "postgres", "mongodb", "backups", "retention", "verify"}
_BACKUP_KEYS = {
    "postgresql": {"engine", "database", "format", "jobs", "compression", "globals", "bin_dir",
                   "min_interval"},
    "mongodb": {"engine", "database", "gzip", "tool", "mongodump_path", "min_interval"},
}
_RETENTION_KEYS = {"keep_last", "keep_hourly", "keep_daily", "keep_weekly", "keep_monthly", "keep_yearly",
                   "keep_within", "partial_max_age"}
_VERIFY_KEYS = {"after_backup", "restore_test", "min_interval", "jobs", "scratch_database"}
_SECTION = {"postgresql": "postgres", "mongodb": "mongodb"}


class ConfigError(DbopsError):
    """The config file cannot be used."""


# --------------------------------------------------------------------------- config

def apply_spec(spec: dict[str, Any], values: dict[str, Any], where: str) -> dict[str, Any]:
    """Validate ``values`` against an Ansible argument spec: names, aliases, defaults, env fallbacks."""
    names: dict[str, str] = {}
    for name, option in spec.items():
        names[name] = name
        for alias in option.get("aliases", []):
            names[alias] = name
    result: dict[str, Any] = {}
    for key, value in values.items():
        if key not in names:
            raise ConfigError(f"read config {where}: unknown option {key}")
        result[names[key]] = value
    for name, option in spec.items():
        if name not in result:
            fallback = option.get("fallback")
            for var in (fallback[1] if fallback else []):
                if var in os.environ:
                    result[name] = os.environ[var]
                    break
        if name not in result:
            result[name] = option.get("default")
        if result[name] is not None and option.get("type") == "int":
            try:
                result[name] = int(result[name])
            except (TypeError, ValueError) as exc:
                raise ConfigError(f"read config {where}: {name} must be an integer") from exc
        if result[name] is not None and option.get("type") == "bool" and not isinstance(result[name], bool):
            raise ConfigError(f"read config {where}: {name} must be true or false")
    return result


def connection_params(engine: str, section: dict[str, Any] | None, where: str) -> dict[str, Any]:
    values = dict(section or {})
    password_file = values.pop("login_password_file", None)
    spec = _postgres.pg_argument_spec() if engine == "postgresql" else _mongodb.mongodb_argument_spec()
    params = apply_spec(spec, values, where)
    if password_file:
        try:
            with open(password_file, encoding="utf-8") as handle:
                params["login_password"] = handle.read().rstrip("\r\n")
        except OSError as exc:
            raise ConfigError(f"read password file {password_file}: {exc.strerror or exc}") from exc
    return params


def _check_keys(values: Any, allowed: set[str], where: str) -> dict[str, Any]:
    if not isinstance(values, dict):
        raise ConfigError(f"read config {where}: expected a mapping")
    unknown = sorted(set(values) - allowed)
    if unknown:
        raise ConfigError(f"read config {where}: unknown option(s) {', '.join(unknown)}")
    return values


def _check_jobs(jobs: Any, path: str) -> None:
    if not isinstance(jobs, list):
        raise ConfigError(f"read config {path}: backups must be a list")
    for n, job in enumerate(jobs):
        engine = job.get("engine") if isinstance(job, dict) else None
        if engine not in _BACKUP_KEYS:
            raise ConfigError(f"read config {path}: backups[{n}].engine must be postgresql or mongodb")
        _check_keys(job, _BACKUP_KEYS[engine], f"{path} backups[{n}]")
        if not job.get("database"):
            raise ConfigError(f"read config {path}: backups[{n}].database is required")


def load_config(path: str) -> dict[str, Any]:
    """Read and validate a JSON (or, with PyYAML installed, YAML) config file."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
        mode = os.stat(path).st_mode
    except OSError as exc:
        raise ConfigError(f"read config {path}: {exc.strerror or exc}") from exc
    try:
        data = json.loads(text)
    except ValueError as json_error:
        try:
            import yaml  # noqa: PLC0415 - optional: JSON needs nothing beyond the standard library
        except ImportError:
            raise ConfigError(f"read config {path}: not valid JSON ({json_error})") from json_error
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"read config {path}: neither valid JSON nor YAML ({exc})") from exc
    config = _check_keys(data, _TOP_KEYS, path)
    if not config.get("root"):
        raise ConfigError(f"read config {path}: root (the backup directory) is required")
    for engine, section in _SECTION.items():
        if (config.get(section) or {}).get("login_password") and mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ConfigError(f"read config {path}: it holds the {engine} password but is readable by other "
                              "users (chmod 600, or use login_password_file)")
    _check_jobs(config.get("backups") or [], path)
    if config.get("retention") is not None:
        _check_keys(config["retention"], _RETENTION_KEYS, f"{path} retention")
        policy = {k: v for k, v in config["retention"].items() if k != "partial_max_age"}
        try:
            ops.policy_from(policy)
            catalog.parse_duration(config["retention"].get("partial_max_age", "1d"))
        except DbopsError as exc:
            raise ConfigError(f"read config {path} retention: {exc.msg}") from exc
    if config.get("verify") is not None:
        _check_keys(config["verify"], _VERIFY_KEYS, f"{path} verify")
    return config


# --------------------------------------------------------------------------- steps

def _backup_options(job: dict[str, Any]) -> dict[str, Any]:
    options = {k: v for k, v in job.items() if k not in ("engine", "min_interval")}
    if job["engine"] == "postgresql":
        options.setdefault("format", "custom")
        options.setdefault("jobs", 1)
    else:
        options.setdefault("gzip", True)
    return options


def _connections(config: dict[str, Any], path: str) -> dict[str, dict[str, Any]]:
    return {engine: connection_params(engine, config.get(section), f"{path} {section}")
            for engine, section in _SECTION.items()}


def select_jobs(jobs: list[dict[str, Any]], only: list[str] | None) -> list[dict[str, Any]]:
    """The configured jobs named by ``--only ENGINE:DATABASE`` (all of them without ``--only``)."""
    if not only:
        return list(jobs)
    wanted = []
    for item in only:
        engine, sep, database = item.partition(":")
        if not sep or engine not in _SECTION or not database:
            raise ConfigError(f"select jobs: --only {item} must be postgresql:DATABASE or mongodb:DATABASE")
        if not any(job["engine"] == engine and job["database"] == database for job in jobs):
            raise ConfigError(f"select jobs: --only {item} names no configured backup job")
        wanted.append((engine, database))
    return [job for job in jobs if (job["engine"], job["database"]) in wanted]


def step_backups(config: dict[str, Any], conns: dict[str, dict[str, Any]], log: dict[str, Any], *,
                 only: list[str] | None = None, skip_missing: bool = False,
                 ignore_min_interval: bool = False) -> bool:
    ok = True
    verify_cfg = config.get("verify") or {}
    for job in select_jobs(config.get("backups") or [], only):
        entry: dict[str, Any] = {"engine": job["engine"], "database": job["database"]}
        started = time.monotonic()
        try:
            result = ops.backup(job["engine"], conns[job["engine"]], config["root"], _backup_options(job),
                                min_interval=None if ignore_min_interval else job.get("min_interval"))
            entry.update(ok=True, id=result["backup"]["id"], size=result["backup"]["size"],
                         created=result["changed"])
            if result["changed"] and verify_cfg.get("after_backup"):
                log.setdefault("verifications", []).append(
                    _verify_one(config, conns, result["backup"]["id"],
                                restore_test=verify_cfg.get("restore_test", False)))
                ok &= log["verifications"][-1]["ok"]
        except DatabaseMissingError as exc:
            if skip_missing:
                entry.update(ok=True, skipped=exc.msg)
            else:
                entry.update(ok=False, error=exc.msg)
                ok = False
        except DbopsError as exc:
            entry.update(ok=False, error=exc.msg)
            ok = False
        entry["duration_s"] = round(time.monotonic() - started, 3)
        log.setdefault("backups", []).append(entry)
    return ok


def _verify_one(config: dict[str, Any], conns: dict[str, dict[str, Any]], backup_id: str | None, *,
                restore_test: bool, engine: str | None = None, database: str | None = None) -> dict[str, Any]:
    verify_cfg = config.get("verify") or {}
    try:
        result = ops.verify(config["root"], backup_id=backup_id, engine=engine, database=database,
                            restore_test=restore_test, connections=conns,
                            # one fixed name lets a least-privilege login write only there
                            scratch_database=verify_cfg.get("scratch_database") or None,
                            jobs=int(verify_cfg.get("jobs") or 1),
                            min_interval=verify_cfg.get("min_interval"))
        record = result["verification"]
        return {"id": result["backup"]["id"], "ok": True, "kind": record.get("kind"),
                "rto_s": record.get("rto_s"), "skipped": "skipped_reason" in result}
    except DbopsError as exc:
        backup = exc.details.get("backup") or {}
        return {"id": backup.get("id", backup_id), "ok": False, "error": exc.msg}


def step_verify(config: dict[str, Any], conns: dict[str, dict[str, Any]], restore_test: bool,
                log: dict[str, Any], only: list[str] | None = None) -> bool:
    ok = True
    seen = set()
    for job in select_jobs(config.get("backups") or [], only):
        key = (job["engine"], job["database"])
        if key in seen:
            continue
        seen.add(key)
        record = _verify_one(config, conns, None, restore_test=restore_test, engine=key[0], database=key[1])
        log.setdefault("verifications", []).append(record)
        ok &= record["ok"]
    return ok


def step_retention(config: dict[str, Any], log: dict[str, Any], dry_run: bool = False) -> bool:
    policy = dict(config.get("retention") or {})
    if not policy:
        return True
    partial_max_age = policy.pop("partial_max_age", "1d")
    try:
        result = ops.apply_retention(config["root"], policy, partial_max_age=partial_max_age, check=dry_run)
    except DbopsError as exc:
        log["retention"] = {"ok": False, "error": exc.msg}
        return False
    log["retention"] = {"ok": True, "dry_run": dry_run, "remove": result["remove"],
                        "removed": result["removed"],
                        "removed_partials": result["removed_partials"], "kept": len(result["keep"])}
    if dry_run:
        log["retention"]["decisions"] = result["decisions"]
    return True


# --------------------------------------------------------------------------- main

@contextlib.contextmanager
def run_lock(root: str) -> Iterator[None]:
    """One run per backup root at a time (cron overlaps are refused, not queued)."""
    path = os.path.join(catalog.check_root(root), LOCK_FILE)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise DbopsError(f"lock backup root {root}: another dbops-backup run is in progress") from None
        yield
    finally:
        os.close(fd)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="dbops-backup", description="Scheduled backups of dbops.datastores")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, text in (("run", "backups, verification and retention as configured"),
                       ("backup", "only the backups"), ("verify", "verify the latest backup of each job"),
                       ("retention", "apply the retention policy"), ("info", "print the catalog")):
        cmd = sub.add_parser(name, help=text)
        cmd.add_argument("--config", required=True, help="config file (JSON, or YAML with PyYAML)")
        if name in ("run", "backup", "verify"):
            cmd.add_argument("--only", action="append", metavar="ENGINE:DATABASE",
                             help="only this configured job (repeatable)")
        if name in ("run", "backup"):
            cmd.add_argument("--skip-missing", action="store_true",
                             help="skip, not fail, a database that does not exist yet")
            cmd.add_argument("--ignore-min-interval", action="store_true",
                             help="back up even when a backup younger than the job's min_interval exists")
        if name == "verify":
            cmd.add_argument("--restore-test", action="store_true", default=None,
                             help="restore into a scratch database and compare counts")
        if name == "retention":
            cmd.add_argument("--dry-run", action="store_true", help="report keep/remove, remove nothing")
        if name == "info":
            cmd.add_argument("--max-age", help="fail (exit 1) when a database's newest backup is older")
    return parser.parse_args(argv)


def execute(args: argparse.Namespace, config: dict[str, Any], log: dict[str, Any]) -> bool:
    if args.command == "info":
        result = ops.info(config["root"], max_age=args.max_age)
        log["groups"] = result["groups"]
        log["partials"] = result["partials"]
        if args.max_age:
            log["stale_reasons"] = result["stale_reasons"]
            return not result["stale"]
        return True
    if args.command == "retention":
        with run_lock(config["root"]):
            return step_retention(config, log, dry_run=args.dry_run)
    select_jobs(config.get("backups") or [], args.only)  # a wrong --only fails before anything runs
    conns = _connections(config, args.config)
    with run_lock(config["root"]):
        if args.command == "verify":
            restore_test = args.restore_test
            if restore_test is None:
                restore_test = bool((config.get("verify") or {}).get("restore_test"))
            return step_verify(config, conns, restore_test, log, args.only)
        ok = step_backups(config, conns, log, only=args.only, skip_missing=args.skip_missing,
                          ignore_min_interval=args.ignore_min_interval)
        if args.command == "run":
            ok &= step_retention(config, log)
        return ok


def _emit(line: str) -> None:
    """The command's one line of output on stdout (this is a CLI, not a module)."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def write_log(line: str, log_file: str | None) -> None:
    _emit(line)
    if log_file:
        fd = os.open(log_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        with os.fdopen(fd, "a", encoding="utf-8") as handle:
            handle.write(line + "\n")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    started = time.monotonic()
    log: dict[str, Any] = {"time": catalog.format_time(catalog.utcnow()), "host": socket.gethostname(),
                           "program": "dbops-backup", "command": args.command}
    config: dict[str, Any] = {}
    code = EXIT_OK
    try:
        config = load_config(args.config)
        log["root"] = os.path.abspath(config["root"])
        ok = execute(args, config, log)
        code = EXIT_OK if ok else EXIT_FAILED
    except ConfigError as exc:
        log["error"] = exc.msg
        code = EXIT_USAGE
    except DbopsError as exc:
        log["error"] = exc.msg
        code = EXIT_FAILED
    log["ok"] = code == EXIT_OK
    log["duration_s"] = round(time.monotonic() - started, 3)
    try:
        write_log(json.dumps(log, sort_keys=True, default=str), config.get("log_file"))
    except OSError as exc:
        _emit(json.dumps({"program": "dbops-backup", "ok": False,
                          "error": f"write log {config.get('log_file')}: {exc.strerror or exc}"}))
        code = code or EXIT_FAILED
    return code
