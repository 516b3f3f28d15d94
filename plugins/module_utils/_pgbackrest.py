# Copyright: dbops.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""pgBackRest: read ``pgbackrest info --output=json``, the recovery window, guarded restores.

Pure functions (parsing, the window, target validation, argv building, restore plans) plus the few
that run ``pgbackrest`` or look at the disk. The repository passphrase never appears in an argv: it
lives in the configuration file (0600/0640, owned by the user running pgBackRest or root) or in the
environment variable ``PGBACKREST_REPO1_CIPHER_PASS``; ``assert_no_secret`` checks every argv.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import stat
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

from ansible_collections.dbops.datastores.plugins.module_utils._errors import DbopsError
from ansible_collections.dbops.datastores.plugins.module_utils._health import human_bytes

DEFAULT_CONFIG = "/etc/pgbackrest/pgbackrest.conf"
STANZA_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
SEGMENT_RE = re.compile(r"^[0-9A-F]{24}$")
SECRET_OPTION_RE = re.compile(r"cipher-pass|cipher_pass|s3-key|azure-key|gcs-key|sftp-private-key-passphrase",
                              re.IGNORECASE)
TARGET_ACTIONS = ("promote", "pause", "shutdown")
RESTORE_MODES = ("scratch", "replace")
# pgBackRest's info status codes (doc: command reference, info).
STATUS_OK = 0
STATUS_MISSING_STANZA = 1
STATUS_NO_BACKUP = 2
STATUS_MISSING_DATA = 3
# Messages past this many characters are cut: with a wrong passphrase pgBackRest prints the
# undecryptable bytes of the info file.
MESSAGE_LIMIT = 200


def pgbackrest_argument_spec() -> dict[str, Any]:
    """The options every pgBackRest module takes (doc fragment ``dbops.datastores.pgbackrest``)."""
    return {
        "stanza": {"type": "str"},
        "config": {"type": "path", "default": DEFAULT_CONFIG},
        "pgbackrest_bin": {"type": "str", "default": "pgbackrest"},
    }


# --- time -----------------------------------------------------------------------------------------

def iso(epoch: float | int | None) -> str | None:
    """Epoch seconds as ISO 8601 UTC (``2026-11-30T22:59:04Z``)."""
    if epoch is None:
        return None
    return dt.datetime.fromtimestamp(epoch, tz=dt.timezone.utc).isoformat().replace("+00:00", "Z")


def parse_time(text: str) -> dt.datetime:
    """An ISO 8601 time with a zone (``Z`` or an offset) as an aware UTC datetime.

    A time without a zone is refused: on a restore "14:05" in the wrong zone is hours of lost data.
    """
    raw = str(text).strip()
    candidate = raw[:-1] + "+00:00" if raw.endswith(("Z", "z")) else raw
    try:
        value = dt.datetime.fromisoformat(candidate.replace(" ", "T", 1))
    except ValueError:
        raise DbopsError(f"read target time {raw!r}: not an ISO 8601 time "
                         "(e.g. 2026-11-30T14:05:00Z)") from None
    if value.tzinfo is None or value.utcoffset() is None:
        raise DbopsError(f"read target time {raw!r}: no time zone; add Z or an offset such as +01:00")
    return value.astimezone(dt.timezone.utc)


def pg_target(value: dt.datetime) -> str:
    """A time as PostgreSQL's recovery_target_time reads it, in UTC."""
    return value.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f+00")


# --- info -----------------------------------------------------------------------------------------

def clean_message(message: Any) -> str:
    """pgBackRest's status message, printable and short (no decrypted garbage)."""
    text = str(message or "")
    first = text.split("\n", 1)[0]
    printable = "".join(ch for ch in first if ch.isprintable())
    return printable[:MESSAGE_LIMIT]


def parse_info(text: str) -> list[dict[str, Any]]:
    """The stanzas of ``pgbackrest info --output=json``."""
    try:
        # strict=False: with a wrong passphrase the status message carries raw control bytes.
        data = json.loads(text, strict=False)
    except ValueError as exc:
        raise DbopsError(f"read pgbackrest info: not JSON ({exc})") from None
    if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
        raise DbopsError("read pgbackrest info: expected a list of stanzas")
    return data


def backup_view(raw: dict[str, Any]) -> dict[str, Any]:
    """One backup in the module's words."""
    info = raw.get("info") or {}
    archive = raw.get("archive") or {}
    stamp = raw.get("timestamp") or {}
    reference = raw.get("reference") or []
    return {
        "label": raw.get("label"),
        "type": raw.get("type"),
        "start": iso(stamp.get("start")),
        "stop": iso(stamp.get("stop")),
        "size": info.get("size"),
        "repo_size": (info.get("repository") or {}).get("size"),
        "reference": list(reference),
        "wal_start": archive.get("start"),
        "wal_stop": archive.get("stop"),
        "error": bool(raw.get("error", False)),
    }


def archive_range(raw: dict[str, Any]) -> dict[str, Any]:
    """WAL range of the current database (the last archive id pgBackRest lists)."""
    archives = [item for item in raw.get("archive") or [] if isinstance(item, dict)]
    if not archives:
        return {"id": None, "min": None, "max": None}
    current = archives[-1]
    return {"id": current.get("id"), "min": current.get("min"), "max": current.get("max")}


def restorable_backups(raw: dict[str, Any]) -> list[dict[str, Any]]:
    """Backups a point-in-time restore can start from: no error, and their WAL still archived."""
    archive = archive_range(raw)
    wal_min = archive["min"]
    result = []
    for backup in raw.get("backup") or []:
        if not isinstance(backup, dict) or backup.get("error"):
            continue
        start = (backup.get("archive") or {}).get("start")
        if wal_min and start and start < wal_min:
            continue
        stop = (backup.get("timestamp") or {}).get("stop")
        if not isinstance(stop, int):
            continue
        result.append(backup)
    return sorted(result, key=lambda item: item["timestamp"]["stop"])


def recovery_window(raw: dict[str, Any], newest_wal_time: int | None) -> dict[str, Any] | None:
    """From the oldest restorable backup's end to the newest archived WAL segment (or the newest
    backup's end when the WAL time is unknown); None without a restorable backup."""
    backups = restorable_backups(raw)
    if not backups:
        return None
    start = backups[0]["timestamp"]["stop"]
    newest_backup = backups[-1]["timestamp"]["stop"]
    end = max(newest_backup, newest_wal_time or 0)
    return {
        "from": iso(start),
        "to": iso(end),
        "to_source": "newest archived WAL segment" if newest_wal_time and newest_wal_time >= newest_backup
        else "newest backup",
    }


def summary(name: str, status: dict[str, Any], window: dict[str, Any] | None,
            backups: list[dict[str, Any]]) -> str:
    if status["code"] != STATUS_OK and not backups:
        return f"stanza {name}: {status['message']}; nothing to restore"
    if window is None:
        return f"stanza {name}: no restorable backup; nothing to restore"
    counts: dict[str, int] = {}
    for backup in backups:
        counts[backup["type"]] = counts.get(backup["type"], 0) + 1
    made = ", ".join(f"{count} {kind}" for kind, count in sorted(counts.items()))
    return (f"stanza {name}: can restore to any moment between {window['from']} and {window['to']} "
            f"({made} backup{'s' if len(backups) != 1 else ''})")


def stanza_status(raw: dict[str, Any]) -> dict[str, Any]:
    """The stanza's status; with a vague "other" the repositories' own messages are added."""
    status_raw = raw.get("status") or {}
    code = status_raw.get("code")
    code = code if isinstance(code, int) else 99
    message = clean_message(status_raw.get("message"))
    if code != STATUS_OK:
        details = []
        for repo in raw.get("repo") or []:
            if not isinstance(repo, dict):
                continue
            repo_status = repo.get("status") or {}
            repo_message = clean_message(repo_status.get("message"))
            if repo_status.get("code") not in (None, STATUS_OK) and repo_message and repo_message != message:
                details.append(f"repo{repo.get('key', '?')}: {repo_message}")
        if details:
            message = f"{message}: {'; '.join(details)}"
    return {"code": code, "message": message}


def stanza_view(raw: dict[str, Any], newest_wal_time: int | None = None) -> dict[str, Any]:
    """One stanza as the module returns it."""
    name = str(raw.get("name", ""))
    status = stanza_status(raw)
    backups = [backup_view(item) for item in raw.get("backup") or [] if isinstance(item, dict)]
    archive = archive_range(raw)
    window = recovery_window(raw, newest_wal_time)
    return {
        "name": name,
        "status": status,
        "cipher": raw.get("cipher"),
        "backups": backups,
        "archive": archive,
        "recovery_window": window,
        "summary": summary(name, status, window, backups),
    }


def check_stanza_status(view: dict[str, Any]) -> None:
    """Refuse a stanza pgBackRest cannot read: unknown, no backup, or a wrong passphrase."""
    code, message, name = view["status"]["code"], view["status"]["message"], view["name"]
    if code == STATUS_OK:
        return
    if code == STATUS_MISSING_STANZA:
        raise DbopsError(f"read stanza {name}: unknown stanza ({message}); check the stanza name and "
                         "the repository in the configuration")
    if code == STATUS_NO_BACKUP:
        raise DbopsError(f"read stanza {name}: no valid backup in the repository")
    if "unable to load info file" in message or "cipher" in message.lower():
        raise DbopsError(f"read stanza {name}: cannot decrypt the repository's info files: wrong "
                         f"passphrase (repo1-cipher-pass) or a damaged repository ({message})")
    raise DbopsError(f"read stanza {name}: pgBackRest reports status {code}: {message}")


def newest_segment_time(repo_ls_json: str, segment: str) -> int | None:
    """Modification time (push time) of WAL ``segment`` in a ``repo-ls --output=json`` listing."""
    try:
        listing = json.loads(repo_ls_json)
    except ValueError:
        return None
    if not isinstance(listing, dict):
        return None
    times = []
    for path, entry in listing.items():
        base = str(path).rsplit("/", 1)[-1]
        if base.startswith(f"{segment}-") and isinstance(entry, dict) and isinstance(entry.get("time"), int):
            times.append(entry["time"])
    return max(times) if times else None


# --- argv -----------------------------------------------------------------------------------------

def check_stanza_name(stanza: str | None) -> None:
    if stanza is not None and not STANZA_RE.match(stanza):
        raise DbopsError(f"check stanza {stanza!r}: letters, digits, '_', '.' and '-' only")


def assert_no_secret(argv: Sequence[str]) -> None:
    """Refuse an argv that would carry a secret option (it would show in ``ps`` and logs)."""
    for arg in argv:
        if SECRET_OPTION_RE.search(arg.split("=", 1)[0]):
            option = arg.split("=", 1)[0]
            raise DbopsError(f"build pgbackrest command: {option} must not be on the command line")


def base_argv(binary: str, config: str, stanza: str | None) -> list[str]:
    argv = [binary, f"--config={config}"]
    if stanza:
        argv.append(f"--stanza={stanza}")
    return argv


def info_argv(binary: str, config: str, stanza: str | None) -> list[str]:
    argv = [*base_argv(binary, config, stanza), "--output=json", "info"]
    assert_no_secret(argv)
    return argv


def repo_ls_argv(binary: str, config: str, stanza: str, archive_id: str, segment: str) -> list[str]:
    """List the newest WAL segment's files (``archive/<stanza>/<archive id>/<timeline+log>/``)."""
    if not SEGMENT_RE.match(segment) or not re.match(r"^[0-9]+-[0-9]+$", archive_id):
        raise DbopsError(f"list WAL segment {segment}: unexpected archive id or segment name")
    argv = [*base_argv(binary, config, stanza), "--output=json", f"--filter=^{segment}-", "repo-ls",
            f"archive/{stanza}/{archive_id}/{segment[:16]}"]
    assert_no_secret(argv)
    return argv


def restore_argv(binary: str, config: str, stanza: str, *, data_directory: str, mode: str,
                 target_time: dt.datetime | None, target_action: str, backup_set: str | None) -> list[str]:
    """``pgbackrest restore`` for a scratch copy (archive-mode=off, tablespaces kept inside the copy)
    or the replacement of a stopped cluster's data directory (``--delta``)."""
    if mode not in RESTORE_MODES:
        raise DbopsError(f"plan restore: mode must be one of {', '.join(RESTORE_MODES)}, not {mode!r}")
    if target_action not in TARGET_ACTIONS:
        raise DbopsError(f"plan restore: target_action must be one of {', '.join(TARGET_ACTIONS)}")
    argv = [*base_argv(binary, config, stanza), f"--pg1-path={data_directory}"]
    if backup_set:
        argv.append(f"--set={backup_set}")
    if target_time is not None:
        argv += ["--type=time", f"--target={pg_target(target_time)}", f"--target-action={target_action}"]
    if mode == "scratch":
        argv += ["--archive-mode=off", f"--tablespace-map-all={tablespace_dir(data_directory)}"]
    else:
        argv.append("--delta")
    argv.append("restore")
    assert_no_secret(argv)
    return argv


def tablespace_dir(data_directory: str) -> str:
    """Where a scratch restore puts tablespaces: next to the copy, never their live locations."""
    return os.path.normpath(data_directory) + ".tablespaces"


# --- the restore plan -----------------------------------------------------------------------------

def epoch(value: dt.datetime) -> float:
    return value.timestamp()


def validate_target(target: dt.datetime | None, view: dict[str, Any]) -> None:
    """Refuse a target outside the recovery window."""
    window = view["recovery_window"]
    if window is None:
        raise DbopsError(f"plan restore of stanza {view['name']}: no restorable backup")
    if target is None:
        return
    start, end = parse_time(window["from"]), parse_time(window["to"])
    if window.get("to_source") != "newest archived WAL segment":
        # The WAL's time is unknown (repo-ls failed): only the future is surely past its end.
        now = dt.datetime.now(dt.timezone.utc)
        if target > now:
            raise DbopsError(f"plan restore to {iso(epoch(target))}: in the future (now {iso(epoch(now))})")
        end = max(end, now)
    stamp = iso(epoch(target))
    if target < start:
        raise DbopsError(f"plan restore to {stamp}: before the oldest backup's end ({window['from']}); "
                         f"the stanza can restore to moments between {window['from']} and {window['to']}")
    if target > end:
        raise DbopsError(f"plan restore to {stamp}: after the newest archived WAL ({window['to']}); "
                         f"the stanza can restore to moments between {window['from']} and {window['to']}")


def choose_backup(raw: dict[str, Any], target: dt.datetime | None) -> dict[str, Any]:
    """The newest restorable backup that ended at or before ``target`` (the newest without one)."""
    backups = restorable_backups(raw)
    if target is not None:
        backups = [item for item in backups if item["timestamp"]["stop"] <= epoch(target)]
    if not backups:
        raise DbopsError(f"plan restore of stanza {raw.get('name')}: no backup ended before the target time")
    return backups[-1]


def directory_state(path: str) -> str:
    """``absent``, ``empty``, ``non-empty`` or ``not-a-directory``; a symlink counts as not a directory."""
    if not os.path.lexists(path):
        return "absent"
    if os.path.islink(path) or not os.path.isdir(path):
        return "not-a-directory"
    try:
        return "empty" if not os.listdir(path) else "non-empty"
    except OSError as exc:
        raise DbopsError(f"read {path}: cannot list it ({exc.strerror or exc}); run as its owner or"
                         " root") from None


def free_bytes(path: str) -> int | None:
    """Space an unprivileged user may fill on the file system that holds ``path`` (or would hold it:
    the nearest existing parent); None when it cannot be read."""
    probe = path
    while not os.path.exists(probe) and os.path.dirname(probe) != probe:
        probe = os.path.dirname(probe)
    try:
        st = os.statvfs(probe)
    except OSError:
        return None
    return st.f_bavail * st.f_frsize


def used_bytes(data_directory: str) -> int | None:
    """Bytes of the files a data directory holds now, its tablespaces' (``pg_tblspc`` links)
    included; None when a part cannot be read."""
    roots = [data_directory]
    links = os.path.join(data_directory, "pg_tblspc")
    try:
        roots += [os.path.join(links, name) for name in os.listdir(links)]
    except FileNotFoundError:
        pass
    except OSError:
        return None
    total = 0
    try:
        for root in roots:
            for parent, _dirs, names in os.walk(root, onerror=_raise):
                for name in names:
                    info = os.lstat(os.path.join(parent, name))
                    if stat.S_ISREG(info.st_mode):
                        total += info.st_size
    except OSError:
        return None
    return total


def _raise(exc: OSError) -> None:
    raise exc


def replace_growth(backup_size: int | None, used: int | None) -> int | None:
    """How much a replace (``--delta``) restore makes the data directory grow, at least.

    pgBackRest removes the files the backup does not hold, keeps those that match and rewrites the
    others in place (truncated, then written: no temporary copies), so the directory ends at the
    backup's size; whatever the order, it grows by at least the difference. None when either size
    is unknown (pgBackRest decides)."""
    if backup_size is None or used is None:
        return None
    return max(0, backup_size - used)


def check_free_space(data_directory: str, needed: int | None, free: int | None, *,
                     replacing: int | None = None) -> None:
    """A restore that cannot fit is refused before it writes anything (a full disk halfway through
    leaves a half-restored directory and an error that names a file, not the cause).

    ``needed``: a scratch restore's backup size, or the growth of a replace restore over the
    ``replacing`` bytes the data directory holds now (:func:`replace_growth`)."""
    if needed is None or free is None or free >= needed:
        return
    if replacing is None:
        raise DbopsError(f"restore into {data_directory}: the backup needs {human_bytes(needed)} and the "
                         f"file system holds {human_bytes(free)} free (nothing was changed)")
    raise DbopsError(f"restore into {data_directory}: the backup is {human_bytes(needed + replacing)}, the "
                     f"data directory holds {human_bytes(replacing)} now, so it grows by at least "
                     f"{human_bytes(needed)}, and the file system holds {human_bytes(free)} free "
                     "(nothing was changed)")


def running_postmaster(data_directory: str) -> int | None:
    """The PID of a live postmaster owning ``data_directory`` (from postmaster.pid), else None."""
    pid_file = os.path.join(data_directory, "postmaster.pid")
    try:
        with open(pid_file, encoding="utf-8", errors="replace") as handle:
            first = handle.readline().strip()
    except OSError:
        return None
    if not first.lstrip("-").isdigit():
        return None
    pid = abs(int(first))
    if pid <= 0:
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return pid
    return pid


def config_pg_paths(text: str, stanza: str | None = None) -> list[str]:
    """The ``pgN-path`` values of a pgBackRest configuration: of any section, or with ``stanza`` of
    that stanza's own sections only (``[stanza]``, ``[stanza:<command>]``)."""
    paths: list[str] = []
    section = None
    for line in text.splitlines():
        header = re.match(r"^\s*\[([^\]]+)\]\s*$", line)
        if header:
            section = header.group(1).split(":", 1)[0].strip()
            continue
        match = re.match(r"^\s*pg[0-9]+-path\s*=\s*(.+?)\s*$", line)
        if match and stanza in (None, section):
            paths.append(os.path.normpath(match.group(1)))
    return paths


def data_directory_identity(data_directory: str) -> tuple[str | None, int | None]:
    """What a data directory says it holds: ``PG_VERSION``'s major and the system identifier (the
    first 8 bytes of ``global/pg_control``, written in the host's byte order); None for what cannot
    be read (missing, unreadable, too short)."""
    version = (_read_head(os.path.join(data_directory, "PG_VERSION"), 32) or b"").decode("ascii", "replace")
    control = _read_head(os.path.join(data_directory, "global", "pg_control"), 8) or b""
    system_id = int.from_bytes(control, sys.byteorder) if len(control) == 8 else None
    return version.strip() or None, system_id


def _read_head(path: str, size: int) -> bytes | None:
    try:
        with open(path, "rb") as handle:
            return handle.read(size)
    except OSError:
        return None


def check_replace_target(data_directory: str, stanza: str, *, version: str | None, system_id: int | None,
                         stanza_db: dict[str, Any], stanza_paths: Sequence[str]) -> None:
    """Replace mode overwrites the stanza's own cluster only: the same PostgreSQL major, and the
    same system (identifier) unless the directory is one of the stanza's ``pgN-path`` (a cluster
    created anew there, or one whose ``pg_control`` is damaged, is what a restore replaces)."""
    want_version = str(stanza_db.get("version") or "")
    if want_version and version != want_version:
        held = f"a PostgreSQL {version} cluster" if version else "no readable PG_VERSION"
        raise DbopsError(f"restore into {data_directory}: holds {held}, the backups of stanza {stanza} are"
                         f" of PostgreSQL {want_version} (nothing was changed)")
    want_id = stanza_db.get("system-id")
    if (isinstance(want_id, int) and system_id != want_id
            and os.path.normpath(data_directory) not in stanza_paths):
        held = (f"system identifier {system_id}" if system_id is not None
                else "an unreadable global/pg_control")
        raise DbopsError(f"restore into {data_directory}: holds another cluster ({held}; stanza {stanza}'s is"
                         f" {want_id}) and is not a pgN-path of stanza {stanza} in the pgBackRest"
                         " configuration; replace mode overwrites only the stanza's own cluster"
                         " (nothing was changed)")


def inside(path: str, parent: str) -> bool:
    path, parent = os.path.normpath(path), os.path.normpath(parent)
    return path == parent or path.startswith(parent.rstrip("/") + "/")


def check_restore_target(mode: str, data_directory: str, *, state: str, postmaster_pid: int | None,
                         live_paths: Sequence[str], tablespace_state: str) -> None:
    """The guards of the contract, as one pure function of what was observed."""
    if not os.path.isabs(data_directory):
        raise DbopsError(f"restore into {data_directory}: the data directory must be an absolute path")
    if postmaster_pid is not None:
        raise DbopsError(f"restore into {data_directory}: a postmaster (PID {postmaster_pid}) is running "
                         "on it; stop the cluster first (nothing was changed)")
    if state == "not-a-directory":
        raise DbopsError(f"restore into {data_directory}: exists and is not a directory")
    if mode == "scratch":
        if state == "non-empty":
            raise DbopsError(f"restore into {data_directory}: scratch mode needs an empty or absent "
                             "directory, this one holds files (nothing was changed)")
        if tablespace_state not in ("absent", "empty"):
            raise DbopsError(f"restore into {data_directory}: {tablespace_dir(data_directory)} (where "
                             "the copy's tablespaces go) is not empty")
        for live in live_paths:
            if inside(data_directory, live) or inside(live, data_directory):
                raise DbopsError(f"restore into {data_directory}: overlaps the live data directory {live} "
                                 "named in the pgBackRest configuration")
    elif state != "non-empty":
        raise DbopsError(f"restore into {data_directory}: replace mode needs the stopped cluster's "
                         f"data directory, this one is {state}")
    elif not os.path.exists(os.path.join(data_directory, "PG_VERSION")):
        raise DbopsError(f"restore into {data_directory}: not a PostgreSQL data directory (no PG_VERSION)")


def check_config_file(path: str, mode: int, owner_uid: int, caller_uid: int) -> None:
    """A configuration that holds the passphrase: nobody else may write it, others may not read it."""
    if owner_uid not in (caller_uid, 0):
        raise DbopsError(f"read {path}: owned by uid {owner_uid}, not by the user running pgBackRest "
                         f"(uid {caller_uid}) or root")
    if mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise DbopsError(f"read {path}: writable by group or others (mode {stat.S_IMODE(mode):04o}); "
                         "use 0600 or 0640")
    if mode & (stat.S_IROTH | stat.S_IXOTH):
        raise DbopsError(f"read {path}: readable by others (mode {stat.S_IMODE(mode):04o}) while it "
                         "holds the repository passphrase; use 0600 or 0640")


def verify_config(path: str) -> str:
    """Check the configuration file's owner and mode; return its text (for the pgN-path guards)."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise DbopsError(f"read {path}: no such pgBackRest configuration file") from None
    except OSError as exc:
        raise DbopsError(f"read {path}: {exc.strerror}") from None
    check_config_file(path, info.st_mode, info.st_uid, os.geteuid())
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read()
    except OSError as exc:
        raise DbopsError(f"read {path}: {exc.strerror}") from None


# --- running pgBackRest ---------------------------------------------------------------------------

def run(argv: Sequence[str], action: str, timeout: float = 3600) -> str:
    """Run pgBackRest; its output decoded leniently (a wrong passphrase prints binary garbage)."""
    assert_no_secret(argv)
    try:
        proc = subprocess.run(list(argv), check=False, capture_output=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
    except FileNotFoundError:
        raise DbopsError(f"{action}: {argv[0]} not found; install pgbackrest") from None
    except subprocess.TimeoutExpired:
        raise DbopsError(f"{action}: pgbackrest did not finish within {timeout:.0f} s") from None
    out = proc.stdout.decode("utf-8", errors="replace")
    if proc.returncode != 0:
        err = proc.stderr.decode("utf-8", errors="replace") or out
        lines = [clean_message(line) for line in err.splitlines() if line.strip()]
        detail = "; ".join(line for line in lines if line)[:600] or f"exit code {proc.returncode}"
        raise DbopsError(f"{action}: {detail}", rc=proc.returncode)
    return out


def read_stanzas(binary: str, config: str, stanza: str | None) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(raw, view) per stanza, with the newest archived WAL segment's push time in the window."""
    check_stanza_name(stanza)
    raws = parse_info(run(info_argv(binary, config, stanza), f"read pgbackrest info ({config})"))
    result = []
    for raw in raws:
        wal_time = None
        archive = archive_range(raw)
        name = str(raw.get("name", ""))
        readable = (raw.get("status") or {}).get("code") == STATUS_OK
        if archive["max"] and archive["id"] and STANZA_RE.match(name) and readable:
            try:
                listing = run(repo_ls_argv(binary, config, name, str(archive["id"]), str(archive["max"])),
                              f"list WAL of stanza {name}", timeout=300)
                wal_time = newest_segment_time(listing, str(archive["max"]))
            except DbopsError:
                wal_time = None
        result.append((raw, stanza_view(raw, wal_time)))
    return result


def read_one_stanza(binary: str, config: str, stanza: str) -> tuple[dict[str, Any], dict[str, Any]]:
    if not stanza:
        raise DbopsError("plan restore: stanza is required")
    stanzas = read_stanzas(binary, config, stanza)
    if len(stanzas) != 1:
        raise DbopsError(f"read stanza {stanza}: pgbackrest info returned {len(stanzas)} stanzas")
    raw, view = stanzas[0]
    check_stanza_status(view)
    return raw, view


def plan_restore(binary: str, config: str, stanza: str, *, data_directory: str, mode: str,
                 target_time: str | None, target_action: str) -> dict[str, Any]:
    """Everything checked, nothing changed: the plan (with the argv) or a DbopsError."""
    if not stanza:
        raise DbopsError("plan restore: stanza is required")
    check_stanza_name(stanza)
    target = parse_time(target_time) if target_time else None
    config_text = verify_config(config)
    data_directory = os.path.normpath(data_directory)
    check_restore_target(mode, data_directory, state=directory_state(data_directory),
                         postmaster_pid=running_postmaster(data_directory),
                         live_paths=config_pg_paths(config_text),
                         tablespace_state=directory_state(tablespace_dir(data_directory)))
    raw, view = read_one_stanza(binary, config, stanza)
    validate_target(target, view)
    backup = choose_backup(raw, target)
    size = (backup.get("info") or {}).get("size")
    backup_size = int(size) if isinstance(size, int) else None
    if mode == "scratch":
        check_free_space(data_directory, backup_size, free_bytes(data_directory))
    else:
        version, system_id = data_directory_identity(data_directory)
        check_replace_target(data_directory, stanza, version=version, system_id=system_id,
                             stanza_db=(raw.get("db") or [{}])[-1] or {},
                             stanza_paths=config_pg_paths(config_text, stanza))
        used = used_bytes(data_directory)
        check_free_space(data_directory, replace_growth(backup_size, used), free_bytes(data_directory),
                         replacing=used)
    argv = restore_argv(binary, config, stanza, data_directory=data_directory, mode=mode, target_time=target,
                        target_action=target_action, backup_set=backup["label"])
    return {
        "stanza": stanza,
        "mode": mode,
        "data_directory": data_directory,
        "target_time": iso(epoch(target)) if target else None,
        "target_action": target_action if target else None,
        "backup_set": backup["label"],
        "recovery_window": view["recovery_window"],
        "existed": directory_state(data_directory) != "absent",
        "pg_version": str(((raw.get("db") or [{}])[-1] or {}).get("version") or ""),
        "command": argv,
    }


def remove_scratch(data_directory: str, existed: bool) -> None:
    """Undo a scratch restore: remove what it wrote (the directory itself when it created it)."""
    for path in (data_directory, tablespace_dir(data_directory)):
        if not os.path.lexists(path):
            continue
        if path == data_directory and existed:
            for entry in os.listdir(path):
                full = os.path.join(path, entry)
                if os.path.isdir(full) and not os.path.islink(full):
                    shutil.rmtree(full, ignore_errors=True)
                else:
                    os.unlink(full)
        else:
            shutil.rmtree(path, ignore_errors=True)


def execute_restore(plan: dict[str, Any]) -> None:
    """Run the planned restore; a failed scratch restore leaves nothing behind."""
    if plan["mode"] == "scratch" and not plan["existed"]:
        try:
            os.mkdir(plan["data_directory"], 0o700)
        except OSError as exc:
            raise DbopsError(f"create {plan['data_directory']}: {exc.strerror}") from None
    try:
        run(plan["command"], f"restore stanza {plan['stanza']} into {plan['data_directory']}",
            timeout=6 * 3600)
    except BaseException as failure:
        if plan["mode"] == "scratch":
            try:
                remove_scratch(plan["data_directory"], plan["existed"])
            except OSError as exc:  # the restore's own error is the one to report
                if isinstance(failure, DbopsError):
                    failure.msg += (f"; what it wrote in {plan['data_directory']} could not all be removed"
                                    f" ({exc.strerror or exc}): remove it by hand")
        raise
