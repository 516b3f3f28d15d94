"""Cost of pg_health_info's fact gathering against the hand-rolled health query of seed 003.

    cd <checkout> && .venv/bin/python -m bench.health_pg [--tables 500]

Starts a throwaway cluster, creates one database with ``--tables`` tables (each with a primary key,
a secondary index and 200 rows), then times, best of 5 runs:

- ours: ``_pg_health.gather()`` + ``_pg_health_checks.evaluate_pg()`` over that database (server, connections,
  activity, locks, databases, cache, replication, every table's sizes and statistics, unused
  indexes, pg_stat_statements probe, migration table probe) — what the module does;
- baseline: the two queries seed 003's health endpoint runs (``pg_stat_user_tables`` rows and the
  ``pg_statio_user_tables`` cache hit ratio) over the same database.

The ratio printed is ours / baseline.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / ".build" / "collections")]

from tests.harness import pg as pg_harness  # noqa: E402
from tests.harness.runner import ensure_collection_link  # noqa: E402

ensure_collection_link()

from ansible_collections.dbops.datastores.plugins.module_utils import _pg_health, _pg_health_checks, _postgres  # noqa: E402

SEED_003_QUERIES = [
    "SELECT schemaname, relname, n_live_tup AS row_count, n_dead_tup AS dead_rows, last_vacuum, last_analyze"
    " FROM pg_stat_user_tables WHERE schemaname = 'public' ORDER BY n_live_tup DESC",
    "SELECT CASE WHEN sum(heap_blks_read) + sum(heap_blks_hit) > 0"
    " THEN round(100.0 * sum(heap_blks_hit) / (sum(heap_blks_read) + sum(heap_blks_hit)), 2) ELSE 0 END"
    " AS cache_hit_ratio FROM pg_statio_user_tables",
]


def best_of(n, fn):
    best = None
    for _round in range(n):
        start = time.perf_counter()
        fn()
        elapsed = time.perf_counter() - start
        best = elapsed if best is None else min(best, elapsed)
    return best


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tables", type=int, default=500)
    args = parser.parse_args()
    server = pg_harness.start_cluster()
    try:
        db = server.create_database("bench")
        server.query(
            f"DO $$ BEGIN FOR i IN 1..{args.tables} LOOP"
            " EXECUTE format('CREATE TABLE t%s (id int PRIMARY KEY, v int)', i);"
            " EXECUTE format('CREATE INDEX ON t%s (v)', i);"
            " EXECUTE format('INSERT INTO t%s SELECT g, mod(g, 7) FROM generate_series(1, 200) g', i);"
            " END LOOP; END $$",
            dbname=db,
        )
        params = server.params()
        thresholds = dict(_pg_health_checks.PG_THRESHOLDS)

        def ours() -> None:
            facts = _pg_health.gather(
                lambda name: _postgres.connect(params, database=name, autocommit=True),
                [db], thresholds, "dbops_schema_history",
            )
            _pg_health_checks.evaluate_pg(facts, thresholds)

        def baseline() -> None:
            conn = _postgres.connect(params, database=db, autocommit=True)
            try:
                with conn.cursor() as cur:
                    for sql in SEED_003_QUERIES:
                        cur.execute(sql)
                        cur.fetchall()
            finally:
                conn.close()

        ours()  # warm the catalog caches once for both
        t_ours, t_base = best_of(5, ours), best_of(5, baseline)
        print(f"tables={args.tables}  pg_health_info gather+score: {t_ours * 1000:.1f} ms  "
              f"seed-003 queries: {t_base * 1000:.1f} ms  ratio ours/baseline: {t_ours / t_base:.1f}x")
    finally:
        pg_harness.stop_cluster(server)


if __name__ == "__main__":
    main()
