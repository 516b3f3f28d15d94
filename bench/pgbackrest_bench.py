"""pgBackRest against the PostgreSQL tools, side by side in one run.

    cd <checkout> && .venv/bin/python -m bench.pgbackrest_bench [--size-mb 1000] [--repeat 2]

Starts a throwaway PostgreSQL 15 cluster archiving into an encrypted (aes-256-cbc) local pgBackRest
repository (tests/harness/pgbackrest.py), generates a database of about --size-mb MB (bench.backup_pg_dump's
generator), then measures:

1. full backup: ``pg_basebackup -Ft -z`` (gzip, its default level 6) vs ``pgbackrest backup
   --type=full`` with compress-type=gz, compress-level=6, process-max=2 (goal <= 1.0x), alternating,
   best of --repeat; both copy the cluster's files without WAL (``-X none``: pgBackRest relies on the
   archive too) and must agree on their size within 5 %;
2. incremental after changing 1 % of the rows vs that full (goal <= 0.1x), for 1 % of rows that sit
   together (the newest ids: how data usually changes) and for 1 % spread evenly (every 100th row:
   nearly every page changes, the worst case for page-level increments);
3. time to a running cluster: pg_pitr_drill's code path (pgbackrest restore to the end of WAL,
   start, recovery, accepting connections) vs ``pg_restore -j 2`` of a ``pg_dump -Fc`` of the
   database into a new database (goal: PITR <= 0.5x); each checks the row counts of both tables.

Every step runs as the cluster's user (``nobody`` when run as root). Prints the times and ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / ".build" / "collections")]

from bench.backup_pg_dump import generate  # noqa: E402
from tests.harness import pg as pg_harness  # noqa: E402
from tests.harness import pgbackrest as pgbr_harness  # noqa: E402
from tests.harness.runner import COLLECTIONS_PATH, ensure_collection_link  # noqa: E402

ensure_collection_link()


def as_user(stanza: pgbr_harness.PgbrStanza) -> dict[str, Any]:
    return {"user": stanza.user} if stanza.user else {}


def run(stanza: pgbr_harness.PgbrStanza, argv: list[str],
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(argv, check=False, capture_output=True, text=True, env=env or stanza.env(),
                            cwd=stanza.base, **as_user(stanza))
    if result.returncode != 0:
        raise RuntimeError(f"{argv[0]} failed: {result.stderr}")
    return result


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def tar_gz_uncompressed(path: Path) -> int:
    out = subprocess.run(["gzip", "-l", str(path)], check=True, capture_output=True, text=True).stdout
    return int(out.splitlines()[1].split()[1])


def basebackup(stanza: pgbr_harness.PgbrStanza, work: Path) -> tuple[float, int, int]:
    """Seconds, compressed bytes, uncompressed bytes of a pg_basebackup -Ft -z."""
    target = work / "basebackup"
    shutil.rmtree(target, ignore_errors=True)
    server = stanza.server
    seconds = timed(lambda: run(stanza, [str(stanza.bindir / "pg_basebackup"), "-h", server.host,
                                         "-p", str(server.port), "-U", "postgres", "-D", str(target),
                                         "-Ft", "-z", "-c", "fast", "-X", "none"]))
    files = list(target.glob("*.tar.gz"))
    compressed = sum(f.stat().st_size for f in files)
    uncompressed = sum(tar_gz_uncompressed(f) for f in files)
    shutil.rmtree(target, ignore_errors=True)
    return seconds, compressed, uncompressed


def newest_backup(stanza: pgbr_harness.PgbrStanza) -> dict[str, Any]:
    info = json.loads(stanza.run("info", "--output=json").stdout)[0]
    return info["backup"][-1]


def pgbackrest_backup(stanza: pgbr_harness.PgbrStanza, kind: str) -> tuple[float, dict[str, Any]]:
    seconds = timed(lambda: stanza.backup(kind))
    backup = newest_backup(stanza)
    assert backup["type"] == kind and not backup["error"], backup
    return seconds, backup


def cluster_size(stanza: pgbr_harness.PgbrStanza) -> int:
    return int(stanza.server.query("SELECT sum(pg_database_size(oid))::bigint FROM pg_database")[0][0])


def counts(server: pg_harness.PgServer, dbname: str) -> tuple[int, int]:
    row = server.query("SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM documents)",
                       dbname=dbname)[0]
    return int(row[0]), int(row[1])


def drill(stanza: pgbr_harness.PgbrStanza, expected: tuple[int, int]) -> dict[str, Any]:
    """pg_pitr_drill's code path as the cluster's user: restore to the end of WAL, start, check counts."""
    scratch = stanza.base / "scratch" / "bench"
    params = {"config": str(stanza.config), "stanza": stanza.stanza, "pgbackrest_bin": "pgbackrest",
              "data_directory": str(scratch), "port": pg_harness.free_port(), "target_time": None,
              "bin_dir": str(stanza.bindir), "login_user": "postgres", "start_timeout": 1800,
              "checks": [{"name": "rows", "database": "bench",
                          "sql": f"SELECT count(*) = {expected[0]} FROM events"},
                         {"name": "documents", "database": "bench",
                          "sql": f"SELECT count(*) = {expected[1]} FROM documents"}]}
    script = ("import json, sys\n"
              "from ansible_collections.dbops.datastores.plugins.module_utils import _pg_pitr_drill\n"
              "print(json.dumps(_pg_pitr_drill.drill(json.loads(sys.argv[1]))))\n")
    python = "/usr/bin/python3" if stanza.user else sys.executable
    out = run(stanza, [python, "-c", script, json.dumps(params)],
              env={**stanza.env(), "PYTHONPATH": str(COLLECTIONS_PATH)}).stdout
    result = json.loads(out.strip().splitlines()[-1])
    assert all(check["passed"] for check in result["checks"]), result["checks"]
    assert result["cleaned_up"], result
    return result


def logical(stanza: pgbr_harness.PgbrStanza, work: Path, expected: tuple[int, int]) -> tuple[float, float]:
    """pg_dump -Fc (seconds) and pg_restore -j 2 into a new database (seconds, checked)."""
    server = stanza.server
    dump = work / "bench.dump"
    conn = ["-h", server.host, "-p", str(server.port), "-U", "postgres"]
    dump_s = timed(lambda: run(stanza, [str(stanza.bindir / "pg_dump"), *conn, "-Fc", "-f", str(dump),
                                        "bench"]))
    server.query("CREATE DATABASE bench_restored")
    restore_s = timed(lambda: run(stanza, [str(stanza.bindir / "pg_restore"), *conn, "-j", "2",
                                           "--exit-on-error", "-d", "bench_restored", str(dump)]))
    assert counts(server, "bench_restored") == expected
    server.query("DROP DATABASE bench_restored")
    return dump_s, restore_s


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mb", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    stanza = pgbr_harness.start_stanza(settings={"max_wal_size": "'2GB'", "checkpoint_timeout": "'30min'"})
    work = Path(tempfile.mkdtemp(prefix="dbops-pgbr-bench-", dir=stanza.base))
    pgbr_harness.chown_to_cluster_user(work)
    text = stanza.config.read_text().replace("compress-level=3", "compress-level=6")
    stanza.config.write_text(text)
    try:
        print(f"load average before: {os.getloadavg()}", flush=True)
        stanza.server.query("CREATE DATABASE bench")
        gen_s = timed(lambda: generate(stanza.server, "bench", args.size_mb))
        stanza.server.query("CHECKPOINT")
        size = cluster_size(stanza)
        print(f"generated bench in {gen_s:.1f} s; cluster size {size / 1e6:.0f} MB", flush=True)

        base_times, full_times = [], []
        full: dict[str, Any] = {}
        for _ in range(args.repeat):
            seconds, compressed, uncompressed = basebackup(stanza, work)
            base_times.append(seconds)
            print(f"pg_basebackup -Ft -z: {seconds:.2f} s, {compressed / 1e6:.0f} MB "
                  f"(uncompressed {uncompressed / 1e6:.0f} MB)", flush=True)
            seconds, full = pgbackrest_backup(stanza, "full")
            # The same work: both copied the cluster's files (tar headers aside), neither its WAL.
            assert abs(full["info"]["size"] - uncompressed) / uncompressed < 0.05, (full["info"],
                                                                                   uncompressed)
            full_times.append(seconds)
            print(f"pgbackrest full:      {seconds:.2f} s, {full['info']['repository']['size'] / 1e6:.0f} MB "
                  f"in the repository (database {full['info']['size'] / 1e6:.0f} MB)", flush=True)
        print(f"FULL ratio pgbackrest / pg_basebackup (best): {min(full_times) / min(base_times):.2f} "
              f"(all: {[round(t, 2) for t in base_times]} / {[round(t, 2) for t in full_times]})", flush=True)

        events = int(stanza.server.query("SELECT count(*) FROM events", dbname="bench")[0][0])
        one_percent = events // 100
        stanza.server.query(f"UPDATE events SET amount = amount + 1 WHERE id > {events - one_percent}",
                            dbname="bench")
        stanza.server.query("CHECKPOINT")
        together_s, together = pgbackrest_backup(stanza, "incr")
        full_repo = full["info"]["repository"]["size"]
        together_repo = together["info"]["repository"]["delta"]
        print(f"INCR (1 % of rows together) {together_s:.2f} s vs full {min(full_times):.2f} s: time ratio "
              f"{together_s / min(full_times):.3f}, repository bytes {together_repo} vs {full_repo}: "
              f"{together_repo / full_repo:.3f}", flush=True)
        stanza.server.query("UPDATE events SET amount = amount + 1 WHERE id % 100 = 0", dbname="bench")
        stanza.server.query("CHECKPOINT")
        spread_s, spread = pgbackrest_backup(stanza, "incr")
        spread_repo = spread["info"]["repository"]["delta"]
        print(f"INCR (1 % of rows spread) {spread_s:.2f} s vs full: time ratio "
              f"{spread_s / min(full_times):.3f}, repository bytes {spread_repo}: "
              f"{spread_repo / full_repo:.3f}", flush=True)

        expected = counts(stanza.server, "bench")
        stanza.switch_wal()
        pitr = drill(stanza, expected)
        dump_s, restore_s = logical(stanza, work, expected)
        print(f"PITR to a running cluster: {pitr['rto_seconds']:.2f} s "
              f"(restore {pitr['restore_seconds']:.2f} s); "
              f"pg_restore -j 2 of a pg_dump -Fc ({dump_s:.2f} s to dump): {restore_s:.2f} s; "
              f"ratio {pitr['rto_seconds'] / restore_s:.2f}", flush=True)
        print(f"load average after: {os.getloadavg()}", flush=True)
    finally:
        pgbr_harness.stop_stanza(stanza)


if __name__ == "__main__":
    main()
