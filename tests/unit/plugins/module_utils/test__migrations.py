"""Engine-neutral migration core: names, versions, discovery, validation and the planner."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ansible_collections.dbops.datastores.plugins.module_utils import _migrations as m
from ansible_collections.dbops.datastores.plugins.module_utils._errors import DbopsError

SQL = ("sql",)
MONGO = ("yml", "yaml", "json")


# ---------------------------------------------------------------- versions


@pytest.mark.parametrize(("low", "high"), [
    ("1.9", "1.10"), ("9", "10"), ("1", "1.1"), ("1.2.3", "1.2.10"), ("2", "10"), ("008", "9"),
    ("1_9", "1_10"), ("0.9", "1"),
])
def test_versions_compare_numerically_by_part(low, high):
    assert m.parse_version(low) < m.parse_version(high)
    assert m.parse_version(high) > m.parse_version(low)


@pytest.mark.parametrize(("a", "b"), [("009", "9"), ("1.0", "1"), ("1_2", "1.2"), ("01.002", "1.2"),
                                      ("1.0.0", "1")])
def test_equal_versions(a, b):
    assert m.parse_version(a) == m.parse_version(b)
    assert hash(m.parse_version(a)) == hash(m.parse_version(b))


def test_version_keeps_its_spelling():
    assert str(m.parse_version("009")) == "009"
    assert m.parse_version(7) == m.parse_version("007")


@pytest.mark.parametrize("text", ["", "v1", "1.", ".1", "1..2", "1.a", "latest", "1-2", "1__2"])
def test_invalid_versions(text):
    with pytest.raises(ValueError, match="is not a version"):
        m.parse_version(text)


version_parts = st.lists(st.integers(min_value=0, max_value=10_000), min_size=1, max_size=5)


def _text(parts, pad=0, sep="."):
    return sep.join(str(p).zfill(pad) for p in parts)


@given(version_parts, version_parts)
def test_order_matches_integer_tuples(a, b):
    def norm(parts):
        parts = list(parts)
        while len(parts) > 1 and parts[-1] == 0:
            parts.pop()
        return tuple(parts)

    va, vb = m.parse_version(_text(a)), m.parse_version(_text(b))
    assert (va < vb) == (norm(a) < norm(b))
    assert (va == vb) == (norm(a) == norm(b))


@given(version_parts, st.integers(min_value=0, max_value=4), st.sampled_from([".", "_"]))
def test_zero_padding_and_separator_do_not_change_the_version(parts, pad, sep):
    assert m.parse_version(_text(parts, pad, sep)) == m.parse_version(_text(parts))


@given(st.lists(version_parts, min_size=1, max_size=20))
def test_sorting_is_a_total_order(versions):
    parsed = sorted(m.parse_version(_text(v)) for v in versions)
    assert all(x <= y for x, y in zip(parsed, parsed[1:]))
    assert sorted(parsed, reverse=True) == list(reversed(parsed)) or len(set(parsed)) < len(parsed)


# ---------------------------------------------------------------- names


@pytest.mark.parametrize(("name", "kind", "version", "desc"), [
    ("V009__add_service_optimization_tables.sql", m.KIND_VERSIONED, "009", "add service optimization tables"),
    ("U009__add_service_optimization_tables.sql", m.KIND_UNDO, "009", "add service optimization tables"),
    ("R__views.sql", m.KIND_REPEATABLE, None, "views"),
    ("V1.10__x.SQL", m.KIND_VERSIONED, "1.10", "x"),
    ("V2_1__split_users.sql", m.KIND_VERSIONED, "2_1", "split users"),
    ("V3__a__b.sql", m.KIND_VERSIONED, "3", "a  b"),
])
def test_parse_names(name, kind, version, desc):
    parsed = m.parse_name(name, SQL)
    assert parsed is not None
    assert parsed.kind == kind
    assert (str(parsed.version) if parsed.version else None) == version
    assert parsed.description == desc


@pytest.mark.parametrize("name", ["README.md", "notes.txt", "V1__x.sql.bak", "V1__x"])
def test_other_extensions_are_not_migrations(name):
    assert m.parse_name(name, SQL) is None


@pytest.mark.parametrize("name", ["009_add_tables.sql", "V1_x.sql", "V__x.sql", "X1__x.sql", "v1__x.sql",
                                  "V1.__x.sql", "V1__.sql", "R1__x.sql", "U__x.sql", "V1__ .sql"])
def test_unparsable_names(name):
    with pytest.raises(ValueError, match=r"expected V<version>|description"):
        m.parse_name(name, SQL)


def test_mongo_extensions():
    assert m.parse_name("V1__init.yml", MONGO).extension == "yml"
    assert m.parse_name("V2__more.json", MONGO).kind == m.KIND_VERSIONED
    assert m.parse_name("V1__init.sql", MONGO) is None


def test_checksum_is_sha256_of_bytes():
    assert m.checksum(b"") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


# ---------------------------------------------------------------- discovery


def write(directory, files):
    for name, content in files.items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode() if isinstance(content, str) else content)


def test_discover_orders_and_groups(tmp_path):
    write(tmp_path, {
        "V1.10__ten.sql": "select 10;", "V1.9__nine.sql": "select 9;", "V002__two.sql": "select 2;",
        "U1.10__ten.sql": "select -10;", "R__b_view.sql": "b", "R__a_view.sql": "a",
        "README.md": "docs", ".hidden.sql": "ignored", "sub/V3__three.sql": "select 3;",
    })
    found = m.discover(str(tmp_path), SQL)
    assert [x.script for x in found.versioned] == ["V1.9__nine.sql", "V1.10__ten.sql", "V002__two.sql",
                                                   "sub/V3__three.sql"]
    assert [x.script for x in found.repeatable] == ["R__a_view.sql", "R__b_view.sql"]
    assert found.undo[m.parse_version("1.10")].script == "U1.10__ten.sql"
    nine = found.versioned[0]
    assert nine.checksum == m.checksum(b"select 9;")
    assert nine.content == b"select 9;"
    assert nine.text() == "select 9;"


def test_discover_not_recursive(tmp_path):
    write(tmp_path, {"V1__a.sql": "a", "sub/V1__dup.sql": "b"})
    assert len(m.discover(str(tmp_path), SQL, recursive=False).versioned) == 1
    with pytest.raises(DbopsError, match="duplicate version 1"):
        m.discover(str(tmp_path), SQL)


def test_missing_directory(tmp_path):
    with pytest.raises(DbopsError, match="does not exist"):
        m.discover(str(tmp_path / "nope"), SQL)


def test_file_instead_of_directory(tmp_path):
    write(tmp_path, {"V1__a.sql": "a"})
    with pytest.raises(DbopsError, match="not a directory"):
        m.discover(str(tmp_path / "V1__a.sql"), SQL)


def test_empty_directory(tmp_path):
    write(tmp_path, {"README.md": "nothing here"})
    with pytest.raises(DbopsError, match=r"no migration files \(\.sql\) found"):
        m.discover(str(tmp_path), SQL)


def test_every_problem_is_listed(tmp_path):
    write(tmp_path, {
        "V1__a.sql": "a", "V001__again.sql": "b", "009_seed_style.sql": "c", "U7__orphan.sql": "d",
        "R__v.sql": "e", "sub/R__V.sql": "f", "U1__a.sql": "g", "sub/U01__a.sql": "h",
    })
    with pytest.raises(DbopsError) as info:
        m.discover(str(tmp_path), SQL)
    problems = info.value.details["problems"]
    text = info.value.msg
    assert text.startswith(f"validate migrations in {tmp_path}: ")
    assert any("009_seed_style.sql: unparsable migration name" in p for p in problems)
    assert any("duplicate version 1" in p and "V001__again.sql" in p and "V1__a.sql" in p for p in problems)
    assert any("U7__orphan.sql: undo for version 7 which has no V7__ migration" in p for p in problems)
    assert any("duplicate repeatable migration" in p for p in problems)
    assert any("duplicate undo version" in p for p in problems)
    assert len(problems) == 5


def test_undreadable_content_reports_the_file(tmp_path):
    write(tmp_path, {"V1__latin1.sql": b"select '\xe9';"})
    migration = m.discover(str(tmp_path), SQL).versioned[0]
    with pytest.raises(DbopsError, match=r"read migration V1__latin1\.sql: not valid utf-8"):
        migration.text()


# ---------------------------------------------------------------- planner helpers


def mig(kind, version, desc="d", content=None):
    prefix = {"versioned": "V", "undo": "U", "repeatable": "R"}[kind]
    script = f"R__{desc}.sql" if kind == "repeatable" else f"{prefix}{version}__{desc}.sql"
    data = (content if content is not None else f"{script} body").encode()
    parsed = m.parse_version(version) if version else None
    return m.Migration(kind, parsed, desc, script, m.checksum(data), data)


def mset(*versions, undo=(), repeatable=()):
    items = [mig("versioned", str(v)) for v in versions]
    items += [mig("undo", str(v)) for v in undo]
    items += [mig("repeatable", None, desc=name, content=body) for name, body in repeatable]
    return m.build_set(items, "db/migrations")


class History:
    def __init__(self):
        self.rows = []

    def add(self, kind, version=None, *, script=None, checksum=None, success=True, desc="d",
            migration=None):
        if migration is not None:
            version = str(migration.version) if migration.version else None
            script, checksum, desc = migration.script, migration.checksum, migration.description
        self.rows.append(m.HistoryRow(len(self.rows) + 1, kind, version, desc, script or f"V{version}__d.sql",
                                      checksum, success, "ops", "2026-01-01 00:00:00", 5))
        return self

    def applied(self, migrations, *versions):
        files = migrations.by_version()
        for v in versions:
            self.add(m.KIND_VERSIONED, migration=files[m.parse_version(str(v))])
        return self


def actions(plan):
    return [(s.action, str(s.version) if s.version else s.script) for s in plan.steps]


def problems_of(excinfo):
    return excinfo.value.details["problems"]


# ---------------------------------------------------------------- planner


def test_fresh_database_applies_everything_in_order():
    ms = mset(2, "1.10", "1.9", 1, repeatable=[("views", "create view v")])
    plan = m.plan(ms, [])
    assert actions(plan) == [("apply", "1"), ("apply", "1.9"), ("apply", "1.10"), ("apply", "2"),
                             ("repeatable", "R__views.sql")]
    assert plan.version_before is None
    assert str(plan.version_after) == "2"
    assert plan.pending == []
    assert plan.changed
    assert plan.steps[0].migration.script == "V1__d.sql"
    assert plan.to_dicts()[0] == {"action": "apply", "version": "1", "description": "d",
                                  "script": "V1__d.sql", "checksum": plan.steps[0].checksum}


def test_up_to_date_is_an_empty_plan():
    ms = mset(1, 2, repeatable=[("views", "v1")])
    hist = History().applied(ms, 1, 2).add(m.KIND_REPEATABLE, migration=ms.repeatable[0])
    plan = m.plan(ms, hist.rows)
    assert plan.steps == []
    assert not plan.changed
    assert str(plan.version_before) == str(plan.version_after) == "2"


def test_only_new_versions_are_applied():
    ms = mset(1, 2, 3)
    plan = m.plan(ms, History().applied(ms, 1).rows)
    assert actions(plan) == [("apply", "2"), ("apply", "3")]
    assert str(plan.version_before) == "1"


def test_versions_written_differently_match_history():
    ms = m.build_set([mig("versioned", "009")], "x")
    hist = History().add(m.KIND_VERSIONED, "9", checksum=ms.versioned[0].checksum)
    assert m.plan(ms, hist.rows).steps == []


def test_changed_repeatable_is_reapplied_after_versioned():
    ms = mset(1, 2, repeatable=[("views", "v2")])
    old = mig("repeatable", None, desc="views", content="v1")
    hist = History().applied(ms, 1).add(m.KIND_REPEATABLE, migration=old)
    assert actions(m.plan(ms, hist.rows)) == [("apply", "2"), ("repeatable", "R__views.sql")]


def test_target_stops_early_and_reports_pending():
    ms = mset(1, 2, 3, 4)
    plan = m.plan(ms, [], m.PlanOptions(target="2"))
    assert actions(plan) == [("apply", "1"), ("apply", "2")]
    assert plan.pending == ["V3__d.sql", "V4__d.sql"]
    assert str(plan.version_after) == "2"


def test_target_latest_and_between_versions():
    ms = mset(1, 2, 3)
    assert len(m.plan(ms, [], m.PlanOptions(target="latest")).steps) == 3
    assert actions(m.plan(ms, [], m.PlanOptions(target="2.5"))) == [("apply", "1"), ("apply", "2")]


def test_bad_target():
    with pytest.raises(DbopsError, match="target: 'newest' is not a version"):
        m.plan(mset(1), [], m.PlanOptions(target="newest"))


def test_downgrade_needs_permission():
    ms = mset(1, 2, 3, undo=(2, 3))
    hist = History().applied(ms, 1, 2, 3)
    with pytest.raises(DbopsError) as info:
        m.plan(ms, hist.rows, m.PlanOptions(target="1"))
    assert problems_of(info) == [
        "target 1 is below the current version 3: undoing V3__d.sql, V2__d.sql needs allow_downgrade=true"
    ]


def test_downgrade_runs_undo_scripts_newest_first():
    ms = mset(1, 2, 3, undo=(2, 3))
    hist = History().applied(ms, 1, 2, 3)
    plan = m.plan(ms, hist.rows, m.PlanOptions(target="1", allow_downgrade=True))
    assert actions(plan) == [("undo", "3"), ("undo", "2")]
    assert [s.script for s in plan.steps] == ["U3__d.sql", "U2__d.sql"]
    assert str(plan.version_before) == "3"
    assert str(plan.version_after) == "1"
    assert plan.pending == ["V2__d.sql", "V3__d.sql"]


def test_downgrade_refused_when_an_undo_is_missing():
    ms = mset(1, 2, 3, undo=(3,))
    hist = History().applied(ms, 1, 2, 3)
    with pytest.raises(DbopsError) as info:
        m.plan(ms, hist.rows, m.PlanOptions(target="1", allow_downgrade=True))
    assert problems_of(info) == ["cannot undo V2__d.sql: no undo script U2__*"]


def test_downgrade_to_zero_undoes_everything():
    ms = mset(1, 2, undo=(1, 2))
    plan = m.plan(ms, History().applied(ms, 1, 2).rows, m.PlanOptions(target="0", allow_downgrade=True))
    assert actions(plan) == [("undo", "2"), ("undo", "1")]
    assert plan.version_after is None


def test_inline_undo_for_engines_with_down_sections():
    ms = mset(1, 2)
    hist = History().applied(ms, 1, 2)
    plan = m.plan(ms, hist.rows, m.PlanOptions(target="1", allow_downgrade=True,
                                               inline_undo=lambda mg: mg.script == "V2__d.sql"))
    assert actions(plan) == [("undo", "2")]
    assert plan.steps[0].migration.script == "V2__d.sql"


def test_undone_version_is_pending_again():
    ms = mset(1, 2, undo=(2,))
    hist = History().applied(ms, 1, 2).add(m.KIND_UNDO, "2", script="U2__d.sql",
                                           checksum=ms.undo[m.parse_version("2")].checksum)
    plan = m.plan(ms, hist.rows)
    assert str(plan.version_before) == "1"
    assert actions(plan) == [("apply", "2")]


def test_checksum_mismatch_lists_the_files():
    ms = mset(1, 2, 3)
    hist = History().applied(ms, 1, 2, 3)
    hist.rows[0] = m.HistoryRow(1, m.KIND_VERSIONED, "1", "d", "V1__d.sql", "0" * 64)
    hist.rows[2] = m.HistoryRow(3, m.KIND_VERSIONED, "3", "d", "V3__d.sql", "f" * 64)
    with pytest.raises(DbopsError) as info:
        m.plan(ms, hist.rows)
    assert problems_of(info) == [
        f"checksum mismatch for applied migration V1__d.sql: recorded {'0' * 12}, file has "
        f"{ms.versioned[0].checksum[:12]}",
        f"checksum mismatch for applied migration V3__d.sql: recorded {'f' * 12}, file has "
        f"{ms.versioned[2].checksum[:12]}",
    ]
    assert info.value.msg.startswith("plan migrations in db/migrations: checksum mismatch")
    plan = m.plan(ms, hist.rows, m.PlanOptions(validate_checksums=False))
    assert plan.steps == []


def test_applied_migration_missing_from_directory():
    ms = mset(2)
    hist = History().add(m.KIND_VERSIONED, "1", checksum="a" * 64).applied(ms, 2)
    with pytest.raises(DbopsError, match=r"applied migration V1__d.sql \(version 1\) is missing from db/mig"):
        m.plan(ms, hist.rows)
    assert m.plan(ms, hist.rows, m.PlanOptions(validate_checksums=False)).steps == []


def test_out_of_order_pending_version():
    ms = mset(1, 2, 3)
    hist = History().applied(ms, 1, 3)
    with pytest.raises(DbopsError) as info:
        m.plan(ms, hist.rows)
    assert problems_of(info) == [
        "out-of-order pending migrations V2__d.sql are older than the applied version 3"
        " (set out_of_order=true to apply them)"
    ]
    assert actions(m.plan(ms, hist.rows, m.PlanOptions(out_of_order=True))) == [("apply", "2")]


def test_failed_row_blocks_until_repair():
    ms = mset(1, 2, 3)
    hist = History().applied(ms, 1).add(m.KIND_VERSIONED, migration=ms.versioned[1], success=False)
    with pytest.raises(DbopsError) as info:
        m.plan(ms, hist.rows)
    assert problems_of(info) == [
        "V2__d.sql failed on 2026-01-01 00:00:00 and may be partly applied: fix the database by hand,"
        " then run with repair=true to remove the failed history row"
    ]
    plan = m.plan(ms, hist.rows, m.PlanOptions(repair=True))
    assert actions(plan) == [("repair", "V2__d.sql"), ("apply", "2"), ("apply", "3")]
    assert plan.steps[0].rows == (hist.rows[1],)
    assert plan.to_dicts()[0]["rows"][0]["success"] is False


def test_problems_are_collected_together():
    ms = mset(1, 2, 3)
    hist = History().applied(ms, 1, 3).add(m.KIND_VERSIONED, "4", script="V4__gone.sql", checksum="x",
                                           success=False)
    hist.rows[0] = m.HistoryRow(1, m.KIND_VERSIONED, "1", "d", "V1__d.sql", "bad")
    with pytest.raises(DbopsError) as info:
        m.plan(ms, hist.rows)
    kinds = problems_of(info)
    assert len(kinds) == 3
    assert "failed" in kinds[0]
    assert "checksum mismatch" in kinds[1]
    assert "out-of-order" in kinds[2]


def test_baseline_on_empty_history():
    ms = mset(1, 2, 3, 4)
    plan = m.plan(ms, [], m.PlanOptions(baseline_version="2"))
    assert actions(plan) == [("baseline", "2"), ("apply", "3"), ("apply", "4")]
    assert plan.version_before is None
    assert str(plan.version_after) == "4"


def test_recorded_baseline_covers_lower_versions():
    ms = mset(1, 2, 3)
    hist = History().add(m.KIND_BASELINE, "2", script="<< baseline 2 >>")
    plan = m.plan(ms, hist.rows)
    assert actions(plan) == [("apply", "3")]
    assert str(plan.version_before) == "2"
    assert m.plan(ms, hist.rows, m.PlanOptions(baseline_version="2.0")).steps[0].action == "apply"


def test_baseline_conflict_and_below_baseline_target():
    ms = mset(1, 2, 3)
    hist = History().add(m.KIND_BASELINE, "2", script="<< baseline 2 >>")
    with pytest.raises(DbopsError, match="baseline_version 3 conflicts with the recorded baseline 2"):
        m.plan(ms, hist.rows, m.PlanOptions(baseline_version="3"))
    with pytest.raises(DbopsError, match="target 1 is below the baseline 2"):
        m.plan(ms, hist.rows, m.PlanOptions(target="1", allow_downgrade=True))


def test_baseline_ignored_once_migrations_ran():
    ms = mset(1, 2, 3)
    hist = History().applied(ms, 1)
    plan = m.plan(ms, hist.rows, m.PlanOptions(baseline_version="2"))
    assert actions(plan) == [("apply", "2"), ("apply", "3")]


def test_bad_baseline_version():
    with pytest.raises(DbopsError, match="baseline_version: 'x' is not a version"):
        m.plan(mset(1), [], m.PlanOptions(baseline_version="x"))


def test_history_state_replays_rows_in_rank_order():
    rows = [
        m.HistoryRow(3, m.KIND_UNDO, "2", "d", "U2__d.sql", "c"),
        m.HistoryRow(1, m.KIND_VERSIONED, "1", "d", "V1__d.sql", "a"),
        m.HistoryRow(2, m.KIND_VERSIONED, "2", "d", "V2__d.sql", "b"),
        m.HistoryRow(4, m.KIND_REPEATABLE, None, "Views", "R__views.sql", "r1"),
        m.HistoryRow(5, m.KIND_REPEATABLE, None, "views", "R__views.sql", "r2"),
    ]
    state = m.history_state(rows)
    assert list(state.applied) == [m.parse_version("1")]
    assert state.repeatable["views"].checksum == "r2"
    assert str(state.current()) == "1"
    assert state.is_applied(m.parse_version("1")) and not state.is_applied(m.parse_version("2"))


# ---------------------------------------------------------------- planner properties


@given(st.sets(st.integers(min_value=1, max_value=60), min_size=1, max_size=15), st.data())
def test_plan_then_history_reaches_target(all_versions, data):
    """Applying the plan's steps to the history always yields an empty follow-up plan."""
    versions = sorted(all_versions)
    ms = mset(*versions, undo=versions)
    applied_count = data.draw(st.integers(min_value=0, max_value=len(versions)))
    hist = History().applied(ms, *versions[:applied_count])
    target = data.draw(st.sampled_from([None, *[str(v) for v in versions], "0"]))
    options = m.PlanOptions(target=target, allow_downgrade=True)
    plan = m.plan(ms, hist.rows, options)
    applies = [s.version for s in plan.steps if s.action == "apply"]
    undos = [s.version for s in plan.steps if s.action == "undo"]
    assert applies == sorted(applies)
    assert undos == sorted(undos, reverse=True)
    for step in plan.steps:
        kind = m.KIND_UNDO if step.action == "undo" else m.KIND_VERSIONED
        hist.add(kind, str(step.version), script=step.script, checksum=ms.by_version()[step.version].checksum)
    follow_up = m.plan(ms, hist.rows, options)
    assert follow_up.steps == []
    assert follow_up.version_before == plan.version_after
    expected = max((v for v in versions if target is None or v <= int(target)), default=None)
    assert (int(str(plan.version_after)) if plan.version_after else None) == expected


def test_applied_result_keeps_the_first_and_last_steps_of_a_big_run():
    steps = [{"action": "apply", "version": str(i), "description": "d", "script": f"V{i}__d.sql",
              "checksum": "c" * 64, "transaction": True, "execution_ms": i} for i in range(1, 8)]
    compact = m.applied_result(steps, limit=4)
    assert compact == {"applied": [steps[0], steps[1], steps[5], steps[6]], "applied_count": 7,
                       "applied_omitted": 3}
    assert m.applied_result(steps, limit=3)["applied"] == [steps[0], steps[5], steps[6]]
    full = m.applied_result(steps, "full", limit=4)
    assert full == {"applied": steps, "applied_count": 7, "applied_omitted": 0}
    assert m.applied_result(steps, limit=7) == {"applied": steps, "applied_count": 7, "applied_omitted": 0}
    assert m.applied_result([]) == {"applied": [], "applied_count": 0, "applied_omitted": 0}
    # A thousand steps: the default keeps 100 of them.
    big = m.applied_result([{"version": str(i)} for i in range(1000)])
    assert [s["version"] for s in big["applied"]] == [str(i) for i in (*range(50), *range(950, 1000))]
    assert (big["applied_count"], big["applied_omitted"]) == (1000, 900)
    with pytest.raises(DbopsError, match="check option applied_detail: 'all' is not one of compact, full"):
        m.applied_result(steps, "all")


def test_contents_sent_by_the_action_plugin_plan_like_the_directory(tmp_path):
    files = {"V1__a.sql": b"CREATE TABLE a ();", "sub/V2__b.sql": b"CREATE TABLE b ();",
             "README.md": b"not a migration", ".hidden/V3__c.sql": b"hidden dir", "sub/.V4__d.sql": b"hidden"}
    for name, data in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(data)
    sent = {name: base64.b64encode(data).decode() for name, data in files.items()}
    from_files = m.discover("ctl:/m", ["sql"], contents=m.shipped_contents(sent, "ctl:/m"))
    from_disk = m.discover(str(tmp_path), ["sql"])
    assert [(x.script, x.checksum, x.content) for x in from_files.all()] == \
        [(x.script, x.checksum, x.content) for x in from_disk.all()] == [
            ("V1__a.sql", m.checksum(b"CREATE TABLE a ();"), b"CREATE TABLE a ();"),
            ("sub/V2__b.sql", m.checksum(b"CREATE TABLE b ();"), b"CREATE TABLE b ();")]
    assert from_files.source == "ctl:/m"
    assert m.shipped_contents(None, None) is None
    with pytest.raises(DbopsError, match="src is read on the controller by the action plugin"):
        m.shipped_contents(None, "/ctl/m")
    with pytest.raises(DbopsError, match=r"read migrations in /ctl/m: V1__a.sql is not base64"):
        m.shipped_contents({"V1__a.sql": "not base64!"}, "/ctl/m")
    with pytest.raises(DbopsError, match=r"no migration files \(.sql\) found"):
        m.discover("ctl:/m", ["sql"], contents={"README.md": b""})
    with pytest.raises(DbopsError, match="unparsable migration name"):
        m.discover("ctl:/m", ["sql"], contents={"X1__bad.sql": b""})


# ---------------------------------------------------------------- verify scripts


def test_parse_name_reads_verify_scripts():
    parsed = m.parse_name("V1.2__add_index.verify.sql", ["sql"])
    assert (parsed.kind, str(parsed.version), parsed.description) == (m.KIND_VERIFY, "1.2", "add index")
    assert m.parse_name("V3__seed.VERIFY.yml", ["yml"]).kind == m.KIND_VERIFY
    assert m.KIND_VERIFY not in m.KINDS  # never a history row kind


@pytest.mark.parametrize("name", ["U1__x.verify.sql", "R__x.verify.sql", "V__x.verify.sql", "verify.sql"])
def test_parse_name_refuses_verify_scripts_of_other_kinds(name):
    with pytest.raises(ValueError):
        m.parse_name(name, ["sql"])


def _verify(version, desc="d"):
    script = f"V{version}__{desc}.verify.sql"
    return m.Migration(m.KIND_VERIFY, m.parse_version(version), desc, script, m.checksum(b"x"), b"x")


def test_build_set_pairs_verify_scripts_with_their_version():
    ms = m.build_set([mig("versioned", "1"), mig("versioned", "2"), _verify("2")], "x")
    assert list(ms.verify) == [m.parse_version("2")]
    assert [x.script for x in ms.all()] == ["V1__d.sql", "V2__d.sql"]  # verify scripts are not migrations


def test_build_set_reports_orphan_and_duplicate_verify_scripts():
    with pytest.raises(DbopsError) as err:
        m.build_set([mig("versioned", "1"), _verify("1", "a"), _verify("1.0", "b"), _verify("9")], "db")
    problems = err.value.details["problems"]
    assert "duplicate verify script for version 1: V1.0__b.verify.sql and V1__a.verify.sql" in problems
    assert "V9__d.verify.sql: verify script for version 9 which has no V9__ migration" in problems


def test_verify_script_only_for_apply_steps_and_applied_verifications():
    ms = m.build_set([mig("versioned", "1"), mig("versioned", "2"), mig("undo", "2"), mig("versioned", "3"),
                      _verify("2"), _verify("3")], "x")
    steps = m.plan(ms, []).steps
    assert [m.verify_script(ms, s).script if m.verify_script(ms, s) else None for s in steps] == [
        None, "V2__d.verify.sql", "V3__d.verify.sql"]
    rows = [m.HistoryRow(1, "versioned", "1", "d", "V1__d.sql", ms.versioned[0].checksum),
            m.HistoryRow(2, "versioned", "2", "d", "V2__d.sql", ms.versioned[1].checksum),
            m.HistoryRow(3, "undo", "2", "d", "U2__d.sql", None)]
    assert m.applied_verifications(ms, rows) == []  # 2 was undone, 1 has no verify script
    undo = m.plan(ms, rows[:2], m.PlanOptions(target="1", allow_downgrade=True)).steps
    assert [m.verify_script(ms, s) for s in undo] == [None]
    pairs = m.applied_verifications(ms, rows[:2])
    assert [(row.script, v.script) for row, v in pairs] == [("V2__d.sql", "V2__d.verify.sql")]
