"""Where pg_migrate's time goes beside what it replaces: each part measured next to its baseline.

Run from the repository root (after ``make setup``)::

    .venv/bin/python -m bench.pg_migrate_costs

``bench.pg_migrate_bench`` compares whole runs; this one takes a run apart, so that a ratio there
can be explained here. Every part runs its baseline and pg_migrate's own code in the same process
and round, keeps the best of ``DBOPS_BENCH_REPEAT`` (default 7), checks that both did the same
work, and prints the ratio:

1. *payload build at a module's first use in a play* (controller): ansible-core's
   ``modify_module`` for ``ansible.builtin.ping`` (what any Python module costs: ansible's own
   module_utils, parsed again for each module) and for ``dbops.datastores.pg_migrate``, each with
   an empty AnsiBallZ cache; pg_migrate's with Python's garbage collector on, and paused as its
   action plugin pauses it (``collector_paused``); then the first collection once the collector
   is on again after the paused build (the syntax trees' garbage), with the collector's state only
   restored against restored as in a task's worker (everything alive frozen first);
2. *import on the host*: in a fresh interpreter, from a copy of the code without bytecode (the
   payload holds none), ``ansible.module_utils.basic`` (every module), psycopg2, then pg_migrate's
   own code;
3. *per migration on the server*: 1,000 transactions of one trivial statement, 50 per message,
   wrapped as the floor of ``bench.pg_migrate_bench`` wraps a migration (``BEGIN; ...; INSERT
   history; COMMIT``) and as pg_migrate wraps one (built by its own functions: the ``LOCK`` of the
   history table, the batch guard, its history row); then pg_migrate's wrapper without the guard
   and without the ``LOCK``, to show what each costs;
4. *per migration on the client*: reading, planning and checking the workloads of
   ``bench.pg_migrate_bench`` (``discover``, ``plan``, ``prepare_all``; the statement splitter
   alone beside them), in microseconds per migration; then the action plugin's read of ``src``
   (1,000 tiny files) against the same walk naming each file with ``os.path.relpath``;
5. *the module process's end on the host*: from the copy of part 2, the time from the call of
   ``exit_json`` to the process's exit, ansible-core's ``AnsibleModule`` against the collection's
   (which freeze the heap first): pg_migrate with the realistic workload's files shipped and
   planned (``MigrateModule``), and a small module, pg_ping's options with psycopg2 imported
   (``DbopsModule``, what every other module of the collection uses).
"""

from __future__ import annotations

import base64
import contextlib
import functools
import gc
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from bench.migration_generator import realistic, tiny
from bench.pg_migrate_bench import timed
from tests.harness import pg as pg_harness
from tests.harness.runner import COLLECTIONS_PATH, REPO_ROOT, ensure_collection_link

REPEAT = int(os.environ.get("DBOPS_BENCH_REPEAT", "7"))
SERVER_N = 1000
BATCH = 50


def best(fn: Callable[[], object], repeat: int = REPEAT) -> float:
    return min(timed(fn) for _attempt in range(repeat))


def ms(seconds: float) -> str:
    return f"{seconds * 1000:7.1f} ms"


# ---------------------------------------------------------------- 1. payload build


def payload_builds() -> None:
    os.environ["ANSIBLE_COLLECTIONS_PATH"] = str(COLLECTIONS_PATH)
    local_tmp = Path(tempfile.mkdtemp(prefix="dbops-bench-build-"))
    os.environ["ANSIBLE_LOCAL_TEMP"] = str(local_tmp)
    import ansible.executor.task_executor  # noqa: F401 - the heap of a worker holds it too
    from ansible import constants as C
    from ansible.executor.module_common import modify_module
    from ansible.parsing.dataloader import DataLoader
    from ansible.plugins.loader import init_plugin_loader, module_loader
    from ansible.template import Templar

    init_plugin_loader([str(COLLECTIONS_PATH)])
    from ansible_collections.dbops.datastores.plugins.plugin_utils._migration_files import collector_paused
    templar = Templar(loader=DataLoader())
    sizes: dict[str, int] = {}

    def build(name: str, paused: bool = False) -> Callable[[], object]:
        path = module_loader.find_plugin_with_context(name).plugin_resolved_path

        def run() -> None:
            shutil.rmtree(C.DEFAULT_LOCAL_TMP, ignore_errors=True)  # the AnsiBallZ cache of this process
            with collector_paused() if paused else contextlib.nullcontext():
                built = modify_module(module_name=name, module_path=path, module_args={}, templar=templar,
                                      task_vars={"ansible_python_interpreter": sys.executable},
                                      module_compression="ZIP_DEFLATED")
            sizes[name] = len(built.b_module_data)
        return run

    builds = {"ansible.builtin.ping": build("ansible.builtin.ping"),
              "dbops.datastores.pg_migrate, collector on": build("dbops.datastores.pg_migrate"),
              "dbops.datastores.pg_migrate, collector paused (its action plugin)":
                  build("dbops.datastores.pg_migrate", paused=True)}
    took = {name: float("inf") for name in builds}
    for _round in range(REPEAT):  # alternating, so all see the same machine
        for name, run in builds.items():
            took[name] = min(took[name], timed(run))
    ping = took["ansible.builtin.ping"]
    print("1. payload build at a module's first use in a play (controller, best of"
          f" {REPEAT}, alternating; {len(gc.get_objects())} objects in this process's heap)")
    for name, seconds in took.items():
        print(f"   {name:66s} {ms(seconds)} ({seconds / ping:.2f}x ping's)")
    print(f"   payload sizes: ping {sizes['ansible.builtin.ping']} bytes, pg_migrate"
          f" {sizes['dbops.datastores.pg_migrate']} bytes")
    first_collection(builds["dbops.datastores.pg_migrate, collector paused (its action plugin)"])
    shutil.rmtree(local_tmp, ignore_errors=True)


def _collected() -> int:
    return sum(generation["collected"] for generation in gc.get_stats())


def first_collection(paused_build: Callable[[], object]) -> None:
    """The first collection after the paused build: restored only, and as in a task's worker.

    Timed by ``gc.callbacks``: every collection from the build's start (none while paused) to an
    explicit young-generation one after it (which the next allocations would start anyway).
    """
    from ansible_collections.dbops.datastores.plugins.plugin_utils import _migration_files

    took = {False: float("inf"), True: float("inf")}
    collected: dict[bool, set[int]] = {False: set(), True: set()}
    clock = {"start": 0.0, "spent": 0.0}

    def timer(phase: str, _info: dict[str, int]) -> None:
        if phase == "start":
            clock["start"] = time.perf_counter()
        else:
            clock["spent"] += time.perf_counter() - clock["start"]

    real = _migration_files.in_task_worker
    gc.callbacks.append(timer)
    try:
        for _round in range(REPEAT):
            for worker in (False, True):
                _migration_files.in_task_worker = functools.partial(bool, worker)
                gc.collect()
                gc.enable()
                before = _collected()
                clock["spent"] = 0.0
                paused_build()  # under collector_paused(), which calls in_task_worker() at its end
                gc.collect(0)
                took[worker] = min(took[worker], clock["spent"])
                collected[worker].add(_collected() - before)
                gc.unfreeze()
    finally:
        gc.callbacks.remove(timer)
        _migration_files.in_task_worker = real
    if min(collected[False]) < 10_000 or max(collected[True]) > 1_000:
        raise RuntimeError(f"the collections did not find what this part measures: {collected}")
    print("   first collection after the paused build (a young-generation one)")
    print(f"     collector's state restored only         {ms(took[False])}"
          f" ({min(collected[False])} objects collected)")
    print(f"     as in a task's worker (frozen, restored) {ms(took[True])}"
          f" ({max(collected[True])} objects collected)")


# ---------------------------------------------------------------- 2. import on the host

_IMPORTS = """
import sys, time
sys.path.insert(0, sys.argv[1])
t0 = time.perf_counter()
import ansible.module_utils.basic
t1 = time.perf_counter()
import psycopg2, psycopg2.extensions
t2 = time.perf_counter()
from ansible_collections.dbops.datastores.plugins.modules import pg_migrate
t3 = time.perf_counter()
print(t1 - t0, t2 - t1, t3 - t2)
"""


@contextlib.contextmanager
def code_copy() -> Iterator[Path]:
    """A copy of the collection's plugins without bytecode, as the payload ships them."""
    copy = Path(tempfile.mkdtemp(prefix="dbops-bench-import-"))
    target = copy / "ansible_collections" / "dbops" / "datastores"
    shutil.copytree(REPO_ROOT / "plugins", target / "plugins",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    try:
        yield copy
    finally:
        shutil.rmtree(copy, ignore_errors=True)


NO_BYTECODE = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")


def imports() -> None:
    runs = []
    with code_copy() as copy:
        for _round in range(REPEAT):
            out = subprocess.run([sys.executable, "-B", "-c", _IMPORTS, str(copy)], check=True,
                                 capture_output=True, text=True, env=NO_BYTECODE).stdout.split()
            runs.append([float(v) for v in out])
    basic, driver, ours = (min(r[i] for r in runs) for i in range(3))
    print(f"\n2. import on the host (fresh interpreter, no bytecode, best of {REPEAT})")
    print(f"   ansible.module_utils.basic (every module) {ms(basic)}")
    print(f"   psycopg2                                  {ms(driver)}")
    print(f"   pg_migrate's own code                     {ms(ours)}")


# ---------------------------------------------------------------- 3. per migration on the server


def _send(cur: Any, messages: list[str]) -> None:
    for message in messages:
        cur.execute(message)


def _recorded(cur: Any, table: str) -> int:
    """History rows in both the floor's table and pg_migrate's."""
    cur.execute(f"SELECT (SELECT count(*) FROM floor_history) + (SELECT count(*) FROM {table})")
    return int(cur.fetchone()[0])


def server_wrappers(server: pg_harness.PgServer) -> None:
    from ansible_collections.dbops.datastores.plugins.module_utils import _migrations as mig
    from ansible_collections.dbops.datastores.plugins.module_utils import _pg_migrate as pm
    from ansible_collections.dbops.datastores.plugins.module_utils import _pg_script

    db = server.create_database("costs")
    conn = server.connect(db)
    lock = server.connect(db)
    settings = pm.Settings.from_params(server.params(login_db=db, path="/nonexistent"))
    table = pm.history_ident(settings)
    with conn.cursor() as cur, lock.cursor() as lk:
        cur.execute(pm.history_ddl(settings))
        cur.execute("CREATE TABLE floor_history (version int PRIMARY KEY, checksum text NOT NULL,"
                    " installed_on timestamptz NOT NULL DEFAULT now())")
        lk.execute("SELECT pg_try_advisory_lock(%s, pg_backend_pid())", (pm.RUN_LOCK_CLASS_ID,))
    migrator = pm.Migrator({}, settings)
    guard = pm.lock_guard(lock.get_backend_pid())
    statement = _pg_script.split("SELECT 1;", "bench")
    lock_line = f"LOCK TABLE {table} IN SHARE ROW EXCLUSIVE MODE;\n"
    counter = [0]

    def floor() -> list[str]:
        parts = []
        with conn.cursor() as cur:
            for _migration in range(SERVER_N):
                counter[0] += 1
                insert = cur.mogrify("INSERT INTO floor_history (version, checksum) VALUES (%s, %s)",
                                     (counter[0], "0" * 64)).decode()
                parts.append(f"BEGIN;\nSELECT 1;\n;{insert}; COMMIT;")
        return parts

    def ours(with_guard: bool = True, with_lock: bool = True) -> list[str]:
        parts = []
        with conn.cursor() as cur:
            for _migration in range(SERVER_N):
                counter[0] += 1
                step = mig.Step(mig.ACTION_APPLY, mig.parse_version(str(counter[0])), "m",
                                f"V{counter[0]}__m.sql", "0" * 64)
                insert = migrator._insert_sql(cur, step, mig.KIND_VERSIONED, True,
                                              pm._SINCE_STARTED if with_guard else "0")
                text = pm.transaction_message(table, statement, insert,
                                              guard=guard if with_guard else "").text
                if not with_lock:
                    if lock_line not in text:
                        raise RuntimeError(f"no {lock_line.strip()!r} in pg_migrate's message to leave out")
                    text = text.replace(lock_line, "", 1)
                parts.append(text)
        return parts

    floor_name = "floor (BEGIN; statement; INSERT history; COMMIT)"
    variants: dict[str, Callable[[], list[str]]] = {
        floor_name: floor,
        "pg_migrate (+ LOCK history, batch guard, its history row)": ours,
        "pg_migrate without the batch guard": lambda: ours(with_guard=False),
        "pg_migrate without the LOCK": lambda: ours(with_lock=False),
    }
    took = {name: float("inf") for name in variants}
    with conn.cursor() as cur:
        for _round in range(REPEAT):
            for name, make in variants.items():
                parts = make()
                messages = ["\n".join(parts[i:i + BATCH]) for i in range(0, len(parts), BATCH)]
                before = _recorded(cur, table)
                took[name] = min(took[name], timed(functools.partial(_send, cur, messages)))
                if _recorded(cur, table) - before != SERVER_N:
                    raise RuntimeError(f"{name}: did not record {SERVER_N} transactions")
    conn.close()
    lock.close()
    print(f"\n3. per migration on the server: {SERVER_N} transactions of one trivial statement,"
          f" {BATCH} per message, each recorded (checked), best of {REPEAT}")
    base = took[floor_name]
    for name, seconds in took.items():
        print(f"   {name:58s} {seconds * 1e6 / SERVER_N:6.0f} us per migration ({seconds / base:.2f}x)")


# ---------------------------------------------------------------- 4. per migration on the client


def client_parts(name: str, contents: dict[str, bytes]) -> list[tuple[str, float]]:
    """Seconds per migration of each client step on one workload (each checked to do all of it)."""
    from ansible_collections.dbops.datastores.plugins.module_utils import _migrations as mig
    from ansible_collections.dbops.datastores.plugins.module_utils import _pg_migrate as pm
    from ansible_collections.dbops.datastores.plugins.module_utils import _pg_script

    n = len(contents)
    settings = pm.Settings.from_params({"path": "/nonexistent"})
    found = mig.discover("/nonexistent", pm.EXTENSIONS, contents=contents)
    planned = mig.plan(found, [], settings.plan_options())
    if len(planned.steps) != n or len(pm.prepare_all(planned.steps, settings.placeholders, found)) != n:
        raise RuntimeError(f"{name}: not every migration was planned and prepared")

    def split() -> None:
        for script, data in contents.items():
            _pg_script.split(data.decode(), script)

    return [
        ("discover (read names, checksums)",
         best(lambda: mig.discover("/nonexistent", pm.EXTENSIONS, contents=contents)) / n),
        ("plan", best(lambda: mig.plan(found, [], settings.plan_options())) / n),
        ("prepare_all (placeholders, directives, split, checks)",
         best(lambda: pm.prepare_all(planned.steps, settings.placeholders, found)) / n),
        ("  of which the statement splitter", best(split) / n),
    ]


def _read_directory_relpath(directory: str, extensions: tuple[str, ...]) -> dict[str, str]:
    """The baseline of read_directory: the same walk, each name from ``os.path.relpath`` (as it was
    before commit a9ffce7)."""
    exts = tuple(f".{e.lower()}" for e in extensions)
    files: dict[str, str] = {}
    for root, dirs, names in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(names):
            if name.startswith(".") or not name.lower().endswith(exts):
                continue
            path = os.path.join(root, name)
            with open(path, "rb") as handle:
                files[os.path.relpath(path, directory).replace(os.sep, "/")] = (
                    base64.b64encode(handle.read()).decode("ascii"))
    return files


def read_src() -> None:
    """The action plugin's read of ``src`` on the controller (1,000 tiny files) against the baseline."""
    from ansible_collections.dbops.datastores.plugins.module_utils._migration_extensions import PG_EXTENSIONS
    from ansible_collections.dbops.datastores.plugins.plugin_utils._migration_files import read_directory

    with tempfile.TemporaryDirectory(prefix="dbops-bench-src-") as directory:
        for i, (up, _down) in enumerate(tiny(1000), 1):
            Path(directory, f"V{i:04d}__m.sql").write_text(up)
        if read_directory(directory, PG_EXTENSIONS) != _read_directory_relpath(directory, PG_EXTENSIONS):
            raise RuntimeError("read_directory and its baseline read different files")
        base = best(lambda: _read_directory_relpath(directory, PG_EXTENSIONS))
        ours = best(lambda: read_directory(directory, PG_EXTENSIONS))
    print("   reading src on the controller, 1000 tiny files (same files read, checked)")
    print(f"     {'os.path.relpath for each name (baseline)':55s} {ms(base)} (1.00x)")
    print(f"     {'read_directory':55s} {ms(ours)} ({ours / base:.2f}x)")


def client_work() -> None:
    print(f"\n4. per migration on the client (in-process, best of {REPEAT})")
    for name, migrations in (("tiny", tiny(1000)), ("realistic", realistic(300))):
        contents = {f"V{i:04d}__m.sql": up.encode() for i, (up, _down) in enumerate(migrations, 1)}
        parts = client_parts(name, contents)
        total = sum(seconds for label, seconds in parts if not label.startswith(" "))
        print(f"   {name}, {len(contents)} migrations: {total * 1e6:.0f} us per migration")
        for label, seconds in parts:
            print(f"     {label:55s} {seconds * 1e6:6.0f} us")
    read_src()


# ---------------------------------------------------------------- 5. the module process's end

_END = """
import json, sys, time
sys.path.insert(0, sys.argv[1])
from ansible.module_utils import basic
from ansible_collections.dbops.datastores.plugins.module_utils import _migrations as mig
from ansible_collections.dbops.datastores.plugins.module_utils import _pg_migrate as pm
from ansible_collections.dbops.datastores.plugins.module_utils._migrate_module import MigrateModule
from ansible_collections.dbops.datastores.plugins.modules import pg_migrate
with open(sys.argv[3]) as handle:
    args = json.load(handle)
basic._ANSIBLE_ARGS = json.dumps({"ANSIBLE_MODULE_ARGS": args}).encode()
basic._ANSIBLE_PROFILE = "legacy"
cls = MigrateModule if sys.argv[2] == "MigrateModule" else basic.AnsibleModule
module = cls(argument_spec=pg_migrate.argument_spec(), supports_check_mode=True)
found = mig.discover("/bench", pm.EXTENSIONS, contents=mig.shipped_contents(module.params["files"], "/bench"))
planned = mig.plan(found, [], pm.Settings.from_params(module.params).plan_options())
sys.stderr.write(f"{time.monotonic()}\\n")
sys.stderr.flush()
module.exit_json(changed=False, pending=len(planned.steps))
"""

_END_SMALL = """
import json, sys, time
sys.path.insert(0, sys.argv[1])
import psycopg2
from ansible.module_utils import basic
from ansible_collections.dbops.datastores.plugins.module_utils import _postgres
from ansible_collections.dbops.datastores.plugins.module_utils._module import DbopsModule
basic._ANSIBLE_ARGS = json.dumps({"ANSIBLE_MODULE_ARGS": {"login_db": "app"}}).encode()
basic._ANSIBLE_PROFILE = "legacy"
cls = DbopsModule if sys.argv[2] == "DbopsModule" else basic.AnsibleModule
module = cls(argument_spec=_postgres.pg_argument_spec(), supports_check_mode=True)
sys.stderr.write(f"{time.monotonic()}\\n")
sys.stderr.flush()
module.exit_json(changed=False, pending=0, driver=psycopg2.__name__)
"""


def _ends(copy: Path, script: str, classes: tuple[str, str], args: Path) -> tuple[dict[str, float], int]:
    """Best time from ``exit_json`` to the exit for each class; the one result all processes wrote."""
    took = dict.fromkeys(classes, float("inf"))
    results: set[str] = set()  # the result each process wrote: one for all
    for _round in range(REPEAT):
        for name in classes:
            proc = subprocess.Popen([sys.executable, "-B", "-c", script, str(copy), name, str(args)],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                    env=NO_BYTECODE)
            called = proc.stderr.readline() if proc.stderr else ""
            out, err = proc.communicate()
            ended = time.monotonic()
            if proc.returncode != 0 or not called:
                raise RuntimeError(f"{name}: the module process failed: {called}{err}")
            took[name] = min(took[name], ended - float(called))
            results.add(out)
    if len(results) != 1:
        raise RuntimeError(f"the two ends wrote different results: {results}")
    return took, json.loads(results.pop())["pending"]


def host_end() -> None:
    """From ``exit_json`` to the process's exit: pg_migrate with the realistic workload shipped and
    planned, and a small module."""
    files = {f"V{i:04d}__m.sql": base64.b64encode(up.encode()).decode()
             for i, (up, _down) in enumerate(realistic(300), 1)}
    with code_copy() as copy:
        args = copy / "args.json"
        # no_log: AnsibleModule would log every file's content to this machine's journal
        args.write_text(json.dumps({"src": "/bench", "files": files, "login_db": "app",
                                    "_ansible_no_log": True}))
        migrate, pending = _ends(copy, _END, ("AnsibleModule", "MigrateModule"), args)
        small, small_pending = _ends(copy, _END_SMALL, ("AnsibleModule", "DbopsModule"), args)
    if small_pending != 0:
        raise RuntimeError(f"the small module wrote pending={small_pending}, not 0")
    print(f"\n5. the module process's end on the host (exit_json to exit, best of {REPEAT})")
    for label, took in ((f"pg_migrate, {pending} migrations shipped and planned", migrate),
                        ("a small module (pg_ping's options, psycopg2 imported)", small)):
        print(f"   {label}")
        base = took["AnsibleModule"]
        for name, seconds in took.items():
            print(f"     {name + '.exit_json':38s} {ms(seconds)} ({seconds / base:.2f}x)")


def main() -> None:
    ensure_collection_link()
    if str(COLLECTIONS_PATH) not in sys.path:
        sys.path.insert(0, str(COLLECTIONS_PATH))
    load = os.getloadavg()
    print(f"pg_migrate costs; load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f};"
          f" {os.cpu_count()} CPUs\n")
    payload_builds()
    imports()
    server = pg_harness.start_cluster()
    try:
        server_wrappers(server)
    finally:
        pg_harness.stop_cluster(server)
    client_work()
    host_end()
    load = os.getloadavg()
    print(f"\nload average at the end {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")


if __name__ == "__main__":
    main()
