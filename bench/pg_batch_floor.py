"""How much of the gap to dbmate is the client's round trips: the one-message-per-migration floor
against the same floor sending several migrations per message (each still its own transaction
with its history row), side by side with dbmate.

Run from the repository root::

    env $(bash scripts/bench_peers.sh) .venv/bin/python -m bench.pg_batch_floor

Environment: DBOPS_BENCH_TINY (default 1000), DBOPS_BENCH_REALISTIC (default 300),
DBOPS_BENCH_REPEAT (rounds, best kept, default 3), DBOPS_BENCH_BATCH (migrations per message for
the batched floor, default 50), DBOPS_BENCH_DURABILITY (default ``off``).

An experiment on the batch size: pg_migrate sends up to 50 migrations per message
(``bench.pg_migrate_bench`` runs the same batched floor next to it).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from bench.migration_generator import realistic, tiny
from bench.pg_migrate_bench import Bench, Workload, _load, timed
from tests.harness import pg as pg_harness

BATCH = int(os.environ.get("DBOPS_BENCH_BATCH", "50"))
REPEAT = int(os.environ.get("DBOPS_BENCH_REPEAT", "3"))


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="dbops-bench-batch-"))
    server = pg_harness.start_cluster()
    try:
        bench = Bench(server, work)
        workloads = []
        n_tiny = int(os.environ.get("DBOPS_BENCH_TINY", "1000"))
        n_realistic = int(os.environ.get("DBOPS_BENCH_REALISTIC", "300"))
        if n_tiny:
            workloads.append(Workload("tiny", tiny(n_tiny), work))
        if n_realistic:
            workloads.append(Workload("realistic", realistic(n_realistic), work))
        for mode in [d for d in os.environ.get("DBOPS_BENCH_DURABILITY", "off").split(",") if d]:
            settings = bench.durability(mode)
            for w in workloads:
                print(f"\n== {w.name}: {w.n} migrations, {settings}; load {_load()}", flush=True)
                tools = {"floor, 1 migration per message": bench.floor(w).make,
                         f"floor, {BATCH} migrations per message": bench.floor(w, BATCH).make}
                dbmate = bench.dbmate(w)
                if not isinstance(dbmate, str):
                    tools[dbmate.name] = dbmate.make
                times: dict[str, list[float]] = {name: [] for name in tools}
                for _round in range(REPEAT):
                    for name, make in tools.items():
                        db = server.create_database("batch")
                        times[name].append(timed(make(db)))
                for name, values in times.items():
                    runs = ", ".join(f"{v:.2f}" for v in values)
                    print(f"  {name:<40} best {min(values):7.3f}s  all {runs}  [load {_load()}]", flush=True)
    finally:
        pg_harness.stop_cluster(server)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
