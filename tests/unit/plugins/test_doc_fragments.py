"""The backup_connections fragment repeats the engine fragments one level down; they must not drift."""

from __future__ import annotations

import re

import pytest
import yaml

from ansible_collections.dbops.datastores.plugins.doc_fragments import backup_connections, mongodb, postgres


def options(fragment) -> dict:
    return yaml.safe_load(fragment.ModuleDocFragment.DOCUMENTATION)["options"]


@pytest.mark.parametrize(("key", "fragment"), [("postgres", postgres), ("mongodb", mongodb)])
def test_backup_connections_suboptions_equal_the_engine_fragment(key, fragment):
    nested = options(backup_connections)[key]["suboptions"]
    engine = options(fragment)
    assert list(nested) == list(engine)
    for name, doc in engine.items():
        # Option references name the parent in the nested copy: O(postgres.login_host) for O(login_host).
        unnested = yaml.safe_load(re.sub(rf"O\({key}\.", "O(", yaml.safe_dump(nested[name])))
        assert unnested == doc, name
