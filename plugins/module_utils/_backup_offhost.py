# Copyright: dbops.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The backup catalog and its off-host copies: catch-up copy, off-host retention, the newest copy
per database, and restore from the off-host copy (shared by dbops-backup and the modules).

The restic layer is ``_offhost.py``; this file decides what to copy, keep and fetch.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
from typing import Any

from ansible_collections.dbops.datastores.plugins.module_utils import _backup_catalog as catalog
from ansible_collections.dbops.datastores.plugins.module_utils import _backup_ops as ops
from ansible_collections.dbops.datastores.plugins.module_utils import _offhost
from ansible_collections.dbops.datastores.plugins.module_utils._errors import DbopsError


def _list_or_init(settings: dict[str, Any]) -> tuple[list[_offhost.Copy], bool]:
    """The copies in the repository, creating the repository when there is none yet."""
    try:
        return _offhost.list_copies(settings), False
    except DbopsError as exc:
        if "no repository there yet" not in exc.msg:
            raise
    _offhost.init_repository(settings)
    return [], True


def copy_missing(root: str, settings: dict[str, Any],
                 selected: set[tuple[str, str]] | None = None) -> dict[str, Any]:
    """Copy every complete local backup (of ``selected`` engine/database pairs) not yet off-host,
    oldest first. A backup whose files do not match its manifest is reported, never copied."""
    root = catalog.check_root(root)
    copies, initialised = _list_or_init(settings)
    copied: list[dict[str, Any]] = []
    failed: list[dict[str, Any]] = []
    with catalog.readers_lock(root, exclusive=False):  # retention does not remove what is being copied
        backups = [b for b in catalog.scan(root).backups
                   if selected is None or (b.engine, b.database) in selected]
        for backup in _offhost.missing(backups, copies):
            try:
                copied.append(_offhost.copy_backup(settings, backup))
            except DbopsError as exc:
                failed.append({"id": backup.id, "engine": backup.engine, "database": backup.database,
                               "error": exc.msg})
    if copied:
        copies = _offhost.list_copies(settings)
    return {"ok": not failed, "repository": settings["repository"], "initialised": initialised,
            "copied": copied, "failed": failed, "groups": _offhost.newest(copies)}


def apply_retention(settings: dict[str, Any], local_retention: dict[str, Any] | None, *,
                    check: bool = False) -> dict[str, Any]:
    """The local GFS policy (each keep_* replaced by the off-host one when set) applied to the copies."""
    options = _offhost.policy_options(settings, local_retention)
    result: dict[str, Any] = {"ok": True, "dry_run": check, "policy": options, "remove": [], "removed": [],
                              "kept": 0}
    if not options:
        result["skipped_reason"] = "no retention policy (local retention or off-host keep_*) is configured"
        return result
    policy = ops.policy_from(options)
    copies = _offhost.list_copies(settings)
    by_snapshot = {c.snapshot: c for c in copies}
    decisions = _offhost.plan_retention(copies, policy)
    remove = [by_snapshot[d.id] for d in decisions if not d.keep]
    result["remove"] = [c.backup_id for c in remove]
    result["kept"] = len(decisions) - len(remove)
    if not check and remove:
        _offhost.forget(settings, [c.snapshot for c in remove])
        result["removed"] = list(result["remove"])
    return result


def info(settings: dict[str, Any], max_age: Any = None) -> dict[str, Any]:
    """The newest off-host copy of each database and its age (stale ones with ``max_age``)."""
    copies = _offhost.list_copies(settings, missing_ok=True)
    result: dict[str, Any] = {"repository": settings["repository"], "groups": _offhost.newest(copies),
                              "count": len(copies)}
    if max_age is not None:
        limit = catalog.parse_duration(max_age).total_seconds()
        result["stale_reasons"] = [
            f"{g['engine']}/{g['database']} newest off-host copy {g['latest']} is "
            f"{catalog.format_age(g['latest_age_s'])} old"
            for g in result["groups"] if g["latest_age_s"] > limit]
    return result


def _fetch_marker(path: str, backup_id: str, copy: _offhost.Copy) -> None:
    catalog.write_json_atomic(os.path.join(path, catalog.MARKER), {
        "kind": catalog.MANIFEST_KIND, "id": backup_id, "engine": copy.engine, "database": copy.database,
        "pid": os.getpid(), "host": socket.gethostname(), "started_at": catalog.format_time(catalog.utcnow()),
        "fetching_from": copy.snapshot})


def fetch(root: str, settings: dict[str, Any], backup_id: str | None, engine: str | None,
          database: str | None, *, check: bool = False) -> dict[str, Any]:
    """Bring an off-host copy back into the backup root, checked before it is published.

    The snapshot is restored into ``<root>/<id>.partial/`` (a partial: never complete-looking,
    removed by retention when a killed fetch leaves it). Only when the restored directory holds a
    manifest for that id and every file matches it is it renamed to ``<root>/<id>``. When a backup
    with that id is already in the root, it is used as it is (its checksums are checked by the restore).
    """
    root = catalog.check_root(root, writable=not check)
    copy = _offhost.select_copy(_offhost.list_copies(settings), backup_id, engine, database,
                                settings["repository"])
    final = os.path.join(root, copy.backup_id)
    result: dict[str, Any] = {"repository": settings["repository"], "id": copy.backup_id,
                              "snapshot": copy.short_id, "copy": copy.summary(), "fetched": False}
    if os.path.lexists(final):
        result["skipped_reason"] = f"{final} exists: the local backup is used"
        return result
    if check:
        result["plan"] = (f"fetch snapshot {copy.short_id} ({copy.backup_id}) from {settings['repository']} "
                          f"into {final}, check it against its manifest")
        return result
    action = f"fetch backup {copy.backup_id} from off-host repository {settings['repository']}"
    staging = final + catalog.PARTIAL_SUFFIX
    try:
        os.mkdir(staging, 0o700)
    except OSError as exc:
        raise DbopsError(f"{action}: create {staging}: {exc.strerror or exc}") from exc
    try:
        _fetch_marker(staging, copy.backup_id, copy)
        _offhost.restore_copy(settings, copy, staging)
        fetched = [b for b in catalog.scan(staging).backups if b.id == copy.backup_id]
        if not fetched:
            raise DbopsError(f"{action}: the copy holds no valid manifest for {copy.backup_id}")
        problems = catalog.verify_files(fetched[0])
        if problems:
            raise DbopsError(f"{action}: the copy does not match its manifest, not used: "
                             + "; ".join(problems[:5]), problems=problems)
        os.rename(fetched[0].path, final)
        catalog.fsync_dir(root)
    finally:
        with contextlib.suppress(OSError):
            shutil.rmtree(staging)
    result["fetched"] = True
    return result


SOURCES = ("local", "offhost")


def restore_option_spec() -> dict[str, Any]:
    """The restore modules' ``source`` and ``offhost`` options (the same for both engines)."""
    return {"source": {"type": "str", "default": "local", "choices": list(SOURCES)},
            "offhost": {"type": "dict", "options": _offhost.offhost_option_spec()}}


RESTORE_REQUIRED_IF = [("source", "offhost", ["offhost"])]


def restore_from_source(engine: str, params: dict[str, Any], root: str, options: dict[str, Any], *,
                        check: bool = False) -> dict[str, Any]:
    """A restore module's restore: from the backup root (``source=local``) or from the off-host copy
    (``source=offhost``, with the module's ``offhost`` settings)."""
    if params.get("source") == "offhost":
        return restore(engine, params, root, options, _offhost.settings_from(params["offhost"]), check=check)
    return ops.restore(engine, params, root, options, check=check)


def restore(engine: str, params: dict[str, Any], root: str, options: dict[str, Any],
            settings: dict[str, Any], *, check: bool = False) -> dict[str, Any]:
    """Fetch the chosen backup from the off-host copy when it is not in the root, then restore it
    exactly as a local one (checksums against the manifest first)."""
    fetched = fetch(root, settings, options.get("backup"), engine, options.get("source_database"),
                    check=check)
    if check and "plan" in fetched:
        target = options.get("database") or fetched["copy"]["database"]
        return {"changed": True, "restored": False, "database": target, "backup": fetched["copy"],
                "offhost": fetched,
                "commands": [fetched["plan"], f"restore {fetched['id']} into {target} as a local backup"]}
    result = ops.restore(engine, params, root, {**options, "backup": fetched["id"]}, check=check)
    result["offhost"] = fetched
    result["changed"] = bool(result.get("changed")) or fetched["fetched"]
    return result
