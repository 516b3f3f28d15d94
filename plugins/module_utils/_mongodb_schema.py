# Copyright: dbops.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Declarative MongoDB collections, indexes and views: normalise, compare, plan, execute.

The flow is: ``parse_*`` turns module parameters into comparable specs (raising DbopsError on
bad input before anything touches the server), ``read_live`` reads the server with one
``listCollections`` and one ``listIndexes`` per declared collection, ``plan_schema`` compares
both and returns the ordered list of ``runCommand`` documents (pure, unit-tested), and
``execute`` runs them. Check mode returns the plan without executing it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ansible_collections.dbops.datastores.plugins.module_utils._errors import DbopsError

# Index key values mongod accepts besides 1 / -1. (mongod also takes any positive/negative number
# as ascending/descending; we accept only 1 and -1 so that a typo such as 2 is caught.)
SPECIAL_KEY_TYPES = ("text", "hashed", "2d", "2dsphere")
# Index options that collMod changes in place on mongod; every other difference needs a rebuild.
MUTABLE_INDEX_FIELDS = ("expireAfterSeconds", "hidden")
ID_INDEX = "_id_"


# --------------------------------------------------------------------------------------------
# Specs
# --------------------------------------------------------------------------------------------


@dataclass
class IndexSpec:
    """One index as mongod describes it in ``listIndexes`` (only the options we manage)."""

    name: str
    key: list[tuple[str, Any]]
    unique: bool = False
    sparse: bool = False
    hidden: bool = False
    partialFilterExpression: dict[str, Any] | None = None
    expireAfterSeconds: int | None = None
    collation: dict[str, Any] | None = None
    state: str = "present"
    clustered: bool = False

    def create_doc(self) -> dict[str, Any]:
        """The element of a ``createIndexes`` ``indexes`` array."""
        doc: dict[str, Any] = {"key": dict(self.key), "name": self.name}
        for opt in ("unique", "sparse", "hidden"):
            if getattr(self, opt):
                doc[opt] = True
        for opt in ("partialFilterExpression", "expireAfterSeconds", "collation"):
            value = getattr(self, opt)
            if value is not None:
                doc[opt] = value
        return doc

    def describe(self) -> dict[str, Any]:
        """A readable form for diffs: key as an ordered list of pairs."""
        doc = self.create_doc()
        doc["key"] = [[f, d] for f, d in self.key]
        return doc


@dataclass
class CollectionSpec:
    name: str
    state: str = "present"
    capped: bool | None = None
    size: int | None = None
    max: int | None = None
    timeseries: dict[str, Any] | None = None
    expireAfterSeconds: int | None = None
    clustered: bool | None = None
    collation: dict[str, Any] | None = None
    validator: dict[str, Any] | None = None
    validationLevel: str | None = None
    validationAction: str | None = None
    indexes: list[IndexSpec] = field(default_factory=list)

    def create_command(self) -> dict[str, Any]:
        cmd: dict[str, Any] = {"create": self.name}
        if self.capped:
            cmd["capped"] = True
            if self.size is not None:
                cmd["size"] = self.size
            if self.max is not None:
                cmd["max"] = self.max
        if self.timeseries:
            cmd["timeseries"] = dict(self.timeseries)
        if self.clustered:
            cmd["clusteredIndex"] = {"key": {"_id": 1}, "unique": True}
        if self.expireAfterSeconds is not None:
            cmd["expireAfterSeconds"] = self.expireAfterSeconds
        if self.collation:
            cmd["collation"] = dict(self.collation)
        if self.validator is not None:
            cmd["validator"] = self.validator
        if self.validationLevel:
            cmd["validationLevel"] = self.validationLevel
        if self.validationAction:
            cmd["validationAction"] = self.validationAction
        return cmd


@dataclass
class ViewSpec:
    name: str
    view_on: str | None = None
    pipeline: list[dict[str, Any]] = field(default_factory=list)
    collation: dict[str, Any] | None = None
    state: str = "present"

    def create_command(self) -> dict[str, Any]:
        cmd: dict[str, Any] = {"create": self.name, "viewOn": self.view_on, "pipeline": self.pipeline}
        if self.collation:
            cmd["collation"] = dict(self.collation)
        return cmd

    def describe(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"type": "view", "viewOn": self.view_on, "pipeline": self.pipeline}
        if self.collation:
            doc["collation"] = self.collation
        return doc


@dataclass
class LiveCollection:
    """What ``listCollections`` (and ``listIndexes``) report for one namespace."""

    name: str
    type: str  # collection, timeseries or view
    options: dict[str, Any]
    indexes: list[IndexSpec] | None = None


@dataclass
class Plan:
    commands: list[dict[str, Any]] = field(default_factory=list)
    diffs: list[dict[str, Any]] = field(default_factory=list)
    rebuilt: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.commands)


# --------------------------------------------------------------------------------------------
# Declared input -> specs (all validation happens here, before the server is touched)
# --------------------------------------------------------------------------------------------


def _number(value: Any) -> Any:
    """1.0 -> 1 so that JSON/BSON doubles compare equal to YAML integers."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def parse_keys(keys: Any, where: str) -> list[tuple[str, Any]]:
    """Index keys, in declared order, from a list of ``[field, direction]`` pairs or a mapping."""
    pairs: list[tuple[Any, Any]] = []
    if isinstance(keys, dict):
        pairs = list(keys.items())
    elif isinstance(keys, (list, tuple)):
        for item in keys:
            if isinstance(item, (list, tuple)) and len(item) == 2:
                pairs.append((item[0], item[1]))
            elif isinstance(item, dict) and len(item) == 1:
                pairs.extend(item.items())
            else:
                raise DbopsError(
                    f"validate {where}: each key must be a [field, direction] pair or a one-entry "
                    f"mapping, got {item!r}"
                )
    else:
        raise DbopsError(
            f"validate {where}: keys must be a list of [field, direction] pairs or a mapping, got {keys!r}"
        )
    if not pairs:
        raise DbopsError(f"validate {where}: keys must name at least one field")
    result: list[tuple[str, Any]] = []
    seen: set[str] = set()
    for name, raw_direction in pairs:
        if not isinstance(name, str) or not name:
            raise DbopsError(f"validate {where}: field names must be non-empty strings, got {name!r}")
        if name in seen:
            raise DbopsError(f"validate {where}: field {name} appears twice in the keys")
        seen.add(name)
        direction = _number(raw_direction)
        valid = (not isinstance(direction, bool) and direction in (1, -1)) or direction in SPECIAL_KEY_TYPES
        if not valid:
            raise DbopsError(
                f"validate {where}: key direction {direction!r} for field {name} is not valid "
                f"(use 1, -1, {', '.join(repr(t) for t in SPECIAL_KEY_TYPES)})"
            )
        result.append((name, direction))
    return result


def index_name(key: list[tuple[str, Any]]) -> str:
    """The name mongod derives for an index without one: ``a_1_b_-1``, ``loc_2dsphere``."""
    return "_".join(f"{f}_{d}" for f, d in key)


def parse_index(params: dict[str, Any], where: str) -> IndexSpec:
    key = parse_keys(params.get("keys"), where)
    name = params.get("name") or index_name(key)
    where = f"{where} index {name}"
    if key == [("_id", 1)]:
        raise DbopsError(f"validate {where}: the _id index is created by the server; do not declare it")
    ttl = params.get("expire_after_seconds")
    if ttl is not None:
        if len(key) != 1:
            raise DbopsError(
                f"validate {where}: expire_after_seconds (TTL) needs a single-field index, "
                f"the keys have {len(key)} fields"
            )
        if key[0][1] not in (1, -1):
            raise DbopsError(f"validate {where}: a TTL index must be ascending or descending")
        if ttl < 0:
            raise DbopsError(f"validate {where}: expire_after_seconds must be 0 or more, got {ttl}")
    partial = params.get("partial_filter")
    if partial is not None and not isinstance(partial, dict):
        raise DbopsError(f"validate {where}: partial_filter must be a mapping")
    return IndexSpec(
        name=name,
        key=key,
        unique=bool(params.get("unique")),
        sparse=bool(params.get("sparse")),
        hidden=bool(params.get("hidden")),
        partialFilterExpression=partial or None,
        expireAfterSeconds=ttl,
        collation=params.get("collation") or None,
        state=params.get("state") or "present",
    )


_TIMESERIES_FIELDS = {
    "time_field": "timeField",
    "meta_field": "metaField",
    "granularity": "granularity",
    "bucket_max_span_seconds": "bucketMaxSpanSeconds",
    "bucket_rounding_seconds": "bucketRoundingSeconds",
}


def parse_collection(params: dict[str, Any], database: str) -> CollectionSpec:
    name = params["name"]
    where = f"collection {database}.{name}"
    spec = CollectionSpec(name=name, state=params.get("state") or "present")
    if spec.state == "absent":
        return spec
    spec.capped = params.get("capped")
    spec.size = params.get("size")
    spec.max = params.get("max")
    if (spec.size is not None or spec.max is not None) and not spec.capped:
        raise DbopsError(f"validate {where}: size and max apply only to capped collections (capped: true)")
    if spec.capped and spec.size is None:
        raise DbopsError(f"validate {where}: a capped collection needs size (bytes)")
    ts = params.get("timeseries")
    if ts:
        spec.timeseries = {mongo: ts[opt] for opt, mongo in _TIMESERIES_FIELDS.items()
                           if ts.get(opt) is not None}
    spec.clustered = params.get("clustered")
    spec.expireAfterSeconds = params.get("expire_after_seconds")
    if spec.expireAfterSeconds is not None and not (spec.timeseries or spec.clustered):
        raise DbopsError(
            f"validate {where}: expire_after_seconds on a collection needs timeseries or clustered; "
            "for a TTL on a field declare it on an index"
        )
    if spec.capped and (spec.timeseries or spec.clustered):
        raise DbopsError(f"validate {where}: a capped collection cannot be time-series or clustered")
    spec.collation = params.get("collation") or None
    spec.validator = params.get("validator")
    spec.validationLevel = params.get("validation_level")
    spec.validationAction = params.get("validation_action")
    names: set[str] = set()
    for idx_params in params.get("indexes") or []:
        index = parse_index(idx_params, where)
        if index.name in names:
            raise DbopsError(f"validate {where}: index {index.name} is declared twice")
        names.add(index.name)
        spec.indexes.append(index)
    return spec


def parse_view(params: dict[str, Any], database: str) -> ViewSpec:
    spec = ViewSpec(name=params["name"], state=params.get("state") or "present")
    if spec.state == "absent":
        return spec
    where = f"view {database}.{spec.name}"
    if not params.get("view_on"):
        raise DbopsError(f"validate {where}: view_on is required for a view that is present")
    pipeline = params.get("pipeline") or []
    if not isinstance(pipeline, list) or not all(isinstance(s, dict) and len(s) == 1 for s in pipeline):
        raise DbopsError(
            f"validate {where}: pipeline must be a list of one-stage mappings such as {{$match: ...}}"
        )
    spec.view_on = params["view_on"]
    spec.pipeline = pipeline
    spec.collation = params.get("collation") or None
    return spec


def parse_schema(params: dict[str, Any]) -> tuple[list[CollectionSpec], list[ViewSpec]]:
    database = params["database"]
    collections = [parse_collection(c, database) for c in params.get("collections") or []]
    views = [parse_view(v, database) for v in params.get("views") or []]
    seen: set[str] = set()
    for obj in [*collections, *views]:
        if obj.name in seen:
            raise DbopsError(f"validate {database}.{obj.name}: declared more than once")
        seen.add(obj.name)
    return collections, views


# --------------------------------------------------------------------------------------------
# Live state
# --------------------------------------------------------------------------------------------


def live_index(doc: dict[str, Any]) -> IndexSpec:
    """Normalise one ``listIndexes`` document.

    Text indexes are stored by mongod as ``{_fts: 'text', _ftsx: 1}`` with the fields in
    ``weights``; they are turned back into ``{field: 'text', ...}`` so they compare with the
    declared keys.
    """
    key: list[tuple[str, Any]] = []
    for name, direction in doc.get("key", {}).items():
        if name == "_fts":
            key.extend((f, "text") for f in doc.get("weights", {}))
        elif name == "_ftsx":
            continue
        else:
            key.append((name, _number(direction)))
    ttl = doc.get("expireAfterSeconds")
    return IndexSpec(
        name=doc["name"],
        key=key,
        unique=bool(doc.get("unique")),
        sparse=bool(doc.get("sparse")),
        hidden=bool(doc.get("hidden")),
        partialFilterExpression=doc.get("partialFilterExpression"),
        expireAfterSeconds=int(ttl) if ttl is not None else None,
        collation=doc.get("collation"),
        clustered=bool(doc.get("clustered")),
    )


def live_collection(doc: dict[str, Any]) -> LiveCollection:
    return LiveCollection(name=doc["name"], type=doc.get("type", "collection"),
                          options=dict(doc.get("options") or {}))


def list_indexes(db: Any, name: str) -> list[dict[str, Any]]:
    """The ``listIndexes`` documents of one collection as plain dicts (one command; a collection
    has at most 64 indexes, so the first batch holds them all, but a cursor is followed anyway)."""
    cursor = db.command({"listIndexes": name})["cursor"]
    docs = list(cursor["firstBatch"])
    while cursor.get("id"):
        cursor = db.command({"getMore": cursor["id"], "collection": name})["cursor"]
        docs.extend(cursor["nextBatch"])
    return docs


def read_live(db: Any, names: list[str]) -> dict[str, LiveCollection]:
    """One ``listCollections`` for the database, one ``listIndexes`` per declared collection."""
    live: dict[str, LiveCollection] = {}
    for doc in db.list_collections():
        coll = live_collection(doc)
        live[coll.name] = coll
    wanted = set(names)
    for name, coll in live.items():
        if name in wanted and coll.type != "view":
            coll.indexes = [live_index(d) for d in list_indexes(db, name)]
    return live


# --------------------------------------------------------------------------------------------
# Comparison helpers
# --------------------------------------------------------------------------------------------


def _same_value(declared: Any, live: Any) -> bool:
    """Equal as BSON documents: same keys in the same order (``$sort``), numbers compared by value."""
    if isinstance(declared, dict) and isinstance(live, dict):
        return list(declared) == list(live) and all(_same_value(v, live[k]) for k, v in declared.items())
    if isinstance(declared, list) and isinstance(live, list):
        return len(declared) == len(live) and all(_same_value(a, b) for a, b in zip(declared, live))
    return _number(declared) == _number(live)


def _covers(declared: dict[str, Any] | None, live: dict[str, Any] | None) -> bool:
    """Whether every declared key has the same live value (mongod adds defaults, e.g. to collations)."""
    if not declared:
        return not live
    if not live:
        return False
    return all(k in live and _same_value(v, live[k]) for k, v in declared.items())


def index_differences(declared: IndexSpec, live: IndexSpec,
                      default_collation: dict[str, Any] | None = None) -> list[tuple[str, Any, Any]]:
    """``(field, live value, declared value)`` for each managed option that differs."""
    diffs: list[tuple[str, Any, Any]] = []
    if declared.key != live.key:  # both lists of (field, direction) tuples, numbers normalised
        diffs.append(("key", [list(p) for p in live.key], [list(p) for p in declared.key]))
    for opt in ("unique", "sparse", "hidden"):
        if getattr(declared, opt) != getattr(live, opt):
            diffs.append((opt, getattr(live, opt), getattr(declared, opt)))
    if declared.expireAfterSeconds != live.expireAfterSeconds:
        diffs.append(("expireAfterSeconds", live.expireAfterSeconds, declared.expireAfterSeconds))
    pfe_live, pfe_declared = live.partialFilterExpression, declared.partialFilterExpression
    if not (pfe_live == pfe_declared or (pfe_live and pfe_declared and _same_value(pfe_declared, pfe_live))):
        diffs.append(("partialFilterExpression", pfe_live, pfe_declared))
    # An index without its own collation inherits the collection's default collation.
    wanted = declared.collation or default_collation
    if not _covers(wanted, live.collation):
        diffs.append(("collation", live.collation, declared.collation))
    return diffs


def _format_differences(diffs: list[tuple[str, Any, Any]]) -> str:
    return "; ".join(f"{name} live {live!r}, declared {want!r}" for name, live, want in diffs)


def _jsonable(value: Any) -> Any:
    """Plain JSON types for results (BSON values such as Regex or Binary become strings)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def describe_live_collection(live: LiveCollection | None) -> dict[str, Any] | None:
    if live is None:
        return None
    if live.type == "view":
        return _jsonable({"type": "view", **live.options})
    doc: dict[str, Any] = {"type": live.type, "options": live.options}
    if live.indexes is not None:
        doc["indexes"] = [i.describe() for i in live.indexes if i.name != ID_INDEX]
    return _jsonable(doc)


def describe_declared_collection(spec: CollectionSpec, live: LiveCollection | None,
                                 purge_indexes: bool = False) -> dict[str, Any]:
    """The collection as it will be after the plan: declared options over the live ones."""
    options = dict(live.options) if live else {}
    create = spec.create_command()
    create.pop("create")
    options.update(create)
    kept: dict[str, dict[str, Any]] = {}
    if live is not None and not purge_indexes:
        kept = {i.name: i.describe() for i in live.indexes or [] if i.name != ID_INDEX}
    for index in spec.indexes:
        if index.state == "present":
            kept[index.name] = index.describe()
        else:
            kept.pop(index.name, None)
    kind = live.type if live else ("timeseries" if spec.timeseries else "collection")
    return _jsonable({"type": kind, "options": options, "indexes": list(kept.values())})


# --------------------------------------------------------------------------------------------
# Planning
# --------------------------------------------------------------------------------------------


def _immutable_differences(spec: CollectionSpec, opts: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """Options fixed at creation (capped, time-series fields, clustered, collation) that differ."""
    diffs: list[tuple[str, Any, Any]] = []
    if spec.capped is not None and bool(spec.capped) != bool(opts.get("capped")):
        diffs.append(("capped", bool(opts.get("capped")), bool(spec.capped)))
    if spec.timeseries is not None:
        live_ts = opts.get("timeseries") or {}
        if not live_ts:
            diffs.append(("timeseries", None, spec.timeseries))
        diffs.extend((f"timeseries.{key}", live_ts.get(key), value)
                     for key, value in spec.timeseries.items()
                     if live_ts and key != "granularity" and not _same_value(value, live_ts.get(key)))
    if spec.clustered is not None and bool(spec.clustered) != bool(opts.get("clusteredIndex")):
        diffs.append(("clustered", bool(opts.get("clusteredIndex")), bool(spec.clustered)))
    if spec.collation and not _covers(spec.collation, opts.get("collation")):
        diffs.append(("collation", opts.get("collation"), spec.collation))
    return diffs


def _collection_option_commands(spec: CollectionSpec, live: LiveCollection, database: str) -> dict[str, Any]:
    """collMod fields for options that change in place; DbopsError for those that cannot."""
    opts = live.options
    immutable = _immutable_differences(spec, opts)
    if immutable:
        raise DbopsError(
            f"reconcile collection {database}.{spec.name}: options that are fixed at creation differ "
            f"({_format_differences(immutable)}); drop the collection (state: absent) and declare it "
            "again to recreate it",
            differences=_jsonable([{"option": n, "live": lv, "declared": dv} for n, lv, dv in immutable]),
        )
    wanted: dict[str, Any] = {}
    if spec.capped and opts.get("capped"):
        wanted.update(cappedSize=(spec.size, opts.get("size")), cappedMax=(spec.max, opts.get("max")))
    granularity = (spec.timeseries or {}).get("granularity")
    if granularity is not None and granularity != (opts.get("timeseries") or {}).get("granularity"):
        # mongod changes the granularity in place (only to a coarser one; it refuses the others).
        wanted["timeseries"] = ({"granularity": granularity}, None)
    wanted["expireAfterSeconds"] = (spec.expireAfterSeconds, opts.get("expireAfterSeconds"))
    if spec.validator is not None:
        wanted["validator"] = (spec.validator, opts.get("validator") or {})
    # Without a stored value mongod applies strict / error.
    wanted["validationLevel"] = (spec.validationLevel, opts.get("validationLevel", "strict"))
    wanted["validationAction"] = (spec.validationAction, opts.get("validationAction", "error"))
    return {name: declared for name, (declared, current) in wanted.items()
            if declared is not None and not _same_value(declared, current)}


@dataclass
class _IndexChanges:
    drops: list[str] = field(default_factory=list)
    mods: list[dict[str, Any]] = field(default_factory=list)
    creates: list[IndexSpec] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    rebuilt: list[str] = field(default_factory=list)

    def commands(self, collection: str) -> list[dict[str, Any]]:
        cmds: list[dict[str, Any]] = [{"dropIndexes": collection, "index": n} for n in self.drops]
        cmds.extend(self.mods)
        if self.creates:
            cmds.append({"createIndexes": collection, "indexes": [i.create_doc() for i in self.creates]})
        return cmds


def _reconcile_index(index: IndexSpec, live: LiveCollection, live_by_name: dict[str, IndexSpec],
                     declared_names: set[str], changes: _IndexChanges, *, allow_rebuild: bool,
                     purge_indexes: bool) -> None:
    live_indexes = live.indexes or []
    current = live_by_name.get(index.name)
    default_collation = live.options.get("collation")
    if index.state == "absent":
        if current is not None:
            changes.drops.append(index.name)
        return
    if current is None:
        # The same keys and options under another name: mongod refuses a second copy.
        twin = next((i for i in live_indexes if i.name not in declared_names and i.name != ID_INDEX
                     and not index_differences(index, i, default_collation)), None)
        if twin is not None and not (allow_rebuild or purge_indexes):
            changes.refused.append(f"index {index.name}: the same index exists as {twin.name}")
            return
        if twin is not None:
            changes.drops.append(twin.name)
            changes.rebuilt.append(f"{live.name}.{twin.name} -> {index.name}")
        changes.creates.append(index)
        return
    diffs = index_differences(index, current, default_collation)
    # collMod changes hidden and adds or changes a TTL; it cannot remove a TTL.
    rebuild = [d for d in diffs if d[0] not in MUTABLE_INDEX_FIELDS
               or (d[0] == "expireAfterSeconds" and d[2] is None)]
    if rebuild and not allow_rebuild:
        changes.refused.append(f"index {index.name}: {_format_differences(diffs)}")
    elif rebuild:
        changes.drops.append(index.name)
        changes.creates.append(index)
        changes.rebuilt.append(f"{live.name}.{index.name}")
    elif diffs:
        changes.mods.append({"collMod": live.name, "index": {"name": index.name,
                                                             **{d[0]: d[2] for d in diffs}}})


def _index_commands(spec: CollectionSpec, live: LiveCollection, database: str, plan: Plan, *,
                    allow_rebuild: bool, purge_indexes: bool) -> list[dict[str, Any]]:
    changes = _IndexChanges()
    declared_names = {i.name for i in spec.indexes}
    live_by_name = {i.name: i for i in live.indexes or []}
    for index in spec.indexes:
        _reconcile_index(index, live, live_by_name, declared_names, changes,
                         allow_rebuild=allow_rebuild, purge_indexes=purge_indexes)
    if changes.refused:
        raise DbopsError(
            f"reconcile indexes of collection {database}.{spec.name}: {'; '.join(changes.refused)}; "
            "these changes need the index to be dropped and created again: set allow_rebuild: true "
            "to do that",
            refused=changes.refused,
        )
    if purge_indexes:
        changes.drops.extend(
            i.name for i in live.indexes or []
            if i.name not in declared_names and i.name != ID_INDEX and not i.clustered
            and i.name not in changes.drops
        )
    plan.rebuilt.extend(changes.rebuilt)
    return changes.commands(spec.name)


def _order_views(views: list[ViewSpec]) -> list[ViewSpec]:
    """Views in an order where a view comes after the declared view it is defined on."""
    by_name = {v.name: v for v in views}
    ordered: list[ViewSpec] = []
    visiting: set[str] = set()

    def visit(view: ViewSpec) -> None:
        if view in ordered:
            return
        if view.name in visiting:
            raise DbopsError(f"validate view {view.name}: views are defined on each other in a cycle")
        visiting.add(view.name)
        parent = by_name.get(view.view_on or "")
        if parent is not None:
            visit(parent)
        visiting.discard(view.name)
        ordered.append(view)

    for view in views:
        visit(view)
    return ordered


def _validate_against_live(database: str, collections: list[CollectionSpec], views: list[ViewSpec],
                           live: dict[str, LiveCollection]) -> None:
    """Refusals that depend on the live state, checked before any command is planned."""
    present = {o.name for o in [*collections, *views] if o.state == "present"}
    absent = {o.name for o in [*collections, *views] if o.state == "absent"}
    for view in views:
        if view.state != "present":
            continue
        source = view.view_on or ""
        if source not in present and (source not in live or source in absent):
            raise DbopsError(
                f"validate view {database}.{view.name}: view_on {source} is neither declared here nor an "
                "existing collection or view"
            )
        current = live.get(view.name)
        if current is not None and current.type != "view":
            raise DbopsError(
                f"reconcile view {database}.{view.name}: a {current.type} of that name exists; drop it "
                "first (declare it under collections with state: absent)"
            )
    for spec in collections:
        current = live.get(spec.name)
        if spec.state == "present" and current is not None and current.type == "view":
            raise DbopsError(
                f"reconcile collection {database}.{spec.name}: a view of that name exists; declare it "
                "under views with state: absent to drop it"
            )


def _diff(ns: str, before: Any, after: Any) -> dict[str, Any]:
    return {"before_header": ns, "after_header": ns, "before": before, "after": after}


def _plan_collection(database: str, spec: CollectionSpec, current: LiveCollection | None, plan: Plan, *,
                     allow_rebuild: bool, purge_indexes: bool) -> list[dict[str, Any]]:
    commands: list[dict[str, Any]] = []
    if current is None:
        commands.append(spec.create_command())
        wanted = [i for i in spec.indexes if i.state == "present"]
        if wanted:
            commands.append({"createIndexes": spec.name, "indexes": [i.create_doc() for i in wanted]})
    else:
        coll_mod = _collection_option_commands(spec, current, database)
        if coll_mod:
            commands.append({"collMod": spec.name, **coll_mod})
        commands.extend(_index_commands(spec, current, database, plan, allow_rebuild=allow_rebuild,
                                        purge_indexes=purge_indexes))
    if commands:
        plan.diffs.append(_diff(f"{database}.{spec.name}", describe_live_collection(current),
                                describe_declared_collection(spec, current, purge_indexes)))
    return commands


def _view_unchanged(view: ViewSpec, current: LiveCollection) -> bool:
    return (current.options.get("viewOn") == view.view_on
            and _same_value(view.pipeline, current.options.get("pipeline") or [])
            and _covers(view.collation, current.options.get("collation")))


def plan_schema(database: str, collections: list[CollectionSpec], views: list[ViewSpec],
                live: dict[str, LiveCollection], *, allow_rebuild: bool = False,
                purge_indexes: bool = False) -> Plan:
    """Compare declared specs with the live state and return the ordered commands.

    Order: drop views that go or change, drop collections declared absent, create or alter
    collections and their indexes (in declared order), then create views (parents first). Any
    refusal raises DbopsError before a command is returned, so nothing runs.
    """
    _validate_against_live(database, collections, views, live)
    plan = Plan()
    drops: list[dict[str, Any]] = []
    coll_commands: list[dict[str, Any]] = []
    view_creates: list[dict[str, Any]] = []
    for obj in [*views, *collections]:
        current = live.get(obj.name)
        if obj.state == "absent" and current is not None:
            drops.append({"drop": obj.name})
            plan.diffs.append(_diff(f"{database}.{obj.name}", describe_live_collection(current), None))
    for spec in collections:
        if spec.state == "present":
            coll_commands.extend(_plan_collection(database, spec, live.get(spec.name), plan,
                                                  allow_rebuild=allow_rebuild, purge_indexes=purge_indexes))
    for view in _order_views([v for v in views if v.state == "present"]):
        current = live.get(view.name)
        if current is not None and _view_unchanged(view, current):
            continue
        if current is not None:
            # collMod on a view is not reliable across servers; drop and create is always right.
            drops.insert(0, {"drop": view.name})
        view_creates.append(view.create_command())
        plan.diffs.append(_diff(f"{database}.{view.name}", describe_live_collection(current),
                                _jsonable(view.describe())))
    plan.commands = [*drops, *coll_commands, *view_creates]
    return plan


# --------------------------------------------------------------------------------------------
# Execution
# --------------------------------------------------------------------------------------------


def command_label(cmd: dict[str, Any]) -> str:
    name, target = next(iter(cmd.items()))
    return f"{name} {target}"


def execute(db: Any, commands: list[dict[str, Any]], error_types: tuple[type[BaseException], ...],
            describe_error: Any = str) -> list[dict[str, Any]]:
    """Run the commands in order; on failure raise DbopsError naming the command and what ran."""
    done: list[dict[str, Any]] = []
    for cmd in commands:
        try:
            db.command(cmd)
        except error_types as exc:
            raise DbopsError(
                f"apply schema to {db.name}: {command_label(cmd)} failed: {describe_error(exc)}"
                f" ({len(done)} of {len(commands)} commands ran before it)",
                commands=done, failed_command=cmd,
            ) from exc
        done.append(cmd)
    return done
