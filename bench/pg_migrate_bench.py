"""pg_migrate against a plain-psycopg2 floor and peer migration tools.

Run from the repository root::

    .venv/bin/python -m bench.pg_migrate_bench

Environment: DBOPS_BENCH_MIGRATIONS (default 1000), DBOPS_BENCH_REPEAT (runs per tool, best
kept, default 2), DBOPS_BENCH_SCRIPT_LOOP (files for the postgresql_script loop, default 100),
DBOPS_BENCH_PEERS (default ``yoyo,dbmate,sqitch,script``; empty for none).

Workload: N (default 1,000) small migrations, each ``CREATE TABLE`` + one ``INSERT``, applied to
an empty database ("from scratch"), then a second run with all of them applied ("no-op").
Every tool gets a fresh database on the same throwaway PostgreSQL 15 cluster (the test
harness's: fsync off, so commit cost does not drown the tools' own overhead).

- floor: one psycopg2 connection; per file: read, execute, insert a history row, commit.
  Its no-op run: connect, read and hash the files, read the history.
- pg_migrate: through real ``ansible-playbook``, a play with an ``ansible.builtin.ping`` task and
  the pg_migrate task. Task durations come from the json callback: ansible-playbook's start-up is
  the wall time minus the tasks, the ping task is what any module costs (interpreter start,
  AnsiballZ), and "module time" is the pg_migrate task minus the ping task. The module's code is
  also timed in-process.
- peers (when installed): yoyo-migrations (PyPI), dbmate (npm; set DBOPS_BENCH_DBMATE to the
  binary, default ``dbmate`` on PATH or /tmp/dbops-bench-peers/node_modules/.bin/dbmate),
  sqitch (Debian ``sqitch`` + ``libdbd-pg-perl``; runs each script through psql), and
  community.postgresql.postgresql_script in a loop (timed on DBOPS_BENCH_SCRIPT_LOOP files,
  default 100, and scaled to N; it keeps no history, so it has no no-op run).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import psycopg2

from tests.harness import pg as pg_harness
from tests.harness.runner import COLLECTIONS_PATH, AnsibleRunner, ensure_collection_link

N = int(os.environ.get("DBOPS_BENCH_MIGRATIONS", "1000"))
SCRIPT_LOOP = int(os.environ.get("DBOPS_BENCH_SCRIPT_LOOP", "100"))
REPEAT = int(os.environ.get("DBOPS_BENCH_REPEAT", "2"))
PEERS = os.environ.get("DBOPS_BENCH_PEERS", "yoyo,dbmate,sqitch,script").split(",")
PEERS_DIR = Path("/tmp/dbops-bench-peers/node_modules/.bin")


def migration_sql(i: int) -> str:
    return (f"CREATE TABLE t{i:04d} (id int PRIMARY KEY, note text);\n"
            f"INSERT INTO t{i:04d} VALUES (1, 'migration {i}');\n")


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def run(cmd: list[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> None:
    proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, check=False,
                          stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed ({proc.returncode}): {proc.stdout[-2000:]}\n"
                           f"{proc.stderr[-2000:]}")


def _fmt(value: float | None) -> str:
    return f"{value:8.3f}s" if value is not None else "     n/a"


class Bench:
    def __init__(self, server: pg_harness.PgServer, work: Path) -> None:
        self.server = server
        self.work = work
        self.results: dict[str, dict[str, float | str | None]] = {}
        self.flyway = work / "flyway"  # V<n>__m.sql: pg_migrate, floor, yoyo
        self.flyway.mkdir()
        for i in range(1, N + 1):
            (self.flyway / f"V{i:04d}__m.sql").write_text(migration_sql(i))
        self.files = sorted(self.flyway.iterdir())
        self.ansible = AnsibleRunner(work / "ansible")
        self.tools: list[tuple[str, Callable[[str], Callable[[], object]], str]] = []
        self.ansible_times: dict[str, list[dict[str, float]]] = {"scratch": [], "noop": []}

    def url(self, db: str, scheme: str = "postgresql") -> str:
        s = self.server
        return f"{scheme}://{s.user}:{s.password}@{s.host}:{s.port}/{db}"

    def record(self, name: str, scratch: float | None, noop: float | None, note: str = "") -> None:
        self.results[name] = {"scratch": scratch, "noop": noop, "note": note}
        print(f"{name:<44} scratch {_fmt(scratch)}  no-op {_fmt(noop)}  {note}", flush=True)

    def measure(self, name: str, make: Callable[[str], Callable[[], object]], note: str = "") -> None:
        """Register a tool: ``make(db)`` returns the run; it runs from scratch, then again (no-op)."""
        self.tools.append((name, make, note))

    def run_all(self) -> None:
        """REPEAT rounds over every tool (round-robin, so load changes hit all alike); best kept."""
        times: dict[str, dict[str, list[float]]] = {
            name: {"scratch": [], "noop": []} for name, _make, _note in self.tools
        }
        for _round in range(REPEAT):
            for name, make, _note in self.tools:
                fn = make(self.server.create_database("bench"))
                times[name]["scratch"].append(timed(fn))
                times[name]["noop"].append(timed(fn))
        for name, _make, note in self.tools:
            self.record(name, min(times[name]["scratch"]), min(times[name]["noop"]), note)

    # ---- floor

    def floor(self, db: str) -> Callable[[], object]:
        s = self.server

        def migrate() -> None:
            conn = psycopg2.connect(host=s.host, port=s.port, user=s.user, password=s.password, dbname=db)
            checksums = {i: hashlib.sha256(p.read_bytes()).hexdigest() for i, p in enumerate(self.files, 1)}
            with conn.cursor() as cur:
                cur.execute("CREATE TABLE IF NOT EXISTS history (version int PRIMARY KEY,"
                            " checksum text NOT NULL, installed_on timestamptz NOT NULL DEFAULT now())")
                cur.execute("SELECT version, checksum FROM history")
                applied = dict(cur.fetchall())
            conn.commit()
            for i, path in enumerate(self.files, 1):
                if i in applied:
                    continue
                with conn.cursor() as cur:
                    cur.execute(path.read_text())
                    cur.execute("INSERT INTO history (version, checksum) VALUES (%s, %s)", (i, checksums[i]))
                conn.commit()
            conn.close()

        return migrate

    # ---- pg_migrate

    def playbook(self, name: str, tasks: list[dict]) -> Path:
        path = self.work / f"{name}.yml"
        path.write_text(json.dumps([{"hosts": "localhost", "gather_facts": False, "tasks": tasks}]))
        return path

    def ansible_run(self, playbook: Path) -> dict[str, float]:
        """Run a playbook; return its wall time and each task's duration (from the json callback)."""
        started = time.perf_counter()
        result = self.ansible.playbook(playbook)
        wall = time.perf_counter() - started
        if result.rc != 0 or result.data is None:
            raise RuntimeError(f"ansible-playbook failed: {result.stdout[-3000:]}\n{result.stderr[-2000:]}")
        times = {"wall": wall}
        for play in result.data["plays"]:
            for task in play["tasks"]:
                duration = task["task"]["duration"]
                start = datetime.fromisoformat(duration["start"].replace("Z", "+00:00"))
                end = datetime.fromisoformat(duration["end"].replace("Z", "+00:00"))
                times[task["task"]["name"]] = (end - start).total_seconds()
        return times

    def pg_migrate_ansible(self, db: str) -> Callable[[], object]:
        """A play with a ping task and the pg_migrate task; task durations kept for ansible_report()."""
        params = self.server.params(login_db=db, path=str(self.flyway))
        book = self.playbook(f"pg_migrate_{db}", [
            {"name": "ping", "ansible.builtin.ping": {}},
            {"name": "pg_migrate", "dbops.datastores.pg_migrate": params},
        ])
        calls = []

        def run_once() -> None:
            kind = "noop" if calls else "scratch"
            calls.append(kind)
            self.ansible_times[kind].append(self.ansible_run(book))

        return run_once

    def ansible_report(self) -> None:
        """ansible-playbook start-up, any module's per-task cost, and pg_migrate's own time."""
        runs = self.ansible_times
        best = {kind: min(items, key=lambda t: t["pg_migrate"]) for kind, items in runs.items()}
        fixed = min(t["wall"] - t["ping"] - t["pg_migrate"] for items in runs.values() for t in items)
        ping = min(t["ping"] for items in runs.values() for t in items)
        self.record("ansible-playbook start-up (wall - tasks)", fixed, fixed)
        self.record("ansible.builtin.ping task (any module's floor)", ping, ping)
        self.record("pg_migrate task through ansible", best["scratch"]["pg_migrate"],
                    best["noop"]["pg_migrate"])
        self.record("pg_migrate module time (task - ping task)", best["scratch"]["pg_migrate"] - ping,
                    best["noop"]["pg_migrate"] - ping)

    def payload_noop(self) -> None:
        """The module processes alone: the AnsiballZ payloads of a no-op run, executed directly."""
        db = self.server.create_database("bench")
        self.pg_migrate_in_process(db)()
        runner = AnsibleRunner(self.work / "ansible-keep", extra_env={"ANSIBLE_KEEP_REMOTE_FILES": "1"})
        params = self.server.params(login_db=db, path=str(self.flyway))
        book = self.playbook("payload", [{"name": "ping", "ansible.builtin.ping": {}},
                                         {"name": "pg_migrate", "dbops.datastores.pg_migrate": params}])
        if runner.playbook(book).rc != 0:
            raise RuntimeError("payload playbook failed")
        best = {}
        for name in ("ping", "pg_migrate"):
            payload = next((self.work / "ansible-keep" / "tmp-remote").rglob(f"AnsiballZ_{name}.py"))
            best[name] = min(timed(lambda p=payload: run([sys.executable, str(p)]))
                             for _round in range(REPEAT + 1))
        self.record("AnsiballZ payload run directly: ping", best["ping"], best["ping"])
        self.record("AnsiballZ payload run directly: pg_migrate", None, best["pg_migrate"])
        self.record("pg_migrate module process time (payload - ping)", None,
                    best["pg_migrate"] - best["ping"])

    def pg_migrate_in_process(self, db: str) -> Callable[[], object]:
        ensure_collection_link()
        if str(COLLECTIONS_PATH) not in sys.path:
            sys.path.insert(0, str(COLLECTIONS_PATH))
        from ansible_collections.dbops.datastores.plugins.module_utils import _pg_migrate as pm

        params = self.server.params(login_db=db, path=str(self.flyway), ssl_mode="disable")
        return lambda: pm.migrate(params, False)

    # ---- peers

    def yoyo(self) -> None:
        yoyo = Path(sys.executable).with_name("yoyo")
        if not yoyo.exists():
            self.record("yoyo-migrations", None, None, "not installed (pip install yoyo-migrations)")
            return

        def make(db: str) -> Callable[[], object]:
            cmd = [str(yoyo), "apply", "--batch", "--no-config-file", "--database", self.url(db),
                   str(self.flyway)]
            return lambda: run(cmd)

        self.measure("yoyo-migrations 9.0.0 (CLI)", make)

    def dbmate(self) -> None:
        binary = os.environ.get("DBOPS_BENCH_DBMATE") or shutil.which("dbmate") or str(PEERS_DIR / "dbmate")
        if not Path(binary).exists():
            self.record("dbmate", None, None, "not installed (npm install dbmate)")
            return
        directory = self.work / "dbmate"
        directory.mkdir()
        for i in range(1, N + 1):
            (directory / f"{i:04d}_m.sql").write_text(
                f"-- migrate:up\n{migration_sql(i)}\n-- migrate:down\nDROP TABLE t{i:04d};\n")

        def make(db: str) -> Callable[[], object]:
            env = dict(os.environ, DATABASE_URL=self.url(db, "postgres") + "?sslmode=disable")
            cmd = [binary, "--no-dump-schema", "--migrations-dir", str(directory), "up"]
            return lambda: run(cmd, env)

        version = subprocess.run([binary, "--version"], capture_output=True, text=True, check=False).stdout
        self.measure(f"dbmate {version.split()[-1] if version.strip() else '?'} (npm)", make)

    def sqitch(self) -> None:
        binary = shutil.which("sqitch")
        if binary is None:
            self.record("sqitch", None, None, "not installed (apt-get install sqitch libdbd-pg-perl)")
            return
        project = self.work / "sqitch"
        for sub in ("deploy", "revert", "verify"):
            (project / sub).mkdir(parents=True)
        (project / "sqitch.conf").write_text("[core]\n\tengine = pg\n")
        plan = ["%syntax-version=1.0.0", "%project=bench", ""]
        for i in range(1, N + 1):
            name = f"m{i:04d}"
            (project / "deploy" / f"{name}.sql").write_text(f"BEGIN;\n{migration_sql(i)}COMMIT;\n")
            (project / "revert" / f"{name}.sql").write_text(f"DROP TABLE t{i:04d};\n")
            (project / "verify" / f"{name}.sql").write_text(f"SELECT 1 FROM t{i:04d} LIMIT 0;\n")
            plan.append(f"{name} 2026-01-01T00:00:00Z bench <bench@example.com> # migration {i}")
        (project / "sqitch.plan").write_text("\n".join(plan) + "\n")
        s = self.server
        env = dict(os.environ, PGPASSWORD=s.password, SQITCH_PASSWORD=s.password,
                   SQITCH_FULLNAME="bench", SQITCH_EMAIL="bench@example.com", HOME=str(self.work))

        def make(db: str) -> Callable[[], object]:
            cmd = [binary, "deploy", "--no-verify", f"db:pg://{s.user}@{s.host}:{s.port}/{db}"]
            return lambda: run(cmd, env, project)

        version = subprocess.run([binary, "--version"], capture_output=True, text=True, check=False).stdout
        self.measure(f"sqitch {version.split()[-1] if version.strip() else '?'} (Debian)", make)

    def postgresql_script(self) -> None:
        count = min(SCRIPT_LOOP, N)
        db = self.server.create_database("bench")
        book = self.playbook("postgresql_script", [{
            "community.postgresql.postgresql_script": {**self.server.params(login_db=db),
                                                       "path": "{{ item }}"},
            "loop": [str(p) for p in self.files[:count]],
        }])
        elapsed = timed(lambda: self.ansible_run(book))
        self.record("community.postgresql.postgresql_script loop", elapsed * N / count, None,
                    f"measured {elapsed:.1f}s for {count} files, scaled to {N}; keeps no history")


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="dbops-bench-migrate-"))
    server = pg_harness.start_cluster()
    print(f"pg_migrate benchmark: {N} migrations, PostgreSQL at {server.host}:{server.port}", flush=True)
    try:
        bench = Bench(server, work)
        bench.measure("floor (psycopg2, one connection)", bench.floor)
        bench.measure("pg_migrate module code in-process", bench.pg_migrate_in_process)
        bench.measure("pg_migrate ansible-playbook wall (total)", bench.pg_migrate_ansible)
        for peer in ("yoyo", "dbmate", "sqitch"):
            if peer in PEERS:
                getattr(bench, peer)()
        bench.run_all()
        bench.ansible_report()
        bench.payload_noop()
        if "script" in PEERS:
            bench.postgresql_script()
        r = bench.results
        floor = r["floor (psycopg2, one connection)"]
        module = r["pg_migrate module time (task - ping task)"]
        print()
        print("ratio pg_migrate module time / floor, from scratch:"
              f" {module['scratch'] / floor['scratch']:.2f}x")
        print(f"ratio pg_migrate module time / floor, no-op:        {module['noop'] / floor['noop']:.2f}x")
        inproc = r["pg_migrate module code in-process"]
        print("ratio pg_migrate in-process / floor, from scratch:  "
              f" {inproc['scratch'] / floor['scratch']:.2f}x")
        print(f"pg_migrate no-op module time: {module['noop']:.3f}s (goal < 1 s)")
        total = r["pg_migrate ansible-playbook wall (total)"]
        print("peers (their time / pg_migrate's; > 1 means pg_migrate is faster):")
        for name, values in r.items():
            if name.startswith(("floor", "pg_migrate", "ansible", "AnsiballZ")) or values["scratch"] is None:
                continue
            line = (f"  {name}: from scratch {values['scratch'] / module['scratch']:.2f}x module time,"
                    f" {values['scratch'] / total['scratch']:.2f}x ansible-playbook wall")
            if values["noop"] is not None:
                line += (f"; no-op {values['noop'] / module['noop']:.2f}x module time,"
                         f" {values['noop'] / total['noop']:.2f}x wall")
            print(line)
    finally:
        pg_harness.stop_cluster(server)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
