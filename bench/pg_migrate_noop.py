"""pg_migrate's no-op cost through ansible-playbook, with ``path`` (files on the host) and ``src``.

Run from the repository root::

    .venv/bin/python -m bench.pg_migrate_noop

Applies DBOPS_BENCH_TINY (default 1000) tiny migrations, then runs one play: a warm-up ``ping``
(interpreter discovery), then three rounds of ``ping``, ``pg_migrate path=`` and
``pg_migrate src=``, all no-op; prints each task's duration (json callback) and the module time
(pg_migrate task - the ping task of the same round).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from datetime import datetime
from pathlib import Path

from bench.migration_generator import tiny
from tests.harness import pg as pg_harness
from tests.harness.runner import AnsibleRunner

N = int(os.environ.get("DBOPS_BENCH_TINY", "1000"))


def seconds(duration: dict[str, str]) -> float:
    start, end = (datetime.fromisoformat(duration[k].replace("Z", "+00:00")) for k in ("start", "end"))
    return (end - start).total_seconds()


def main() -> None:
    server = pg_harness.start_cluster()
    work = Path(tempfile.mkdtemp(prefix="dbops-bench-noop-"))
    files = work / "migrations"
    files.mkdir()
    for i, (up, _down) in enumerate(tiny(N), 1):
        (files / f"V{i:04d}__m.sql").write_text(up)
    load = os.getloadavg()
    print(f"{N} applied migrations; load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")
    try:
        params = server.params(login_db=server.create_database("noop"), ssl_mode="disable")
        tasks = [{"name": "warm-up", "ansible.builtin.ping": {}}]
        for k in range(3):
            tasks += [{"name": f"ping {k}", "ansible.builtin.ping": {}},
                      {"name": f"path {k}", "dbops.datastores.pg_migrate": {**params, "path": str(files)}},
                      {"name": f"src {k}", "dbops.datastores.pg_migrate": {**params, "src": str(files)}}]
        book = work / "noop.yml"
        book.write_text(json.dumps([{"hosts": "localhost", "gather_facts": False, "tasks": tasks}]))
        runner = AnsibleRunner(work / "ansible")
        for _run in ("apply", "no-op"):
            result = runner.playbook(book)
            if result.rc != 0 or result.data is None:
                raise RuntimeError(f"ansible-playbook failed: {result.stdout[-3000:]}")
        took = {t["task"]["name"]: seconds(t["task"]["duration"]) for t in result.data["plays"][0]["tasks"]}
        for k in range(3):
            ping, path, src = took[f"ping {k}"], took[f"path {k}"], took[f"src {k}"]
            print(f"round {k}: ping {ping:.3f}s; path {path:.3f}s (module {path - ping:.3f}s);"
                  f" src {src:.3f}s (module {src - ping:.3f}s)")
    finally:
        pg_harness.stop_cluster(server)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
