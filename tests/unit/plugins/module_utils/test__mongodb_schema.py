"""Pure planning of mongodb_schema: declared specs vs listCollections/listIndexes documents."""

from __future__ import annotations

import pytest

from ansible_collections.dbops.datastores.plugins.module_utils import _mongodb_schema as s
from ansible_collections.dbops.datastores.plugins.module_utils._errors import DbopsError

DB = "app"


def declared(collections=None, views=None):
    return s.parse_schema({"database": DB, "collections": collections or [], "views": views or []})


def live_coll(name, indexes=(), options=None, type_="collection"):
    docs = [{"v": 2, "key": {"_id": 1}, "name": "_id_"}, *indexes]
    coll = s.live_collection({"name": name, "type": type_, "options": options or {}})
    coll.indexes = [s.live_index(d) for d in docs]
    return coll


def plan(collections=None, views=None, live=None, **kw):
    colls, vws = declared(collections, views)
    return s.plan_schema(DB, colls, vws, {c.name: c for c in live or []}, **kw)


# --- keys and names --------------------------------------------------------------------------


def test_keys_from_pairs_and_mapping_keep_order():
    assert s.parse_keys([["b", 1], ["a", -1]], "x") == [("b", 1), ("a", -1)]
    assert s.parse_keys({"b": 1, "a": -1}, "x") == [("b", 1), ("a", -1)]
    assert s.parse_keys([{"b": 1}, {"a": -1.0}], "x") == [("b", 1), ("a", -1)]
    assert s.parse_keys({"loc": "2dsphere"}, "x") == [("loc", "2dsphere")]


def test_index_name_derived_as_mongod_does():
    assert s.index_name([("a", 1), ("b", -1)]) == "a_1_b_-1"
    assert s.index_name([("loc", "2dsphere")]) == "loc_2dsphere"
    assert s.index_name([("metrics.success", 1)]) == "metrics.success_1"


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ({"b": 2}, "key direction 2 for field b is not valid"),
        ({"b": True}, "key direction True for field b is not valid"),
        ({}, "at least one field"),
        ("b", "must be a list"),
        ([["a", 1, 2]], "[field, direction] pair"),
        ([["a", 1], ["a", -1]], "field a appears twice"),
    ],
)
def test_bad_keys_are_refused(keys, message):
    with pytest.raises(DbopsError, match=None) as err:
        s.parse_keys(keys, "collection app.c")
    assert message in err.value.msg
    assert err.value.msg.startswith("validate collection app.c:")


def test_ttl_on_compound_index_is_refused():
    with pytest.raises(DbopsError) as err:
        declared([{"name": "c", "indexes": [{"keys": {"a": 1, "b": 1}, "expire_after_seconds": 60}]}])
    assert "index a_1_b_1: expire_after_seconds (TTL) needs a single-field index" in err.value.msg


def test_declaring_the_id_index_is_refused_and_duplicates_too():
    with pytest.raises(DbopsError, match="_id index is created by the server"):
        declared([{"name": "c", "indexes": [{"keys": {"_id": 1}}]}])
    with pytest.raises(DbopsError, match="index a_1 is declared twice"):
        declared([{"name": "c", "indexes": [{"keys": {"a": 1}}, {"keys": [["a", 1]]}]}])
    with pytest.raises(DbopsError, match="declared more than once"):
        declared([{"name": "c"}], [{"name": "c", "view_on": "x"}])


def test_collection_option_combinations_are_checked():
    with pytest.raises(DbopsError, match="needs size"):
        declared([{"name": "c", "capped": True}])
    with pytest.raises(DbopsError, match="only to capped"):
        declared([{"name": "c", "size": 10}])
    with pytest.raises(DbopsError, match="needs timeseries or clustered"):
        declared([{"name": "c", "expire_after_seconds": 10}])


# --- creating ------------------------------------------------------------------------------


def test_new_collection_is_created_with_options_then_indexes():
    p = plan(
        [
            {
                "name": "logs",
                "capped": True,
                "size": 4096,
                "max": 10,
                "collation": {"locale": "en", "strength": 2},
                "validator": {"$jsonSchema": {"required": ["t"]}},
                "validation_level": "moderate",
                "indexes": [
                    {"keys": [["tenantId", 1], ["t", -1]], "unique": True},
                    {"keys": {"t": 1}, "expire_after_seconds": 604800, "name": "ttl"},
                ],
            }
        ]
    )
    assert p.commands == [
        {
            "create": "logs",
            "capped": True,
            "size": 4096,
            "max": 10,
            "collation": {"locale": "en", "strength": 2},
            "validator": {"$jsonSchema": {"required": ["t"]}},
            "validationLevel": "moderate",
        },
        {
            "createIndexes": "logs",
            "indexes": [
                {"key": {"tenantId": 1, "t": -1}, "name": "tenantId_1_t_-1", "unique": True},
                {"key": {"t": 1}, "name": "ttl", "expireAfterSeconds": 604800},
            ],
        },
    ]
    assert list(p.commands[1]["indexes"][0]["key"]) == ["tenantId", "t"]
    assert p.changed
    assert p.diffs[0]["before"] is None and p.diffs[0]["before_header"] == "app.logs"


def test_timeseries_and_clustered_create_options():
    p = plan(
        [
            {
                "name": "ts",
                "timeseries": {"time_field": "t", "meta_field": "m", "granularity": "hours"},
                "expire_after_seconds": 3600,
            },
            {"name": "cl", "clustered": True},
        ]
    )
    assert p.commands == [
        {
            "create": "ts",
            "timeseries": {"timeField": "t", "metaField": "m", "granularity": "hours"},
            "expireAfterSeconds": 3600,
        },
        {"create": "cl", "clusteredIndex": {"key": {"_id": 1}, "unique": True}},
    ]


# --- unchanged -----------------------------------------------------------------------------


def test_matching_live_state_plans_nothing():
    live = [
        live_coll(
            "m",
            [
                {"v": 2, "key": {"tenantId": 1, "t": -1}, "name": "tenantId_1_t_-1"},
                {"v": 2, "key": {"t": 1}, "name": "t_1", "expireAfterSeconds": 604800.0},
                # mongod expands collations with defaults; the declared keys are what is compared
                {
                    "v": 2,
                    "key": {"p": 1},
                    "name": "p_1",
                    "partialFilterExpression": {"p": {"$gt": 5}},
                    "collation": {"locale": "fr", "strength": 3, "caseLevel": False},
                },
            ],
            {"validator": {"$jsonSchema": {"required": ["t"]}}, "validationLevel": "moderate"},
        )
    ]
    p = plan(
        [
            {
                "name": "m",
                "validator": {"$jsonSchema": {"required": ["t"]}},
                "validation_level": "moderate",
                "validation_action": "error",
                "indexes": [
                    {"keys": {"tenantId": 1, "t": -1}},
                    {"keys": {"t": 1}, "expire_after_seconds": 604800},
                    {"keys": {"p": 1}, "partial_filter": {"p": {"$gt": 5}}, "collation": {"locale": "fr"}},
                ],
            }
        ],
        live=live,
    )
    assert p.commands == []
    assert not p.changed
    assert p.diffs == []


def test_index_without_collation_inherits_collection_default():
    live = [
        live_coll(
            "m",
            [{"v": 2, "key": {"a": 1}, "name": "a_1", "collation": {"locale": "en", "strength": 2}}],
            {"collation": {"locale": "en", "strength": 2}},
        )
    ]
    assert plan([{"name": "m", "indexes": [{"keys": {"a": 1}}]}], live=live).commands == []


def test_text_index_from_mongod_compares_with_declared_keys():
    live = [
        live_coll(
            "m",
            [
                {
                    "v": 2,
                    "key": {"_fts": "text", "_ftsx": 1},
                    "name": "content_text",
                    "weights": {"content": 1},
                    "default_language": "english",
                }
            ],
        )
    ]
    assert plan([{"name": "m", "indexes": [{"keys": {"content": "text"}}]}], live=live).commands == []


# --- changes -------------------------------------------------------------------------------


def test_changed_ttl_and_hidden_go_through_collmod():
    live = [
        live_coll(
            "m",
            [
                {"v": 2, "key": {"t": 1}, "name": "t_1", "expireAfterSeconds": 60},
                {"v": 2, "key": {"u": 1}, "name": "u_1"},
            ],
        )
    ]
    p = plan(
        [
            {
                "name": "m",
                "indexes": [
                    {"keys": {"t": 1}, "expire_after_seconds": 120},
                    {"keys": {"u": 1}, "hidden": True},
                ],
            }
        ],
        live=live,
    )
    assert p.commands == [
        {"collMod": "m", "index": {"name": "t_1", "expireAfterSeconds": 120}},
        {"collMod": "m", "index": {"name": "u_1", "hidden": True}},
    ]
    assert p.rebuilt == []
    before, after = p.diffs[0]["before"], p.diffs[0]["after"]
    assert before["indexes"][0]["expireAfterSeconds"] == 60
    assert after["indexes"][0]["expireAfterSeconds"] == 120


def test_unique_change_is_refused_without_allow_rebuild_and_shows_difference():
    live = [live_coll("m", [{"v": 2, "key": {"a": 1}, "name": "a_1"}])]
    with pytest.raises(DbopsError) as err:
        plan([{"name": "m", "indexes": [{"keys": {"a": 1}, "unique": True}]}], live=live)
    assert (
        "reconcile indexes of collection app.m: index a_1: unique live False, declared True" in err.value.msg
    )
    assert "allow_rebuild: true" in err.value.msg


def test_unique_change_with_allow_rebuild_drops_and_creates():
    live = [live_coll("m", [{"v": 2, "key": {"a": 1}, "name": "a_1"}])]
    p = plan([{"name": "m", "indexes": [{"keys": {"a": 1}, "unique": True}]}], live=live, allow_rebuild=True)
    assert p.commands == [
        {"dropIndexes": "m", "index": "a_1"},
        {"createIndexes": "m", "indexes": [{"key": {"a": 1}, "name": "a_1", "unique": True}]},
    ]
    assert p.rebuilt == ["m.a_1"]


def test_key_order_difference_under_the_same_name_needs_rebuild():
    live = [live_coll("m", [{"v": 2, "key": {"b": 1, "a": 1}, "name": "idx"}])]
    with pytest.raises(
        DbopsError, match=r"key live \[\['b', 1\], \['a', 1\]\], declared \[\['a', 1\], \['b', 1\]\]"
    ):
        plan([{"name": "m", "indexes": [{"keys": [["a", 1], ["b", 1]], "name": "idx"}]}], live=live)


def test_removing_a_ttl_needs_rebuild():
    live = [live_coll("m", [{"v": 2, "key": {"t": 1}, "name": "t_1", "expireAfterSeconds": 60}])]
    with pytest.raises(DbopsError, match="expireAfterSeconds live 60, declared None"):
        plan([{"name": "m", "indexes": [{"keys": {"t": 1}}]}], live=live)


def test_same_index_under_other_name_is_refused_or_renamed():
    live = [live_coll("m", [{"v": 2, "key": {"a": 1}, "name": "old"}])]
    with pytest.raises(DbopsError, match="the same index exists as old"):
        plan([{"name": "m", "indexes": [{"keys": {"a": 1}}]}], live=live)
    p = plan([{"name": "m", "indexes": [{"keys": {"a": 1}}]}], live=live, allow_rebuild=True)
    assert p.commands == [
        {"dropIndexes": "m", "index": "old"},
        {"createIndexes": "m", "indexes": [{"key": {"a": 1}, "name": "a_1"}]},
    ]


def test_purge_drops_undeclared_but_never_id_or_clustered():
    live = [
        live_coll("m", [{"v": 2, "key": {"x": 1}, "name": "x_1"}, {"v": 2, "key": {"a": 1}, "name": "a_1"}])
    ]
    declared_a = [{"name": "m", "indexes": [{"keys": {"a": 1}}]}]
    assert plan(declared_a, live=live).commands == []
    assert plan(declared_a, live=live, purge_indexes=True).commands == [{"dropIndexes": "m", "index": "x_1"}]
    clustered = [live_coll("c", [], {"clusteredIndex": {"key": {"_id": 1}, "unique": True}})]
    clustered[0].indexes[0].clustered = True
    assert plan([{"name": "c"}], live=clustered, purge_indexes=True).commands == []


def test_index_state_absent_drops_it():
    live = [live_coll("m", [{"v": 2, "key": {"a": 1}, "name": "a_1"}])]
    p = plan([{"name": "m", "indexes": [{"keys": {"a": 1}, "state": "absent"}]}], live=live)
    assert p.commands == [{"dropIndexes": "m", "index": "a_1"}]
    assert plan([{"name": "m", "indexes": [{"keys": {"b": 1}, "state": "absent"}]}], live=live).commands == []


def test_validator_level_action_changes_in_one_collmod():
    live = [live_coll("m", [], {"validator": {"$jsonSchema": {"required": ["a"]}}})]
    p = plan(
        [
            {
                "name": "m",
                "validator": {"$jsonSchema": {"required": ["b"]}},
                "validation_level": "strict",
                "validation_action": "warn",
            }
        ],
        live=live,
    )
    assert p.commands == [
        {"collMod": "m", "validator": {"$jsonSchema": {"required": ["b"]}}, "validationAction": "warn"}
    ]


def test_immutable_collection_option_difference_fails():
    live = [live_coll("m", [], {})]
    with pytest.raises(DbopsError) as err:
        plan([{"name": "m", "capped": True, "size": 4096}], live=live)
    assert "fixed at creation differ (capped live False, declared True)" in err.value.msg
    live = [live_coll("m", [], {"collation": {"locale": "en", "strength": 3}})]
    with pytest.raises(DbopsError, match="collation"):
        plan([{"name": "m", "collation": {"locale": "en", "strength": 2}}], live=live)


def test_capped_size_and_timeseries_granularity_change_in_place():
    live = [
        live_coll("c", [], {"capped": True, "size": 4096}),
        live_coll(
            "ts",
            [],
            {"timeseries": {"timeField": "t", "granularity": "seconds", "bucketMaxSpanSeconds": 3600}},
            type_="timeseries",
        ),
    ]
    p = plan(
        [
            {"name": "c", "capped": True, "size": 8192},
            {"name": "ts", "timeseries": {"time_field": "t", "granularity": "hours"}},
        ],
        live=live,
    )
    assert p.commands == [
        {"collMod": "c", "cappedSize": 8192},
        {"collMod": "ts", "timeseries": {"granularity": "hours"}},
    ]


def test_collection_absent_drops_only_what_exists():
    p = plan(
        [{"name": "old", "state": "absent"}, {"name": "never", "state": "absent"}], live=[live_coll("old")]
    )
    assert p.commands == [{"drop": "old"}]
    assert p.diffs[0]["after"] is None


# --- views ---------------------------------------------------------------------------------


def test_view_created_after_its_source_and_parent_views():
    p = plan(
        [{"name": "m"}],
        [
            {"name": "v2", "view_on": "v1", "pipeline": [{"$limit": 1}]},
            {"name": "v1", "view_on": "m", "pipeline": [{"$match": {"a": 1}}]},
        ],
    )
    assert p.commands == [
        {"create": "m"},
        {"create": "v1", "viewOn": "m", "pipeline": [{"$match": {"a": 1}}]},
        {"create": "v2", "viewOn": "v1", "pipeline": [{"$limit": 1}]},
    ]


def test_changed_view_is_dropped_first_and_created_last():
    view = s.live_collection(
        {"name": "v", "type": "view", "options": {"viewOn": "m", "pipeline": [{"$match": {"a": 1}}]}}
    )
    live = [live_coll("m"), view]
    same = plan(
        [{"name": "m"}], [{"name": "v", "view_on": "m", "pipeline": [{"$match": {"a": 1}}]}], live=live
    )
    assert same.commands == []
    changed = plan(
        [{"name": "m", "indexes": [{"keys": {"a": 1}}]}],
        [{"name": "v", "view_on": "m", "pipeline": [{"$match": {"a": 2}}]}],
        live=live,
    )
    assert changed.commands == [
        {"drop": "v"},
        {"createIndexes": "m", "indexes": [{"key": {"a": 1}, "name": "a_1"}]},
        {"create": "v", "viewOn": "m", "pipeline": [{"$match": {"a": 2}}]},
    ]


def test_view_over_missing_collection_is_refused():
    with pytest.raises(DbopsError) as err:
        plan([], [{"name": "v", "view_on": "nothing", "pipeline": []}])
    assert err.value.msg == (
        "validate view app.v: view_on nothing is neither declared here nor an existing collection or view"
    )
    # a source declared absent in the same task does not count either
    with pytest.raises(DbopsError, match="view_on m is neither"):
        plan([{"name": "m", "state": "absent"}], [{"name": "v", "view_on": "m"}], live=[live_coll("m")])


def test_name_clash_between_view_and_collection_is_refused():
    view = s.live_collection({"name": "v", "type": "view", "options": {"viewOn": "m", "pipeline": []}})
    with pytest.raises(DbopsError, match="a view of that name exists"):
        plan([{"name": "v"}], live=[view])
    with pytest.raises(DbopsError, match="a collection of that name exists"):
        plan(
            [{"name": "m"}],
            [{"name": "m2", "view_on": "m"}, {"name": "x", "view_on": "m"}],
            live=[live_coll("m"), live_coll("x")],
        )


def test_view_cycle_is_refused():
    with pytest.raises(DbopsError, match="cycle"):
        plan([], [{"name": "a", "view_on": "b"}, {"name": "b", "view_on": "a"}])


# --- execution -----------------------------------------------------------------------------


class FakeDb:
    name = "app"

    def __init__(self, fail_at=None):
        self.ran = []
        self.fail_at = fail_at

    def command(self, cmd):
        if len(self.ran) == self.fail_at:
            raise RuntimeError("boom")
        self.ran.append(cmd)


def test_execute_stops_at_first_failure_and_reports_what_ran():
    cmds = [{"create": "a"}, {"createIndexes": "a", "indexes": []}, {"create": "b"}]
    db = FakeDb(fail_at=1)
    with pytest.raises(DbopsError) as err:
        s.execute(db, cmds, (RuntimeError,))
    assert (
        err.value.msg == "apply schema to app: createIndexes a failed: boom (1 of 3 commands ran before it)"
    )
    assert err.value.details["commands"] == [{"create": "a"}]
    assert db.ran == [{"create": "a"}]
    ok = FakeDb()
    assert s.execute(ok, cmds, (RuntimeError,)) == cmds


def test_view_pipeline_compares_key_order_of_sort_stages():
    view = s.live_collection(
        {"name": "v", "type": "view", "options": {"viewOn": "m", "pipeline": [{"$sort": {"a": 1, "b": -1}}]}}
    )
    live = [live_coll("m"), view]
    same = plan(
        [{"name": "m"}],
        [{"name": "v", "view_on": "m", "pipeline": [{"$sort": {"a": 1, "b": -1.0}}]}],
        live=live,
    )
    assert same.commands == []
    swapped = plan(
        [{"name": "m"}],
        [{"name": "v", "view_on": "m", "pipeline": [{"$sort": {"b": -1, "a": 1}}]}],
        live=live,
    )
    assert swapped.commands == [
        {"drop": "v"},
        {"create": "v", "viewOn": "m", "pipeline": [{"$sort": {"b": -1, "a": 1}}]},
    ]
