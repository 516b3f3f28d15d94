# Copyright: dbops.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Backup operations shared by the modules and the ``dbops-backup`` command.

Each function takes plain parameters, returns a result dict (what the modules return and the CLI
logs) and raises :class:`DbopsError` on failure. ``check=True`` computes the plan and changes
nothing.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from ansible_collections.dbops.datastores.plugins.module_utils import _backup_catalog as catalog
from ansible_collections.dbops.datastores.plugins.module_utils import _mongodb_backup, _pg_backup
from ansible_collections.dbops.datastores.plugins.module_utils import _retention as retention
from ansible_collections.dbops.datastores.plugins.module_utils._errors import DbopsError, WrongNodeError

ENGINE_NAMES = {"postgresql": "PostgreSQL", "mongodb": "MongoDB"}


# --------------------------------------------------------------------------- engine adapters

def _pg_plan(options: dict[str, Any]) -> dict[str, Any]:
    _pg_backup.validate_options(options)
    return _pg_backup.plan_backup(options)


def _mongo_plan(options: dict[str, Any]) -> dict[str, Any]:
    tool_path = _mongodb_backup.choose_tool(options.get("tool") or "auto", options.get("mongodump_path"))
    return _mongodb_backup.plan_backup(options, tool_path)


def _mongo_validate(options: dict[str, Any]) -> None:
    """Nothing beyond the option spec (types and choices) to check for a MongoDB backup."""


def _pg_restore_test(params: dict[str, Any], backup: catalog.Backup, scratch: str,
                     jobs: int) -> dict[str, Any]:
    return _pg_backup.restore_test(params, backup.manifest, backup.path, scratch, jobs=jobs)


def _mongo_restore_test(params: dict[str, Any], backup: catalog.Backup, scratch: str,
                        jobs: int) -> dict[str, Any]:
    return _mongodb_backup.restore_test(params, backup.manifest, backup.path, scratch)


@dataclass(frozen=True)
class Engine:
    """What the backup operations need from one engine, behind one interface."""

    option_spec: Callable[[], dict[str, Any]]  # the backup module's options = dbops-backup job keys
    validate: Callable[[dict[str, Any]], None]  # rules across options, beyond the spec
    plan: Callable[[dict[str, Any]], dict[str, Any]]  # validate and describe, no connection
    preflight: Callable[[dict[str, Any], dict[str, Any]], None]  # read-only: login, database, node
    backup: Callable[[dict[str, Any], str, dict[str, Any]], dict[str, Any]]  # returns the manifest
    restore_test: Callable[[dict[str, Any], catalog.Backup, str, int], dict[str, Any]]
    restore: Callable[..., dict[str, Any]]  # (params, backup, target, options, *, result, check)


def retention_option_spec() -> dict[str, Any]:
    """The retention policy options of backup_retention, also read from dbops-backup's config."""
    spec: dict[str, Any] = {f"keep_{rule}": {"type": "int", "default": 0} for rule in retention.RULES}
    spec.update(keep_within={"type": "str"}, partial_max_age={"type": "str", "default": "1d"})
    return spec


def summary(backup: catalog.Backup, now: dt.datetime | None = None) -> dict[str, Any]:
    """What the modules report about one backup (``age_s`` is negative for one dated in the future)."""
    now = now or catalog.utcnow()
    m = backup.manifest
    state = catalog.verification_state(backup)
    return {
        "id": backup.id,
        "path": backup.path,
        "engine": backup.engine,
        "database": backup.database,
        "format": m.get("format"),
        "started_at": m.get("started_at"),
        "finished_at": m.get("finished_at"),
        "duration_s": m.get("duration_s"),
        "size": backup.size,
        "age_s": round((now - backup.started_at).total_seconds(), 1),
        "future": catalog.is_future(backup.started_at, now),
        "server_version": m.get("server_version"),
        "source": m.get("source"),
        "tool": (m.get("tool") or {}).get("name"),
        "counts": m.get("counts", {}),
        "verification": state["state"],
        "last_verification": state["last"],
        "malformed_verifications": state["malformed"],
    }


def future_warnings(future: list[str]) -> list[str]:
    """The warning naming backups dated in the future (none when there are none)."""
    if not future:
        return []
    tolerance = catalog.format_age(catalog.FUTURE_TOLERANCE.total_seconds())
    return [f"{len(future)} backup(s) dated more than {tolerance} in the future (taken while the host clock "
            f"was wrong?): {', '.join(future)}. They never count as fresh or satisfy min_interval, and "
            "retention keeps them; check them and remove them by hand when they are no longer wanted"]


# --------------------------------------------------------------------------- backup

def backup(engine: str, params: dict[str, Any], root: str, options: dict[str, Any], *,
           min_interval: Any = None, check: bool = False) -> dict[str, Any]:
    """Take a backup unless one younger than ``min_interval`` exists."""
    root = catalog.check_root(root, writable=not check)
    database = options["database"]
    warnings: list[str] = []
    if min_interval:
        interval = catalog.parse_duration(min_interval)
        cat, now = catalog.scan(root), catalog.utcnow()
        warnings = future_warnings([b.id for b in cat.future(engine, database, now)])
        latest = cat.latest(engine, database, now)
        if (latest is not None and not catalog.is_future(latest.started_at, now)
                and now - latest.started_at < interval):
            return {"changed": False, "backup": summary(latest, now),
                    "skipped_reason": f"backup {latest.id} is younger than min_interval {min_interval}",
                    **({"warnings": warnings} if warnings else {})}
    adapter = ENGINES[engine]
    plan = adapter.plan(options)
    extra = {"warnings": warnings} if warnings else {}
    if check:
        adapter.preflight(params, options)
        return {"changed": True, "plan": plan, **extra}
    manifest = adapter.backup(params, root, options)
    path = os.path.join(root, manifest["id"])
    backup_entry = catalog.Backup(id=manifest["id"], path=path, manifest=manifest)
    return {"changed": True, "plan": plan, "backup": summary(backup_entry), **extra}


# --------------------------------------------------------------------------- selection

def select_backup(cat: catalog.Catalog, backup_id: str | None, engine: str | None,
                  database: str | None) -> catalog.Backup:
    if backup_id and backup_id != "latest":
        found = cat.get(backup_id)
        if engine and found.engine != engine:
            raise DbopsError(f"use backup {backup_id}: it is a {ENGINE_NAMES[found.engine]} backup, "
                             f"not {ENGINE_NAMES[engine]}")
        if database and found.database != database:
            raise DbopsError(f"use backup {backup_id}: it is a backup of database {found.database}, not of"
                             f" {database} (the source database given); nothing was changed")
        return found
    latest = cat.latest(engine, database)
    if latest is None:
        parts = [ENGINE_NAMES[engine]] if engine else []
        parts += [f"backup of database {database}"] if database else ["backup"]
        raise DbopsError(f"find the latest backup in {cat.root}: there is no complete {' '.join(parts)}")
    return latest


def scratch_name(backup_id: str) -> str:
    return ("dbops_verify_" + catalog.sanitize(backup_id).lower().replace("-", "_"))[:63]


def compare_counts(expected: dict[str, int], actual: dict[str, int]) -> list[str]:
    problems = []
    for name, count in sorted(expected.items()):
        got = actual.get(name)
        if got is None:
            problems.append(f"{name}: missing after restore (expected {count})")
        elif got != count:
            problems.append(f"{name}: {got} after restore, manifest says {count}")
    return problems


# --------------------------------------------------------------------------- verify

def verify(root: str, *, backup_id: str | None = None, engine: str | None = None,
           database: str | None = None, restore_test: bool = False,
           connections: dict[str, dict[str, Any]] | None = None, scratch_database: str | None = None,
           jobs: int = 1, min_interval: Any = None, check: bool = False) -> dict[str, Any]:
    """Check files against the manifest and optionally restore-test; record the result."""
    with catalog.readers_lock(catalog.check_root(root), exclusive=False):
        return _verify(root, backup_id=backup_id, engine=engine, database=database, restore_test=restore_test,
                       connections=connections, scratch_database=scratch_database, jobs=jobs,
                       min_interval=min_interval, check=check)


def _verify(root: str, *, backup_id: str | None, engine: str | None, database: str | None,
            restore_test: bool, connections: dict[str, dict[str, Any]] | None, scratch_database: str | None,
            jobs: int, min_interval: Any, check: bool) -> dict[str, Any]:
    cat = catalog.scan(root)
    chosen = select_backup(cat, backup_id, engine, database)
    kind = "restore" if restore_test else "files"
    if min_interval:
        interval = catalog.parse_duration(min_interval)
        now = catalog.utcnow()
        for record in reversed(chosen.verifications()):
            if record["ok"] and (record.get("kind") == kind or record.get("kind") == "restore"):
                verified_at = catalog.parse_time(record["time"])
                if not catalog.is_future(verified_at, now) and now - verified_at < interval:
                    return {"changed": False, "ok": True, "backup": summary(chosen), "verification": record,
                            "skipped_reason":
                                f"verified at {record['time']}, within min_interval {min_interval}"}
                break
    scratch = scratch_database or scratch_name(chosen.id)
    started = catalog.utcnow()
    problems = catalog.verify_files(chosen)
    record: dict[str, Any] = {"time": catalog.format_time(started), "kind": kind, "files_ok": not problems,
                              "problems": problems}
    if restore_test and check:
        record["plan"] = f"restore {chosen.id} into scratch database {scratch}, compare counts, drop it"
    elif restore_test and not problems:
        params = (connections or {}).get(chosen.engine)
        if params is None:
            raise DbopsError(f"restore-test backup {chosen.id}: no {ENGINE_NAMES[chosen.engine]} connection "
                             "options given")
        try:
            result = ENGINES[chosen.engine].restore_test(params, chosen, scratch, jobs)
        except WrongNodeError as exc:
            # A standby cannot restore: the files are checked, the restore test is left to a
            # writable server (docs/backups.md), and the record says so.
            record.update(kind="files", restore_test_skipped=exc.msg)
        else:
            mismatches = compare_counts(chosen.manifest.get("counts", {}), result["counts"])
            problems.extend(mismatches)
            record.update(scratch_database=scratch, rto_s=result["rto_s"], counts_ok=not mismatches,
                          restored_counts=result["counts"])
    record["ok"] = not problems
    record["duration_s"] = round((catalog.utcnow() - started).total_seconds(), 3)
    if not check:
        catalog.record_verification(chosen, record)
    result = {"changed": True, "ok": record["ok"], "backup": summary(chosen), "verification": record}
    if problems:
        raise DbopsError(f"verify backup {chosen.id}: " + "; ".join(problems[:5]), **result)
    return result


# --------------------------------------------------------------------------- retention

def policy_from(options: dict[str, Any]) -> retention.Policy:
    within = options.get("keep_within")
    policy = retention.Policy(
        keep_last=int(options.get("keep_last") or 0),
        keep_hourly=int(options.get("keep_hourly") or 0),
        keep_daily=int(options.get("keep_daily") or 0),
        keep_weekly=int(options.get("keep_weekly") or 0),
        keep_monthly=int(options.get("keep_monthly") or 0),
        keep_yearly=int(options.get("keep_yearly") or 0),
        keep_within=catalog.parse_duration(within) if within else None,
    )
    problems = policy.problems()
    if problems:
        raise DbopsError("apply retention policy: " + "; ".join(problems))
    return policy


def apply_retention(root: str, options: dict[str, Any], *, engine: str | None = None,
                    database: str | None = None, partial_max_age: Any = "1d",
                    check: bool = False) -> dict[str, Any]:
    """Decide keep/remove per engine+database and remove (outside check mode)."""
    policy = policy_from(options)
    cat = catalog.scan(root)
    now = catalog.utcnow()
    chosen = cat.select(engine, database)
    by_id = {b.id: b for b in chosen}
    items = [retention.Item(b.id, (b.engine, b.database), b.started_at, catalog.is_future(b.started_at, now))
             for b in chosen]
    decisions = retention.decide(items, policy, now)
    future = [i.id for i in items if i.future]
    max_age = catalog.parse_duration(partial_max_age)
    partial_infos = [(p.name, p.started_at, p.is_active()) for p in cat.partials
                     if (engine is None or p.marker.get("engine") == engine)
                     and (database is None or p.marker.get("database") == database)]
    stale = retention.stale_partials(partial_infos, now, max_age)
    report = [{"id": d.id, "engine": d.group[0], "database": d.group[1],
               "started_at": catalog.format_time(d.time), "action": "keep" if d.keep else "remove",
               "reasons": d.reasons, "size": by_id[d.id].size} for d in decisions]
    to_remove = [d.id for d in decisions if not d.keep]
    removed: list[str] = []
    removed_partials: list[str] = []
    if not check and (to_remove or stale):
        with catalog.readers_lock(cat.root, exclusive=True):
            for backup_id in to_remove:
                catalog.remove_entry(cat.root, by_id[backup_id].path)
                removed.append(backup_id)
            for name in stale:
                catalog.remove_entry(cat.root, os.path.join(cat.root, name))
                removed_partials.append(name)
    result = {
        "changed": bool(to_remove or stale),
        "decisions": report,
        "remove": to_remove,
        "keep": [d.id for d in decisions if d.keep],
        "removed": removed,
        "stale_partials": stale,
        "removed_partials": removed_partials,
        "active_partials": [name for name, _t, active in partial_infos if active],
        "ignored": cat.ignored,
        "ignored_reasons": cat.ignored_reasons,
        "future": future,
        "freed_bytes": sum(by_id[i].size for i in to_remove) if not check else 0,
    }
    warnings = future_warnings(future)
    if warnings:
        result["warnings"] = warnings
    return result


# --------------------------------------------------------------------------- info

def info(root: str, *, engine: str | None = None, database: str | None = None,
         max_age: Any = None) -> dict[str, Any]:
    """The catalog, per engine and database the newest backup not dated in the future (``latest``;
    the newest of those when all are), and with ``max_age`` whether any database lacks a fresh one."""
    cat = catalog.scan(root)
    now = catalog.utcnow()
    chosen = sorted(cat.select(engine, database), key=lambda b: (b.started_at, b.id), reverse=True)
    backups = [summary(b, now) for b in chosen]
    by_id = {entry["id"]: entry for entry in backups}
    groups: dict[tuple[str, str], dict[str, Any]] = {}
    for backup in catalog.newest_first(chosen, now):
        entry = by_id[backup.id]
        key = (entry["engine"], entry["database"])
        group = groups.setdefault(key, {"engine": key[0], "database": key[1], "count": 0, "size": 0,
                                        "latest": entry["id"], "latest_age_s": entry["age_s"],
                                        "latest_verified": None, "future": []})
        group["count"] += 1
        group["size"] += entry["size"]
        if entry["future"]:
            group["future"].append(entry["id"])
        if entry["verification"] == "verified" and group["latest_verified"] is None:
            group["latest_verified"] = entry["id"]
    future = [b["id"] for b in backups if b["future"]]
    result: dict[str, Any] = {
        "changed": False,
        "root": cat.root,
        "backups": backups,
        "groups": sorted(groups.values(), key=lambda g: (g["engine"], g["database"])),
        "partials": [{"name": p.name, "started_at": catalog.format_time(p.started_at),
                      "active": p.is_active()} for p in cat.partials],
        "ignored": cat.ignored,
        "ignored_reasons": cat.ignored_reasons,
        "future": future,
        "total_size": sum(b["size"] for b in backups),
        "newest_age_s": min((b["age_s"] for b in backups if not b["future"]), default=None),
    }
    warnings = future_warnings(future)
    if warnings:
        result["warnings"] = warnings
    if max_age is not None:
        limit = catalog.parse_duration(max_age).total_seconds()
        stale = [reason for reason in (_stale_reason(g, limit) for g in result["groups"]) if reason]
        if not backups:
            what = "/".join(x for x in (engine, database) if x) or "any database"
            stale.append(f"no complete backup of {what}")
        result["stale"] = bool(stale)
        result["stale_reasons"] = stale
    return result


def _stale_reason(group: dict[str, Any], limit: float) -> str | None:
    """Why an info group has no fresh backup (None when it has one)."""
    what = f"{group['engine']}/{group['database']}"
    if group["latest"] in group["future"]:
        return (f"{what} has only backups dated in the future ({', '.join(group['future'])}), "
                "none counts as fresh")
    if group["latest_age_s"] > limit:
        return f"{what} newest backup {group['latest']} is {catalog.format_age(group['latest_age_s'])} old"
    return None


# --------------------------------------------------------------------------- restore

def restore(engine: str, params: dict[str, Any], root: str, options: dict[str, Any], *,
            check: bool = False) -> dict[str, Any]:
    """Verify checksums, then restore into ``options['database']`` (default: the source name)."""
    with catalog.readers_lock(catalog.check_root(root), exclusive=False):
        return _restore(engine, params, root, options, check=check)


def _restore(engine: str, params: dict[str, Any], root: str, options: dict[str, Any], *,
             check: bool) -> dict[str, Any]:
    cat = catalog.scan(root)
    chosen = select_backup(cat, options.get("backup"), engine, options.get("source_database"))
    catalog.require_intact(chosen)
    target = options.get("database") or chosen.database
    result: dict[str, Any] = {"backup": summary(chosen), "database": target, "restored": False}
    return ENGINES[engine].restore(params, chosen, target, options, result=result, check=check)


def _restore_pg(params: dict[str, Any], chosen: catalog.Backup, target: str, options: dict[str, Any], *,
                result: dict[str, Any], check: bool) -> dict[str, Any]:
    fmt = chosen.manifest["format"]
    if options.get("clean") and fmt == "plain":
        raise DbopsError(f"restore backup {chosen.id}: clean is not possible with a plain-format dump "
                         "(restore into a new database with create: true)")
    if (options.get("jobs") or 1) > 1 and fmt == "plain":
        raise DbopsError(f"restore backup {chosen.id}: jobs > 1 needs a custom or directory-format dump")
    conn = _pg_backup.maintenance_connect(params)
    try:
        exists = _pg_backup.database_exists(conn, target)
        commands: list[str] = []
        owner = None
        if not exists:
            if not options.get("create"):
                raise DbopsError(f"restore backup {chosen.id} into PostgreSQL database {target}: "
                                 "the database does not exist (set create: true)")
            owner = _pg_backup.owner_for_restore(conn, chosen.manifest)
            owner_clause = f" OWNER {owner}" if owner else ""
            commands.append(f"CREATE DATABASE {target} TEMPLATE template0{owner_clause}")
        elif not options.get("clean") and not _pg_backup.database_is_empty(params, target):
            result.update(changed=False, skipped_reason=f"database {target} is not empty; set clean: true "
                                                        "to replace its objects with the backup's")
            return result
        tool = "psql" if fmt == "plain" else "pg_restore"
        cmd = _pg_backup.restore_command(chosen.manifest, chosen.path, target, options, tool)
        commands.append(" ".join(cmd))
        result.update(changed=True, commands=commands)
        if check:
            return result
        facts = _pg_backup.server_facts(conn)
        _pg_backup.restore_tool(chosen.manifest, options.get("bin_dir"), facts["server_major"])
        started = catalog.utcnow()
        if not exists:
            _pg_backup.create_database(conn, target, owner)
        with _dropped_on_failure(not exists, target, lambda: _pg_backup.drop_database(conn, target)):
            _pg_backup.run_restore(params, chosen.manifest, chosen.path, target, options=options,
                                   server_major=facts["server_major"])
            counts = _pg_backup.counts_in(params, target)
            return _finish_restore(chosen, target, counts, started, result)
    finally:
        conn.close()


def _restore_mongo(params: dict[str, Any], chosen: catalog.Backup, target: str, options: dict[str, Any], *,
                   result: dict[str, Any], check: bool) -> dict[str, Any]:
    from ansible_collections.dbops.datastores.plugins.module_utils import _mongodb  # noqa: PLC0415

    client = _mongodb.connect(params)
    try:
        collections = client[target].list_collection_names()
        created = not collections  # a database exists only with collections
        if not options.get("clean") and not _mongodb_backup.only_system_collections(collections):
            result.update(changed=False, skipped_reason=f"database {target} is not empty; set clean: true "
                                                        "to drop and restore the backup's collections")
            return result
        tool_path = _mongodb_backup.choose_tool(options.get("tool") or "auto",
                                                options.get("mongorestore_path"), "mongorestore")
        how = f"mongorestore ({tool_path})" if tool_path else "native restore (pymongo raw BSON)"
        drop = " dropping existing collections first" if options.get("clean") else ""
        result.update(changed=True, commands=[f"{how} of {chosen.id} into {target}{drop}"])
        if check:
            return result
        started = catalog.utcnow()
        with _dropped_on_failure(created, target, lambda: client.drop_database(target)):
            _mongodb_backup.restore(params, chosen.manifest, chosen.path, target, options=options,
                                    client=client)
            counts = _mongodb_backup.counts_in(client, target)
            return _finish_restore(chosen, target, counts, started, result)
    finally:
        client.close()


@contextlib.contextmanager
def _dropped_on_failure(created: bool, target: str, drop: Callable[[], None]) -> Iterator[None]:
    """Run a restore into ``target``; when it fails and this run ``created`` the database, drop it, so
    that a re-run does not find a half-restored database and skip it as "not empty". The DbopsError
    raised then says whether the drop worked (``database_dropped``); other errors pass unchanged."""
    try:
        yield
    except BaseException as exc:
        if not created:
            raise
        try:
            drop()
        except Exception as drop_exc:  # psycopg2 / pymongo errors, a lost connection
            cause = (drop_exc.msg if isinstance(drop_exc, DbopsError)
                     else str(drop_exc).strip() or type(drop_exc).__name__)
            note = (f"; the database {target} this run created could not be dropped ({cause}): it is "
                    "incomplete and must be dropped by hand")
            dropped = False
        else:
            note = f"; the database {target} this run created was dropped"
            dropped = True
        if not isinstance(exc, DbopsError):
            raise
        raise DbopsError(exc.msg + note, **{**exc.details, "database_dropped": dropped}) from exc


def _finish_restore(chosen: catalog.Backup, target: str, counts: dict[str, int], started: dt.datetime,
                    result: dict[str, Any]) -> dict[str, Any]:
    mismatches = compare_counts(chosen.manifest.get("counts", {}), counts)
    result.update(restored=True, duration_s=round((catalog.utcnow() - started).total_seconds(), 3),
                  counts=counts)
    if mismatches:
        raise DbopsError(f"restore backup {chosen.id} into {target}: counts differ from the manifest: "
                         + "; ".join(mismatches[:5]), **result)
    return result


# --------------------------------------------------------------------------- the engines

ENGINES: dict[str, Engine] = {
    "postgresql": Engine(
        option_spec=_pg_backup.backup_option_spec, validate=_pg_backup.validate_options, plan=_pg_plan,
        preflight=_pg_backup.preflight,
        backup=_pg_backup.backup, restore_test=_pg_restore_test, restore=_restore_pg),
    "mongodb": Engine(
        option_spec=_mongodb_backup.backup_option_spec, validate=_mongo_validate, plan=_mongo_plan,
        preflight=lambda params, options: _mongodb_backup.require_database(params, options["database"]),
        backup=_mongodb_backup.backup,
        restore_test=_mongo_restore_test, restore=_restore_mongo),
}
