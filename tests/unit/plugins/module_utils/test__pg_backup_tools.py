"""Which pg_dump / pg_restore / psql a backup or restore uses, per server major (no server)."""

from __future__ import annotations

import os

import pytest

from ansible_collections.dbops.datastores.plugins.module_utils import _pg_backup as pgb
from ansible_collections.dbops.datastores.plugins.module_utils._errors import DbopsError

DEBIAN_15 = ("/usr/lib/postgresql/15/bin/pg_dump", 15)
TOOLS_18 = ("/opt/pg18/bin/pg_dump", 18)
DEBIAN_16 = ("/usr/lib/postgresql/16/bin/pg_dump", 16)


@pytest.mark.parametrize(("text", "major"), [
    ("pg_dump (PostgreSQL) 18.6", 18),
    ("pg_restore (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)", 15),
    ("psql (PostgreSQL) 13.23", 13),
    ("", None),
    (None, None),
    ("pg_dump 9", None),
])
def test_parse_tool_major(text, major):
    assert pgb.parse_tool_major(text) == major


def test_the_tool_of_the_server_major_wins_when_present():
    assert pgb.choose_tool("pg_dump", [TOOLS_18, DEBIAN_15], 15, 15) == DEBIAN_15


@pytest.mark.parametrize("server", [13, 14, 16, 17])
def test_without_a_matching_tool_the_newest_newer_one_is_used(server):
    assert pgb.choose_tool("pg_dump", [DEBIAN_15, TOOLS_18, DEBIAN_16], server, server) == (
        DEBIAN_16 if server == 16 else TOOLS_18)


def test_a_tool_older_than_the_minimum_is_never_chosen():
    with pytest.raises(DbopsError, match=r"no pg_dump of PostgreSQL 17 or newer \(found: 15 \(/usr/lib"):
        pgb.choose_tool("pg_dump", [DEBIAN_15, DEBIAN_16], 17, 17)
    with pytest.raises(DbopsError, match="found: none"):
        pgb.choose_tool("pg_dump", [], 15, 15)


def test_equal_majors_keep_the_search_order():
    first, second = ("/a/pg_dump", 18), ("/b/pg_dump", 18)
    assert pgb.choose_tool("pg_dump", [first, second], 13, 13) == first


def test_psql_without_minimum_prefers_the_server_major_else_newest():
    assert pgb.choose_tool("psql", [DEBIAN_15, TOOLS_18], None, 15) == DEBIAN_15
    assert pgb.choose_tool("psql", [DEBIAN_15, TOOLS_18], None, 13) == TOOLS_18


def test_dump_tool_major_from_new_and_old_manifests():
    assert pgb.dump_tool_major({"tool": {"major": 18, "version": "pg_dump (PostgreSQL) 18.6"}}) == 18
    assert pgb.dump_tool_major({"tool": {"version": "pg_dump (PostgreSQL) 15.18"}}) == 15
    assert pgb.dump_tool_major({}) is None


@pytest.mark.parametrize(("tool", "server", "expected"), [
    (18, 13, True), (17, 16, True), (18, 17, False), (16, 13, False), (None, 13, False), (18, None, False),
])
def test_needs_timeout_filter(tool, server, expected):
    assert pgb.needs_timeout_filter(tool, server) is expected


def test_filter_header_drops_the_setting_only_in_the_prelude():
    script = [
        b"--\n", b"-- PostgreSQL database dump\n", b"\\restrict abc\n", b"SET statement_timeout = 0;\n",
        b"SET transaction_timeout = 0;\n", b"SELECT pg_catalog.set_config('search_path', '', false);\n",
        b"\n", b"CREATE TABLE public.t (a text);\n", b"COPY public.t (a) FROM stdin;\n",
        b"SET transaction_timeout = 0;\n", b"\\.\n",
    ]
    out = list(pgb.filter_header(iter(script)))
    assert out == script[:4] + script[5:]


def test_tool_dirs_bin_dir_alone_else_env_debian_then_path(tmp_path):
    assert pgb.tool_dirs("/opt/x/bin", {"DBOPS_PG_BIN_DIRS": "/opt/y", "PATH": "/usr/bin"}) == ["/opt/x/bin"]
    dirs = pgb.tool_dirs(None, {"DBOPS_PG_BIN_DIRS": f"/opt/a{os.pathsep}/opt/b", "PATH": "/usr/bin:/opt/a"})
    assert dirs[:2] == ["/opt/a", "/opt/b"]
    assert dirs[-1] == "/usr/bin"
    assert dirs.count("/opt/a") == 1
    debian = [d for d in dirs if d.startswith("/usr/lib/postgresql/")]
    assert debian == sorted(debian, key=lambda d: int(d.split("/")[4]), reverse=True)


def _fake_tool(directory, name, major):
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(f"#!/bin/sh\necho '{name} (PostgreSQL) {major}.2'\n")
    path.chmod(0o755)
    return str(path)


def test_restore_refuses_an_archive_newer_than_every_pg_restore(tmp_path):
    old = _fake_tool(tmp_path / "15", "pg_restore", 15)
    manifest = {"id": "b1", "format": "custom", "tool": {"version": "pg_dump (PostgreSQL) 18.6"}}
    with pytest.raises(DbopsError, match=r"restore backup b1: it was written by pg_dump 18, which only "
                                         r"pg_restore 18 or newer reads \(find pg_restore: no pg_restore of "
                                         r"PostgreSQL 18 or newer \(found: 15"):
        pgb.restore_tool(manifest, str(tmp_path / "15"), 15)
    assert pgb.restore_tool({**manifest, "tool": {"major": 15}}, str(tmp_path / "15"), 13) == (old, 15)


def test_restore_of_a_plain_dump_takes_any_psql(tmp_path):
    psql = _fake_tool(tmp_path / "15", "psql", 15)
    manifest = {"id": "b1", "format": "plain", "tool": {"major": 18}}
    assert pgb.restore_tool(manifest, str(tmp_path / "15"), 17) == (psql, 15)


def test_find_tool_names_where_it_looked(tmp_path):
    with pytest.raises(DbopsError, match=f"find pg_dump: not found in {tmp_path}"):
        pgb.find_tool("pg_dump", str(tmp_path), 15)
    _fake_tool(tmp_path, "pg_dump", 15)
    with pytest.raises(DbopsError, match="no pg_dump of PostgreSQL 17 or newer"):
        pgb.find_tool("pg_dump", str(tmp_path), 17)
    assert pgb.find_tool("pg_dump", str(tmp_path), 13) == str(tmp_path / "pg_dump")
