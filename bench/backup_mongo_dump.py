"""Native MongoDB dump against a raw pymongo RawBSONDocument read written to disk (goal: >= 0.9x).

    cd <checkout> && .venv/bin/python -m bench.backup_mongo_dump [--docs 100000] [--repeat 5]

Starts the MongoDB-wire test server (or uses DBOPS_TEST_MONGO_URI), fills two collections (about
1 KB and 200 B documents), then times, alternating:

- baseline: for each collection, ``find()`` with ``document_class=RawBSONDocument`` and write
  ``doc.raw`` to ``<coll>.bson`` (no metadata, no compression, no counts);
- ours: ``_mongodb_backup.native_dump`` uncompressed (bson + metadata.json + counts), and, for
  information, with gzip.

Prints MB/s of each and the throughput ratio ours / baseline.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / ".build" / "collections")]

from bson.codec_options import CodecOptions  # noqa: E402
from bson.raw_bson import RawBSONDocument  # noqa: E402

from tests.harness import mongo as mongo_harness  # noqa: E402
from tests.harness.runner import ensure_collection_link  # noqa: E402

ensure_collection_link()

from ansible_collections.dbops.datastores.plugins.module_utils import _mongodb_backup  # noqa: E402


def fill(client, dbname: str, docs: int) -> None:
    db = client[dbname]
    batch = 5000
    for start in range(0, docs, batch):
        db.messages.insert_many([{"_id": i, "platform": "slack", "n": i, "body": os.urandom(480).hex()}
                                 for i in range(start, min(start + batch, docs))])
        db.metrics.insert_many([{"_id": i, "svc": f"svc-{i % 20}", "v": i * 1.5, "tags": ["p95", "eu"]}
                                for i in range(start, min(start + batch, docs))])


def baseline(client, dbname: str, out: Path) -> None:
    raw = CodecOptions(document_class=RawBSONDocument)
    db = client[dbname]
    out.mkdir()
    for name in db.list_collection_names():
        with open(out / f"{name}.bson", "wb") as handle:
            for doc in db.get_collection(name, codec_options=raw).find():
                handle.write(doc.raw)


def dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--docs", type=int, default=100000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    uri = mongo_harness.env_uri(auth=False)
    server = mongo_harness.external_server(uri) if uri else mongo_harness.start_server()
    work = Path(tempfile.mkdtemp(prefix="dbops-bench-mongo-"))
    dbname = server.database_name("bench")
    try:
        with server.client() as client:
            fill(client, dbname, args.docs)
            times = {"baseline": [], "native": [], "native gzip": []}
            size = 0
            for n in range(args.repeat):
                out = work / f"base-{n}"
                start = time.perf_counter()
                baseline(client, dbname, out)
                times["baseline"].append(time.perf_counter() - start)
                size = dir_bytes(out)
                shutil.rmtree(out)
                for label, gz in (("native", False), ("native gzip", True)):
                    out = work / f"ours-{label}-{n}"
                    out.mkdir()
                    start = time.perf_counter()
                    _mongodb_backup.native_dump(client, dbname, str(out), gz)
                    times[label].append(time.perf_counter() - start)
                    shutil.rmtree(out)
        mb = size / 1024 / 1024
        best = {k: min(v) for k, v in times.items()}
        median = {k: sorted(v)[len(v) // 2] for k, v in times.items()}
        print(f"{2 * args.docs} documents, {mb:.1f} MB of BSON, best (median) of {args.repeat}")
        for label, seconds in best.items():
            print(f"{label:12s} {seconds:6.2f} s  {mb / seconds:7.1f} MB/s   (median {median[label]:.2f} s,"
                  f" {mb / median[label]:.1f} MB/s)")
        print(f"throughput ratio native / baseline: {best['baseline'] / best['native']:.2f}"
              f" (median {median['baseline'] / median['native']:.2f})  (goal >= 0.9)")
        print(f"throughput ratio native gzip / baseline: {best['baseline'] / best['native gzip']:.2f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if uri:
            server.drop_created()
        else:
            mongo_harness.stop_server(server)


if __name__ == "__main__":
    main()
