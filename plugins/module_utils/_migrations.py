# Copyright: dbops.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Engine-neutral core of versioned migrations (used by pg_migrate and mongodb_migrate).

Pure code: no database driver, no AnsibleModule. An engine module discovers the files, reads its
history store into :class:`HistoryRow` objects, asks :func:`plan` what to do, executes the steps
and records one history row per step. Everything that can be wrong is reported as one
:class:`DbopsError` before anything runs.

API (stable; engines rely on it)
--------------------------------

File names (``ext`` is one of the engine's extensions, e.g. ``sql`` or ``yml``/``yaml``/``json``)::

    V<version>__<description>.<ext>   versioned migration
    U<version>__<description>.<ext>   undo of the versioned migration with the same version
    R__<description>.<ext>            repeatable: re-applied whenever its checksum changes
    V<version>__<description>.verify.<ext>
                                      verify script of the versioned migration with the same
                                      version (optional; any description)

``<version>`` is digits separated by ``.`` or ``_`` (``1.10``, ``009``, ``2_1``); versions compare
numerically part by part (``1.10`` > ``1.9``, ``009`` == ``9``, ``1.0`` == ``1``). Underscores in
``<description>`` read as spaces.

- ``parse_version(text) -> Version``; ``Version`` is ordered and hashable, ``str()`` gives the text
  as written; raises ``ValueError`` for text that is not a version.
- ``parse_name(name, extensions) -> ParsedName | None``: ``None`` when the extension is not one of
  ``extensions`` (the file is not a migration, e.g. a README); ``ValueError`` when the extension
  matches but the name does not follow the grammar.
- ``checksum(data: bytes) -> str``: sha256 hex digest of the file bytes.
- ``shipped_contents(files, src) -> dict[str, bytes] | None``: the files an action plugin read on the
  controller in ``src`` and sent base64-encoded as ``files``; ``None`` without them.
- ``discover(directory, extensions, recursive=True, contents=None) -> MigrationSet``: reads every
  migration file
  (hidden files and other extensions are ignored; ``script`` is the path relative to
  ``directory``), validates the set, raises ``DbopsError`` listing every problem: missing or empty
  directory, unparsable names, duplicate versions / undo versions / repeatable descriptions, an undo
  file without its versioned migration. ``build_set(migrations, source)`` validates a list of
  already-built ``Migration`` objects the same way (engines or tests that do not read files).
- ``HistoryRow``: one row of the engine's history store. ``kind`` is one of ``KIND_VERSIONED``,
  ``KIND_UNDO``, ``KIND_REPEATABLE``, ``KIND_BASELINE``; ``rank`` orders rows (insertion order).
  The state of a version is given by its latest successful row: applied when that row is
  ``versioned`` (or a ``baseline`` at or above it), not applied when it is ``undo``. Rows with
  ``success=False`` are failed migrations; they block every run until repaired.
- ``plan(migrations, history, options=PlanOptions()) -> Plan``: the ordered steps that bring the
  database to ``options.target``. Raises ``DbopsError`` (``details['problems']`` lists each
  problem) for: failed rows (unless ``repair``), checksum mismatches of applied versioned
  migrations and applied migrations whose file is gone (unless ``validate_checksums=False``),
  out-of-order pending versions (unless ``out_of_order``), a lower target without
  ``allow_downgrade``, an undo without an undo script, undoing below the baseline, an unparsable
  target, a baseline that conflicts with the recorded one.
- Step order: ``repair`` (remove failed rows), ``baseline`` (record the baseline row), ``undo``
  steps (highest version first), ``apply`` steps (lowest version first), ``repeatable`` steps
  (by description). ``Step.migration`` is what to execute: the ``V`` file for ``apply``, the ``U``
  file for ``undo`` (or the ``V`` file when ``PlanOptions.inline_undo`` says the versioned file
  carries its own undo, e.g. a ``down:`` section), the ``R`` file for ``repeatable``.
- ``Plan``: ``steps``, ``version_before``, ``version_after`` (``None`` for an empty database),
  ``pending`` (scripts of versioned migrations still not applied once the plan has run, e.g. above
  a lower target), ``changed`` and ``to_dicts()``.
- ``applied_result(steps, detail, limit=APPLIED_DETAIL_LIMIT)``: a module's ``applied`` (beyond
  ``limit`` (100) steps only the first and last 50 unless ``detail="full"``), ``applied_count`` and
  ``applied_omitted``.
- ``history_state(history) -> HistoryState``: the effective state (applied versions, current
  version, baseline, last checksum per repeatable, failed rows) that :func:`plan` works from.
- Verify scripts (kind ``KIND_VERIFY``, never recorded in the history): ``MigrationSet.verify``
  maps a version to its verify script; a verify script whose version has no ``V`` migration, or
  two for one version, are problems of :func:`build_set`. Verify scripts are not checksummed
  against the history (they may be improved at any time). ``verify_script(migrations, step)``
  gives the script to run right after an ``apply`` step; ``applied_verifications(migrations,
  history)`` the (row, script) pairs of every applied version that has one, lowest first.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import total_ordering
from typing import Any, Callable

from ansible_collections.dbops.datastores.plugins.module_utils._errors import DbopsError

KIND_VERSIONED = "versioned"
KIND_UNDO = "undo"
KIND_REPEATABLE = "repeatable"
KIND_BASELINE = "baseline"
KINDS = (KIND_VERSIONED, KIND_UNDO, KIND_REPEATABLE, KIND_BASELINE)
KIND_VERIFY = "verify"  # a file kind only: verify scripts are never recorded in the history
VERIFY_SUFFIX = ".verify"

ACTION_REPAIR = "repair"
ACTION_BASELINE = "baseline"
ACTION_UNDO = "undo"
ACTION_APPLY = "apply"
ACTION_REPEATABLE = "repeatable"

_VERSION_RE = re.compile(r"^\d+(?:[._]\d+)*$")
_NAME_RE = re.compile(r"^(?:(?P<prefix>[VU])(?P<version>\d+(?:[._]\d+)*)|(?P<repeatable>R))__(?P<desc>.+)$")

LATEST = "latest"


@total_ordering
class Version:
    """A migration version: numeric parts compared in order, trailing zero parts ignored."""

    __slots__ = ("key", "parts", "text")

    def __init__(self, text: str) -> None:
        text = str(text).strip()
        if not _VERSION_RE.match(text):
            raise ValueError(f"{text!r} is not a version (digits separated by '.' or '_')")
        self.text = text
        self.parts: tuple[int, ...] = tuple(int(p) for p in re.split(r"[._]", text))
        key = list(self.parts)
        while len(key) > 1 and key[-1] == 0:
            key.pop()
        self.key: tuple[int, ...] = tuple(key)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self.key == other.key

    def __lt__(self, other: Version) -> bool:
        return self.key < other.key

    def __hash__(self) -> int:
        return hash(self.key)

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return f"Version({self.text!r})"


def parse_version(text: str | int | float) -> Version:
    """Parse ``text`` into a :class:`Version` (``ValueError`` when it is not one)."""
    return Version(str(text))


@dataclass(frozen=True)
class ParsedName:
    """What a migration file name says: its kind, version (not for repeatables) and description."""

    kind: str
    version: Version | None
    description: str
    extension: str


def parse_name(name: str, extensions: Sequence[str]) -> ParsedName | None:
    """Parse a file name; ``None`` when its extension is not a migration extension.

    ``ValueError`` (with the reason) when the extension matches but the name does not.
    """
    exts = tuple(e.lower().lstrip(".") for e in extensions)
    stem, dot, ext = name.rpartition(".")
    if not dot or ext.lower() not in exts:
        return None
    verify = stem.lower().endswith(VERIFY_SUFFIX)
    if verify:
        stem = stem[: -len(VERIFY_SUFFIX)]
    match = _NAME_RE.match(stem)
    if verify and (not match or match.group("prefix") != "V"):
        raise ValueError(f"a verify script is named V<version>__<description>{VERIFY_SUFFIX}.<ext>")
    if not match:
        raise ValueError(
            "expected V<version>__<description>, U<version>__<description> or R__<description>"
            f" followed by .{' / .'.join(exts)}"
        )
    description = match.group("desc").replace("_", " ").strip()
    if not description:
        raise ValueError("the description after '__' is empty")
    if match.group("repeatable"):
        return ParsedName(KIND_REPEATABLE, None, description, ext.lower())
    kind = KIND_VERSIONED if match.group("prefix") == "V" else KIND_UNDO
    if verify:
        kind = KIND_VERIFY
    return ParsedName(kind, Version(match.group("version")), description, ext.lower())


def checksum(data: bytes) -> str:
    """sha256 hex digest of a migration file's bytes."""
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Migration:
    """One migration file."""

    kind: str
    version: Version | None
    description: str
    script: str
    checksum: str
    content: bytes = field(repr=False, default=b"")
    path: str | None = None

    @property
    def label(self) -> str:
        """How messages name the migration: its script (file) name."""
        return self.script

    def text(self, encoding: str = "utf-8") -> str:
        """The file content decoded (``DbopsError`` when it is not valid in ``encoding``)."""
        try:
            return self.content.decode(encoding)
        except UnicodeDecodeError as exc:
            raise DbopsError(f"read migration {self.script}: not valid {encoding} ({exc})") from exc


@dataclass
class MigrationSet:
    """A validated set of migrations from one source (directory)."""

    source: str
    versioned: list[Migration]
    undo: dict[Version, Migration]
    repeatable: list[Migration]
    verify: dict[Version, Migration] = field(default_factory=dict)

    def by_version(self) -> dict[Version, Migration]:
        return {m.version: m for m in self.versioned if m.version is not None}

    def all(self) -> list[Migration]:
        return [*self.versioned, *sorted(self.undo.values(), key=_version_key), *self.repeatable]


def _version_key(migration: Migration) -> Version:
    if migration.version is None:
        raise ValueError(f"{migration.script} has no version")
    return migration.version


def build_set(migrations: Sequence[Migration], source: str = "(migrations)",
              problems: list[str] | None = None) -> MigrationSet:
    """Validate ``migrations`` and group them; ``DbopsError`` lists every problem found."""
    problems = list(problems or [])
    versioned: dict[Version, Migration] = {}
    undo: dict[Version, Migration] = {}
    repeatable: dict[str, Migration] = {}
    verify: dict[Version, Migration] = {}
    for migration in sorted(migrations, key=lambda m: m.script):
        if migration.kind == KIND_REPEATABLE:
            key = migration.description.lower()
            if key in repeatable:
                problems.append(
                    f"duplicate repeatable migration {migration.description!r}:"
                    f" {repeatable[key].script} and {migration.script}"
                )
            else:
                repeatable[key] = migration
            continue
        if migration.version is None or migration.kind not in (KIND_VERSIONED, KIND_UNDO, KIND_VERIFY):
            problems.append(f"{migration.script}: not a versioned, undo, verify or repeatable migration")
            continue
        table = {KIND_VERSIONED: versioned, KIND_UNDO: undo, KIND_VERIFY: verify}[migration.kind]
        if migration.version in table:
            what = {KIND_VERSIONED: "version", KIND_UNDO: "undo version",
                    KIND_VERIFY: "verify script for version"}[migration.kind]
            first = table[migration.version].script
            problems.append(f"duplicate {what} {migration.version}: {first} and {migration.script}")
        else:
            table[migration.version] = migration
    for version, migration in undo.items():
        if version not in versioned:
            problems.append(
                f"{migration.script}: undo for version {version} which has no V{version}__ migration"
            )
    for version, migration in verify.items():
        if version not in versioned:
            problems.append(
                f"{migration.script}: verify script for version {version} which has no V{version}__ migration"
            )
    if problems:
        raise DbopsError(f"validate migrations in {source}: " + "; ".join(problems), problems=problems)
    return MigrationSet(
        source=source,
        versioned=sorted(versioned.values(), key=_version_key),
        undo=undo,
        repeatable=sorted(repeatable.values(), key=lambda m: (m.description.lower(), m.script)),
        verify=verify,
    )


def _migration(script: str, data: bytes, path: str | None, extensions: Sequence[str],
               problems: list[str], *, parsed: ParsedName | None = None) -> Migration | None:
    """One file as a migration; ``None`` for another extension or a bad name (added to problems)."""
    if parsed is None:
        try:
            parsed = parse_name(script.rpartition("/")[2], extensions)
        except ValueError as exc:
            problems.append(f"{script}: unparsable migration name ({exc})")
            return None
    if parsed is None:
        return None
    return Migration(parsed.kind, parsed.version, parsed.description, script, checksum(data), data, path)


def from_contents(source: str, contents: Mapping[str, bytes], extensions: Sequence[str]) -> MigrationSet:
    """Validate migrations given as ``{script: bytes}`` (files read elsewhere, e.g. on the controller).

    ``script`` is the path relative to the source directory with ``/`` separators; names with
    another extension and hidden files or directories are ignored as :func:`discover` ignores them.
    """
    migrations: list[Migration] = []
    problems: list[str] = []
    for script in sorted(contents):
        if any(part.startswith(".") or not part for part in script.split("/")):
            continue
        migration = _migration(script, contents[script], None, extensions, problems)
        if migration is not None:
            migrations.append(migration)
    if not migrations and not problems:
        exts = ", ".join(f".{e.lstrip('.')}" for e in extensions)
        raise DbopsError(f"read migrations in {source}: no migration files ({exts}) found")
    return build_set(migrations, source, problems)


def shipped_contents(files: Mapping[str, str] | None, src: str | None) -> dict[str, bytes] | None:
    """The files an action plugin read in ``src`` and sent as ``files`` (``{script: base64}``), decoded.

    ``None`` when the module reads ``path`` on the managed host instead. ``src`` without ``files``
    means the module ran without its action plugin, which is what reads ``src``.
    """
    if files is None:
        if src:
            raise DbopsError(f"read migrations in {src}: src is read on the controller by the"
                             " action plugin, which did not run (use path for a directory on the host)")
        return None
    decoded: dict[str, bytes] = {}
    for script, text in files.items():
        try:
            decoded[str(script)] = base64.b64decode(str(text), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise DbopsError(f"read migrations in {src}: {script} is not base64 ({exc})") from exc
    return decoded


def shipped_summary(params: dict[str, Any]) -> None:
    """Put a count in place of the shipped files in ``params`` (the module's ``invocation``).

    The files already travelled to the module once; without this, every result would carry them
    back to the controller in ``invocation.module_args`` (for 1,000 files, 150 KB to encode, send,
    decode and copy on each run, changed or not).
    """
    files = params.get("files")
    if isinstance(files, Mapping):
        params["files"] = f"({len(files)} files read from src)"


def verify_script(migrations: MigrationSet, step: Step) -> Migration | None:
    """The verify script to run right after ``step`` (only ``apply`` steps have one)."""
    if step.action != ACTION_APPLY or step.version is None:
        return None
    return migrations.verify.get(step.version)


def applied_verifications(migrations: MigrationSet,
                          history: Sequence[HistoryRow]) -> list[tuple[HistoryRow, Migration]]:
    """(history row, verify script) of every applied version that has a verify script, lowest first.

    Versions covered only by a baseline have no row of their own and are not verified.
    """
    state = history_state(history)
    return [(state.applied[v], migrations.verify[v]) for v in sorted(state.applied) if v in migrations.verify]


def discover(directory: str, extensions: Sequence[str], recursive: bool = True,
             contents: Mapping[str, bytes] | None = None) -> MigrationSet:
    """Read and validate the migration files under ``directory`` (``DbopsError`` on any problem).

    With ``contents`` (``{script: bytes}``) the files are not read: ``directory`` only names them.
    """
    source = str(directory)
    if contents is not None:
        return from_contents(source, contents, extensions)
    if not os.path.exists(source):
        raise DbopsError(f"read migrations in {source}: the directory does not exist")
    if not os.path.isdir(source):
        raise DbopsError(f"read migrations in {source}: not a directory")
    migrations: list[Migration] = []
    problems: list[str] = []
    for root, dirs, files in os.walk(source):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".")) if recursive else []
        relative = os.path.relpath(root, source).replace(os.sep, "/")
        prefix = "" if relative == "." else relative + "/"
        for name in sorted(files):
            if name.startswith("."):
                continue
            path = os.path.join(root, name)
            script = prefix + name
            try:
                parsed = parse_name(name, extensions)
            except ValueError as exc:
                problems.append(f"{script}: unparsable migration name ({exc})")
                continue
            if parsed is None:
                continue
            try:
                with open(path, "rb") as handle:
                    data = handle.read()
            except OSError as exc:
                problems.append(f"{script}: cannot read ({exc.strerror or exc})")
                continue
            migration = _migration(script, data, path, extensions, problems, parsed=parsed)
            if migration is not None:
                migrations.append(migration)
    if not migrations and not problems:
        exts = ", ".join(f".{e.lstrip('.')}" for e in extensions)
        raise DbopsError(f"read migrations in {source}: no migration files ({exts}) found")
    return build_set(migrations, source, problems)


@dataclass(frozen=True)
class HistoryRow:
    """One row of an engine's history store."""

    rank: int
    kind: str
    version: str | None
    description: str
    script: str
    checksum: str | None
    success: bool = True
    installed_by: str | None = None
    installed_on: str | None = None
    execution_ms: int | None = None

    @property
    def parsed_version(self) -> Version | None:
        return parse_version(self.version) if self.version not in (None, "") else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "rank": self.rank, "type": self.kind, "version": self.version, "description": self.description,
            "script": self.script, "checksum": self.checksum, "success": self.success,
            "installed_by": self.installed_by, "installed_on": self.installed_on,
            "execution_ms": self.execution_ms,
        }


@dataclass
class HistoryState:
    """The effective state recorded in a history store."""

    applied: dict[Version, HistoryRow]
    baseline: HistoryRow | None
    repeatable: dict[str, HistoryRow]
    failed: list[HistoryRow]

    @property
    def baseline_version(self) -> Version | None:
        return self.baseline.parsed_version if self.baseline is not None else None

    def current(self) -> Version | None:
        """Highest applied version (the baseline counts)."""
        candidates = list(self.applied)
        if self.baseline_version is not None:
            candidates.append(self.baseline_version)
        return max(candidates) if candidates else None

    def is_applied(self, version: Version) -> bool:
        if version in self.applied:
            return True
        base = self.baseline_version
        return base is not None and version <= base


def history_state(history: Sequence[HistoryRow]) -> HistoryState:
    """Replay history rows (in rank order) into the effective state."""
    applied: dict[Version, HistoryRow] = {}
    repeatable: dict[str, HistoryRow] = {}
    failed: list[HistoryRow] = []
    baseline: HistoryRow | None = None
    for row in sorted(history, key=lambda r: r.rank):
        if not row.success:
            failed.append(row)
            continue
        if row.kind == KIND_BASELINE:
            baseline = row
        elif row.kind == KIND_REPEATABLE:
            repeatable[row.description.lower()] = row
        elif row.kind == KIND_VERSIONED and row.parsed_version is not None:
            applied[row.parsed_version] = row
        elif row.kind == KIND_UNDO and row.parsed_version is not None:
            applied.pop(row.parsed_version, None)
    return HistoryState(applied, baseline, repeatable, failed)


@dataclass(frozen=True)
class PlanOptions:
    """What the caller wants; see :func:`plan`."""

    target: str | None = None
    allow_downgrade: bool = False
    out_of_order: bool = False
    validate_checksums: bool = True
    baseline_version: str | None = None
    repair: bool = False
    inline_undo: Callable[[Migration], bool] | None = None


@dataclass(frozen=True)
class Step:
    """One thing to do, in order."""

    action: str
    version: Version | None
    description: str
    script: str
    checksum: str | None
    migration: Migration | None = None
    rows: tuple[HistoryRow, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "action": self.action,
            "version": str(self.version) if self.version is not None else None,
            "description": self.description,
            "script": self.script,
            "checksum": self.checksum,
        }
        if self.rows:
            data["rows"] = [row.to_dict() for row in self.rows]
        return data


@dataclass
class Plan:
    """The ordered steps and the versions before and after them."""

    steps: list[Step]
    version_before: Version | None
    version_after: Version | None
    pending: list[str]

    @property
    def changed(self) -> bool:
        return bool(self.steps)

    def to_dicts(self) -> list[dict[str, Any]]:
        return [step.to_dict() for step in self.steps]


def _resolve_target(options: PlanOptions, problems: list[str]) -> Version | None:
    """The target version; ``None`` means "latest" (every known versioned migration)."""
    text = options.target
    if text is None or str(text).strip().lower() in ("", LATEST):
        return None
    try:
        return parse_version(str(text))
    except ValueError as exc:
        problems.append(f"target: {exc}, or 'latest'")
        return None


def _repair_steps(state: HistoryState, options: PlanOptions, problems: list[str]) -> list[Step]:
    if not state.failed:
        return []
    if options.repair:
        scripts = ", ".join(row.script for row in state.failed)
        rows = tuple(state.failed)
        return [Step(ACTION_REPAIR, None, "remove failed history rows", scripts, None, rows=rows)]
    for row in state.failed:
        when = f" on {row.installed_on}" if row.installed_on else ""
        problems.append(
            f"{row.script} failed{when} and may be partly applied: fix the database by hand,"
            " then run with repair=true to remove the failed history row"
        )
    return []


def _baseline(state: HistoryState, history: Sequence[HistoryRow], options: PlanOptions,
              problems: list[str]) -> tuple[Version | None, list[Step]]:
    """The effective baseline, and a step recording it when the history is still empty."""
    recorded = state.baseline_version
    if options.baseline_version in (None, ""):
        return recorded, []
    try:
        wanted = parse_version(str(options.baseline_version))
    except ValueError as exc:
        problems.append(f"baseline_version: {exc}")
        return recorded, []
    if recorded is not None:
        if recorded != wanted:
            problems.append(f"baseline_version {wanted} conflicts with the recorded baseline {recorded}")
        return recorded, []
    if any(row.success for row in history):
        # The database is already managed by migrations: a baseline no longer applies.
        return None, []
    return wanted, [Step(ACTION_BASELINE, wanted, "baseline", f"<< baseline {wanted} >>", None)]


def _validate_applied(migrations: MigrationSet, state: HistoryState, problems: list[str]) -> None:
    files = migrations.by_version()
    for version, row in sorted(state.applied.items()):
        migration = files.get(version)
        if migration is None:
            problems.append(
                f"applied migration {row.script} (version {row.version}) is missing"
                f" from {migrations.source}"
            )
        elif row.checksum and row.checksum != migration.checksum:
            problems.append(
                f"checksum mismatch for applied migration {migration.script}: recorded"
                f" {row.checksum[:12]}, file has {migration.checksum[:12]}"
            )


def _undo_steps(migrations: MigrationSet, state: HistoryState, target: Version, *,
                baseline: Version | None, options: PlanOptions, problems: list[str]) -> list[Step]:
    files = migrations.by_version()
    above = sorted((v for v in state.applied if v > target), reverse=True)
    if baseline is not None and target < baseline:
        problems.append(f"target {target} is below the baseline {baseline}: versions up to the"
                        " baseline were never applied by migrations and cannot be undone")
    if not above:
        return []
    if not options.allow_downgrade:
        current = max([*state.applied, *([baseline] if baseline is not None else [])])
        scripts = ", ".join(state.applied[v].script for v in above)
        problems.append(f"target {target} is below the current version {current}: undoing {scripts}"
                        " needs allow_downgrade=true")
        return []
    steps = []
    for version in above:
        row = state.applied[version]
        runner = migrations.undo.get(version)
        versioned = files.get(version)
        if runner is None and versioned is not None and options.inline_undo is not None \
                and options.inline_undo(versioned):
            runner = versioned
        if runner is None:
            problems.append(f"cannot undo {row.script}: no undo script U{version}__*")
            continue
        steps.append(Step(ACTION_UNDO, version, row.description, runner.script, runner.checksum, runner))
    return steps


# A module's ``applied`` result lists every step up to this many; beyond, the first and last
# half of it (the history table has every step).
APPLIED_DETAIL_LIMIT = 100
APPLIED_DETAILS = ("compact", "full")


def applied_detail_option() -> dict[str, Any]:
    """The migrate modules' ``applied_detail`` option (both engines)."""
    return {"type": "str", "default": "compact", "choices": list(APPLIED_DETAILS)}


def applied_result(steps: Sequence[dict[str, Any]], detail: str = "compact",
                   limit: int = APPLIED_DETAIL_LIMIT) -> dict[str, Any]:
    """A module's ``applied``, ``applied_count`` and ``applied_omitted`` for the steps that ran.

    With ``detail="compact"`` and more than ``limit`` steps, ``applied`` keeps the first
    ``limit // 2`` and the last ``limit - limit // 2`` steps whole and leaves out the middle ones
    (``applied_omitted`` says how many), so a run of a thousand migrations returns a small
    result; ``detail="full"`` lists every step.
    """
    if detail not in APPLIED_DETAILS:
        raise DbopsError(f"check option applied_detail: {detail!r} is not one of"
                         f" {', '.join(APPLIED_DETAILS)}")
    count = len(steps)
    if detail == "full" or count <= limit:
        return {"applied": [dict(step) for step in steps], "applied_count": count, "applied_omitted": 0}
    head = limit // 2
    kept = [*steps[:head], *steps[count - (limit - head):]]
    return {"applied": [dict(step) for step in kept], "applied_count": count,
            "applied_omitted": count - limit}


def _fail(source: str, problems: list[str]) -> DbopsError:
    return DbopsError(f"plan migrations in {source}: " + "; ".join(problems), problems=problems)


def plan(migrations: MigrationSet, history: Sequence[HistoryRow],
         options: PlanOptions | None = None) -> Plan:
    """Return the ordered steps that bring the history to ``options.target`` (see module doc)."""
    options = options or PlanOptions()
    problems: list[str] = []
    state = history_state(history)
    files = migrations.by_version()
    target = _resolve_target(options, problems)

    steps = _repair_steps(state, options, problems)
    baseline, baseline_steps = _baseline(state, history, options, problems)
    steps += baseline_steps
    if options.validate_checksums:
        _validate_applied(migrations, state, problems)
    undo_steps = [] if target is None else _undo_steps(
        migrations, state, target, baseline=baseline, options=options, problems=problems
    )

    # Versions that stay applied, then the pending ones up to the target.
    remaining = {v for v in state.applied if target is None or v <= target}
    if baseline is not None:
        remaining.add(baseline)

    def covered(version: Version) -> bool:
        return version in state.applied or (baseline is not None and version <= baseline)

    to_apply = [v for v in sorted(files) if not covered(v) and (target is None or v <= target)]
    highest = max(remaining) if remaining else None
    late = [v for v in to_apply if highest is not None and v < highest]
    if late and not options.out_of_order:
        problems.append(
            "out-of-order pending migrations " + ", ".join(files[v].script for v in late)
            + f" are older than the applied version {highest} (set out_of_order=true to apply them)"
        )

    if problems:
        raise _fail(migrations.source, problems)

    steps += undo_steps
    steps += [Step(ACTION_APPLY, v, files[v].description, files[v].script, files[v].checksum, files[v])
              for v in to_apply]
    for migration in migrations.repeatable:
        row = state.repeatable.get(migration.description.lower())
        if row is None or row.checksum != migration.checksum:
            steps.append(Step(ACTION_REPEATABLE, None, migration.description, migration.script,
                              migration.checksum, migration))

    after = remaining | set(to_apply)
    pending = [files[v].script for v in sorted(files)
               if v not in after and not (baseline is not None and v <= baseline)]
    return Plan(steps, state.current(), max(after) if after else None, pending)
