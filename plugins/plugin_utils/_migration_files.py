# Copyright: dbops.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller side of pg_migrate / mongodb_migrate: read ``src`` and send the files with the module.

The files of a migration directory on the controller travel inside the module's arguments (one
transfer per task, whatever the file count) instead of being copied to the host one by one. The
module plans from them exactly as from a directory on the host (``path``).
"""

from __future__ import annotations

import base64
import contextlib
import gc
import multiprocessing
import os
from collections.abc import Iterator
from typing import Any

from ansible.errors import AnsibleActionFail
from ansible.executor.process.worker import WorkerProcess
from ansible.plugins.action import ActionBase
from ansible.utils.vars import merge_hash


def read_directory(directory: str, extensions: tuple[str, ...]) -> dict[str, str]:
    """``{script: base64}`` of the files under ``directory`` whose extension is a migration one.

    ``script`` is the path relative to ``directory`` with ``/``; hidden files and directories are
    skipped, as the module skips them when it reads a directory itself.
    """
    if not os.path.isdir(directory):
        what = "does not exist" if not os.path.exists(directory) else "is not a directory"
        raise AnsibleActionFail(f"read migrations in {directory}: the directory {what}")
    exts = tuple(f".{e.lower()}" for e in extensions)
    files: dict[str, str] = {}
    base = len(os.path.join(directory, ""))  # os.walk joins the directories below onto this
    for root, dirs, names in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        prefix = root[base:].replace(os.sep, "/") + "/" if len(root) > base else ""
        for name in sorted(names):
            if name.startswith(".") or not name.lower().endswith(exts):
                continue
            path = os.path.join(root, name)
            script = prefix + name  # os.path.relpath, without its cost (about 5 ms per 1,000 files)
            try:
                with open(path, "rb") as handle:
                    files[script] = base64.b64encode(handle.read()).decode("ascii")
            except OSError as exc:
                raise AnsibleActionFail(f"read migrations in {directory}: {script}: cannot read"
                                        f" ({exc.strerror or exc})") from exc
    return files


def in_task_worker() -> bool:
    """Whether this process is one of ansible-core's task workers.

    ansible-core forks a worker per task and host (``WorkerProcess``); it runs that task (every
    item of its loop) and ends with ``os._exit``, without the interpreter's final collection.
    """
    return isinstance(multiprocessing.current_process(), WorkerProcess)


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector paused while ansible-core builds and runs the module.

    At a module's first use in a play, ansible-core builds its payload by parsing every file it
    ships (ansible's own module_utils and the module's, about 65 for pg_migrate) into syntax
    trees, about 60,000 nodes: enough new objects for the collector to run many times, and each
    full collection walks the whole heap the task's worker process inherited from the controller
    (about 110,000 objects). That was a fifth to a third of pg_migrate's payload build
    (``bench/pg_migrate_costs.py``).

    The trees are cyclic garbage (ansible-core links each import node to its parent), about
    95,000 objects, and the first collection after the pause walked them all: 30 ms more for the
    task. In a task's worker, which ends soon after without a final collection, the collector is
    switched on again with everything alive at that point frozen (``gc.freeze``, as for objects a
    process keeps until it ends): the trees are left to the worker's exit, and the rest of the
    task (a loop's next items) is collected as usual. Anywhere else the collector's state is only
    restored.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            if in_task_worker():
                gc.freeze()
            gc.enable()


class MigrationAction(ActionBase):
    """Runs the module named by ``MODULE``; with ``src`` it first reads the files on the controller.

    Otherwise it behaves as ``ansible.builtin.normal`` (check mode, async, module_defaults of the
    action groups, which ansible-core merges into the task's arguments before the plugin runs).
    """

    MODULE = ""
    EXTENSIONS: tuple[str, ...] = ()
    TRANSFERS_FILES = False
    _supports_check_mode = True
    _supports_async = True

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        result = super().run(tmp, task_vars)
        del tmp
        args = dict(self._task.args)
        if "files" in args:
            raise AnsibleActionFail("files is set by the action plugin from src; set src or path instead")
        src = args.get("src")
        if src not in (None, "") and args.get("path") in (None, ""):
            directory = self._find_needle("files", str(src))
            args["src"] = directory
            args["files"] = read_directory(directory, self.EXTENSIONS)
        wrap_async = bool(self._task.async_val) and not self._connection.has_native_async
        with collector_paused():
            returned = self._execute_module(module_name=self.MODULE, module_args=args, task_vars=task_vars,
                                            wrap_async=wrap_async)
        result = merge_hash(result, returned)
        if not wrap_async:
            self._remove_tmp_path(self._connection._shell.tmpdir)
        return result
