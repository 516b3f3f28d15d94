"""The migrate action plugins' controller side: reading ``src``, the collector pause around the module."""

from __future__ import annotations

import gc

import pytest
from ansible.errors import AnsibleActionFail

from ansible_collections.dbops.datastores.plugins.plugin_utils._migration_files import (
    collector_paused,
    read_directory,
)


@pytest.fixture
def collector_state():
    was = gc.isenabled()
    yield
    if was:
        gc.enable()
    else:
        gc.disable()


def test_the_collector_is_paused_inside_and_on_again_after(collector_state):
    gc.enable()
    with collector_paused():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_the_collector_is_on_again_after_an_error(collector_state):
    gc.enable()
    with pytest.raises(RuntimeError), collector_paused():
        raise RuntimeError("module failed")
    assert gc.isenabled()


def test_a_collector_that_was_off_stays_off(collector_state):
    gc.disable()
    with collector_paused():
        assert not gc.isenabled()
    assert not gc.isenabled()


def test_read_directory_keeps_migration_files_only(tmp_path):
    (tmp_path / "V1__a.sql").write_text("SELECT 1;")
    (tmp_path / "notes.txt").write_text("not a migration")
    (tmp_path / ".hidden.sql").write_text("skipped")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "V2__b.SQL").write_bytes(b"\xff\xfe")  # any bytes travel (base64)
    files = read_directory(str(tmp_path), ("sql",))
    assert sorted(files) == ["V1__a.sql", "sub/V2__b.SQL"]
    assert files["V1__a.sql"] == "U0VMRUNUIDE7"


def test_read_directory_names_a_missing_directory(tmp_path):
    with pytest.raises(AnsibleActionFail, match="does not exist"):
        read_directory(str(tmp_path / "missing"), ("sql",))
