"""Retention decision over 10,000 catalog entries (goal: under 1 s).

    cd <checkout> && .venv/bin/python -m bench.backup_retention [--entries 10000]

Times the pure GFS decision (``_retention.decide``) and the full dry run of the module's code path
(``apply_retention(check=True)``: scan the root, read every manifest, decide) over a root holding
that many backups of 10 databases, hourly for 1,000 hours each. The ratio printed is time / 1 s.
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / ".build" / "collections")]

from tests.harness import backups as bk  # noqa: E402
from tests.harness.runner import ensure_collection_link  # noqa: E402

ensure_collection_link()

from ansible_collections.dbops.datastores.plugins.module_utils import _backup_ops as ops  # noqa: E402
from ansible_collections.dbops.datastores.plugins.module_utils import _retention  # noqa: E402

POLICY = {"keep_hourly": 24, "keep_daily": 7, "keep_weekly": 4, "keep_monthly": 12, "keep_yearly": 3}


def best_of(n, fn):
    best = None
    for _round in range(n):
        start = time.perf_counter()
        result = fn()
        elapsed = time.perf_counter() - start
        best = elapsed if best is None else min(best, elapsed)
    return best, result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entries", type=int, default=10000)
    args = parser.parse_args()
    databases = 10
    per_db = args.entries // databases
    start = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    items = [_retention.Item(f"pg-db{d}-{h}", ("postgresql", f"db{d}"), start + dt.timedelta(hours=h))
             for d in range(databases) for h in range(per_db)]
    policy = ops.policy_from(POLICY)
    pure, decisions = best_of(5, lambda: _retention.decide(items, policy))
    kept = sum(d.keep for d in decisions)

    root = Path(tempfile.mkdtemp(prefix="dbops-bench-retention-"))
    try:
        for d in range(databases):
            for h in range(per_db):
                bk.fake_backup(root, "postgresql", f"db{d}", start + dt.timedelta(hours=h))
        full, result = best_of(3, lambda: ops.apply_retention(str(root), POLICY, check=True))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    assert len(result["keep"]) == kept
    print(f"entries={len(items)} kept={kept} removed={len(items) - kept}")
    print(f"decision (pure):            {pure * 1000:8.1f} ms   ratio to 1 s budget: {pure:.3f}")
    print(f"dry run incl. scan of root: {full * 1000:8.1f} ms   ratio to 1 s budget: {full:.3f}")


if __name__ == "__main__":
    main()
