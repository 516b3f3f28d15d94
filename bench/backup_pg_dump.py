"""pg_backup against raw pg_dump with the same options (goal: ratio <= 1.05, checksums included).

    cd <checkout> && .venv/bin/python -m bench.backup_pg_dump [--size-mb 1000] [--repeat 2]

Starts a throwaway PostgreSQL 15 cluster, generates a database of about --size-mb MB with
generate_series (two tables: narrow rows and wide text rows, plus indexes), then times, in
alternating order, raw ``pg_dump`` and our backup (``_backup_ops.backup``: snapshot export, pg_dump,
exact row counts, sha256 of every file, manifest) for custom format and directory format with
jobs=2. Prints the best time of each and the ratio ours / raw.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / ".build" / "collections")]

from tests.harness import pg as pg_harness  # noqa: E402
from tests.harness.runner import ensure_collection_link  # noqa: E402

ensure_collection_link()

from ansible_collections.dbops.datastores.plugins.module_utils import (  # noqa: E402
    _backup_catalog,
    _pg_backup,
)
from ansible_collections.dbops.datastores.plugins.module_utils import _backup_ops as ops  # noqa: E402

PG_DUMP = str(pg_harness.PG_BINDIR / "pg_dump")


def generate(server, dbname: str, size_mb: int) -> None:
    # About half of the size in narrow rows and half in wide text rows; measured on PostgreSQL 15,
    # with the index this gives pg_database_size() close to size_mb.
    narrow_rows = size_mb * 1024 * 1024 // 2 // 95
    wide_rows = size_mb * 1024 * 1024 // 2 // 525
    server.query("CREATE TABLE events (id bigint PRIMARY KEY, account int, kind smallint,"
                 " amount numeric(12,2), at timestamptz)", dbname=dbname)
    server.query("CREATE TABLE documents (id bigint PRIMARY KEY, title text, body text)", dbname=dbname)
    step = 2_000_000
    for start in range(0, narrow_rows, step):
        stop = min(start + step, narrow_rows)
        server.query(f"INSERT INTO events SELECT g, g % 9973, (g % 7)::smallint, (g % 100000) / 100.0,"
                     f" timestamptz '2026-01-01Z' + g * interval '1 second' FROM generate_series({start + 1},"
                     f" {stop}) g", dbname=dbname)
    for start in range(0, wide_rows, step):
        stop = min(start + step, wide_rows)
        server.query(f"INSERT INTO documents SELECT g, 'title ' || g, repeat(md5(g::text), 9)"
                     f" FROM generate_series({start + 1}, {stop}) g", dbname=dbname)
    server.query("CREATE INDEX ON events (account, at)", dbname=dbname)
    server.query("VACUUM ANALYZE", dbname=dbname)


def raw_dump(server, dbname: str, out: Path, fmt: str, jobs: int) -> None:
    env = dict(os.environ, PGPASSWORD=server.password, PGHOST=server.host, PGPORT=str(server.port),
               PGUSER=server.user)
    cmd = [PG_DUMP, f"--format={fmt}", f"--file={out}"]
    if jobs > 1:
        cmd.append(f"--jobs={jobs}")
    subprocess.run([*cmd, dbname], env=env, check=True)


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def compare(server, dbname: str, work: Path, fmt: str, *, jobs: int, repeat: int) -> tuple[list, list]:
    """Times of raw pg_dump and of our backup, alternating which one runs first."""
    raw_times, our_times = [], []
    options = {"database": dbname, "format": fmt, "jobs": jobs}
    for n in range(repeat):
        out, root = work / f"raw-{fmt}-{n}", work / f"ours-{fmt}-{n}"
        root.mkdir()
        order = ("raw", "ours") if n % 2 == 0 else ("ours", "raw")
        for which in order:
            if which == "raw":
                raw_times.append(timed(lambda out=out: raw_dump(server, dbname, out, fmt, jobs)))
                shutil.rmtree(out, ignore_errors=True) if out.is_dir() else out.unlink()
            else:
                our_times.append(timed(lambda root=root: ops.backup("postgresql", server.params(), str(root),
                                                                    options)))
                shutil.rmtree(root)
    return raw_times, our_times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mb", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    server = pg_harness.start_cluster(settings={"shared_buffers": "256MB", "max_wal_size": "4GB"})
    work = Path(tempfile.mkdtemp(prefix="dbops-bench-pg-"))
    try:
        dbname = server.create_database("bench")
        started = time.perf_counter()
        generate(server, dbname, args.size_mb)
        size = server.query("SELECT pg_database_size(%s)", (dbname,))[0][0]
        print(f"database {size / 1024 / 1024:.0f} MB generated in {time.perf_counter() - started:.0f} s")
        for fmt, jobs in (("custom", 1), ("directory", 2)):
            raw_times, our_times = compare(server, dbname, work, fmt, jobs=jobs, repeat=args.repeat)
            raw, ours = min(raw_times), min(our_times)
            print(f"{fmt:9s} jobs={jobs}: raw pg_dump {raw:7.2f} s   pg_backup {ours:7.2f} s"
                  f"   ratio {ours / raw:.3f}  (goal <= 1.05)")
            print(f"          all runs: raw {', '.join(f'{t:.2f}' for t in raw_times)};"
                  f" pg_backup {', '.join(f'{t:.2f}' for t in our_times)}")
        # The work pg_backup adds to pg_dump, measured on its own: exact row counts (server side,
        # concurrent with pg_dump in a backup) and sha256 of the archive.
        counting = timed(lambda: _pg_backup.counts_in(server.params(), dbname))
        archive = work / "archive"
        archive.mkdir()
        raw_dump(server, dbname, archive / "database.dump", "custom", 1)
        size_mb = (archive / "database.dump").stat().st_size / 1024 / 1024
        hashing = timed(lambda: _backup_catalog.describe_files(str(archive)))
        print(f"added work: row counts {counting:.2f} s (runs while pg_dump runs), sha256 of the"
              f" {size_mb:.0f} MB archive {hashing:.2f} s")
    finally:
        shutil.rmtree(work, ignore_errors=True)
        pg_harness.stop_cluster(server)


if __name__ == "__main__":
    main()
