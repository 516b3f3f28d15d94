# Copyright: dbops.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Encrypted off-host copies of the backup catalog in a restic repository (SFTP or a local path).

Each complete backup directory ``<root>/<id>`` becomes one restic snapshot of the relative path
``<id>`` (so a restore recreates ``<id>/`` under its target), with the snapshot time set to the
backup's start and the tags ``dbops``, ``engine=<engine>``, ``database=<name, percent-encoded>``
and ``backup=<id>``. What is off-host is read from the repository (``restic snapshots --json``),
never from a local marker.

The repository password is read by restic from ``password_file`` (``RESTIC_PASSWORD_FILE``), never
passed in argv. Over SFTP, restic runs ``ssh`` through ``sftp.command`` with the configured key,
known_hosts file, ``BatchMode`` (never a prompt) and ``ConnectTimeout``, and no ssh config file.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shlex
import socket
import subprocess
import urllib.parse
from dataclasses import dataclass
from typing import Any

from ansible_collections.dbops.datastores.plugins.module_utils import _backup_catalog as catalog
from ansible_collections.dbops.datastores.plugins.module_utils import _retention as retention
from ansible_collections.dbops.datastores.plugins.module_utils._errors import DbopsError

TAG = "dbops"
KEEP_OPTIONS = (*tuple(f"keep_{rule}" for rule in retention.RULES), "keep_within")
_SFTP_SHORT = re.compile(r"^sftp:(?:(?P<user>[^@/:]+)@)?(?P<host>[^:/]+):(?P<path>.+)$")
_LIST_TIMEOUT = 600
_BACKUP_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,199}")  # what new_backup_id makes: a plain name


def offhost_option_spec() -> dict[str, Any]:
    """The ``offhost`` section of dbops-backup's config and the restore/info modules' ``offhost`` option."""
    spec: dict[str, Any] = {
        "enabled": {"type": "bool", "default": True},
        "repository": {"type": "str", "required": True},
        "password_file": {"type": "path", "required": True, "no_log": False},
        "ssh_key_file": {"type": "path"},
        "known_hosts_file": {"type": "path"},
        "connect_timeout": {"type": "int", "default": 10},
        "host": {"type": "str"},
        "cache_dir": {"type": "path"},
        "restic_bin": {"type": "path", "default": "restic"},
    }
    # keep_*: no default here; an absent one takes the local retention's value (policy_options).
    spec.update({name: {"type": "int"} for name in KEEP_OPTIONS if name != "keep_within"})
    spec["keep_within"] = {"type": "str"}
    return spec


@dataclass(frozen=True)
class Repository:
    """Where the repository is: ``kind`` is ``sftp`` or ``local``."""

    kind: str
    location: str
    user: str | None = None
    host: str | None = None
    port: int | None = None
    path: str | None = None


def parse_repository(text: str) -> Repository:
    """``sftp:user@host:/path``, ``sftp://user@host:port//path`` or an absolute local directory."""
    action = f"use off-host repository {text!r}"
    if not isinstance(text, str) or not text or any(c in text for c in "\0\n\r"):
        raise DbopsError(f"{action}: expected sftp:user@host:/path, sftp://user@host:port//path or /a/path")
    if text.startswith("sftp://"):
        parts = urllib.parse.urlsplit(text)
        try:
            port = parts.port
        except ValueError:
            raise DbopsError(f"{action}: the port is not a number between 1 and 65535") from None
        if not parts.hostname or not parts.path.startswith("/") or len(parts.path) < 2:
            raise DbopsError(f"{action}: expected sftp://user@host[:port]//absolute/path")
        return Repository("sftp", text, parts.username, parts.hostname, port, parts.path[1:] or parts.path)
    match = _SFTP_SHORT.match(text)
    if match:
        return Repository("sftp", text, match.group("user"), match.group("host"), None, match.group("path"))
    if text.startswith("sftp:"):
        raise DbopsError(f"{action}: expected sftp:user@host:/path")
    if not os.path.isabs(text):
        raise DbopsError(f"{action}: only sftp:user@host:/path, sftp://user@host:port//path or an absolute "
                         "local path are supported")
    return Repository("local", text, path=text)


def settings_from(options: dict[str, Any]) -> dict[str, Any]:
    """Validated ``offhost`` options with the snapshot host filled in (default: this host's name)."""
    parse_repository(options.get("repository"))
    timeout = options.get("connect_timeout")
    if timeout is not None and not 1 <= int(timeout) <= 300:
        raise DbopsError("use off-host repository: connect_timeout must be between 1 and 300 seconds")
    return {**options, "host": options.get("host") or socket.gethostname()}


def policy_options(offhost: dict[str, Any], local: dict[str, Any] | None) -> dict[str, Any]:
    """The off-host retention options: each keep_* from ``offhost`` when given, else the local one's."""
    local = local or {}
    merged = {name: offhost.get(name) if offhost.get(name) is not None else local.get(name)
              for name in KEEP_OPTIONS}
    return {k: v for k, v in merged.items() if v is not None}


def shorter_than_local(offhost: dict[str, Any], local: dict[str, Any] | None) -> list[str]:
    """The off-host keep_* that keep less than the local policy (a copy removed off-host while the
    local backup stays would be copied again by the next run)."""
    problems = []
    for name in KEEP_OPTIONS:
        mine, theirs = offhost.get(name), (local or {}).get(name)
        if mine is None or theirs in (None, 0, ""):
            continue
        if name == "keep_within":
            shorter = catalog.parse_duration(mine) < catalog.parse_duration(theirs)
        else:  # -1 is "no limit"
            shorter = (int(theirs) == -1 and int(mine) != -1) or -1 < int(mine) < int(theirs)
        if shorter:
            problems.append(f"{name} {mine} keeps less than the local {theirs}")
    return problems


# --------------------------------------------------------------------------- argv and environment

def ssh_command(settings: dict[str, Any], repo: Repository) -> list[str]:
    """The ssh argv restic runs for an SFTP repository (no ssh config file, never a prompt)."""
    argv = ["ssh", "-F", "none", "-o", "BatchMode=yes",
            "-o", f"ConnectTimeout={int(settings.get('connect_timeout') or 10)}",
            "-o", "ServerAliveInterval=15", "-o", "ServerAliveCountMax=4", "-o", "StrictHostKeyChecking=yes"]
    if settings.get("ssh_key_file"):
        argv += ["-i", settings["ssh_key_file"], "-o", "IdentitiesOnly=yes"]
    if settings.get("known_hosts_file"):
        argv += ["-o", f"UserKnownHostsFile={settings['known_hosts_file']}"]
    if repo.port:
        argv += ["-p", str(repo.port)]
    argv += [f"{repo.user}@{repo.host}" if repo.user else str(repo.host), "-s", "sftp"]
    return argv


def _usable_cache(path: str | None) -> bool:
    """Only a cache directory of this user: root restoring with become must not leave files the
    backup user's runs cannot replace (it runs with --no-cache then)."""
    if not path:
        return False
    try:
        return os.stat(path).st_uid == os.geteuid()
    except OSError:
        return True  # restic creates it


def restic_argv(settings: dict[str, Any], *args: str) -> list[str]:
    """restic's argv for ``args``: repository, cache, and the ssh command; never the password."""
    repo = parse_repository(settings["repository"])
    argv = [settings.get("restic_bin") or "restic", "--repo", repo.location]
    cache = settings.get("cache_dir")
    argv += ["--cache-dir", cache] if _usable_cache(cache) else ["--no-cache"]
    if repo.kind == "sftp":
        argv += ["--option", "sftp.command=" + " ".join(shlex.quote(a) for a in ssh_command(settings, repo))]
    return argv + list(args)


def restic_env(settings: dict[str, Any], base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment: no inherited RESTIC_* variable, the password file, times in UTC."""
    env = {k: v for k, v in (os.environ if base is None else base).items() if not k.startswith("RESTIC_")}
    env.update(RESTIC_PASSWORD_FILE=settings["password_file"], TZ="UTC")
    return env


def restic_error(stderr: str) -> str:
    """The useful part of restic's error output (its Fatal line and the line after, or the last line)."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    for n, line in enumerate(lines):
        if line.startswith("Fatal:"):
            text = line[len("Fatal:"):].strip()
            if n + 1 < len(lines) and lines[n + 1].startswith("Is there a repository"):
                text += " (no repository there yet)"
            return text[:500]
    return (lines[-1] if lines else "no error output")[:500]


def _check_files(settings: dict[str, Any], action: str) -> None:
    for name in ("password_file", "ssh_key_file", "known_hosts_file"):
        path = settings.get(name)
        if path and not os.access(path, os.R_OK):
            cause = "does not exist" if not os.path.lexists(path) else "is not readable by this user"
            raise DbopsError(f"{action}: {name} {path} {cause}")


def run_restic(settings: dict[str, Any], args: list[str], action: str, *, cwd: str | None = None,
               timeout: float | None = None) -> str:
    """Run restic; return stdout or raise DbopsError("<action>: <restic's reason>")."""
    _check_files(settings, action)
    argv = restic_argv(settings, *args)
    try:
        proc = subprocess.run(argv, env=restic_env(settings), cwd=cwd, stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=timeout, check=False)
    except FileNotFoundError:
        raise DbopsError(f"{action}: {argv[0]} is not installed (install the restic package)") from None
    except subprocess.TimeoutExpired:
        raise DbopsError(f"{action}: restic did not finish within {timeout:.0f}s") from None
    if proc.returncode != 0:
        reason = restic_error(proc.stderr)
        if "wrong password" in reason:
            reason += f" (password_file {settings['password_file']})"
        if "SSH_FX_FAILURE" in reason:  # SFTP (version 3) has no "disk full" status: say what it hides
            reason += (" (the SFTP server refused a write: usually a full disk or a quota on the "
                       "repository host)")
        raise DbopsError(f"{action}: {reason}", returncode=proc.returncode)
    return proc.stdout


# --------------------------------------------------------------------------- snapshots

@dataclass(frozen=True)
class Copy:
    """One off-host copy: a restic snapshot of one backup directory."""

    snapshot: str
    short_id: str
    time: dt.datetime
    engine: str
    database: str
    backup_id: str
    hostname: str

    def summary(self, now: dt.datetime | None = None) -> dict[str, Any]:
        now = now or catalog.utcnow()
        return {"id": self.backup_id, "snapshot": self.short_id, "engine": self.engine,
                "database": self.database, "started_at": catalog.format_time(self.time),
                "age_s": round((now - self.time).total_seconds(), 1), "hostname": self.hostname}


def backup_tags(engine: str, database: str, backup_id: str) -> list[str]:
    """The snapshot tags of one backup (the database name percent-encoded: restic splits tags on ',')."""
    return [TAG, f"engine={engine}", f"database={urllib.parse.quote(database, safe='')}",
            f"backup={backup_id}"]


def parse_restic_time(text: str) -> dt.datetime:
    """restic's RFC 3339 time (nanoseconds, any offset) as an aware datetime."""
    match = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)", str(text))
    if not match:
        raise DbopsError(f"read off-host snapshot time {str(text)[:40]!r}: not an RFC 3339 time")
    fraction = (match.group(2) or "0")[:6].ljust(6, "0")
    zone = "+00:00" if match.group(3) == "Z" else match.group(3)
    return dt.datetime.fromisoformat(f"{match.group(1)}.{fraction}{zone}").astimezone(dt.timezone.utc)


def parse_snapshots(text: str) -> list[Copy]:
    """The dbops copies in ``restic snapshots --json`` output (other snapshots are left out)."""
    try:
        data = json.loads(text or "[]")
    except ValueError as exc:
        raise DbopsError(f"read off-host snapshot list: not JSON ({exc})") from exc
    copies = []
    for snap in data if isinstance(data, list) else []:
        if not isinstance(snap, dict) or not isinstance(snap.get("tags"), list):
            continue
        tags = dict(t.split("=", 1) for t in snap["tags"] if isinstance(t, str) and "=" in t)
        # The backup tag names a directory of the backup root: only a plain backup id is taken.
        wanted = TAG in snap["tags"] and tags.get("engine") in catalog.ENGINES and "database" in tags
        if not wanted or not _BACKUP_ID.fullmatch(tags.get("backup") or "") \
                or not isinstance(snap.get("id"), str):
            continue
        copies.append(Copy(snapshot=snap["id"], short_id=str(snap.get("short_id") or snap["id"][:8]),
                           time=parse_restic_time(snap.get("time", "")), engine=tags["engine"],
                           database=urllib.parse.unquote(tags["database"]), backup_id=tags["backup"],
                           hostname=str(snap.get("hostname", ""))))
    return sorted(copies, key=lambda c: (c.time, c.backup_id))


def list_copies(settings: dict[str, Any], *, missing_ok: bool = False) -> list[Copy]:
    """The copies of this host in the repository. ``missing_ok``: no repository yet is an empty list."""
    args = ["snapshots", "--json", "--tag", TAG]
    if settings.get("host"):
        args += ["--host", settings["host"]]
    try:
        out = run_restic(settings, args, f"list off-host copies in {settings['repository']}",
                         timeout=_LIST_TIMEOUT)
    except DbopsError as exc:
        if missing_ok and "no repository there yet" in exc.msg:
            return []
        raise
    return parse_snapshots(out)


def init_repository(settings: dict[str, Any]) -> None:
    run_restic(settings, ["init"], f"create off-host repository {settings['repository']}",
               timeout=_LIST_TIMEOUT)


def restic_time(value: dt.datetime) -> str:
    """restic's ``--time`` format (read in the TZ restic runs with: UTC)."""
    return value.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def backup_args(backup: catalog.Backup, host: str | None) -> list[str]:
    """``restic backup`` arguments for one backup directory (run with the backup root as cwd)."""
    args = ["backup", "--json", "--time", restic_time(backup.started_at)]
    if host:
        args += ["--host", host]
    for tag in backup_tags(backup.engine, backup.database, backup.id):
        args += ["--tag", tag]
    return [*args, "--", backup.id]


def parse_backup_summary(text: str) -> dict[str, Any]:
    """The ``summary`` message of ``restic backup --json``."""
    for line in reversed(text.splitlines()):
        try:
            message = json.loads(line)
        except ValueError:
            continue
        if isinstance(message, dict) and message.get("message_type") == "summary":
            return message
    raise DbopsError("read restic backup output: no summary line")


def copy_backup(settings: dict[str, Any], backup: catalog.Backup) -> dict[str, Any]:
    """Copy one complete backup whose files match its manifest; returns what restic reports."""
    action = f"copy backup {backup.id} to off-host repository {settings['repository']}"
    problems = catalog.verify_files(backup)
    if problems:
        raise DbopsError(f"{action}: its files do not match the manifest, not copied: "
                         + "; ".join(problems[:3]))
    started = catalog.utcnow()
    out = run_restic(settings, backup_args(backup, settings.get("host")), action,
                     cwd=os.path.dirname(backup.path))
    summary = parse_backup_summary(out)
    return {"id": backup.id, "engine": backup.engine, "database": backup.database,
            "snapshot": str(summary.get("snapshot_id")), "size": backup.size,
            "bytes_added": int(summary.get("data_added") or 0),
            "duration_s": round((catalog.utcnow() - started).total_seconds(), 3)}


def missing(backups: list[catalog.Backup], copies: list[Copy]) -> list[catalog.Backup]:
    """The local backups with no off-host copy, oldest first."""
    present = {c.backup_id for c in copies}
    return sorted((b for b in backups if b.id not in present), key=lambda b: (b.started_at, b.id))


def newest(copies: list[Copy], now: dt.datetime | None = None) -> list[dict[str, Any]]:
    """Per engine and database: the number of copies, the newest one and its age."""
    now = now or catalog.utcnow()
    groups: dict[tuple[str, str], dict[str, Any]] = {}
    for copy in sorted(copies, key=lambda c: (c.time, c.backup_id), reverse=True):
        key = (copy.engine, copy.database)
        if key not in groups:
            groups[key] = {"engine": copy.engine, "database": copy.database, "count": 0,
                           "latest": copy.backup_id, "latest_snapshot": copy.short_id,
                           "latest_started_at": catalog.format_time(copy.time),
                           "latest_age_s": round((now - copy.time).total_seconds(), 1)}
        groups[key]["count"] += 1
    return sorted(groups.values(), key=lambda g: (g["engine"], g["database"]))


def plan_retention(copies: list[Copy], policy: retention.Policy) -> list[retention.Decision]:
    """Keep/remove per engine and database with the same GFS rules as the local catalog."""
    items = [retention.Item(c.snapshot, (c.engine, c.database), c.time) for c in copies]
    return retention.decide(items, policy)


def forget(settings: dict[str, Any], snapshots: list[str]) -> None:
    """Remove these snapshots and the data only they used (``restic forget --prune``)."""
    if snapshots:
        run_restic(settings, ["forget", "--prune", "--", *snapshots],
                   f"remove {len(snapshots)} off-host copies from {settings['repository']}")


def select_copy(copies: list[Copy], backup_id: str | None, engine: str | None, database: str | None,
                repository: str) -> Copy:
    """The copy of ``backup_id``, or the newest one of ``engine``/``database``."""
    if backup_id and backup_id != "latest":
        found = [c for c in copies if c.backup_id == backup_id]
        if not found:
            raise DbopsError(f"find backup {backup_id} in off-host repository {repository}: no copy of it")
        if engine and found[-1].engine != engine:
            raise DbopsError(f"use off-host backup {backup_id}: it is a {found[-1].engine} backup, "
                             f"not {engine}")
        return found[-1]
    chosen = [c for c in copies if (engine is None or c.engine == engine)
              and (database is None or c.database == database)]
    if not chosen:
        what = "/".join(x for x in (engine, database) if x) or "any database"
        raise DbopsError(f"find the latest backup in off-host repository {repository}: no copy of {what}")
    return chosen[-1]


def restore_copy(settings: dict[str, Any], copy: Copy, target: str) -> str:
    """Restore the snapshot into ``target`` (an empty directory); returns ``target/<backup id>``.

    The result is untrusted: the caller checks its manifest and checksums before using it.
    """
    run_restic(settings, ["restore", copy.snapshot, "--target", target],
               f"fetch backup {copy.backup_id} from off-host repository {settings['repository']}")
    return os.path.join(target, copy.backup_id)
