"""The health playbook: facts from several hosts, one self-contained HTML report, rendered in
headless Chromium; the numbers in the page are the numbers in the facts."""

from __future__ import annotations

import json
import os
import shutil
import stat
import struct
import subprocess
import zlib
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml

from tests.harness.proc import free_port
from tests.harness.runner import REPO_ROOT
from tests.integration.health.conftest import make_monitor

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]


class Page(HTMLParser):
    """Collects hosts, their data-metric values, table bars and finding rows."""

    def __init__(self) -> None:
        super().__init__()
        self.hosts: dict[str, dict] = {}
        self.current: dict | None = None
        self.metric: str | None = None
        self.external: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag in ("script", "link", "img", "iframe") or any(
            str(v).startswith(("http:", "https:", "//")) for k, v in attrs if k in ("src", "href")
        ):
            self.external.append(f"{tag} {a}")
        if tag == "section" and "data-host" in a:
            self.current = {
                "status": a["data-status"],
                "metrics": {},
                "values": {},
                "bars": {},
                "findings": [],
                "migrations": {},
            }
            self.hosts[a["data-host"]] = self.current
        if self.current is None:
            return
        if "data-metric" in a:
            self.metric = a["data-metric"]
            if "data-value" in a:
                self.current["values"][a["data-metric"]] = a["data-value"]
            if "data-database" in a:
                self.metric = f"migration:{a['data-database']}"
        if "data-table" in a:
            self.current["bars"][a["data-table"]] = int(a["data-bytes"])
        if "data-finding" in a:
            self.current["findings"].append(a["data-finding"])

    def handle_data(self, data):
        if self.current is not None and self.metric and data.strip():
            self.current["metrics"][self.metric] = data.strip()
            self.metric = None


def png_facts(path: Path) -> tuple[int, int, float]:
    """Width, height and the share of non-white bytes of a PNG (stdlib only)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    pos, idat = 8, b""
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        if kind == b"IDAT":
            idat += data[pos + 8 : pos + 8 + length]
        pos += 12 + length
    raw = zlib.decompress(idat)
    return width, height, sum(1 for b in raw[::7] if b < 0xF0) / max(1, len(raw[::7]))


def test_report_of_three_hosts_renders_and_matches_the_facts(
    ansible, pg_server, pg_stats_server, mongo_server, tmp_path
):
    db = pg_server.create_database()
    pg_server.query(
        "CREATE TABLE orders (id int PRIMARY KEY, note text) WITH (autovacuum_enabled = false);"
        "INSERT INTO orders SELECT g, repeat('x', 100) FROM generate_series(1, 30000) g;"
        "DELETE FROM orders WHERE id % 4 <> 0;"
        "CREATE TABLE customers AS SELECT g AS id FROM generate_series(1, 2000) g;",
        dbname=db,
    )
    stats_db = pg_stats_server.create_database()
    pg_stats_server.query("CREATE EXTENSION pg_stat_statements", dbname=stats_db)
    # The migration version comes from a real pg_migrate run (seed 000's migration 009 shape).
    migrations = tmp_path / "migrations"
    migrations.mkdir()
    (migrations / "V1__init.sql").write_text("CREATE TABLE users (id bigint PRIMARY KEY, email text);\n")
    (migrations / "V009__ten_tables.sql").write_text(
        "".join(f"CREATE TABLE feature_{n} (id bigint PRIMARY KEY, user_id bigint);\n" for n in range(10))
    )
    migrate = ansible.module(
        "dbops.datastores.pg_migrate", pg_stats_server.params(login_db=stats_db, path=str(migrations))
    )
    assert migrate.get("failed") is not True, migrate.get("msg")
    role, password = make_monitor(pg_stats_server)
    pg_stats_server.query(f"GRANT SELECT ON dbops_schema_history TO {role}", dbname=stats_db)
    mongo_db = mongo_server.database_name()
    with mongo_server.client() as client:
        client[mongo_db].events.insert_many([{"n": i} for i in range(500)])

    backups = tmp_path / "backups"
    backups.mkdir(mode=0o700)
    backup = ansible.module("dbops.datastores.pg_backup", pg_server.params(root=str(backups), database=db))
    assert backup.get("failed") is not True, backup.get("msg")
    empty_root = tmp_path / "no-backups-yet"
    empty_root.mkdir()

    local = {
        "ansible_connection": "local",
        "ansible_python_interpreter": os.environ.get(
            "DBOPS_TEST_PYTHON", str(Path(ansible.env["PATH"].split(os.pathsep)[0]) / "python")
        ),
    }
    inventory = {
        "all": {
            "vars": {**local, "health_mongodb_python": local["ansible_python_interpreter"]},
            "children": {
                "postgresql": {
                    "hosts": {
                        "pg-main": {
                            "health_postgresql": pg_server.params(databases=[db]),
                            "health_backup_root": str(backups),
                            "health_backup_max_age": "24h",
                        },
                        "pg-stats": {
                            "health_postgresql": pg_stats_server.params(
                                login_user=role, login_password=password, databases=[stats_db]
                            )
                        },
                        "pg-down": {
                            "health_postgresql": pg_server.params(login_port=free_port(), connect_timeout=3)
                        },
                        "both-1": {},
                    }
                },
                "mongodb": {
                    "hosts": {
                        "mongo-1": {
                            "health_mongodb": mongo_server.params(databases=[mongo_db]),
                            "health_backup_root": str(empty_root),
                        },
                        "mongo-down": {
                            "health_mongodb": mongo_server.params(login_port=free_port(), connect_timeout=3)
                        },
                        # In both groups: one report entry per engine.
                        "both-1": {
                            "health_postgresql": pg_server.params(databases=[db]),
                            "health_mongodb": mongo_server.params(databases=[mongo_db]),
                        },
                    }
                },
            },
        }
    }
    inventory_path = tmp_path / "inventory.yml"
    inventory_path.write_text(yaml.safe_dump(inventory))
    report, facts_json = tmp_path / "health.html", tmp_path / "health.json"
    run = ansible.playbook(
        REPO_ROOT / "playbooks" / "health.yml",
        inventory=inventory_path,
        extra_vars={
            "health_report_path": str(report),
            "health_report_json": str(facts_json),
            "health_report_title": "Staging databases",
            "health_fail_on": "critical",
        },
    )
    pg_stats_server.query(f"REVOKE ALL ON dbops_schema_history FROM {role}", dbname=stats_db)
    pg_stats_server.query(f"DROP ROLE {role}")
    # health_fail_on=critical: the report is written, then the run turns red for the hosts down
    assert run.rc != 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "health_fail_on=critical: " in run.stdout and "mongo-down mongodb: no health facts" in run.stdout
    for written in (report, facts_json):  # reports name hosts and statement shapes: not world-readable
        assert stat.S_IMODE(written.stat().st_mode) == 0o640, written

    listed = json.loads(facts_json.read_text())
    both = [e for e in listed if e["host"] == "both-1"]
    assert sorted(e["engine"] for e in both) == ["mongodb", "postgresql"]
    assert all(e["health"]["score"] is not None and e["error"] is None for e in both), both
    assert {e["engine"]: e["health"]["server"]["version"] for e in both}["mongodb"] == next(
        e for e in listed if e["host"] == "mongo-1")["health"]["server"]["version"]
    down = next(e for e in listed if e["host"] == "mongo-down")
    assert down["engine"] == "mongodb" and down["health"] is None and down["error"], down
    entries = {e["host"]: e for e in listed if e["host"] not in ("both-1", "mongo-down")}
    assert set(entries) == {"pg-main", "pg-stats", "pg-down", "mongo-1"}
    text = report.read_text()
    page = Page()
    page.feed(text)
    assert page.external == []
    for secret in (pg_server.password, pg_stats_server.password, password):
        assert secret not in text and secret not in facts_json.read_text() and secret not in run.stdout
    assert "Staging databases" in text
    assert list(page.hosts)[:2] == ["mongo-down", "pg-down"]  # worst first: the hosts without facts
    assert page.hosts["pg-down"]["status"] == "failed"
    assert "Connection refused" in entries["pg-down"]["error"]

    for name in ("pg-main", "pg-stats", "mongo-1"):
        health, shown = entries[name]["health"], page.hosts[name]
        assert shown["status"] == health["status"], name
        assert shown["metrics"]["score"] == str(health["score"]), name
        assert shown["values"]["size_bytes"] == str(health["size_bytes"]), name
        assert shown["metrics"]["connections_current"] == str(health["connections"]["current"]), name
        assert shown["findings"] == [f["check"] for f in health["findings"]], name
    for name in ("pg-main", "pg-stats"):
        health, shown = entries[name]["health"], page.hosts[name]
        assert shown["metrics"]["cache_hit_ratio"] == f"{health['cache']['hit_ratio_percent']:.1f}%"
        # The page draws the ten largest tables, in the order of the facts.
        assert shown["bars"] == {
            f"{t['database']}.{t['schema']}.{t['name']}": t["total_bytes"] for t in health["tables"][:10]
        }
    # Backup freshness from backup_info: a fresh backup, no backup at all, not configured.
    pg_backup_facts = entries["pg-main"]["backup"]
    assert pg_backup_facts["stale"] is False
    assert page.hosts["pg-main"]["values"]["backup_age_s"] == str(pg_backup_facts["newest_age_s"])
    assert pg_backup_facts["groups"][0]["database"] == db
    assert entries["mongo-1"]["backup"]["stale"] is True
    assert page.hosts["mongo-1"]["metrics"]["backup"] == "no backup found"
    assert page.hosts["pg-stats"]["metrics"]["backup"] == "not configured"
    # The numbers are the server's.
    orders_bytes = pg_server.query("SELECT pg_total_relation_size('orders')", dbname=db)[0][0]
    assert page.hosts["pg-main"]["bars"][f"{db}.public.orders"] == orders_bytes
    assert "dead_tuples" in page.hosts["pg-main"]["findings"]
    assert page.hosts["pg-main"]["metrics"]["migration"] == "not configured"
    assert page.hosts["pg-stats"]["metrics"][f"migration:{stats_db}"] == migrate["version"] == "009"
    assert entries["pg-stats"]["health"]["migrations"][0]["applied_count"] == 2
    mongo = entries["mongo-1"]["health"]
    assert page.hosts["mongo-1"]["bars"] == {
        f"{c['database']}.{c['name']}": c.get("storage_bytes", c.get("size_bytes"))
        for c in mongo["collections"][:10]
    }
    if mongo["cache"] is None:  # thin serverStatus: shown as not reported, not as 0
        assert page.hosts["mongo-1"]["metrics"]["cache_used"] == "not reported"

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("chromium is not installed (apt-get install -y chromium)")
    png = tmp_path / "health.png"
    subprocess.run(
        [
            chromium,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={tmp_path / 'chromium'}",
            f"--screenshot={png}",
            "--window-size=1280,2600",
            report.as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    width, height, inked = png_facts(png)
    assert (width, height) == (1280, 2600)
    assert inked > 0.01, "the screenshot is blank"
    keep = os.environ.get("DBOPS_TEST_ARTIFACTS")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(report, Path(keep) / "health.html")
        shutil.copy(png, Path(keep) / "health.png")
