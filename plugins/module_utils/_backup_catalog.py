# Copyright: dbops.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The backup catalog: one directory per backup under a backup root, described by its manifest.

Layout of a backup root::

    <root>/<id>.partial/            a backup being written (or abandoned): never complete-looking
        .dbops-backup               marker written first: id, pid, host, start time
    <root>/<id>/                    a complete backup, renamed into place after its manifest
        .dbops-backup
        manifest.json               written last, atomically (temp file + fsync + rename)
        verifications.json          verification records (outside the manifest, rewritten atomically)
        <payload files>             listed in the manifest with size and sha256

Anything else in the root (foreign files and directories, symlinks, and directories whose manifest
fails validation) is reported as ignored, with the reason, and is never modified or followed.
Backups are recognised by their manifest (or, for partials, their marker), not by their names.
Manifests and verification records are written by the backup user and read by root too: they are
untrusted, and checked field by field before anything uses them.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import json
import os
import re
import shutil
import socket
import stat
import tempfile
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from ansible_collections.dbops.datastores.plugins.module_utils._errors import DbopsError

MANIFEST = "manifest.json"
MARKER = ".dbops-backup"
VERIFICATIONS = "verifications.json"
PARTIAL_SUFFIX = ".partial"
MANIFEST_KIND = "dbops.datastores/backup"
MANIFEST_VERSION = 1
ENGINES = ("postgresql", "mongodb")
ENGINE_PREFIX = {"postgresql": "pg", "mongodb": "mongodb"}
LOCK_FILE = ".dbops-backup.lock"  # held by the dbops-backup command while it runs
READERS_LOCK = ".dbops-readers.lock"  # shared while a backup is read, exclusive while removing
_CONTROL_FILES = frozenset({MANIFEST, MARKER, VERIFICATIONS})
_CHUNK = 1024 * 1024

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(w|d|h|m|s)", re.I)
_DURATION_UNITS = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}


# --------------------------------------------------------------------------- time helpers

def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def format_time(value: dt.datetime) -> str:
    """ISO 8601 in UTC with a ``Z`` suffix and microseconds."""
    return value.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text: str) -> dt.datetime:
    value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return value


def checked_time(value: Any) -> dt.datetime | None:
    """``value`` as a time when it is an ISO 8601 string with a time zone in a plausible range (1970
    to 9000, so date arithmetic with any duration cannot overflow); None otherwise. For times read from
    files others can write (manifests, verification records)."""
    if not isinstance(value, str):
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        if parsed.utcoffset() is None:
            return None
        in_utc = parsed.astimezone(dt.timezone.utc)
    except (ValueError, OverflowError):
        return None
    return parsed if 1970 <= in_utc.year <= 9000 else None


# A backup dated later than now by more than this was taken while the host clock was wrong (and since
# corrected): it never counts as fresh and no time-based rule ages it. Less than this is clock skew
# between hosts sharing a backup root, and is trusted.
FUTURE_TOLERANCE = dt.timedelta(minutes=5)


def is_future(when: dt.datetime, now: dt.datetime) -> bool:
    return when > now + FUTURE_TOLERANCE


MAX_DURATION_S = 100 * 366 * 86400  # a century: longer is a typo, and would overflow date arithmetic


def parse_duration(text: Any) -> dt.timedelta:
    """Parse ``"90s"``, ``"15m"``, ``"24h"``, ``"7d"``, ``"2w"``, ``"1d12h"`` or a number of seconds."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        if text < 0:
            raise DbopsError(f"parse duration {text!r}: must not be negative")
        return _bounded(float(text), text)
    raw = str(text).strip()
    if re.fullmatch(r"\d+(?:\.\d+)?", raw):
        return _bounded(float(raw), text)
    pos, seconds = 0, 0.0
    for match in _DURATION_PART.finditer(raw):
        if raw[pos:match.start()].strip():
            break
        seconds += float(match.group(1)) * _DURATION_UNITS[match.group(2).lower()]
        pos = match.end()
    if not raw or pos == 0 or raw[pos:].strip():
        raise DbopsError(
            f"parse duration {text!r}: expected a number of seconds or parts like 30s, 15m, 24h, 7d, 2w"
        )
    return _bounded(seconds, text)


def _bounded(seconds: float, text: Any) -> dt.timedelta:
    if not seconds <= MAX_DURATION_S:  # also catches nan and inf
        shown = text if len(str(text)) <= 40 else str(text)[:40] + "..."
        raise DbopsError(f"parse duration {shown!r}: too long (at most 100 years)")
    return dt.timedelta(seconds=seconds)


def format_age(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    if seconds < 172800:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / 86400:.1f}d"


# --------------------------------------------------------------------------- file helpers

def fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_json_atomic(path: str, data: Any, mode: int = 0o600) -> None:
    """Write JSON to a temp file in the same directory, fsync it, rename it over ``path``.

    Written by root (a verification with become), the file goes to the directory's owner, so the
    backup user's own runs can still read and replace it.
    """
    directory = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".json", dir=directory)
    try:
        os.fchmod(fd, mode)
        if os.geteuid() == 0:
            owner = os.stat(directory)
            os.fchown(fd, owner.st_uid, owner.st_gid)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=2, sort_keys=True)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(directory)


def read_json(path: str) -> Any:
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def sha256_file(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb", buffering=0) as handle:
        buf = bytearray(_CHUNK)
        view = memoryview(buf)
        while True:
            n = handle.readinto(buf)
            if not n:
                break
            digest.update(view[:n])
    return digest.hexdigest()


def payload_files(backup_dir: str) -> list[str]:
    """Relative POSIX paths of the payload files of a backup directory (no control files)."""
    found: list[str] = []
    for current, dirs, files in os.walk(backup_dir, followlinks=False):
        rel_dir = os.path.relpath(current, backup_dir)
        for name in files:
            rel = name if rel_dir == "." else os.path.join(rel_dir, name)
            if rel_dir == "." and (name in _CONTROL_FILES or name.startswith(".tmp-")):
                continue
            found.append(rel.replace(os.sep, "/"))
        # A symlinked directory shows up in ``dirs`` but is not descended into; list it as a file
        # so that verification reports it instead of silently skipping it.
        for name in dirs:
            if os.path.islink(os.path.join(current, name)):
                rel = name if rel_dir == "." else os.path.join(rel_dir, name)
                found.append(rel.replace(os.sep, "/"))
    return sorted(found)


def manifest_path(backup_dir: str, manifest: dict[str, Any], rel: Any, what: str = "payload") -> str:
    """The absolute path of ``rel``, a path read from ``manifest``, checked before anything reads it.

    A manifest is written by whoever can write the backup root, and restores run as root: a path
    taken from it must be relative, stay inside ``backup_dir`` with no symlink on the way, and name
    a regular file listed in the manifest's checksums or a directory whose every file is listed
    (``verify_files`` then proves the listed files unchanged). Anything else raises DbopsError.
    """
    action = f"use {what} of backup {manifest.get('id')}"
    if not isinstance(rel, str) or not rel or "\0" in rel:
        raise DbopsError(f"{action}: the manifest gives no valid relative path ({rel!r})")
    parts = rel.split("/")
    if rel.startswith("/") or any(part in ("", ".", "..") for part in parts):
        raise DbopsError(f"{action}: {rel!r} is not a plain relative path inside the backup directory")
    base = os.path.abspath(backup_dir)
    current = base
    try:
        for part in parts:
            current = os.path.join(current, part)
            st = os.lstat(current)
            if stat.S_ISLNK(st.st_mode):
                raise DbopsError(f"{action}: {rel!r} goes through the symlink {current}")
    except FileNotFoundError:
        raise DbopsError(f"{action}: {rel!r} does not exist in {base}") from None
    except OSError as exc:
        raise DbopsError(f"{action}: {rel!r}: {exc.strerror or exc}") from exc
    if os.path.commonpath([os.path.realpath(current), os.path.realpath(base)]) != os.path.realpath(base):
        raise DbopsError(f"{action}: {rel!r} resolves outside {base}")
    files = manifest.get("files")
    listed = {f.get("path") for f in files if isinstance(f, dict)} if isinstance(files, list) else set()
    if stat.S_ISREG(st.st_mode):
        covered = rel in listed
    elif stat.S_ISDIR(st.st_mode):
        inside = [p for p in payload_files(base) if p.startswith(rel + "/")]
        covered = all(p in listed for p in inside)  # an empty dump directory holds nothing to trust
    else:
        covered = False
    if not covered:
        raise DbopsError(f"{action}: {rel!r} is not covered by the manifest's checksums")
    return current


def describe_files(backup_dir: str, workers: int = 1) -> list[dict[str, Any]]:
    """Size and sha256 of every payload file (hashing in ``workers`` threads)."""
    names = payload_files(backup_dir)

    def one(rel: str) -> dict[str, Any]:
        path = os.path.join(backup_dir, rel)
        st = os.lstat(path)
        if not stat.S_ISREG(st.st_mode):
            raise DbopsError(f"checksum backup file {path}: not a regular file")
        return {"path": rel, "size": st.st_size, "sha256": sha256_file(path)}

    if workers > 1 and len(names) > 1:
        with ThreadPoolExecutor(max_workers=min(workers, len(names))) as pool:
            return list(pool.map(one, names))
    return [one(rel) for rel in names]


def fsync_tree(path: str) -> None:
    """fsync every file and directory below ``path`` (symlinks untouched): tools such as mongodump
    do not, and a backup must be on disk before its manifest says it is complete."""
    for current, _dirs, files in os.walk(path, topdown=False, followlinks=False):
        for name in files:
            full = os.path.join(current, name)
            if os.path.islink(full):
                continue
            fd = os.open(full, os.O_RDONLY | os.O_NOFOLLOW)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fsync_dir(current)


def restrict_permissions(path: str) -> None:
    """Directories 0700 and files 0600 below ``path`` (symlinks untouched)."""
    os.chmod(path, 0o700)
    for current, dirs, files in os.walk(path, followlinks=False):
        for name in dirs:
            full = os.path.join(current, name)
            if not os.path.islink(full):
                os.chmod(full, 0o700)
        for name in files:
            full = os.path.join(current, name)
            if not os.path.islink(full):
                os.chmod(full, 0o600)


# --------------------------------------------------------------------------- catalog entries

@dataclass
class Backup:
    """A complete backup: its directory name equals the id in its manifest."""

    id: str
    path: str
    manifest: dict[str, Any]

    @property
    def engine(self) -> str:
        return str(self.manifest["engine"])

    @property
    def database(self) -> str:
        return str(self.manifest["database"])

    @property
    def started_at(self) -> dt.datetime:
        return parse_time(self.manifest["started_at"])

    @property
    def size(self) -> int:
        return int(sum(f.get("size", 0) for f in self.manifest.get("files", [])))

    def verifications(self) -> list[dict[str, Any]]:
        """The well-formed verification records, oldest first (malformed ones are skipped)."""
        return self.read_verifications()[0]

    def read_verifications(self) -> tuple[list[dict[str, Any]], int]:
        """The well-formed verification records and how many were skipped as malformed (a file that
        is not a JSON list counts as one)."""
        path = os.path.join(self.path, VERIFICATIONS)
        if os.path.islink(path):
            return [], 1
        try:
            data = read_json(path)
        except OSError:
            return [], 0
        except (ValueError, RecursionError):
            return [], 1
        if not isinstance(data, list):
            return [], 1
        records = [r for r in data if verification_problem(r) is None]
        return records, len(data) - len(records)


@dataclass
class Partial:
    """A ``<id>.partial`` directory with our marker: a backup being written or abandoned."""

    name: str
    path: str
    marker: dict[str, Any]
    mtime: dt.datetime

    @property
    def started_at(self) -> dt.datetime:
        return checked_time(self.marker.get("started_at")) or self.mtime

    def is_active(self) -> bool:
        """True while the process that writes it is alive on this host."""
        pid = self.marker.get("pid")
        if self.marker.get("host") != socket.gethostname() or not isinstance(pid, int):
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True


def newest_first(backups: Iterable[Backup], now: dt.datetime) -> list[Backup]:
    """Newest first, backups dated in the future (:func:`is_future`) after all the others."""
    return sorted(backups, key=lambda b: (not is_future(b.started_at, now), b.started_at, b.id), reverse=True)


@dataclass
class Catalog:
    root: str
    backups: list[Backup] = field(default_factory=list)
    partials: list[Partial] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    ignored_reasons: dict[str, str] = field(default_factory=dict)

    def ignore(self, name: str, reason: str) -> None:
        self.ignored.append(name)
        self.ignored_reasons[name] = reason

    def select(self, engine: str | None = None, database: str | None = None) -> list[Backup]:
        return [b for b in self.backups
                if (engine is None or b.engine == engine) and (database is None or b.database == database)]

    def get(self, backup_id: str) -> Backup:
        for backup in self.backups:
            if backup.id == backup_id:
                return backup
        raise DbopsError(f"find backup {backup_id} in {self.root}: no complete backup with that id")

    def latest(self, engine: str | None = None, database: str | None = None,
               now: dt.datetime | None = None) -> Backup | None:
        """The newest backup not dated in the future; when every backup is, the newest of those (a
        restore or verification of ``latest`` still finds it; callers that judge age, such as
        min_interval and freshness, check :func:`is_future` themselves)."""
        ordered = newest_first(self.select(engine, database), now or utcnow())
        return ordered[0] if ordered else None

    def future(self, engine: str | None = None, database: str | None = None,
               now: dt.datetime | None = None) -> list[Backup]:
        """Backups dated in the future (:func:`is_future`), newest first."""
        now = now or utcnow()
        return [b for b in newest_first(self.select(engine, database), now) if is_future(b.started_at, now)]


_SHA256 = re.compile(r"[0-9a-f]{64}")


def _shown(value: Any) -> str:
    """A short rendering of an untrusted value for a message (containers by type only)."""
    if isinstance(value, str):
        value = value[:40] + "..." if len(value) > 40 else value
    elif not isinstance(value, (int, float, bool, type(None))):
        return f"a JSON {'object' if isinstance(value, dict) else 'array'}"
    text = repr(value)
    return text if len(text) <= 45 else text[:40] + "..."


def _file_problem(entry: Any) -> str | None:
    if not isinstance(entry, dict):
        return f"an entry of files is not an object ({_shown(entry)})"
    path, size, digest = entry.get("path"), entry.get("size"), entry.get("sha256")
    if not isinstance(path, str) or not path:
        return f"a file entry has no path ({_shown(path)})"
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        return f"file {_shown(path)}: size is not a byte count ({_shown(size)})"
    if not isinstance(digest, str) or not _SHA256.fullmatch(digest):
        return f"file {_shown(path)}: sha256 is not a hex digest ({_shown(digest)})"
    return None


def manifest_problem(data: Any, name: str) -> str | None:
    """Why ``data``, read from ``<root>/<name>/manifest.json``, is not a usable manifest (None when it
    is): every field the catalog, info, retention, verification and restore read is checked here."""
    if not isinstance(data, dict):
        return "manifest.json is not a JSON object"
    checks = (
        (data.get("kind") == MANIFEST_KIND, "kind", f"is not {MANIFEST_KIND}"),
        (data.get("id") == name, "id", "differs from the directory name"),
        (data.get("engine") in ENGINES, "engine", f"is not one of {', '.join(ENGINES)}"),
        (isinstance(data.get("database"), str) and bool(data.get("database")), "database",
         "is not a database name"),
        (checked_time(data.get("started_at")) is not None, "started_at",
         "is not an ISO 8601 time with a time zone"),
        (isinstance(data.get("format"), str), "format", "is not a string"),
        (isinstance(data.get("files"), list), "files", "is not a list"),
        (data.get("tool") is None or isinstance(data.get("tool"), dict), "tool", "is not an object"),
        (data.get("counts") is None or (isinstance(data.get("counts"), dict) and all(
            isinstance(n, int) and not isinstance(n, bool) for n in data["counts"].values())),
         "counts", "is not an object of integers"),
    )
    for ok, key, problem in checks:
        if not ok:
            return f"manifest.json: {key} {problem} ({_shown(data.get(key))})"
    for entry in data["files"]:
        problem = _file_problem(entry)
        if problem:
            return f"manifest.json: files: {problem}"
    return None


def verification_problem(record: Any) -> str | None:
    """Why a record of verifications.json is not usable (None when it is)."""
    if not isinstance(record, dict):
        return "not an object"
    if checked_time(record.get("time")) is None:
        return "time is not an ISO 8601 time with a time zone"
    if not isinstance(record.get("ok"), bool):
        return "ok is not true or false"
    if not isinstance(record.get("kind", ""), str):
        return "kind is not a string"
    return None


def check_root(root: str, writable: bool = False) -> str:
    """Return the absolute root or raise a clear error (missing, not a directory, not writable)."""
    path = os.path.abspath(root)
    if not os.path.exists(path):
        raise DbopsError(f"use backup root {path}: the directory does not exist")
    if not os.path.isdir(path):
        raise DbopsError(f"use backup root {path}: not a directory")
    if writable and not os.access(path, os.W_OK | os.X_OK):
        raise DbopsError(f"use backup root {path}: the directory is not writable by this user")
    if not os.access(path, os.R_OK | os.X_OK):
        raise DbopsError(f"use backup root {path}: the directory is not readable by this user")
    return path


def scan(root: str) -> Catalog:
    """Read the catalog of a backup root. Never follows symlinks; unknown entries are ignored."""
    path = check_root(root)
    catalog = Catalog(root=path)
    with os.scandir(path) as entries:
        for entry in sorted(entries, key=lambda e: e.name):
            if entry.name in (LOCK_FILE, READERS_LOCK):
                continue
            if entry.is_symlink():
                catalog.ignore(entry.name, "a symlink (never followed)")
                continue
            if not entry.is_dir(follow_symlinks=False):
                catalog.ignore(entry.name, "not a directory")
                continue
            if entry.name.endswith(PARTIAL_SUFFIX):
                partial = _read_partial(entry.path, entry.name)
                if partial is None:
                    catalog.ignore(entry.name, f"no valid {MARKER} marker in this .partial directory")
                else:
                    catalog.partials.append(partial)
                continue
            manifest, problem = _read_manifest(entry.path, entry.name)
            if manifest is None:
                catalog.ignore(entry.name, problem or "no usable manifest")
            else:
                catalog.backups.append(Backup(id=entry.name, path=entry.path, manifest=manifest))
    return catalog


def _read_manifest(directory: str, name: str) -> tuple[dict[str, Any] | None, str | None]:
    """The manifest of the backup directory ``<root>/<name>``, or why it has no usable one."""
    path = os.path.join(directory, MANIFEST)
    if os.path.islink(path):
        return None, f"{MANIFEST} is a symlink"
    try:
        data = read_json(path)
    except FileNotFoundError:
        return None, f"no {MANIFEST}"
    except OSError as exc:
        return None, f"{MANIFEST} cannot be read: {exc.strerror or exc}"
    except (ValueError, RecursionError):  # not JSON, not UTF-8, nested too deep
        return None, f"{MANIFEST} is not valid JSON"
    problem = manifest_problem(data, name)
    return (None, problem) if problem else (data, None)


def _read_partial(path: str, name: str) -> Partial | None:
    marker_path = os.path.join(path, MARKER)
    if os.path.islink(marker_path):
        return None
    try:
        marker = read_json(marker_path)
        mtime = dt.datetime.fromtimestamp(os.lstat(marker_path).st_mtime, dt.timezone.utc)
    except (OSError, ValueError, RecursionError):
        return None
    if not isinstance(marker, dict) or marker.get("kind") != MANIFEST_KIND:
        return None
    return Partial(name=name, path=path, marker=marker, mtime=mtime)


# --------------------------------------------------------------------------- writing a backup

def sanitize(name: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9_-]+", "_", name).strip("_") or "db"
    return cleaned[:60]


def new_backup_id(root: str, engine: str, database: str, when: dt.datetime) -> str:
    base = f"{ENGINE_PREFIX[engine]}-{sanitize(database)}-{when.strftime('%Y%m%dT%H%M%SZ')}"
    candidate, n = base, 1
    while (os.path.lexists(os.path.join(root, candidate))
           or os.path.lexists(os.path.join(root, candidate + PARTIAL_SUFFIX))):
        n += 1
        candidate = f"{base}-{n}"
    return candidate


class BackupWriter:
    """Creates ``<root>/<id>.partial``, then publishes it as ``<root>/<id>`` after the manifest.

    Used as a context manager: if the body raises, the partial directory is removed, so a failed
    backup (bad login, disk full, pg_dump error) leaves nothing behind. If the process is killed,
    the partial stays; it never looks complete and retention removes it once it is stale.
    """

    def __init__(self, root: str, engine: str, database: str) -> None:
        self.root = check_root(root, writable=True)
        self.engine = engine
        self.database = database
        self.started = utcnow()
        self.id = new_backup_id(self.root, engine, database, self.started)
        self.partial = os.path.join(self.root, self.id + PARTIAL_SUFFIX)
        self.final = os.path.join(self.root, self.id)
        self.published = False

    def _claim_directory(self) -> None:
        """mkdir is the claim on an id: when another writer got there first, take the next id.

        The id chosen in ``__init__`` is only a guess; a writer never removes a directory it did not
        create itself (two writers racing to one id used to delete each other's partial).
        """
        for _attempt in range(1000):
            try:
                os.mkdir(self.partial, 0o700)
                return
            except FileExistsError:
                self.id = new_backup_id(self.root, self.engine, self.database, self.started)
                self.partial = os.path.join(self.root, self.id + PARTIAL_SUFFIX)
                self.final = os.path.join(self.root, self.id)
        raise DbopsError(f"create backup directory in {self.root}: no free backup id after 1000 attempts")

    def __enter__(self) -> BackupWriter:
        try:
            self._claim_directory()
        except OSError as exc:
            raise DbopsError(f"create backup directory {self.partial}: {exc.strerror or exc}") from exc
        try:
            os.chmod(self.partial, 0o700)
            write_json_atomic(os.path.join(self.partial, MARKER), {
                "kind": MANIFEST_KIND, "id": self.id, "engine": self.engine, "database": self.database,
                "pid": os.getpid(), "host": socket.gethostname(),
                "started_at": format_time(self.started),
            })
        except OSError as exc:
            self.discard()
            raise DbopsError(f"create backup directory {self.partial}: {exc.strerror or exc}") from exc
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if not self.published:
            self.discard()

    def discard(self) -> None:
        shutil.rmtree(self.partial, ignore_errors=True)

    def publish(self, manifest: dict[str, Any], hash_workers: int = 1) -> dict[str, Any]:
        """Checksum the payload, write the manifest last, rename the directory into place."""
        try:
            restrict_permissions(self.partial)
            fsync_tree(self.partial)
            files = describe_files(self.partial, workers=hash_workers)
            finished = utcnow()
            full = {
                "kind": MANIFEST_KIND,
                "format_version": MANIFEST_VERSION,
                "id": self.id,
                "engine": self.engine,
                "database": self.database,
                "host": socket.gethostname(),
                "started_at": format_time(self.started),
                "finished_at": format_time(finished),
                "duration_s": round((finished - self.started).total_seconds(), 3),
                **manifest,
                "files": files,
                "total_size": sum(f["size"] for f in files),
            }
            write_json_atomic(os.path.join(self.partial, MANIFEST), full)
            os.rename(self.partial, self.final)
            fsync_dir(self.root)
        except OSError as exc:
            raise DbopsError(f"write backup {self.id} in {self.root}: {exc.strerror or exc}") from exc
        self.published = True
        return full


# --------------------------------------------------------------------------- verification

def verify_files(backup: Backup, workers: int = 1) -> list[str]:
    """Re-read every file against the manifest; return the problems (empty when intact)."""
    problems: list[str] = []
    listed = {f["path"]: f for f in backup.manifest.get("files", [])}
    present = set(payload_files(backup.path))
    for rel in sorted(present - set(listed)):
        problems.append(f"{rel}: not listed in the manifest")
    to_hash: list[dict[str, Any]] = []
    for rel, entry in sorted(listed.items()):
        path = os.path.join(backup.path, rel)
        if rel not in present or not os.path.lexists(path):
            problems.append(f"{rel}: missing")
            continue
        st = os.lstat(path)
        if not stat.S_ISREG(st.st_mode):
            problems.append(f"{rel}: not a regular file")
        elif st.st_size != entry.get("size"):
            problems.append(f"{rel}: size {st.st_size} differs from the manifest ({entry.get('size')})")
        else:
            to_hash.append(entry)

    def check(entry: dict[str, Any]) -> str | None:
        digest = sha256_file(os.path.join(backup.path, entry["path"]))
        if digest != entry.get("sha256"):
            return f"{entry['path']}: sha256 {digest} differs from the manifest"
        return None

    if workers > 1 and len(to_hash) > 1:
        with ThreadPoolExecutor(max_workers=min(workers, len(to_hash))) as pool:
            results: Iterable[str | None] = list(pool.map(check, to_hash))
    else:
        results = [check(entry) for entry in to_hash]
    problems.extend(r for r in results if r)
    return problems


def require_intact(backup: Backup, workers: int = 1) -> None:
    problems = verify_files(backup, workers)
    if problems:
        raise DbopsError(
            f"verify backup {backup.id}: {len(problems)} file(s) do not match the manifest: "
            + "; ".join(problems[:5]),
            problems=problems,
        )


def record_verification(backup: Backup, record: dict[str, Any], keep: int = 50) -> None:
    """Append ``record`` (malformed records already in the file are not written back)."""
    records = backup.verifications()
    records.append(record)
    write_json_atomic(os.path.join(backup.path, VERIFICATIONS), records[-keep:])


def verification_state(backup: Backup) -> dict[str, Any]:
    """The state by the newest well-formed record; ``malformed``: how many records were skipped."""
    records, malformed = backup.read_verifications()
    if not records:
        return {"state": "unverified", "last": None, "malformed": malformed}
    last = records[-1]
    return {"state": "verified" if last["ok"] else "failed", "last": last, "malformed": malformed}


# --------------------------------------------------------------------------- removal

def open_lock_file(root: str, name: str) -> int:
    """Open (creating it) the lock file ``root/name``: never through a symlink, always a regular file,
    owned by the root directory's owner with mode 0600, whoever opens it first.

    Root running a restore or verification with become must not leave a lock the backup user's
    cron job cannot open; a symlink planted by the backup user must not make root create or open a
    file elsewhere. Raises DbopsError (the caller reports it) when the file cannot be used.
    """
    path = os.path.join(root, name)
    action = f"open lock file {path}"
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        if os.path.islink(path):
            raise DbopsError(f"{action}: it is a symlink (remove it; lock files are never followed)") from exc
        hint = " (it belongs to another user: run the command once as root or as the owner of the backup " \
               "root to hand it back)" if isinstance(exc, PermissionError) else ""
        raise DbopsError(f"{action}: {exc.strerror or exc}{hint}") from exc
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise DbopsError(f"{action}: not a regular file")
        owner = os.stat(root, follow_symlinks=False)
        if (st.st_uid, st.st_gid) != (owner.st_uid, owner.st_gid) and os.geteuid() == 0:
            os.fchown(fd, owner.st_uid, owner.st_gid)
        if stat.S_IMODE(st.st_mode) != 0o600 and (st.st_uid == os.geteuid() or os.geteuid() == 0):
            os.fchmod(fd, 0o600)
    except OSError as exc:
        os.close(fd)
        raise DbopsError(f"{action}: {exc.strerror or exc}") from exc
    except BaseException:
        os.close(fd)
        raise
    return fd


@contextlib.contextmanager
def readers_lock(root: str, exclusive: bool) -> Iterator[None]:
    """Shared while restores and verifications read backups; exclusive while retention removes.

    Retention does not wait: when a reader holds the lock it fails with a clear error instead of
    deleting a backup that is being restored. Readers wait for a removal to finish.
    """
    try:
        fd = open_lock_file(root, READERS_LOCK)
    except DbopsError:
        path = os.path.join(root, READERS_LOCK)
        if exclusive or os.path.islink(path) or (os.path.lexists(path) and not os.path.isfile(path)):
            raise
        yield  # a root this user cannot lock (read-only): this user cannot remove backups from it either
        return
    try:
        if exclusive:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise DbopsError(f"remove backups from {root}: a restore or verification is reading them "
                                 "right now; nothing was removed (run retention again later)") from None
        else:
            fcntl.flock(fd, fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)


def _inside_root(root: str, path: str) -> bool:
    return os.path.dirname(os.path.abspath(path)) == os.path.abspath(root)


def remove_entry(root: str, path: str) -> None:
    """Remove one backup or partial directory directly below ``root`` (never through a link).

    A complete backup is first renamed to ``<id>.partial`` so an interrupted removal never leaves
    something that looks complete but is missing files.
    """
    if not _inside_root(root, path) or os.path.islink(path) or not os.path.isdir(path):
        raise DbopsError(f"remove {path}: not a backup directory directly inside {root}")
    target = path
    if not path.endswith(PARTIAL_SUFFIX):
        target = path + PARTIAL_SUFFIX
        if os.path.lexists(target):
            raise DbopsError(f"remove {path}: {target} already exists")
        os.rename(path, target)
    try:
        shutil.rmtree(target)
    except OSError as exc:
        raise DbopsError(f"remove {target}: {exc.strerror or exc}") from exc
