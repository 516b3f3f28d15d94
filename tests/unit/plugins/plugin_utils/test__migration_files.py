"""The migrate action plugins' controller side: reading ``src``, the collector pause around the module."""

from __future__ import annotations

import gc
import multiprocessing
import os
import weakref

import pytest
from ansible.errors import AnsibleActionFail
from ansible.executor.process.worker import WorkerProcess

from ansible_collections.dbops.datastores.plugins.plugin_utils import _migration_files
from ansible_collections.dbops.datastores.plugins.plugin_utils._migration_files import (
    collector_paused,
    read_directory,
)


@pytest.fixture
def collector_state():
    was = gc.isenabled()
    yield
    gc.unfreeze()
    if was:
        gc.enable()
    else:
        gc.disable()


class _Node:
    """A syntax-tree node as ansible-core's payload builder leaves them: linked both ways."""

    def __init__(self) -> None:
        self.child = self
        self.parent = self


def _cyclic_garbage() -> weakref.ref:
    node = _Node()
    node.child = _Node()
    node.child.parent = node
    return weakref.ref(node)


@pytest.fixture
def task_worker(monkeypatch):
    """This process seen as an ansible-core task worker (which ends with os._exit after its task)."""
    worker = WorkerProcess.__new__(WorkerProcess)
    monkeypatch.setattr(multiprocessing, "current_process", lambda: worker)
    assert _migration_files.in_task_worker()


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


def test_outside_a_task_worker_the_garbage_of_the_pause_is_collected(collector_state):
    assert not _migration_files.in_task_worker()
    gc.enable()
    with collector_paused():
        tree = _cyclic_garbage()
    assert gc.isenabled()
    assert gc.get_freeze_count() == 0
    gc.collect()
    assert tree() is None


def test_in_a_task_worker_the_garbage_of_the_pause_is_left_to_its_exit(collector_state, task_worker):
    gc.enable()
    with collector_paused():
        tree = _cyclic_garbage()
    assert gc.isenabled()
    gc.collect()
    assert tree() is not None  # frozen, not walked by any collection of the worker
    later = _cyclic_garbage()  # made after the pause (a loop's next item): collected as usual
    gc.collect()
    assert later() is None


def test_in_a_task_worker_a_collector_that_was_off_stays_off(collector_state, task_worker):
    gc.disable()
    with collector_paused():
        pass
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


@pytest.mark.parametrize("suffix", ["", "/", "//"])
def test_read_directory_names_files_relative_to_the_directory_however_it_is_written(tmp_path, suffix):
    for script in ("V1__a.sql", "sub/V2__b.sql", "sub/deeper/V3__c.sql", "s/V4__d.sql"):
        (tmp_path / script).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / script).write_text("SELECT 1;")
    files = read_directory(str(tmp_path) + suffix, ("sql",))
    assert sorted(files) == ["V1__a.sql", "s/V4__d.sql", "sub/V2__b.sql", "sub/deeper/V3__c.sql"]
    assert sorted(files) == sorted(os.path.relpath(path, tmp_path).replace(os.sep, "/")
                                   for path in tmp_path.rglob("*.sql"))


def test_read_directory_names_a_missing_directory(tmp_path):
    with pytest.raises(AnsibleActionFail, match="does not exist"):
        read_directory(str(tmp_path / "missing"), ("sql",))
