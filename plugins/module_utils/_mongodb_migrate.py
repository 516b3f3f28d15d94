# Copyright: dbops.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The MongoDB engine of versioned migrations.

File names, versions, discovery, checksums and planning come from the engine-neutral core
``_migrations`` (shared with pg_migrate). This module adds what is MongoDB's own:

- migration documents: YAML or JSON with ``up:`` and optional ``down:`` lists of ``runCommand``
  documents and ``transaction: true`` (MongoDB Extended JSON such as ``{$date: ...}`` or
  ``{$oid: ...}`` is understood);
- the history collection (one document per applied step, with checksum, timings and success);
- a lock document with an owner, a heartbeat and an expiry, taken over only once it has expired;
- execution: commands run in order; a non-transactional migration that fails records how many
  commands completed (with their checksums) and the next run resumes after them;
- verify scripts (``V<version>__<description>.verify.yml``, the pairing rules of ``_migrations``):
  ``verify:`` checks, each a command and the values its reply must hold (``expect``, dotted paths),
  run right after the migration's commands, inside its transaction when it has one (a failing
  check rolls it back); after a non-transactional migration a failing check records it as failed
  with every command done, so the next run only verifies again. ``mode=verify`` re-runs the checks
  of every applied version and changes nothing.
"""

from __future__ import annotations

import contextlib
import datetime
import getpass
import hashlib
import json
import os
import re
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable

from ansible_collections.dbops.datastores.plugins.module_utils import _migrations as core
from ansible_collections.dbops.datastores.plugins.module_utils._errors import DbopsError, MissingDriverError
from ansible_collections.dbops.datastores.plugins.module_utils._migration_extensions import MONGODB_EXTENSIONS

try:
    import yaml

    YAML_IMPORT_ERROR: str | None = None
except ImportError as exc:  # pragma: no cover - depends on the host
    yaml = None
    YAML_IMPORT_ERROR = str(exc)

if yaml is not None:

    class _Yaml12Loader(yaml.SafeLoader):
        """SafeLoader with YAML 1.2 booleans: only true/false, so ``on:`` ($merge, $lookup) stays a key."""

    _Yaml12Loader.yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    _Yaml12Loader.add_implicit_resolver(
        "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))

try:
    from bson import json_util
    from bson.errors import BSONError
except ImportError:  # pragma: no cover - pymongo missing is reported by _mongodb.connect
    json_util = None
    BSONError = ValueError  # never raised: without bson, Extended JSON is left as it is

EXTENSIONS = MONGODB_EXTENSIONS
DOC_KEYS = {"transaction", "up", "down"}


# --------------------------------------------------------------------------------------------
# Migration documents
# --------------------------------------------------------------------------------------------


@dataclass
class MigrationDoc:
    """The parsed content of one migration file."""

    up: list[dict[str, Any]]
    down: list[dict[str, Any]] = field(default_factory=list)
    transaction: bool = False


def _dates(value: Any) -> Any:
    """YAML dates (no time) become midnight UTC datetimes, which BSON can store."""
    if isinstance(value, dict):
        return {k: _dates(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_dates(v) for v in value]
    if isinstance(value, datetime.date) and not isinstance(value, datetime.datetime):
        return datetime.datetime(value.year, value.month, value.day, tzinfo=datetime.timezone.utc)
    return value


def _extended_json(value: Any) -> Any:
    """Turn MongoDB Extended JSON (``{$date: ...}``, ``{$oid: ...}``) into BSON values."""
    if json_util is None:
        return value
    return json_util.loads(json_util.dumps(_dates(value)))


def _commands(value: Any, where: str, section: str) -> list[dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise DbopsError(f"read migration {where}: {section} must be a list of commands")
    for number, cmd in enumerate(value, 1):
        if not isinstance(cmd, dict) or not cmd:
            raise DbopsError(
                f"read migration {where}: {section} command {number} must be a mapping such as "
                f"{{insert: coll, documents: [...]}}, got {cmd!r}"
            )
        name = next(iter(cmd))
        if not isinstance(name, str) or name.startswith("$"):
            raise DbopsError(f"read migration {where}: {section} command {number} does not start with "
                             f"a command name (got {name!r})")
    try:
        return [_extended_json(c) for c in value]
    except (BSONError, ValueError, TypeError, OverflowError, IndexError, KeyError) as exc:  # json_util
        raise DbopsError(f"read migration {where}: {section} holds malformed Extended JSON "
                         f"({type(exc).__name__}: {' '.join(str(exc).split())[:200]})") from exc


def parse_document(text: str, script: str) -> MigrationDoc:
    """Parse and validate a migration file (``DbopsError`` naming the file and the problem)."""
    if script.lower().endswith(".json"):
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise DbopsError(f"read migration {script}: malformed JSON: {exc}") from exc
    else:
        if yaml is None:
            raise MissingDriverError("PyYAML", YAML_IMPORT_ERROR or "not installed")
        try:
            data = yaml.load(text, Loader=_Yaml12Loader)  # a SafeLoader subclass
        except yaml.YAMLError as exc:
            detail = " ".join(str(exc).split())
            raise DbopsError(f"read migration {script}: malformed YAML: {detail}") from exc
    if isinstance(data, list):
        data = {"up": data}
    if not isinstance(data, dict):
        raise DbopsError(f"read migration {script}: expected a mapping with up: (and down:) command lists")
    unknown = sorted(set(data) - DOC_KEYS)
    if unknown:
        raise DbopsError(f"read migration {script}: unknown keys {', '.join(map(str, unknown))} "
                         f"(allowed: {', '.join(sorted(DOC_KEYS))})")
    if not isinstance(data.get("transaction", False), bool):
        raise DbopsError(f"read migration {script}: transaction must be true or false")
    doc = MigrationDoc(up=_commands(data.get("up"), script, "up"),
                       down=_commands(data.get("down"), script, "down"),
                       transaction=bool(data.get("transaction", False)))
    if script.rsplit("/", maxsplit=1)[-1].startswith("U"):
        # An undo file holds its commands under down: (or up:, or as a bare list).
        doc.down = doc.down or doc.up
        if not doc.down:
            raise DbopsError(f"read migration {script}: an undo file needs a list of commands under down:")
    elif not doc.up:
        raise DbopsError(f"read migration {script}: up: must list at least one command")
    return doc


_PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_.-]*)\}")


def substitute(value: Any, placeholders: dict[str, Any], script: str) -> Any:
    """Replace ``${name}`` inside the string values of parsed commands (never in the file text, so a
    value cannot break the YAML/JSON). A string that is exactly ``${name}`` takes the value with its
    type (a number stays a number); inside a longer string the value is inserted as text. With
    placeholders set, a name without a value is an error."""
    if isinstance(value, dict):
        return {k: substitute(v, placeholders, script) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, placeholders, script) for v in value]
    if not isinstance(value, str) or "${" not in value:
        return value
    names = _PLACEHOLDER.findall(value)
    unknown = sorted(set(names) - set(placeholders))
    if unknown:
        raise DbopsError(
            f"substitute placeholders in {script}: no value for " + ", ".join(f"${{{n}}}" for n in unknown)
            + f" (placeholders given: {', '.join(sorted(placeholders)) or 'none'})"
        )
    whole = _PLACEHOLDER.fullmatch(value)
    if whole:
        return placeholders[whole.group(1)]
    return _PLACEHOLDER.sub(lambda m: str(placeholders[m.group(1)]), value)


VERIFY_KEYS = {"command", "expect"}


class VerifyFailed(RuntimeError):
    """A verify check whose reply does not hold the expected values."""


def parse_verify(text: str, script: str) -> list[dict[str, Any]]:
    """A verify file: ``verify:`` (or a bare list) of ``{command: {...}, expect: {path: value}}``."""
    if yaml is None:
        raise MissingDriverError("PyYAML", YAML_IMPORT_ERROR or "not installed")
    try:
        data = json.loads(text) if script.lower().endswith(".json") else yaml.load(text, Loader=_Yaml12Loader)
    except (ValueError, yaml.YAMLError) as exc:
        detail = " ".join(str(exc).split())
        raise DbopsError(f"read verify script {script}: malformed file: {detail}") from exc
    if isinstance(data, dict) and set(data) == {"verify"}:
        data = data["verify"]
    if not isinstance(data, list) or not data:
        raise DbopsError(f"read verify script {script}: expected verify: with a list of checks"
                         " ({command: {...}, expect: {field: value}})")
    checks = []
    for number, check in enumerate(data, 1):
        if not isinstance(check, dict) or set(check) != VERIFY_KEYS or not isinstance(check["expect"], dict) \
                or not check["expect"]:
            raise DbopsError(f"read verify script {script}: check {number} must have exactly command: and a"
                             " non-empty expect: mapping")
        command = _commands([check["command"]], script, f"verify check {number}")[0]
        checks.append({"command": command, "expect": _extended_json(check["expect"])})
    return checks


def reply_value(reply: Any, path: str) -> Any:
    """The value at a dotted ``path`` of a command reply (``cursor.firstBatch.0.n``); KeyError if absent."""
    value = reply
    for part in path.split("."):
        if isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        elif isinstance(value, dict) and part in value:
            value = value[part]
        else:
            raise KeyError(path)
    return value


def judge_reply(reply: Any, expect: dict[str, Any]) -> str | None:
    """What differs between a reply and the expected values (``None`` when it matches)."""
    problems = []
    for path, wanted in expect.items():
        try:
            actual = reply_value(reply, path)
        except KeyError:
            problems.append(f"{path} is missing from the reply")
            continue
        if actual != wanted or isinstance(actual, bool) != isinstance(wanted, bool):
            problems.append(f"{path} is {_jsonable(actual)!r}, expected {_jsonable(wanted)!r}")
    return "; ".join(problems) or None


def run_verify(db: Any, script: str, checks: list[dict[str, Any]], session: Any = None) -> None:
    """Run a verify script's checks; ``VerifyFailed`` naming the script and the first failing check."""
    for number, check in enumerate(checks, 1):
        reply = db.command(check["command"], session=session)
        problem = judge_reply(reply, check["expect"])
        if problem:
            raise VerifyFailed(f"verify script {script} failed at check {number}: {problem}")


def load_verify(migrations: core.MigrationSet, placeholders: dict[str, Any] | None = None
                ) -> dict[str, list[dict[str, Any]]]:
    """Every verify script of the set, parsed up front (by the script name of its migration)."""
    versioned = migrations.by_version()
    checks = {}
    for version, verify in migrations.verify.items():
        parsed = parse_verify(verify.text(), verify.script)
        checks[versioned[version].script] = substitute(parsed, placeholders, verify.script) if placeholders \
            else parsed
    return checks


def load_documents(migrations: core.MigrationSet,
                   placeholders: dict[str, Any] | None = None) -> dict[str, MigrationDoc]:
    """Parse every file of the set up front, so a malformed file fails before anything runs."""
    docs = {m.script: parse_document(m.text(), m.script) for m in migrations.all()}
    if placeholders:
        for script, doc in docs.items():
            doc.up = substitute(doc.up, placeholders, script)
            doc.down = substitute(doc.down, placeholders, script)
    return docs


def step_commands(step: core.Step, docs: dict[str, MigrationDoc]) -> list[dict[str, Any]]:
    if step.migration is None:
        return []
    doc = docs[step.migration.script]
    return doc.down if step.action == core.ACTION_UNDO else doc.up


def command_checksum(cmd: dict[str, Any]) -> str:
    text = json.dumps(_jsonable(cmd), sort_keys=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if json_util is not None:
        return json.loads(json_util.dumps(value))
    return str(value)


# --------------------------------------------------------------------------------------------
# History collection
# --------------------------------------------------------------------------------------------

STEP_KIND = {
    core.ACTION_APPLY: core.KIND_VERSIONED,
    core.ACTION_UNDO: core.KIND_UNDO,
    core.ACTION_REPEATABLE: core.KIND_REPEATABLE,
    core.ACTION_BASELINE: core.KIND_BASELINE,
}


def history_row(doc: dict[str, Any]) -> core.HistoryRow:
    installed = doc.get("installed_on")
    return core.HistoryRow(
        rank=int(doc.get("rank", 0)), kind=doc.get("type", core.KIND_VERSIONED), version=doc.get("version"),
        description=doc.get("description", ""), script=doc.get("script", ""), checksum=doc.get("checksum"),
        success=bool(doc.get("success", True)), installed_by=doc.get("installed_by"),
        installed_on=installed.isoformat() if hasattr(installed, "isoformat") else installed,
        execution_ms=doc.get("execution_ms"),
    )


def resume_key(kind: str, version: str | None, description: str) -> str:
    return f"{kind}:{core.parse_version(version).key if version else description.lower()}"


@dataclass
class History:
    docs: list[dict[str, Any]]

    @property
    def next_rank(self) -> int:
        return max((int(d.get("rank", 0)) for d in self.docs), default=0) + 1

    def resumable(self) -> dict[str, dict[str, Any]]:
        """Failed steps that recorded their progress, by kind and version (or description)."""
        return {resume_key(d.get("type", ""), d.get("version"), d.get("description", "")): d
                for d in self.docs if not d.get("success", True) and "commands_done" in d}

    def rows(self, include_resumable: bool) -> list[core.HistoryRow]:
        return [history_row(d) for d in self.docs
                if include_resumable or d.get("success", True) or "commands_done" not in d]


def read_history(db: Any, collection: str) -> History:
    return History(list(db[collection].find({}, sort=[("rank", 1)])))


# --------------------------------------------------------------------------------------------
# Lock document
# --------------------------------------------------------------------------------------------


def utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)


def server_clock(collection: Any) -> Callable[[], datetime.datetime]:
    """The server's current time (``hello.localTime``), read on every call.

    Lock expiries are compared and TTL-deleted by mongod with its own clock, so they are computed
    from it too: a runner whose clock is off must not write a lock that expires early or late.
    """
    admin = collection.database.client.admin

    def now() -> datetime.datetime:
        value = admin.command("hello").get("localTime")
        if not hasattr(value, "tzinfo") or not hasattr(value, "hour"):  # a BSON date decodes to a datetime
            raise DbopsError("read the MongoDB server's time: hello returned no localTime")
        return value if value.tzinfo is not None else value.replace(tzinfo=datetime.timezone.utc)

    return now


def default_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class MigrationLock:
    """A lock document ``{_id, owner, acquired_at, heartbeat_at, expires_at}``.

    Times come from the server's clock (``server_clock``), the one its TTL index deletes by.
    Acquired by inserting the document, or by replacing it once ``expires_at`` has passed (a runner
    that was killed stops sending heartbeats, so its lock expires after ``ttl`` seconds). While held,
    a heartbeat thread pushes ``expires_at`` forward every ``ttl / 3`` seconds. A TTL index on
    ``expires_at`` lets mongod remove locks that nobody takes over.
    """

    def __init__(self, collection: Any, key: str, owner: str, ttl: int, *,
                 duplicate_key_error: type[BaseException],
                 errors: tuple[type[BaseException], ...] = (),
                 clock: Callable[[], datetime.datetime] | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.collection = collection
        self.key = key
        self.owner = owner
        self.ttl = max(int(ttl), 3)
        self.duplicate_key_error = duplicate_key_error
        self.errors = errors
        self.clock = clock or server_clock(collection)  # the server's time, as its TTL index uses
        self.sleep = sleep
        self.taken_over_from: dict[str, Any] | None = None
        self.lost = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _fields(self) -> dict[str, Any]:
        now = self.clock()
        return {"owner": self.owner, "acquired_at": now, "heartbeat_at": now,
                "expires_at": now + datetime.timedelta(seconds=self.ttl)}

    def try_acquire(self) -> bool:
        try:
            self.collection.insert_one({"_id": self.key, **self._fields()})
            return True
        except self.duplicate_key_error:
            pass
        now = self.clock()
        previous = self.collection.find_one_and_update(
            {"_id": self.key, "expires_at": {"$lt": now}}, {"$set": self._fields()})
        if previous is None:
            return False
        self.taken_over_from = {"owner": previous.get("owner"),
                                "heartbeat_at": _iso(previous.get("heartbeat_at")),
                                "expired_at": _iso(previous.get("expires_at"))}
        return True

    def holder(self) -> dict[str, Any] | None:
        return self.collection.find_one({"_id": self.key})

    def acquire(self, timeout: float) -> None:
        # The TTL index only tidies up locks nobody takes over; locking works without it.
        with contextlib.suppress(*self.errors):
            self.collection.create_index([("expires_at", 1)], expireAfterSeconds=0, name="expires_at_ttl")
        deadline = time.monotonic() + max(timeout, 0)
        while not self.try_acquire():
            if time.monotonic() >= deadline:
                held = self.holder() or {}
                raise DbopsError(
                    f"acquire migration lock {self.key}: held by {held.get('owner')} (last heartbeat "
                    f"{_iso(held.get('heartbeat_at'))}, expires {_iso(held.get('expires_at'))}); "
                    f"waited {timeout:g} s (lock_timeout)",
                    lock_holder=_jsonable(held),
                )
            self.sleep(0.5)
        self._thread = threading.Thread(target=self._heartbeat, name="dbops-migrate-lock", daemon=True)
        self._thread.start()

    def heartbeat(self) -> bool:
        now = self.clock()
        result = self.collection.update_one(
            {"_id": self.key, "owner": self.owner},
            {"$set": {"heartbeat_at": now, "expires_at": now + datetime.timedelta(seconds=self.ttl)}})
        if result.matched_count == 0:
            self.lost = True
        return not self.lost

    def _heartbeat(self) -> None:
        while not self._stop.wait(self.ttl / 3):
            try:
                if not self.heartbeat():
                    return
            except self.errors:  # a missed beat is retried; the expiry has slack
                continue

    def check(self) -> None:
        if self.lost:
            raise DbopsError(f"hold migration lock {self.key}: the lock was taken over by another runner "
                             "after it expired; stopped before the next command")

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.collection.delete_one({"_id": self.key, "owner": self.owner})


def _iso(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value


# --------------------------------------------------------------------------------------------
# Running
# --------------------------------------------------------------------------------------------


def os_user() -> str:
    """Who runs the module when no login user is set (recorded as installed_by)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry and no LOGNAME/USER (some containers)
        return f"uid {os.getuid()}" if hasattr(os, "getuid") else "unknown"


@dataclass
class Settings:
    database: str
    path: str
    target: str | None = None
    allow_downgrade: bool = False
    out_of_order: bool = False
    validate_checksums: bool = True
    baseline_version: str | None = None
    repair: bool = False
    history_collection: str = "dbops_schema_history"
    lock_collection: str = "dbops_migration_lock"
    lock_ttl: int = 60
    lock_timeout: int = 300
    installed_by: str | None = None
    placeholders: dict[str, Any] = field(default_factory=dict)
    # Files read on the controller by the action plugin (``{script: base64}``), instead of ``path``.
    files: dict[str, str] | None = field(default=None, repr=False)
    src: str | None = None
    mode: str = "migrate"
    applied_detail: str = "compact"


def settings_from_params(params: dict[str, Any]) -> Settings:
    target = params.get("target")
    return Settings(
        database=params["database"], path=params.get("path") or params.get("src") or "",
        files=params.get("files"), src=params.get("src"),
        target=None if target in (None, "") else str(target),
        allow_downgrade=bool(params.get("allow_downgrade")), out_of_order=bool(params.get("out_of_order")),
        validate_checksums=params.get("validate_checksums", True) is not False,
        baseline_version=(None if params.get("baseline_version") in (None, "")
                          else str(params["baseline_version"])),
        repair=bool(params.get("repair")),
        history_collection=params.get("history_collection") or "dbops_schema_history",
        lock_collection=params.get("lock_collection") or "dbops_migration_lock",
        lock_ttl=int(params.get("lock_ttl") or 60), lock_timeout=int(params.get("lock_timeout") or 0),
        installed_by=params.get("login_user") or os_user(),
        placeholders=dict(params.get("placeholders") or {}),
        mode=params.get("mode") or "migrate",
        applied_detail=params.get("applied_detail") or "compact",
    )


@dataclass
class Prepared:
    migrations: core.MigrationSet
    docs: dict[str, MigrationDoc]
    history: History
    plan: core.Plan
    # Failed steps to resume; empty with repair, which removes them and starts those steps afresh.
    resumable: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Verify checks by the script name of the versioned migration they verify.
    verify: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


def discover(settings: Settings) -> core.MigrationSet:
    """The migration files: those the action plugin read in ``src`` and sent, else ``path`` on this host."""
    shipped = core.shipped_contents(settings.files, settings.src)
    return core.discover(settings.path, EXTENSIONS, contents=shipped)


def prepare(db: Any, settings: Settings) -> Prepared:
    """Read files and history and plan (read-only; everything that can be wrong fails here)."""
    migrations = discover(settings)
    docs = load_documents(migrations, settings.placeholders)
    verify = load_verify(migrations, settings.placeholders)
    history = read_history(db, settings.history_collection)
    options = core.PlanOptions(
        target=settings.target, allow_downgrade=settings.allow_downgrade, out_of_order=settings.out_of_order,
        validate_checksums=settings.validate_checksums, baseline_version=settings.baseline_version,
        repair=settings.repair, inline_undo=lambda m: bool(docs[m.script].down),
    )
    plan = core.plan(migrations, history.rows(include_resumable=settings.repair), options)
    return Prepared(migrations, docs, history, plan, {} if settings.repair else history.resumable(), verify)


def plan_dicts(prepared: Prepared) -> list[dict[str, Any]]:
    steps = []
    resumable = prepared.resumable
    for step in prepared.plan.steps:
        data = step.to_dict()
        cmds = step_commands(step, prepared.docs)
        data["commands"] = _jsonable(cmds)
        if step.migration is not None:
            data["transaction"] = prepared.docs[step.migration.script].transaction
            verify = core.verify_script(prepared.migrations, step)
            if verify is not None:
                data["verify"] = verify.script
            failed = resumable.get(_step_key(step)) if not step.rows else None
            if failed is not None:
                data["resume_after"] = int(failed.get("commands_done", 0))
        steps.append(data)
    return steps


def _step_key(step: core.Step) -> str:
    kind = STEP_KIND.get(step.action, step.action)
    return resume_key(kind, str(step.version) if step.version is not None else None, step.description)


def supports_transactions(client: Any) -> bool:
    hello = client.admin.command("hello")
    return bool(hello.get("setName")) or hello.get("msg") == "isdbgrid"


def check_write_reply(reply: dict[str, Any], label: str) -> None:
    """runCommand reports per-statement write errors in an ``ok: 1`` reply; treat them as failures."""
    errors = reply.get("writeErrors") or []
    if errors:
        first = errors[0]
        raise RuntimeError(f"{label}: {first.get('errmsg')} (code {first.get('code')}, "
                           f"{len(errors)} write error(s))")
    concern = reply.get("writeConcernError")
    if concern:
        raise RuntimeError(f"{label}: write concern error {concern.get('errmsg')}")


class Runner:
    """Executes a prepared plan step by step, recording history as it goes."""

    def __init__(self, client: Any, settings: Settings, prepared: Prepared, *, lock: MigrationLock | None,
                 error_types: tuple[type[BaseException], ...],
                 describe_error: Callable[[Any], str] = str) -> None:
        self.client = client
        self.db = client[settings.database]
        self.settings = settings
        self.prepared = prepared
        self.lock = lock
        self.error_types = (*error_types, RuntimeError)
        self.describe_error = describe_error
        self.history = self.db[settings.history_collection]
        self.rank = prepared.history.next_rank
        self.applied: list[dict[str, Any]] = []

    def _row(self, step: core.Step, success: bool, started: float, **extra: Any) -> dict[str, Any]:
        doc = {
            "rank": self.rank, "type": STEP_KIND[step.action],
            "version": str(step.version) if step.version is not None else None,
            "description": step.description, "script": step.script, "checksum": step.checksum,
            "installed_by": self.settings.installed_by, "installed_on": utcnow(),
            "execution_ms": int((time.monotonic() - started) * 1000), "success": success,
        }
        doc.update(extra)
        return doc

    def run(self) -> list[dict[str, Any]]:
        resumable = self.prepared.resumable
        for step in self.prepared.plan.steps:
            if self.lock is not None:
                self.lock.check()
            started = time.monotonic()
            if step.action == core.ACTION_REPAIR:
                ranks = [r.rank for r in step.rows]
                self.history.delete_many({"success": False})
                self.applied.append({**step.to_dict(), "removed_ranks": ranks, "execution_ms": 0})
                continue
            if step.action == core.ACTION_BASELINE:
                self.history.insert_one(self._row(step, True, started))
                self.rank += 1
                self.applied.append({**step.to_dict(), "execution_ms": 0})
                continue
            failed = resumable.get(_step_key(step))
            self._run_step(step, failed, started)
        return self.applied

    def _resume_from(self, step: core.Step, cmds: list[dict[str, Any]], failed: dict[str, Any] | None) -> int:
        if failed is None:
            return 0
        done = int(failed.get("commands_done", 0))
        recorded = list(failed.get("command_checksums") or [])[:done]
        current = [command_checksum(c) for c in cmds[:done]]
        if done > len(cmds) or recorded != current:
            raise DbopsError(
                f"resume migration {step.script}: it failed after {done} of its commands had run and those "
                "commands have changed since; fix the database by hand, then run with repair: true "
                "to run it again from its first command"
            )
        return done

    def _run_step(self, step: core.Step, failed: dict[str, Any] | None, started: float) -> None:
        if step.migration is None:  # only repair and baseline steps have none; handled in run()
            raise DbopsError(f"apply migration {step.script}: the plan step has no migration file")
        doc = self.prepared.docs[step.migration.script]
        cmds = step_commands(step, self.prepared.docs)
        start_at = 0 if doc.transaction else self._resume_from(step, cmds, failed)
        done = start_at
        session = self.client.start_session() if doc.transaction else None
        try:
            if session is not None:
                session.start_transaction()
            for cmd in cmds[start_at:]:
                if self.lock is not None:
                    self.lock.check()
                reply = self.db.command(cmd, session=session)
                check_write_reply(reply, f"{next(iter(cmd))} {cmd[next(iter(cmd))]}")
                done += 1
            verify = core.verify_script(self.prepared.migrations, step)
            if verify is not None:
                run_verify(self.db, verify.script, self.prepared.verify[step.script], session=session)
            row = self._row(step, True, started, commands=len(cmds), resumed_after=start_at or None)
            if failed is not None:
                self.history.delete_one({"_id": failed["_id"]}, session=session)
            self.history.insert_one(row, session=session)
            if session is not None:
                session.commit_transaction()
        except (*self.error_types, DbopsError) as exc:
            where = f"command {done + 1} of {len(cmds)}" if done < len(cmds) else "recording its history"
            if isinstance(exc, VerifyFailed):
                where = "its verify script"
            if session is not None and session.in_transaction:
                session.abort_transaction()
                done = 0
            self._record_failure(step, cmds, done, failed, started)
            cause = exc.msg if isinstance(exc, DbopsError) else self.describe_error(exc)
            raise DbopsError(
                f"apply migration {step.script}: {where} failed: {cause}"
                + (" (the transaction was rolled back)" if doc.transaction else
                   f" ({done} command(s) of it ran; the next run resumes after them)"),
                applied=self.applied,
            ) from exc
        finally:
            if session is not None:
                session.end_session()
        self.rank += 1
        self.applied.append({**step.to_dict(), "execution_ms": row["execution_ms"],
                             "transaction": doc.transaction, "resumed_after": start_at})

    def _record_failure(self, step: core.Step, cmds: list[dict[str, Any]], done: int,
                        failed: dict[str, Any] | None, started: float) -> None:
        row = self._row(step, False, started, commands_done=done,
                        command_checksums=[command_checksum(c) for c in cmds[:done]])
        if failed is not None:
            row["rank"] = failed.get("rank", self.rank)
            self.history.replace_one({"_id": failed["_id"]}, row)
        else:
            self.history.insert_one(row)
            self.rank += 1


def verify_applied(db: Any, settings: Settings, error_types: tuple[type[BaseException], ...],
                   describe_error: Callable[[Any], str] = str) -> dict[str, Any]:
    """mode=verify: run the verify checks of every applied version (no lock, no write)."""
    migrations = discover(settings)
    checks = load_verify(migrations, settings.placeholders)
    history = read_history(db, settings.history_collection).rows(include_resumable=False)
    pairs = core.applied_verifications(migrations, history)
    results, failures = [], []
    for row, verify in pairs:
        entry: dict[str, Any] = {"version": row.version, "script": row.script, "verify": verify.script}
        try:
            run_verify(db, verify.script, checks[migrations.by_version()[verify.version].script])
            entry["ok"] = True
        except VerifyFailed as exc:
            entry.update(ok=False, error=str(exc))
        except error_types as exc:
            entry.update(ok=False, error=f"verify script {verify.script}: {describe_error(exc)}")
        if not entry["ok"]:
            failures.append(entry["error"])
        results.append(entry)
    state = core.history_state(history)
    current = str(state.current()) if state.current() is not None else None
    result = {"changed": False, "version_before": current, "version": current, "verified": results,
              "pending": [], "applied": [], "plan": [],
              "unverified": [state.applied[v].script for v in sorted(state.applied)
                             if v not in migrations.verify]}
    if failures:
        raise DbopsError(f"verify migrations of {settings.database}: {len(failures)} of {len(results)} verify"
                         " scripts failed (the live data has drifted from the migrations): "
                         + "; ".join(failures), **result)
    return result


def result_fields(prepared: Prepared) -> dict[str, Any]:
    plan = prepared.plan
    return {
        "version_before": str(plan.version_before) if plan.version_before is not None else None,
        "version": str(plan.version_after) if plan.version_after is not None else None,
        "pending": list(plan.pending),
    }


def migrate(client: Any, settings: Settings, *, check_mode: bool,
            error_types: tuple[type[BaseException], ...], duplicate_key_error: type[BaseException],
            describe_error: Callable[[Any], str] = str, owner: str | None = None) -> dict[str, Any]:
    """Plan, and outside check mode take the lock, re-plan under it and run. Returns module results."""
    db = client[settings.database]
    if settings.mode == "verify":
        return verify_applied(db, settings, error_types, describe_error)
    prepared = prepare(db, settings)
    result: dict[str, Any] = {"changed": prepared.plan.changed, **core.applied_result([]),
                              **result_fields(prepared), "plan": plan_dicts(prepared)}
    if any(prepared.docs[s.migration.script].transaction for s in prepared.plan.steps
           if s.migration is not None) and not supports_transactions(client):
        scripts = [s.script for s in prepared.plan.steps
                   if s.migration is not None and prepared.docs[s.migration.script].transaction]
        raise DbopsError(f"apply migrations in {settings.path}: {', '.join(scripts)} declare "
                         "transaction: true but the server is a standalone mongod, which has no "
                         "transactions (use a replica set or drop transaction: true)",
                         **{**result, "changed": False})
    if check_mode or not prepared.plan.changed:
        return result
    lock = MigrationLock(db[settings.lock_collection], settings.history_collection, owner or default_owner(),
                         settings.lock_ttl, duplicate_key_error=duplicate_key_error, errors=error_types)
    lock.acquire(settings.lock_timeout)
    try:
        # Another runner may have applied migrations while this one waited: plan again under the lock.
        prepared = prepare(db, settings)
        result.update(result_fields(prepared), changed=prepared.plan.changed)
        if prepared.plan.changed:
            # As pg_migrate: the steps that ran are in `applied` (compact for big runs), not again in `plan`.
            del result["plan"]
        else:
            result["plan"] = plan_dicts(prepared)
        runner = Runner(client, settings, prepared, lock=lock, error_types=error_types,
                        describe_error=describe_error)
        try:
            result.update(core.applied_result(runner.run(), settings.applied_detail))
        except DbopsError as exc:
            exc.details.update(core.applied_result(runner.applied, settings.applied_detail))
            exc.details.update(changed=True, lock_owner=lock.owner)
            raise
    finally:
        lock.release()
    if lock.taken_over_from:
        result["lock_taken_over_from"] = lock.taken_over_from
    result["lock_owner"] = lock.owner
    return result
