"""pg_migrate with ``src`` and a few MB of SQL: the files travel inside the module's arguments.

Run from the repository root::

    .venv/bin/python -m bench.pg_migrate_big_src

200 files of 100 INSERTs with 200-character strings each (4.7 MB), through ansible-playbook
(local connection): check mode, apply, no-op; prints the wall time of each run.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from pathlib import Path

from tests.harness import pg as h
from tests.harness.runner import AnsibleRunner


def main() -> None:
    s = h.start_cluster()
    w = Path(tempfile.mkdtemp(prefix="dbops-bench-big-"))
    d = w / "m"
    d.mkdir()
    for i in range(1, 201):
        body = "".join(f"INSERT INTO big{i:03d} VALUES ({j}, '{'x' * 200}');\n" for j in range(100))
        (d / f"V{i:03d}__big.sql").write_text(f"CREATE TABLE big{i:03d} (id int, note text);\n" + body)
    size = sum(p.stat().st_size for p in d.iterdir())
    try:
        db = s.create_database("big")
        runner = AnsibleRunner(w / "a")
        book = w / "b.yml"
        book.write_text(json.dumps([{"hosts": "localhost", "gather_facts": False, "tasks": [
            {"name": "m", "dbops.datastores.pg_migrate": {**s.params(login_db=db, ssl_mode="disable"),
                                                          "src": str(d)}}]}]))
        for check in (True, False, False):
            started = time.perf_counter()
            res = runner.playbook(book, check=check)
            elapsed = time.perf_counter() - started
            out = res.task_results()[0]
            print(f"{size / 1e6:.1f} MB in 200 files, check={check}: rc={res.rc} {elapsed:.1f}s wall,"
                  f" changed={out.get('changed')} applied_count={out.get('applied_count')}"
                  f" failed={out.get('failed')}")
    finally:
        h.stop_cluster(s)
        shutil.rmtree(w, ignore_errors=True)


if __name__ == "__main__":
    main()
