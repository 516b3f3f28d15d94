"""Fuzzing the parsers that read user files (property-based, hypothesis, fixed budget).

Each target gets arbitrary and structure-aware inputs and must either return a result that keeps its
documented properties or raise the module's own error (DbopsError; ValueError where the function's
contract says so). Budgets are fixed (``max_examples``, no deadline) so the set runs in well under a
minute in ``make unit``; the counts are reported in docs/development.md ("Fuzzing").
"""

from __future__ import annotations

import datetime as dt
import json
import os

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ansible_collections.dbops.datastores.plugins.module_utils import _backup_catalog as catalog
from ansible_collections.dbops.datastores.plugins.module_utils import _backup_cli as cli
from ansible_collections.dbops.datastores.plugins.module_utils import _backup_ops as ops
from ansible_collections.dbops.datastores.plugins.module_utils import _migrations as mig
from ansible_collections.dbops.datastores.plugins.module_utils import _mongodb_migrate as mm
from ansible_collections.dbops.datastores.plugins.module_utils import _mongodb_schema as ms
from ansible_collections.dbops.datastores.plugins.module_utils import _pg_migrate as pm
from ansible_collections.dbops.datastores.plugins.module_utils import _pg_script
from ansible_collections.dbops.datastores.plugins.module_utils._errors import DbopsError

FUZZ = settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SMALL = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# SQL-ish text: the characters the splitter treats specially, weighted up, plus any unicode.
_SQL_PIECES = st.sampled_from([
    ";", "'", '"', "$", "$$", "$t$", "E'", "e'", "\\", "--", "/*", "*/", "(", ")", "\n", " ", "\t",
    "BEGIN", "begin", "COMMIT", "CREATE INDEX CONCURRENTLY", "VACUUM", "SELECT 1", "a", "x_1", "\\c db",
    "U&'", "B'", "X'", "::", "''", '""',
])
sql_text = st.lists(st.one_of(_SQL_PIECES, st.text(max_size=3)), max_size=40).map("".join)


@FUZZ
@given(sql_text)
def test_split_statements_rejoin_to_the_input(script):
    try:
        statements = _pg_script.split(script, "V1__fuzz.sql")
    except DbopsError:
        return
    pos = 0
    for stmt in statements:
        assert stmt.offset >= pos
        assert script[stmt.offset:stmt.offset + len(stmt.text)] == stmt.text
        gap = script[pos:stmt.offset]
        assert _pg_script.split(gap) == [], f"SQL lost between statements: {gap!r}"
        assert stmt.line == script.count("\n", 0, stmt.offset) + 1
        pos = stmt.offset + len(stmt.text)
    assert _pg_script.split(script[pos:]) == []
    _pg_script.transaction_problems(statements)
    _pg_script.meta_command_problems(statements)


@FUZZ
@given(st.text(max_size=80))
def test_a_literal_placeholder_is_one_string_token_whatever_its_value(value):
    """The safe placeholder forms cannot add a statement, whatever the value holds."""
    for template in ("SELECT ${v:literal};", "SELECT 1 FROM ${v:identifier};", "SELECT '${v}';"):
        try:
            sql = pm.substitute(template, {"v": value}, "V1__fuzz.sql")
        except DbopsError:
            continue
        statements = _pg_script.split(sql)
        assert len(statements) == 1, (value, sql)
        assert statements[0].text.endswith(";")


@FUZZ
@given(st.one_of(st.text(max_size=40),
                 st.builds(lambda p, v, d, e: f"{p}{v}__{d}.{e}",
                           st.sampled_from(["V", "U", "R", "v", "", "VV"]),
                           st.text(alphabet="0123456789._-a", max_size=12),
                           st.text(max_size=12), st.sampled_from(["sql", "SQL", "yml", "json", ""]))))
def test_migration_names_and_versions(name):
    try:
        parsed = mig.parse_name(name, ("sql", "yml", "json"))
    except ValueError:
        return
    if parsed is None:
        return
    assert parsed.kind in (mig.KIND_VERSIONED, mig.KIND_UNDO, mig.KIND_REPEATABLE)
    assert parsed.description
    if parsed.version is not None:
        again = mig.parse_version(parsed.version.text)
        assert again == parsed.version and not again < parsed.version


@FUZZ
@given(st.text(alphabet="0123456789._", max_size=20), st.text(alphabet="0123456789._", max_size=20))
def test_version_order_is_total(a, b):
    try:
        va, vb = mig.parse_version(a), mig.parse_version(b)
    except ValueError:
        return
    assert (va < vb) + (vb < va) + (va == vb) == 1


_yaml_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
                          st.text(max_size=10), st.sampled_from(["$date", "$oid", "createIndexes", "up"]))
_yaml_values = st.recursive(_yaml_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4),
    st.dictionaries(st.one_of(st.sampled_from(["up", "down", "description", "insert", "documents",
                                               "createIndexes", "indexes", "$date", "$oid", "key"]),
                              st.text(max_size=6)), inner, max_size=4)), max_leaves=12)


@SMALL
@given(st.one_of(st.text(max_size=200), _yaml_values.map(json.dumps),
                 _yaml_values.map(lambda v: json.dumps({"up": v})),
                 _yaml_values.map(lambda v: json.dumps({"up": [v], "down": [v]}))),
       st.sampled_from(["V1__fuzz.yml", "V1__fuzz.json"]))
def test_yaml_migration_loader(text, script):
    try:
        doc = mm.parse_document(text, script)
    except DbopsError:
        return
    assert isinstance(doc.up, list)


@FUZZ
@given(st.one_of(st.text(max_size=30), st.integers(), st.floats(), st.booleans(), st.none(),
                 st.builds(lambda n, u: f"{n}{u}", st.integers(min_value=0), st.sampled_from("wdhms")),
                 st.lists(st.tuples(st.integers(min_value=0, max_value=10**25), st.sampled_from("wdhmsWDH")))
                 .map(lambda parts: "".join(f"{n}{u}" for n, u in parts))))
def test_duration_parser(text):
    try:
        value = catalog.parse_duration(text)
    except DbopsError:
        return
    assert dt.timedelta(0) <= value <= dt.timedelta(seconds=catalog.MAX_DURATION_S)
    assert catalog.utcnow() - value <= catalog.utcnow()  # usable in date arithmetic


_index_values = st.one_of(st.none(), st.booleans(), st.integers(min_value=-5, max_value=5),
                          st.sampled_from(["text", "2dsphere", "hashed", "2d", "x", "1", "-1"]),
                          st.floats(allow_nan=False), st.text(max_size=5))


@FUZZ
@given(st.fixed_dictionaries({}, optional={
    "keys": st.one_of(st.dictionaries(st.text(max_size=6), _index_values, max_size=4),
                      st.lists(st.one_of(st.text(max_size=6), st.tuples(st.text(max_size=4), _index_values),
                                         st.dictionaries(st.text(max_size=4), _index_values, max_size=2)),
                               max_size=4),
                      _index_values),
    "name": st.one_of(st.none(), st.text(max_size=6)),
    "unique": _index_values, "sparse": _index_values, "hidden": _index_values,
    "expire_after_seconds": st.one_of(st.none(), st.integers(min_value=-10, max_value=10**12)),
    "partial_filter": st.one_of(st.none(), st.dictionaries(st.text(max_size=4), _index_values, max_size=2),
                                st.text(max_size=3)),
}))
def test_index_spec_normalisation(params):
    try:
        spec = ms.parse_index(params, "collection fuzz.c")
    except DbopsError:
        return
    assert spec.key and spec.name
    assert spec.key != [("_id", 1)]


_option_values = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(10**30), max_value=10**30),
                           st.floats(), st.text(max_size=25), st.lists(st.integers(), max_size=2),
                           st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))


@FUZZ
@given(st.dictionaries(st.sampled_from(sorted(ops.retention_option_spec())), _option_values, max_size=8))
@example({"keep_daily": "0\x1f"})  # a control character str.isspace() knows and int() does not
def test_retention_policy_from_a_config(given_options):
    """The dbops-backup config path: spec validation then the policy; only our error types."""
    try:
        checked = cli.apply_spec(ops.retention_option_spec(), given_options, "fuzz retention")
        policy = ops.policy_from({k: v for k, v in checked.items() if k in given_options})
    except DbopsError:
        return
    assert not policy.problems()


@FUZZ
@given(st.one_of(
    st.dictionaries(st.sampled_from(["engine", "database", "format", "jobs", "compression", "globals",
                                     "bin_dir", "min_interval", "gzip", "tool", "mongodump_path", "bogus"]),
                    st.one_of(_option_values, st.sampled_from(["postgresql", "mongodb", "custom", "plain",
                                                               "directory", "native", "auto", "1h"])),
                    max_size=8),
    _option_values))
def test_backup_job_validation(job):
    try:
        options = cli.check_job(job, "fuzz backups[0]")
        plan = ops.ENGINES[options["engine"]].plan(cli._backup_options(options))
    except DbopsError:
        return
    assert plan["database"] == options["database"]


@pytest.fixture(scope="module")
def backup_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz-root")
    (root / "outside.sql").write_text("SELECT 1;")
    path = root / "pg-app-x"
    (path / "database.dir").mkdir(parents=True)
    (path / "database.dir" / "toc.dat").write_bytes(b"PGDMP")
    (path / "database.dump").write_bytes(b"PGDMP")
    os.symlink(root / "outside.sql", path / "link.sql")
    manifest = {"id": "pg-app-x", "files": [{"path": "database.dump"}, {"path": "database.dir/toc.dat"},
                                            {"path": "link.sql"}]}
    return str(path), manifest


@SMALL
@given(st.one_of(st.text(max_size=30),
                 st.lists(st.sampled_from(["..", ".", "", "database.dir", "toc.dat", "database.dump",
                                           "link.sql", "outside.sql", "/", "x"]), max_size=5).map("/".join),
                 st.none(), st.integers()))
def test_manifest_paths_never_leave_the_backup(backup_dir, rel):
    path, manifest = backup_dir
    try:
        resolved = catalog.manifest_path(path, manifest, rel)
    except DbopsError:
        return
    assert os.path.realpath(resolved).startswith(os.path.realpath(path) + os.sep)
    assert not os.path.islink(resolved)
