"""pg_migrate against psycopg2 floors (one and 50 migrations per message) and peer migration tools.

Run from the repository root (``make bench`` installs the peers first, see scripts/bench_peers.sh)::

    make bench
    env $(bash scripts/bench_peers.sh) .venv/bin/python -m bench.pg_migrate_bench

Environment: DBOPS_BENCH_TINY (tiny migrations, default 1000), DBOPS_BENCH_REALISTIC (realistic
migrations from bench/migration_generator.py, default 300), DBOPS_BENCH_REPEAT (rounds for the
floor, pg_migrate and dbmate, best kept, default 2; the slow peers run once),
DBOPS_BENCH_PEERS (default ``dbmate,yoyo,sqitch``; ``dbmate`` for a quick run against the fastest
peer only; empty for none), DBOPS_BENCH_DURABILITY
(default ``off,on``: the server's fsync / synchronous_commit / full_page_writes for each phase),
DBOPS_BENCH_DBMATE / DBOPS_BENCH_YOYO (binaries; printed by scripts/bench_peers.sh).

Every tool gets a fresh database on the same PostgreSQL 15 cluster and applies the same SQL from
scratch, one transaction per migration with its history row, then runs again with everything
applied (no-op). After the scratch run the bench dumps the database's catalog (tables, columns,
constraints, indexes, views, functions, triggers, comments) and its data (rows without the
``created_at`` timestamps) and fails unless every tool produced the same dump as the floor, and
checks that each tool recorded every migration in its history. The server's fsync and
synchronous_commit are printed with each phase.

- floor: one psycopg2 connection; per migration one message ``BEGIN; <script>; INSERT history;
  COMMIT`` (one round trip, the least any tool can do with one transaction per migration). Its
  no-op run connects, reads and hashes the files and reads the history.
- batched floor: the same, 50 migrations per message (each still its own transaction with its
  history row), as pg_migrate sends them; the floor pg_migrate's batched apply is measured against.
- pg_migrate in-process: the module's code called from this process (no Ansible).
- pg_migrate through ``ansible-playbook``: a play with a warm-up ``stat`` (interpreter discovery,
  connection set-up), a ``ping`` that is its module's first use in the run, a second ``ping``
  (what any module costs per task) and the pg_migrate task (its module's first use).
  *Module time* = pg_migrate task - second ping task (durations from the json callback). It
  includes what any module's first use in a play costs: ansible-core builds the module's AnsiballZ
  payload then (about 0.1 s, mostly parsing ansible's own module_utils). *Beyond a first use* =
  pg_migrate task - first ping task leaves that out.
- peers: dbmate (Go binary from npm), yoyo-migrations (PyPI CLI), sqitch (Debian; deploys each
  change through psql). dbmate also runs as an Ansible user would run it, in the same play as
  pg_migrate's: an ``ansible.builtin.command`` task (its module's first use), compared task to task.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import psycopg2

from bench.migration_generator import realistic, tiny
from tests.harness import pg as pg_harness
from tests.harness.runner import COLLECTIONS_PATH, AnsibleRunner, ensure_collection_link

TINY = int(os.environ.get("DBOPS_BENCH_TINY", "1000"))
REALISTIC = int(os.environ.get("DBOPS_BENCH_REALISTIC", "300"))
REPEAT = int(os.environ.get("DBOPS_BENCH_REPEAT", "2"))
PEERS = [p for p in os.environ.get("DBOPS_BENCH_PEERS", "dbmate,yoyo,sqitch").split(",") if p]
DURABILITY = [d for d in os.environ.get("DBOPS_BENCH_DURABILITY", "off,on").split(",") if d]
SLOW = ("yoyo", "sqitch")  # minutes per run: once per phase, not REPEAT times

# Tables the tools keep their history in (left out of the schema comparison).
TOOL_TABLES = ("dbops_schema_history", "floor_history", "schema_migrations", "_yoyo_log",
               "_yoyo_migration", "_yoyo_version", "yoyo_lock")

CATALOG_SQL = r"""
SELECT 'column', c.relname || '.' || a.attname,
       format_type(a.atttypid, a.atttypmod) || ' ' || a.attnotnull || ' '
       || coalesce(pg_get_expr(d.adbin, d.adrelid), '') || ' ' || a.attidentity::text
FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE n.nspname = 'public' AND c.relkind IN ('r', 'v', 'p') AND a.attnum > 0 AND NOT a.attisdropped
  AND c.relname <> ALL (%(tool)s)
UNION ALL
SELECT 'constraint', c.relname || '.' || k.conname, pg_get_constraintdef(k.oid)
FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'public' AND c.relname <> ALL (%(tool)s)
UNION ALL
SELECT 'index', indexname, indexdef FROM pg_indexes
WHERE schemaname = 'public' AND tablename <> ALL (%(tool)s)
UNION ALL
SELECT 'view', viewname, definition FROM pg_views WHERE schemaname = 'public'
UNION ALL
SELECT 'function', p.proname, pg_get_functiondef(p.oid)
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'public'
UNION ALL
SELECT 'trigger', t.tgname, pg_get_triggerdef(t.oid) FROM pg_trigger t
JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'public' AND NOT t.tgisinternal
UNION ALL
SELECT 'comment', c.relname || '.' || coalesce(a.attname, ''), d.description
FROM pg_description d JOIN pg_class c ON c.oid = d.objoid AND d.classoid = 'pg_class'::regclass
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = d.objsubid AND d.objsubid > 0
WHERE n.nspname = 'public'
ORDER BY 1, 2, 3
"""


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def run(cmd: list[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> str:
    proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, check=False,
                          stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed ({proc.returncode}): {proc.stdout[-2000:]}\n"
                           f"{proc.stderr[-2000:]}")
    return proc.stdout


def _fmt(value: float | None) -> str:
    return f"{value:8.3f}s" if value is not None else "     n/a"


class Tool:
    """One contender: ``make(db)`` returns the run; ``history(db)`` counts its recorded migrations."""

    def __init__(self, name: str, make: Callable[[str], Callable[[], object]],
                 history: Callable[[str], int], slow: bool = False) -> None:
        self.name, self.make, self.history, self.slow = name, make, history, slow


class Workload:
    """One set of migrations written in each tool's layout."""

    def __init__(self, name: str, migrations: list[tuple[str, str]], work: Path) -> None:
        self.name = name
        self.migrations = migrations
        self.n = len(migrations)
        self.root = work / name
        self.flyway = self.root / "flyway"  # V<n>__m.sql: pg_migrate, floor, yoyo
        self.flyway.mkdir(parents=True)
        for i, (up, _down) in enumerate(migrations, 1):
            (self.flyway / f"V{i:04d}__m.sql").write_text(up)
        self.files = sorted(self.flyway.iterdir())


class Bench:
    def __init__(self, server: pg_harness.PgServer, work: Path) -> None:
        self.server = server
        self.work = work
        self.ansible = AnsibleRunner(work / "ansible")
        self.rows: list[tuple[str, str, str, float | None, float | None, str]] = []
        self.dbmate_bin = os.environ.get("DBOPS_BENCH_DBMATE") or shutil.which("dbmate")
        self.yoyo_bin = os.environ.get("DBOPS_BENCH_YOYO") or shutil.which("yoyo")
        self.sqitch_bin = shutil.which("sqitch")

    def url(self, db: str, scheme: str = "postgresql") -> str:
        s = self.server
        return f"{scheme}://{s.user}:{s.password}@{s.host}:{s.port}/{db}"

    def count(self, db: str, sql: str) -> int:
        return int(self.server.query(sql, dbname=db)[0][0])

    # ---- server settings

    def durability(self, mode: str) -> str:
        value = "on" if mode == "on" else "off"
        conn = self.server.connect()
        with conn.cursor() as cur:
            for name in ("fsync", "synchronous_commit", "full_page_writes"):
                cur.execute(f"ALTER SYSTEM SET {name} = {value}")
            cur.execute("SELECT pg_reload_conf()")
        conn.close()
        time.sleep(0.5)
        shown = self.server.query(
            "SELECT current_setting('fsync'), current_setting('synchronous_commit'),"
            " current_setting('full_page_writes'), current_setting('wal_sync_method')")[0]
        if shown[0] != value or shown[1] != value:
            raise RuntimeError(f"the server did not take fsync/synchronous_commit = {value}: {shown}")
        return (f"fsync={shown[0]} synchronous_commit={shown[1]} full_page_writes={shown[2]}"
                f" wal_sync_method={shown[3]}")

    # ---- checks

    def catalog(self, db: str) -> str:
        """The catalog of schema ``public`` and a digest of each table's rows, on one connection."""
        conn = self.server.connect(db)
        try:
            with conn.cursor() as cur:
                cur.execute(CATALOG_SQL, {"tool": list(TOOL_TABLES)})
                rows = cur.fetchall()
                cur.execute("SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                            " WHERE n.nspname = 'public' AND c.relkind = 'r' AND c.relname <> ALL (%s)"
                            " ORDER BY 1", (list(TOOL_TABLES),))
                tables = [r[0] for r in cur.fetchall()]
                data = []
                for table in tables:
                    cur.execute(f"SELECT count(*), md5(coalesce(string_agg(r, ',' ORDER BY r), ''))"
                                f" FROM (SELECT (to_jsonb(x) - 'created_at')::text AS r FROM {table} x) s")
                    count, digest = cur.fetchone()
                    data.append(f"data {table} {count} {digest}")
        finally:
            conn.close()
        return "\n".join("\t".join(str(v) for v in row) for row in rows) + "\n" + "\n".join(data)

    # ---- tools

    def floor(self, w: Workload, batch: int = 1) -> Tool:
        """The least a client can send: per migration ``BEGIN; <script>; INSERT history; COMMIT``,
        ``batch`` migrations per message (each still its own transaction, as pg_migrate sends them)."""
        s = self.server

        def make(db: str) -> Callable[[], object]:
            def migrate() -> None:
                conn = psycopg2.connect(host=s.host, port=s.port, user=s.user, password=s.password,
                                        dbname=db)
                conn.autocommit = True
                with conn.cursor() as cur:
                    cur.execute("CREATE TABLE IF NOT EXISTS floor_history (version int PRIMARY KEY,"
                                " checksum text NOT NULL, installed_on timestamptz NOT NULL DEFAULT now())")
                    cur.execute("SELECT version FROM floor_history")
                    applied = {row[0] for row in cur.fetchall()}
                    parts: list[str] = []
                    pending = [(i, p) for i, p in enumerate(w.files, 1) if i not in applied]
                    for n, (i, path) in enumerate(pending, 1):
                        text = path.read_text()
                        insert = cur.mogrify("INSERT INTO floor_history (version, checksum) VALUES (%s, %s)",
                                             (i, hashlib.sha256(text.encode()).hexdigest())).decode()
                        parts.append(f"BEGIN;\n{text}\n;{insert}; COMMIT;")
                        if len(parts) == batch or n == len(pending):
                            cur.execute("\n".join(parts))
                            parts = []
                conn.close()
            return migrate

        what = "one message per migration" if batch == 1 else f"{batch} migrations per message"
        return Tool(f"floor (psycopg2, {what})", make,
                    lambda db: self.count(db, "SELECT count(*) FROM floor_history"))

    def pg_migrate_history(self, db: str) -> int:
        return self.count(db, "SELECT count(*) FROM dbops_schema_history WHERE success")

    def pg_migrate_in_process(self, w: Workload) -> Tool:
        ensure_collection_link()
        if str(COLLECTIONS_PATH) not in sys.path:
            sys.path.insert(0, str(COLLECTIONS_PATH))
        from ansible_collections.dbops.datastores.plugins.module_utils import _pg_migrate as pm

        def make(db: str) -> Callable[[], object]:
            params = self.server.params(login_db=db, path=str(w.flyway), ssl_mode="disable")
            return lambda: pm.migrate(params, False)

        return Tool("pg_migrate module code in-process", make, self.pg_migrate_history)

    def playbook(self, name: str, book_name: str, task: dict[str, object],
                 times: dict[str, list[dict[str, float]]], history: Callable[[str], int]) -> Tool:
        """``task`` run by ``ansible-playbook`` after three others, with each task's duration kept.

        The play: a warm-up ``stat`` (interpreter discovery), a ``ping`` that is the first use of
        its module in the run (what any module costs the first time a play uses it: ansible-core
        builds the module's AnsiballZ payload then, about 0.1 s), a second ``ping`` (what any module
        costs per task once built), then ``task``, which is the first use of its module too.
        """
        def make(db: str) -> Callable[[], object]:
            book = self.work / f"{book_name}_{db}.yml"
            book.write_text(json.dumps([{"hosts": "localhost", "gather_facts": False, "tasks": [
                {"name": "warm-up", "ansible.builtin.stat": {"path": "/", "get_checksum": False}},
                {"name": "first ping", "ansible.builtin.ping": {}},
                {"name": "ping", "ansible.builtin.ping": {}},
                {"name": "measured", **task, "register": "r"},
            ]}]).replace("@DB@", db))
            calls: list[str] = []

            def run_once() -> None:
                kind = "noop" if calls else "scratch"
                calls.append(kind)
                started = time.perf_counter()
                result = self.ansible.playbook(book)
                wall = time.perf_counter() - started
                if result.rc != 0 or result.data is None:
                    raise RuntimeError(f"{name}: ansible-playbook failed: {result.stdout[-3000:]}\n"
                                       f"{result.stderr[-2000:]}")
                entry = {"wall": wall}
                for play in result.data["plays"]:
                    for item in play["tasks"]:
                        d = item["task"]["duration"]
                        start = datetime.fromisoformat(d["start"].replace("Z", "+00:00"))
                        end = datetime.fromisoformat(d["end"].replace("Z", "+00:00"))
                        entry[item["task"]["name"]] = (end - start).total_seconds()
                measured = result.task_results()[3]
                entry["applied"] = measured.get("applied_count", len(measured.get("applied", [])))
                times[kind].append(entry)
            return run_once

        return Tool(name, make, history)

    def pg_migrate_ansible(self, w: Workload, times: dict[str, list[dict[str, float]]]) -> Tool:
        params = self.server.params(login_db="@DB@", src=str(w.flyway), ssl_mode="disable")
        return self.playbook("pg_migrate ansible-playbook wall", "pg_migrate",
                             {"dbops.datastores.pg_migrate": params}, times, self.pg_migrate_history)

    def dbmate_ansible(self, w: Workload, times: dict[str, list[dict[str, float]]]) -> Tool | str:
        """dbmate as an Ansible user would run it: an ``ansible.builtin.command`` task."""
        if not self.dbmate_bin or not Path(self.dbmate_bin).exists():
            return "not installed (make bench installs it)"
        task = {"ansible.builtin.command": {"argv": [self.dbmate_bin, "--no-dump-schema", "--migrations-dir",
                                                     str(self.dbmate_dir(w)), "up"]},
                "environment": {"DATABASE_URL": self.url("@DB@", "postgres") + "?sslmode=disable"},
                "changed_when": False}
        return self.playbook("dbmate ansible-playbook wall (command task)", "dbmate", task, times,
                             lambda db: self.count(db, "SELECT count(*) FROM schema_migrations"))

    def dbmate_dir(self, w: Workload) -> Path:
        """The workload in dbmate's layout (written once)."""
        directory = w.root / "dbmate"
        if not directory.exists():
            directory.mkdir()
            for i, (up, down) in enumerate(w.migrations, 1):
                (directory / f"{i:04d}_m.sql").write_text(f"-- migrate:up\n{up}\n-- migrate:down\n{down}")
        return directory

    def dbmate(self, w: Workload) -> Tool | str:
        if not self.dbmate_bin or not Path(self.dbmate_bin).exists():
            return "not installed (make bench installs it)"
        directory = self.dbmate_dir(w)
        binary = self.dbmate_bin

        def make(db: str) -> Callable[[], object]:
            env = dict(os.environ, DATABASE_URL=self.url(db, "postgres") + "?sslmode=disable")
            cmd = [binary, "--no-dump-schema", "--migrations-dir", str(directory), "up"]
            return lambda: run(cmd, env)

        version = run([binary, "--version"]).split()[-1]
        return Tool(f"dbmate {version} (npm, Go binary)", make,
                    lambda db: self.count(db, "SELECT count(*) FROM schema_migrations"))

    def yoyo(self, w: Workload) -> Tool | str:
        if not self.yoyo_bin or not Path(self.yoyo_bin).exists():
            return "not installed (make bench installs it)"
        binary = self.yoyo_bin

        def make(db: str) -> Callable[[], object]:
            cmd = [binary, "apply", "--batch", "--no-config-file", "--database", self.url(db), str(w.flyway)]
            return lambda: run(cmd)

        return Tool("yoyo-migrations 9.0.0 (PyPI CLI)", make,
                    lambda db: self.count(db, "SELECT count(*) FROM _yoyo_migration"), slow=True)

    def sqitch(self, w: Workload) -> Tool | str:
        if self.sqitch_bin is None:
            return "not installed (make bench installs it)"
        project = w.root / "sqitch"
        for sub in ("deploy", "revert", "verify"):
            (project / sub).mkdir(parents=True, exist_ok=True)
        (project / "sqitch.conf").write_text("[core]\n\tengine = pg\n")
        plan = ["%syntax-version=1.0.0", "%project=bench", ""]
        for i, (up, down) in enumerate(w.migrations, 1):
            name = f"m{i:04d}"
            (project / "deploy" / f"{name}.sql").write_text(f"BEGIN;\n{up}COMMIT;\n")
            (project / "revert" / f"{name}.sql").write_text(down)
            (project / "verify" / f"{name}.sql").write_text("SELECT 1;\n")
            plan.append(f"{name} 2026-01-01T00:00:00Z bench <bench@example.com> # migration {i}")
        (project / "sqitch.plan").write_text("\n".join(plan) + "\n")
        s = self.server
        env = dict(os.environ, PGPASSWORD=s.password, SQITCH_PASSWORD=s.password,
                   SQITCH_FULLNAME="bench", SQITCH_EMAIL="bench@example.com", HOME=str(self.work))
        binary = self.sqitch_bin

        def make(db: str) -> Callable[[], object]:
            cmd = [binary, "deploy", "--no-verify", f"db:pg://{s.user}@{s.host}:{s.port}/{db}"]
            return lambda: run(cmd, env, project)

        version = run([binary, "--version"]).split()[-1]
        return Tool(f"sqitch {version} (Debian, psql per change)", make,
                    lambda db: self.count(db, "SELECT count(*) FROM sqitch.changes"), slow=True)

    # ---- one phase

    def phase(self, w: Workload, mode: str) -> None:
        settings = self.durability(mode)
        print(f"\n== {w.name}: {w.n} migrations, durability {mode}: {settings}; load average"
              f" {_load()} (the machine is shared: the load is printed next to each number)", flush=True)
        times_ansible: dict[str, list[dict[str, float]]] = {"scratch": [], "noop": []}
        times_dbmate: dict[str, list[dict[str, float]]] = {"scratch": [], "noop": []}
        tools: list[Tool] = [self.floor(w), self.floor(w, 50), self.pg_migrate_in_process(w),
                             self.pg_migrate_ansible(w, times_ansible)]
        ours = len(tools)
        for peer in PEERS:
            tool = getattr(self, peer)(w)
            if isinstance(tool, str):
                print(f"  {peer}: {tool}", flush=True)
            else:
                tools.append(tool)
        peers = tools[ours:]
        if "dbmate" in PEERS:
            tool = self.dbmate_ansible(w, times_dbmate)
            if not isinstance(tool, str):
                tools.append(tool)
        times = {t.name: {"scratch": [], "noop": []} for t in tools}
        reference: str | None = None
        for round_no in range(REPEAT):
            for tool in tools:
                if tool.slow and round_no:
                    continue
                db = self.server.create_database("bench")
                fn = tool.make(db)
                times[tool.name]["scratch"].append(timed(fn))
                recorded = tool.history(db)
                if recorded != w.n:
                    raise RuntimeError(f"{tool.name} recorded {recorded} of {w.n} migrations in {db}")
                dump = self.catalog(db)
                if reference is None:
                    reference = dump
                elif dump != reference:
                    raise RuntimeError(f"{tool.name} left a different schema or data in {db} than the floor")
                times[tool.name]["noop"].append(timed(fn))
        digest = hashlib.sha256((reference or "").encode()).hexdigest()[:12]
        print(f"  checked: every tool recorded {w.n} migrations and left the same catalog and data"
              f" ({len(reference or '')} bytes of dump, sha256 {digest})")
        for tool in tools:
            self.add(w, mode, tool.name, min(times[tool.name]["scratch"]), min(times[tool.name]["noop"]),
                     note=f"best of {len(times[tool.name]['scratch'])}")
        self.report(w, mode, {t.name: min(times[t.name]["scratch"]) for t in tools[:3]},
                    {t.name: (min(times[t.name]["scratch"]), min(times[t.name]["noop"])) for t in peers},
                    times_ansible=times_ansible, times_dbmate=times_dbmate,
                    peer_rounds={t.name: times[t.name]["scratch"] for t in peers})

    def report(self, w: Workload, mode: str, ours: dict[str, float], peers: dict[str, tuple[float, float]], *,
               times_ansible: dict[str, list[dict[str, float]]],
               times_dbmate: dict[str, list[dict[str, float]]],
               peer_rounds: dict[str, list[float]]) -> None:
        """pg_migrate's task in the play, split up, and against each peer (best runs kept).

        Against a peer that ran in every round, the ratio is also given round by round (pg_migrate's
        module time in that round's play, against the peer's run of the same round) with its
        median: the machine is shared, and a slow moment can fall on either side of a best-of ratio.
        """
        runs = [t for v in times_ansible.values() for t in v]
        best = {k: min(v, key=lambda t: t["measured"]) for k, v in times_ansible.items()}
        ping = min(t["ping"] for t in runs)
        first_ping = min(t["first ping"] for t in runs)
        start_up = min(t["wall"] - t["warm-up"] - t["first ping"] - t["ping"] - t["measured"] for t in runs)
        warm = min(t["warm-up"] for t in runs)
        self.add(w, mode, "  ansible-playbook start-up (wall - tasks)", start_up, start_up)
        self.add(w, mode, "  warm-up stat task (interpreter discovery)", warm, warm)
        self.add(w, mode, "  first ping task (a module's first use in a play)", first_ping, first_ping)
        self.add(w, mode, "  ping task (any module's per-task cost)", ping, ping)
        applied = f"applied {best['scratch']['applied']} / {best['noop']['applied']}"
        self.add(w, mode, "  pg_migrate task (its first use)", best["scratch"]["measured"],
                 best["noop"]["measured"], note=applied)
        module = (best["scratch"]["measured"] - ping, best["noop"]["measured"] - ping)
        beyond = (best["scratch"]["measured"] - first_ping, best["noop"]["measured"] - first_ping)
        self.add(w, mode, "pg_migrate module time (task - ping)", module[0], module[1])
        self.add(w, mode, "pg_migrate beyond a first use (task - first ping)", beyond[0], beyond[1])
        floor, batched, in_process = ours.values()
        print(f"  pg_migrate module time / floor, from scratch: {module[0] / floor:.2f}x (one message per"
              f" migration), {module[0] / batched:.2f}x (batched floor); in-process / batched floor"
              f" {in_process / batched:.2f}x; no-op module time {module[1]:.3f}s (goal < 0.3 s),"
              f" beyond a first use {beyond[1]:.3f}s")
        for name, (peer, peer_noop) in peers.items():
            print(f"  {name}: from scratch {peer:.2f}s; pg_migrate module time / {name.split()[0]}"
                  f" {module[0] / peer:.2f}x"
                  f" ({'pg_migrate faster or equal' if module[0] <= peer else 'pg_migrate SLOWER'}),"
                  f" beyond a first use {beyond[0] / peer:.2f}x; no-op {peer_noop:.3f}s")
            rounds = peer_rounds.get(name, [])
            if len(rounds) == len(times_ansible["scratch"]) > 1:
                ratios = [(t["measured"] - t["ping"]) / p for t, p in zip(times_ansible["scratch"], rounds)]
                print(f"    round by round, module time / {name.split()[0]}: "
                      + ", ".join(f"{r:.2f}x" for r in ratios) + f"; median {statistics.median(ratios):.2f}x")
        if times_dbmate["scratch"]:
            task = {k: min(t["measured"] for t in v) for k, v in times_dbmate.items()}
            self.add(w, mode, "  dbmate command task (its first use)", task["scratch"], task["noop"])
            print(f"  as tasks of a playbook (each the first use of its module): pg_migrate / dbmate command"
                  f" {best['scratch']['measured'] / task['scratch']:.2f}x from scratch,"
                  f" {best['noop']['measured'] / task['noop']:.2f}x no-op")

    def add(self, w: Workload, mode: str, name: str, scratch: float | None, noop: float | None, *,
            note: str = "") -> None:
        self.rows.append((w.name, mode, name, scratch, noop, note))
        print(f"  {name:<50} scratch {_fmt(scratch)}  no-op {_fmt(noop)}  {note}  [load {_load()}]",
              flush=True)


def _load() -> str:
    """The 1- and 5-minute load averages, printed with each number."""
    load = os.getloadavg()
    return f"{load[0]:.1f}/{load[1]:.1f}"


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="dbops-bench-migrate-"))
    server = pg_harness.start_cluster()
    load = os.getloadavg()
    print(f"pg_migrate benchmark: PostgreSQL {server.query('SHOW server_version')[0][0]} at"
          f" {server.host}:{server.port}; load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f};"
          f" {os.cpu_count()} CPUs; best of {REPEAT} (slow peers once)", flush=True)
    try:
        bench = Bench(server, work)
        workloads = []
        if TINY:
            workloads.append(Workload("tiny", tiny(TINY), work))
        if REALISTIC:
            workloads.append(Workload("realistic", realistic(REALISTIC), work))
        for w in workloads:
            for mode in DURABILITY:
                bench.phase(w, mode)
        load = os.getloadavg()
        print(f"\nload average at the end {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")
    finally:
        pg_harness.stop_cluster(server)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
