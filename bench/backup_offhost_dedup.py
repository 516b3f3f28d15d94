"""Off-host copy of the next day's logical backup after 1 % of the rows changed: bytes restic adds
to the repository (its ``data_added``) against the backup's size (goal: <= 0.2x).

    cd <checkout> && .venv/bin/python -m bench.backup_offhost_dedup [--size-mb 200]

Starts a throwaway PostgreSQL 15 cluster, generates a database of about --size-mb MB (the
generator of bench/backup_pg_dump.py), and for each dump variant: takes a backup with our code
(``_backup_ops.backup``), copies it with our code (``_backup_offhost.copy_missing``) into a fresh
local restic repository, updates 1 % of the rows of both tables, takes the next backup and copies
it. Prints, for that second copy, the bytes added against the backup's size. Custom format with
pg_dump's default compression and without compression, and directory format without compression,
show what compression does to restic's content-defined deduplication.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / ".build" / "collections")]

from bench.backup_pg_dump import generate  # noqa: E402
from tests.harness import pg as pg_harness  # noqa: E402
from tests.harness.runner import ensure_collection_link  # noqa: E402

ensure_collection_link()

from ansible_collections.dbops.datastores.plugins.module_utils import _backup_cli as cli  # noqa: E402
from ansible_collections.dbops.datastores.plugins.module_utils import _backup_offhost  # noqa: E402
from ansible_collections.dbops.datastores.plugins.module_utils import _backup_ops as ops  # noqa: E402

VARIANTS = (("custom", None), ("custom", 0), ("directory", 0))


def change_one_percent(server, dbname: str, day: int) -> None:
    server.query(f"UPDATE events SET amount = amount + {day} WHERE id % 100 = {day}", dbname=dbname)
    server.query(f"UPDATE documents SET title = title || ' v{day}' WHERE id % 100 = {day}", dbname=dbname)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mb", type=int, default=200)
    args = parser.parse_args()
    server = pg_harness.start_cluster(settings={"shared_buffers": "256MB", "max_wal_size": "4GB"})
    work = Path(tempfile.mkdtemp(prefix="dbops-bench-offhost-"))
    try:
        dbname = server.create_database("bench")
        started = time.perf_counter()
        generate(server, dbname, args.size_mb)
        size = server.query("SELECT pg_database_size(%s)", (dbname,))[0][0]
        print(f"database {size / 1024 / 1024:.0f} MB generated in {time.perf_counter() - started:.0f} s")
        password = work / "password"
        password.write_text("bench\n")
        for n, (fmt, compression) in enumerate(VARIANTS):
            root, repo = work / f"root-{n}", work / f"repo-{n}"
            root.mkdir()
            job = {"engine": "postgresql", "database": dbname, "format": fmt}
            if compression is not None:
                job["compression"] = compression
            options = {k: v for k, v in cli.check_job(job, "bench").items()
                       if k not in ("engine", "min_interval")}
            settings = cli.check_offhost({"repository": str(repo), "password_file": str(password)}, None,
                                         "bench")
            copies = []
            for day in (1, 2):
                if day == 2:
                    change_one_percent(server, dbname, day)
                ops.backup("postgresql", server.params(), str(root), options)
                t0 = time.perf_counter()
                result = _backup_offhost.copy_missing(str(root), settings)
                copies.append((result["copied"][0], time.perf_counter() - t0))
            (first, t_first), (second, t_second) = copies
            label = f"{fmt} compression={'default' if compression is None else compression}"
            print(f"{label:32s} day 1: backup {first['size'] / 1e6:7.1f} MB,"
                  f" added {first['bytes_added'] / 1e6:7.1f} MB"
                  f" ({t_first:.1f} s) | day 2 after 1 % changed: backup {second['size'] / 1e6:7.1f} MB,"
                  f" added {second['bytes_added'] / 1e6:6.2f} MB ({t_second:.1f} s)"
                  f"  ratio {second['bytes_added'] / second['size']:.3f} (goal <= 0.2)")
    finally:
        shutil.rmtree(work, ignore_errors=True)
        pg_harness.stop_cluster(server)


if __name__ == "__main__":
    main()
