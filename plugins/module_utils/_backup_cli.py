# Copyright: dbops.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""``dbops-backup``: the scheduled (cron) entry point, running the same code as the modules.

    dbops-backup run --config FILE          backups, verification, retention as configured
    dbops-backup backup --config FILE       only the backups
    dbops-backup verify --config FILE [--restore-test]
        run, backup and verify take --only ENGINE:DATABASE (repeatable) to act on some jobs only;
        run and backup take --skip-missing (a database that does not exist yet is skipped, not failed),
        --ignore-min-interval (back up now even when a job's min_interval says a recent one exists),
        --ignore-from (back up on this node whatever the job's ``from`` says; a job whose
        ``from`` names another node of a replicated cluster is skipped, the server is asked)
        and --no-offhost (no off-host copy this time: the next run catches up)
    dbops-backup retention --config FILE [--dry-run]
    dbops-backup info --config FILE [--max-age 24h]
    dbops-backup copy --config FILE         only the off-host copy of what is not off-host yet

With an ``offhost`` section, run and backup copy every complete backup not yet in the off-host
repository after the local backups (a failed copy leaves the local backup in place and fails the
run), retention also applies to the off-host copies, and info reports the newest copy per database.

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
import re
import socket
import stat
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

from ansible_collections.dbops.datastores.plugins.module_utils import _backup_catalog as catalog
from ansible_collections.dbops.datastores.plugins.module_utils import (
    _backup_metrics,
    _backup_offhost,
    _mongodb,
    _offhost,
    _pg_backup,
    _postgres,
)
from ansible_collections.dbops.datastores.plugins.module_utils import _backup_ops as ops
from ansible_collections.dbops.datastores.plugins.module_utils._errors import (
    DatabaseMissingError,
    DbopsError,
    WrongNodeError,
)

LOCK_FILE = catalog.LOCK_FILE
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

_TOP_KEYS = {"root", "log_file", "postgres", "mongodb", "backups", "retention", "verify", "metrics", "notify",
             "offhost"}
_SECTION = {"postgresql": "postgres", "mongodb": "mongodb"}
_VERIFY_SPEC: dict[str, Any] = {
    "after_backup": {"type": "bool", "default": False},
    "restore_test": {"type": "bool", "default": False},
    "min_interval": {"type": "str"},
    "jobs": {"type": "int", "default": 1},
    "scratch_database": {"type": "str"},
}
_DURATIONS = ("min_interval", "keep_within", "partial_max_age")


class ConfigError(DbopsError):
    """The config file cannot be used."""


# --------------------------------------------------------------------------- config

def job_spec(engine: str) -> dict[str, Any]:
    """The keys of a ``backups`` entry: the backup module's own option spec plus ``engine``."""
    return {"engine": {"type": "str", "required": True, "choices": list(ops.ENGINES)},
            **ops.ENGINES[engine].option_spec()}


def _as_int(value: Any) -> Any:
    if isinstance(value, str) and re.fullmatch(r"[ \t]*-?[0-9]{1,18}[ \t]*", value):
        value = int(value)
    ok = isinstance(value, int) and not isinstance(value, bool) and abs(value) < 2**63
    return value if ok else None


def _as_str(value: Any) -> Any:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return value if isinstance(value, str) else None


_TYPES: dict[str, tuple[Callable[[Any], Any], str]] = {
    "int": (_as_int, "an integer"),
    "bool": (lambda v: v if isinstance(v, bool) else None, "true or false"),
    "str": (_as_str, "a string"),
    "path": (_as_str, "a string"),
    "list": (lambda v: v if isinstance(v, list) else None, "a list"),
    "dict": (lambda v: v if isinstance(v, dict) else None, "a mapping"),
}


def _typed(name: str, option: dict[str, Any], value: Any, where: str) -> Any:
    """``value`` checked against one option of an argument spec (type, choices), as Ansible would."""
    convert, what = _TYPES.get(option.get("type", "str"), (lambda v: v, "valid"))
    checked = convert(value)
    if checked is None:
        raise ConfigError(f"read config {where}: {name} must be {what}")
    choices = option.get("choices")
    if choices is not None and checked not in choices:
        raise ConfigError(f"read config {where}: {name} must be one of {', '.join(map(str, choices))}, "
                          f"not {str(checked)[:40]!r}")
    if name in _DURATIONS:
        try:
            catalog.parse_duration(checked)
        except DbopsError as exc:
            raise ConfigError(f"read config {where}: {name}: {exc.msg}") from exc
    return checked


def apply_spec(spec: dict[str, Any], values: Any, where: str) -> dict[str, Any]:
    """Validate ``values`` against an Ansible argument spec (the modules' own): names, aliases,
    types, choices, required options, defaults and env fallbacks."""
    if not isinstance(values, dict):
        raise ConfigError(f"read config {where}: expected a mapping")
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
        if name not in result or result[name] is None:
            if option.get("required"):
                raise ConfigError(f"read config {where}: {name} is required")
            result[name] = option.get("default")
        if result[name] is not None:
            result[name] = _typed(name, option, result[name], where)
    return result


def _connection_spec(engine: str) -> dict[str, Any]:
    return _postgres.pg_argument_spec() if engine == "postgresql" else _mongodb.mongodb_argument_spec()


def connection_params(engine: str, section: dict[str, Any] | None, where: str) -> dict[str, Any]:
    values = dict(section or {})
    password_file = values.pop("login_password_file", None)
    params = apply_spec(_connection_spec(engine), values, where)
    if password_file:
        try:
            with open(password_file, encoding="utf-8") as handle:
                params["login_password"] = handle.read().rstrip("\r\n")
        except OSError as exc:
            raise ConfigError(f"read password file {password_file}: {exc.strerror or exc}") from exc
    return params


def check_keys(values: Any, allowed: set[str], where: str) -> dict[str, Any]:
    if not isinstance(values, dict):
        raise ConfigError(f"read config {where}: expected a mapping")
    unknown = sorted(set(values) - allowed)
    if unknown:
        raise ConfigError(f"read config {where}: unknown option(s) {', '.join(unknown)}")
    return values


def check_job(job: Any, where: str) -> dict[str, Any]:
    """One ``backups`` entry validated with its engine's option spec; raises ConfigError."""
    engine = job.get("engine") if isinstance(job, dict) else None
    if not isinstance(job, dict):
        raise ConfigError(f"read config {where}: expected a mapping")
    if not isinstance(engine, str) or engine not in ops.ENGINES:
        raise ConfigError(f"read config {where}: engine must be postgresql or mongodb")
    if not job.get("database"):
        raise ConfigError(f"read config {where}: database is required")
    options = apply_spec(job_spec(engine), job, where)
    try:
        ops.ENGINES[engine].validate(options)
    except DbopsError as exc:
        raise ConfigError(f"read config {where}: {exc.msg}") from exc
    return options


def check_jobs(jobs: Any, path: str) -> list[dict[str, Any]]:
    """Every job validated up front; a bad one keeps its ``error`` (reported, the others still run)."""
    if not isinstance(jobs, list):
        raise ConfigError(f"read config {path}: backups must be a list")
    checked = []
    for n, job in enumerate(jobs):
        try:
            checked.append(check_job(job, f"{path} backups[{n}]"))
        except ConfigError as exc:
            raw = job if isinstance(job, dict) else {}
            checked.append({"engine": str(raw.get("engine")), "database": str(raw.get("database")),
                            "error": exc.msg})
    return checked


def read_config(path: str) -> tuple[Any, int]:
    """The parsed content of a JSON (or, with PyYAML installed, YAML) config file and its mode."""
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
    return data, mode


def load_config(path: str) -> dict[str, Any]:
    """Read and validate a JSON (or, with PyYAML installed, YAML) config file."""
    data, mode = read_config(path)
    config = check_keys(data, _TOP_KEYS, path)
    if not config.get("root"):
        raise ConfigError(f"read config {path}: root (the backup directory) is required")
    for engine, section in _SECTION.items():
        if (config.get(section) or {}).get("login_password") and mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ConfigError(f"read config {path}: it holds the {engine} password but is readable by other "
                              "users (chmod 600, or use login_password_file)")
    for engine, section in _SECTION.items():  # types and choices now; password files when used
        values = config.get(section) or {}
        if isinstance(values, dict):
            values = {k: v for k, v in values.items() if k != "login_password_file"}
        apply_spec(_connection_spec(engine), values, f"{path} {section}")
    config["backups"] = check_jobs(config["backups"] if config.get("backups") is not None else [], path)
    if config.get("retention") is not None:
        given = config["retention"]
        retention = apply_spec(ops.retention_option_spec(), given, f"{path} retention")
        config["retention"] = {k: v for k, v in retention.items() if k in given}
        try:
            ops.policy_from(config["retention"])
        except DbopsError as exc:
            raise ConfigError(f"read config {path} retention: {exc.msg}") from exc
    if config.get("verify") is not None:
        given = config["verify"]
        config["verify"] = {k: v for k, v in apply_spec(_VERIFY_SPEC, given, f"{path} verify").items()
                            if k in given}
    if config.get("offhost") is not None:
        config["offhost"] = check_offhost(config["offhost"], config.get("retention"), path)
    try:
        _backup_metrics.check_config(config, path)
    except DbopsError as exc:
        raise ConfigError(exc.msg) from exc
    return config


def check_offhost(values: Any, local_retention: dict[str, Any] | None, path: str) -> dict[str, Any]:
    """The ``offhost`` section checked with its option spec (the modules' ``offhost`` option)."""
    where = f"{path} offhost"
    settings = apply_spec(_offhost.offhost_option_spec(), values, where)
    try:
        settings = _offhost.settings_from(settings)
        shorter = _offhost.shorter_than_local(settings, local_retention)
        if shorter:
            raise DbopsError("off-host copies must be kept at least as long as local backups: "
                             + "; ".join(shorter))
        ops.policy_from(_offhost.policy_options(settings, local_retention) or {"keep_last": -1})
    except DbopsError as exc:
        raise ConfigError(f"read config {where}: {exc.msg}") from exc
    return settings


# --------------------------------------------------------------------------- steps

def _backup_options(job: dict[str, Any], ignore_from: bool = False) -> dict[str, Any]:
    """The module options of a validated job (defaults filled in by its spec); ``ignore_from``
    takes the backup on this node whatever node the job's ``from`` names."""
    options = {k: v for k, v in job.items() if k not in ("engine", "min_interval")}
    if ignore_from and "from" in options:
        options["from"] = "any"
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
                 ignore_min_interval: bool = False, ignore_from: bool = False) -> bool:
    ok = True
    verify_cfg = config.get("verify") or {}
    for job in select_jobs(config.get("backups") or [], only):
        entry: dict[str, Any] = {"engine": job["engine"], "database": job["database"]}
        started = time.monotonic()
        if job.get("error"):
            entry.update(ok=False, error=job["error"], duration_s=0.0)
            log.setdefault("backups", []).append(entry)
            ok = False
            continue
        try:
            result = ops.backup(job["engine"], conns[job["engine"]], config["root"],
                                _backup_options(job, ignore_from),
                                min_interval=None if ignore_min_interval else job.get("min_interval"))
            entry.update(ok=True, id=result["backup"]["id"], size=result["backup"]["size"],
                         created=result["changed"])
            if result["changed"] and verify_cfg.get("after_backup"):
                log.setdefault("verifications", []).append(
                    {"engine": job["engine"], "database": job["database"],
                     **_verify_one(config, conns, result["backup"]["id"],
                                   restore_test=verify_cfg.get("restore_test", False))})
                ok &= log["verifications"][-1]["ok"]
        except WrongNodeError as exc:  # the job belongs on another node of the cluster
            entry.update(ok=True, skipped=exc.msg, other_node=True)
        except DatabaseMissingError as exc:
            if skip_missing:
                entry.update(ok=True, skipped=exc.msg)
            else:
                entry.update(ok=False, error=exc.msg)
                ok = False
        except Exception as exc:  # one failing job is reported, the others still run
            entry.update(ok=False, error=error_message(exc))
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
        entry = {"id": result["backup"]["id"], "ok": True, "kind": record.get("kind"),
                 "rto_s": record.get("rto_s"), "skipped": "skipped_reason" in result}
        if record.get("restore_test_skipped"):
            entry["restore_test_skipped"] = record["restore_test_skipped"]
        return entry
    except DbopsError as exc:
        backup = exc.details.get("backup") or {}
        return {"id": backup.get("id", backup_id), "ok": False, "error": exc.msg}


def _other_node(config: dict[str, Any], conns: dict[str, dict[str, Any]], job: dict[str, Any]) -> str | None:
    """Why this node neither takes nor keeps a job's backups (None when it does or may): the job's
    ``from`` names another node and this node's catalog holds no backup of the job."""
    if job.get("error") or job["engine"] != "postgresql" or (job.get("from") or "primary") == "any":
        return None
    if catalog.scan(config["root"]).latest(job["engine"], job["database"]) is not None:
        return None
    try:
        conn = _pg_backup.connect(conns["postgresql"], job["database"])
    except DbopsError:
        return None  # the verification reports what is wrong
    try:
        return _pg_backup.wrong_node(job.get("from") or "primary", _pg_backup.source_node(conn))
    finally:
        conn.close()


def step_verify(config: dict[str, Any], conns: dict[str, dict[str, Any]], restore_test: bool,
                log: dict[str, Any], only: list[str] | None = None) -> bool:
    ok = True
    seen = set()
    for job in select_jobs(config.get("backups") or [], only):
        key = (job["engine"], job["database"])
        if key in seen:
            continue
        seen.add(key)
        other = _other_node(config, conns, job)
        if other:
            log.setdefault("verifications", []).append(
                {"engine": key[0], "database": key[1], "ok": True, "skipped": True, "other_node": other})
            continue
        record = {"engine": key[0], "database": key[1],
                  **_verify_one(config, conns, None, restore_test=restore_test,
                                engine=key[0], database=key[1])}
        log.setdefault("verifications", []).append(record)
        ok &= record["ok"]
    return ok


def _offhost_settings(config: dict[str, Any]) -> dict[str, Any] | None:
    settings = config.get("offhost")
    return settings if settings and settings.get("enabled") else None


def step_offhost_copy(config: dict[str, Any], log: dict[str, Any], only: list[str] | None = None) -> bool:
    """Copy what is not off-host yet (all databases, or those of ``--only``); a failure fails the run
    and leaves the local backups as they are."""
    settings = _offhost_settings(config)
    if settings is None:
        return True
    selected = None
    if only:
        selected = {(j["engine"], j["database"]) for j in select_jobs(config.get("backups") or [], only)}
    entry = log.setdefault("offhost", {})
    try:
        entry.update(_backup_offhost.copy_missing(config["root"], settings, selected))
    except DbopsError as exc:
        entry.update(ok=False, repository=settings["repository"], error=exc.msg)
        return False
    if entry["failed"]:
        entry["error"] = "; ".join(f["error"] for f in entry["failed"][:3])
    return bool(entry["ok"])


def step_offhost_retention(config: dict[str, Any], log: dict[str, Any], dry_run: bool = False) -> bool:
    settings = _offhost_settings(config)
    if settings is None:
        return True
    entry = log.setdefault("offhost", {"ok": True, "repository": settings["repository"]})
    try:
        entry["retention"] = _backup_offhost.apply_retention(settings, config.get("retention"), check=dry_run)
    except DbopsError as exc:
        entry.update(ok=False, error=exc.msg, retention={"ok": False, "error": exc.msg})
        return False
    return True


def step_offhost_info(config: dict[str, Any], log: dict[str, Any], max_age: Any) -> bool:
    settings = _offhost_settings(config)
    if settings is None:
        return True
    try:
        result = _backup_offhost.info(settings, max_age=max_age)
    except DbopsError as exc:
        log["offhost"] = {"ok": False, "repository": settings["repository"], "error": exc.msg}
        return False
    log["offhost"] = {"ok": not result.get("stale_reasons"), **result}
    return not result.get("stale_reasons")


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
    fd = catalog.open_lock_file(catalog.check_root(root), LOCK_FILE)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise DbopsError(f"lock backup root {root}: another dbops-backup run is in progress") from None
        yield
    finally:
        os.close(fd)


class _Parser(argparse.ArgumentParser):
    """A wrong command line is a ConfigError (a JSON line, exit 2), not argparse's usage text."""

    def error(self, message: str) -> Any:  # type: ignore[override]
        raise ConfigError(f"read command line: {message}")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = _Parser(prog="dbops-backup", description="Scheduled backups of dbops.datastores")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, text in (("run", "backups, verification and retention as configured"),
                       ("backup", "only the backups"), ("verify", "verify the latest backup of each job"),
                       ("retention", "apply the retention policy"), ("info", "print the catalog"),
                       ("copy", "copy the backups not yet off-host")):
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
            cmd.add_argument("--ignore-from", action="store_true",
                             help="back up on this node whatever node the job's from names")
            cmd.add_argument("--no-offhost", action="store_true",
                             help="no off-host copy in this run (the next run copies what is missing)")
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
        offhost_ok = step_offhost_info(config, log, args.max_age)
        if args.max_age:
            log["stale_reasons"] = result["stale_reasons"]
            return not result["stale"] and offhost_ok
        return offhost_ok
    if args.command == "retention":
        with run_lock(config["root"]):
            ok = step_retention(config, log, dry_run=args.dry_run)
            return step_offhost_retention(config, log, dry_run=args.dry_run) and ok
    if args.command == "copy":
        if _offhost_settings(config) is None:
            raise ConfigError(f"read config {args.config}: copy needs an enabled offhost section")
        with run_lock(config["root"]):
            return step_offhost_copy(config, log)
    select_jobs(config.get("backups") or [], args.only)  # a wrong --only fails before anything runs
    conns = _connections(config, args.config)
    with run_lock(config["root"]):
        if args.command == "verify":
            restore_test = args.restore_test
            if restore_test is None:
                restore_test = bool((config.get("verify") or {}).get("restore_test"))
            return step_verify(config, conns, restore_test, log, args.only)
        ok = step_backups(config, conns, log, only=args.only, skip_missing=args.skip_missing,
                          ignore_min_interval=args.ignore_min_interval, ignore_from=args.ignore_from)
        if not args.no_offhost:
            ok &= step_offhost_copy(config, log, args.only)  # the local backups stay whatever happens here
        if args.command == "run":
            ok &= step_retention(config, log)
            ok &= step_offhost_retention(config, log)
        return ok


def error_message(exc: BaseException) -> str:
    """The text logged for a failure: DbopsError's message, else the exception's kind and text."""
    if isinstance(exc, DbopsError):
        return exc.msg
    if isinstance(exc, OSError):
        where = f" {exc.filename}" if exc.filename else ""
        return f"unexpected error{where}: {exc.strerror or exc}"
    return f"unexpected error: {type(exc).__name__}: {exc}"


def record_failure(log: dict[str, Any], exc: BaseException) -> int:
    """Every failure of a run ends here: the error goes into the JSON line; returns the exit code."""
    log["error"] = error_message(exc)
    return EXIT_USAGE if isinstance(exc, ConfigError) else EXIT_FAILED


def secret_values(config: dict[str, Any]) -> list[str]:
    """Passwords and URI credentials of the config (from the no_log options of the engines' specs)."""
    found: list[str] = []
    for engine, section in _SECTION.items():
        try:
            params = connection_params(engine, config.get(section), section)
        except Exception:  # a broken section has been reported already; mask what is there
            params = dict(config.get(section) or {}) if isinstance(config.get(section), dict) else {}
        found += [str(params[name]) for name, option in _connection_spec(engine).items()
                  if option.get("no_log") and params.get(name)]
        found += _mongodb.secret_values(params)
    return sorted({v for v in found if v}, key=len, reverse=True)


def redact(line: str, secrets: list[str]) -> str:
    """``line`` (JSON) with every secret, raw or JSON-escaped, replaced by ``********``."""
    for value in secrets:
        for form in (value, json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1]):
            line = line.replace(form, "********")
    return line


def _emit(line: str) -> None:
    """The command's one line of output on stdout (this is a CLI, not a module)."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def write_log(line: str, log_file: str | None) -> None:
    _emit(line)
    if log_file:
        fd = os.open(log_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o640)
        with os.fdopen(fd, "a", encoding="utf-8") as handle:
            handle.write(line + "\n")


def main(argv: list[str] | None = None) -> int:
    started = time.monotonic()
    log: dict[str, Any] = {"time": catalog.format_time(catalog.utcnow()), "host": socket.gethostname(),
                           "program": "dbops-backup", "command": None}
    config: dict[str, Any] = {}
    code = EXIT_OK
    try:
        args = parse_args(sys.argv[1:] if argv is None else argv)
        log["command"] = args.command
        config = load_config(args.config)
        log["root"] = os.path.abspath(config["root"])
        ok = execute(args, config, log)
        code = EXIT_OK if ok else EXIT_FAILED
    except Exception as exc:  # every failure is one JSON line (and its failure metrics), never a traceback
        code = record_failure(log, exc)
    log["ok"] = code == EXIT_OK
    log["duration_s"] = round(time.monotonic() - started, 3)
    _backup_metrics.after_run(config, log, code)  # metrics and notification never change `code`
    line = redact(json.dumps(log, sort_keys=True, default=str), secret_values(config))
    try:
        write_log(line, config.get("log_file"))
    except OSError as exc:
        _emit(json.dumps({"program": "dbops-backup", "ok": False,
                          "error": f"write log {config.get('log_file')}: {exc.strerror or exc}"}))
        code = code or EXIT_FAILED
    return code
