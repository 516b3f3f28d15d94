"""pgbackrest_restore against a real stanza: check mode, a restore between two markers, replace mode,
and every refusal (nothing written, the live data directory untouched)."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import shutil
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.harness import pgbackrest as pgbr_harness
from tests.harness.proc import mount_tmpfs, unmount


def _restore(ansible, pitr_stanza, check=False, **args):
    stanza = pitr_stanza.stanza
    return pgbr_harness.run_module_as(ansible, stanza, "pgbackrest_restore",
                                      {"config": str(stanza.config), "stanza": "main", **args}, check=check)


@pytest.fixture
def scratch(pitr_stanza) -> Path:
    return pitr_stanza.stanza.base / "scratch" / uuid.uuid4().hex[:8]


def _iso(value: dt.datetime) -> str:
    return value.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z")


def _markers(copy) -> list[str]:
    return [row[0] for row in copy.query("SELECT name FROM pitr_markers ORDER BY name")]


def _tree_digest(path: Path) -> str:
    """Names, sizes and mtimes of every file (a change anywhere changes the digest)."""
    digest = hashlib.sha256()
    for item in sorted(path.rglob("*")):
        if item.is_file():
            info = item.stat()
            digest.update(f"{item.relative_to(path)}:{info.st_size}:{info.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def test_restore_between_markers_check_apply_again(ansible, pitr_stanza, scratch):
    target = _iso(pitr_stanza.target)
    # check mode: the plan, nothing written
    planned = _restore(ansible, pitr_stanza, check=True, data_directory=str(scratch), target_time=target)
    assert not planned.get("failed"), planned.get("msg")
    assert planned["changed"] is True
    plan = planned["plan"]
    assert plan["mode"] == "scratch"
    assert plan["target_time"] == _iso(pitr_stanza.target)
    assert plan["backup_set"].endswith("I")  # the incremental ended before the target
    assert "--archive-mode=off" in plan["command"] and "--type=time" in plan["command"]
    assert not any("cipher" in arg for arg in plan["command"])
    assert not scratch.exists()

    # apply: restored, recovery settings written, the copy reaches the target
    done = _restore(ansible, pitr_stanza, data_directory=str(scratch), target_time=target)
    assert not done.get("failed"), done.get("msg")
    assert done["changed"] is True and done["restore_seconds"] > 0
    auto_conf = (scratch / "postgresql.auto.conf").read_text()
    assert "archive_mode = 'off'" in auto_conf
    assert "recovery_target_time = '" in auto_conf
    copy, sock = pgbr_harness.start_copy(pitr_stanza.stanza, scratch)
    try:
        # Hot standby answers before the end of recovery: wait for the promotion at the target.
        deadline = time.monotonic() + 60
        while copy.query("SELECT pg_is_in_recovery()")[0][0]:
            assert time.monotonic() < deadline, "the copy never left recovery"
            time.sleep(0.2)
        assert _markers(copy) == ["before"]
        assert copy.query("SHOW archive_mode")[0][0] == "off"
    finally:
        pgbr_harness.stop_copy(copy, sock)

    # again: refused, the restored copy untouched
    digest = _tree_digest(scratch)
    again = _restore(ansible, pitr_stanza, data_directory=str(scratch), target_time=target)
    assert again.get("failed") is True and again["changed"] is False
    assert again["msg"] == (f"restore into {scratch}: scratch mode needs an empty or absent directory, this "
                            "one holds files (nothing was changed)")
    assert _tree_digest(scratch) == digest


def test_replace_mode_restores_a_stopped_cluster_to_the_end_of_wal(ansible, pitr_stanza, scratch):
    first = _restore(ansible, pitr_stanza, data_directory=str(scratch), target_time=_iso(pitr_stanza.target))
    assert not first.get("failed"), first.get("msg")
    replaced = _restore(ansible, pitr_stanza, data_directory=str(scratch), mode="replace")
    assert not replaced.get("failed"), replaced.get("msg")
    assert "--delta" in replaced["plan"]["command"] and replaced["plan"]["target_time"] is None
    copy, sock = pgbr_harness.start_copy(pitr_stanza.stanza, scratch)
    try:
        assert _markers(copy) == ["after", "before"]
    finally:
        pgbr_harness.stop_copy(copy, sock)


def test_a_running_postmaster_is_refused_and_the_live_directory_untouched(ansible, pitr_stanza):
    server = pitr_stanza.stanza.server
    live = server.datadir
    pid_before = (live / "postmaster.pid").read_text()
    digest = _tree_digest(live / "global")
    result = _restore(ansible, pitr_stanza, data_directory=str(live), mode="replace")
    assert result.get("failed") is True and result["changed"] is False
    assert result["msg"] == (f"restore into {live}: a postmaster (PID {server.pid}) is running on it; stop "
                             "the cluster first (nothing was changed)")
    assert (live / "postmaster.pid").read_text() == pid_before
    assert _tree_digest(live / "global") == digest
    assert server.query("SELECT count(*) FROM pitr_markers")[0][0] == 2
    # scratch mode on the live directory: refused as well (not empty)
    result = _restore(ansible, pitr_stanza, data_directory=str(live))
    assert result.get("failed") is True
    assert "a postmaster" in result["msg"]


def test_unknown_stanza_is_refused(ansible, pitr_stanza, scratch):
    result = _restore(ansible, pitr_stanza, data_directory=str(scratch), stanza="nope")
    assert result.get("failed") is True and result["changed"] is False
    assert result["msg"] == ("read stanza nope: unknown stanza (missing stanza path); check the stanza name "
                             "and the repository in the configuration")
    assert not scratch.exists()


def test_wrong_passphrase_is_refused(ansible, pitr_stanza, scratch):
    stanza = pitr_stanza.stanza
    bad = stanza.base / f"wrong-{uuid.uuid4().hex[:6]}.conf"
    bad.write_text(stanza.config.read_text().replace(stanza.passphrase, "not-the-passphrase"))
    bad.chmod(0o600)
    pgbr_harness.chown_to_cluster_user(bad)
    try:
        result = _restore(ansible, pitr_stanza, data_directory=str(scratch), config=str(bad))
    finally:
        bad.unlink()
    assert result.get("failed") is True
    assert result["msg"].startswith("read stanza main: cannot decrypt the repository's info files: wrong "
                                    "passphrase (repo1-cipher-pass) or a damaged repository (other: repo1: "
                                    "[FormatError] unable to load info file")
    assert all(ch.isprintable() for ch in result["msg"])
    assert not scratch.exists()


def test_target_outside_the_window_is_refused(ansible, pitr_stanza, scratch):
    info = pgbr_harness.run_module_as(ansible, pitr_stanza.stanza, "pgbackrest_info",
                                      {"config": str(pitr_stanza.stanza.config), "stanza": "main"})
    window = info["stanzas"][0]["recovery_window"]
    too_early = "2000-01-01T00:00:00Z"
    result = _restore(ansible, pitr_stanza, data_directory=str(scratch), target_time=too_early)
    assert result.get("failed") is True
    assert result["msg"] == (f"plan restore to 2000-01-01T00:00:00Z: before the oldest backup's end "
                             f"({window['from']}); the stanza can restore to moments between "
                             f"{window['from']} and {window['to']}")
    too_late = _iso(dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=1)).split(".")[0] + "Z"
    result = _restore(ansible, pitr_stanza, data_directory=str(scratch), target_time=too_late)
    assert result.get("failed") is True
    assert result["msg"].startswith(f"plan restore to {too_late}: after the newest archived WAL "
                                    f"({window['to']})")
    result = _restore(ansible, pitr_stanza, data_directory=str(scratch), target_time="2026-11-30 14:05:00")
    assert result.get("failed") is True
    assert result["msg"] == ("read target time '2026-11-30 14:05:00': no time zone; add Z or an offset "
                             "such as +01:00")
    assert not scratch.exists()


def test_non_empty_scratch_directory_is_refused(ansible, pitr_stanza, scratch):
    scratch.mkdir()
    (scratch / "keep.txt").write_text("mine")
    pgbr_harness.chown_to_cluster_user(scratch)
    result = _restore(ansible, pitr_stanza, data_directory=str(scratch))
    assert result.get("failed") is True
    assert "scratch mode needs an empty or absent directory" in result["msg"]
    assert [p.name for p in scratch.iterdir()] == ["keep.txt"]


@pytest.mark.parametrize("mode", ["scratch", "replace"])
def test_a_restore_that_cannot_fit_is_refused_before_anything_is_written(ansible, pitr_stanza, scratch, mode):
    """A 2 MiB file system: scratch needs the backup's size; replace needs what the stopped
    cluster's directory (here a PG_VERSION only) grows by. Both refused, the directory untouched."""
    scratch.mkdir(parents=True)
    try:
        mount_tmpfs(scratch, "2m", mode="0700")
    except OSError as exc:
        pytest.skip(str(exc))
    try:
        if mode == "replace":  # what replace mode accepts: the stanza's own cluster (its pg_control)
            (scratch / "PG_VERSION").write_text("15\n")
            (scratch / "global").mkdir()
            shutil.copyfile(pitr_stanza.stanza.server.datadir / "global" / "pg_control",
                            scratch / "global" / "pg_control")
        pgbr_harness.chown_to_cluster_user(scratch)
        digest = _tree_digest(scratch)
        result = _restore(ansible, pitr_stanza, data_directory=str(scratch), mode=mode)
        assert result.get("failed") is True and result["changed"] is False
        grows = (r"the backup needs \S+ MiB" if mode == "scratch" else
                 r"the backup is \S+ MiB, the data directory holds \S+ KiB now, so it grows by at least"
                 r" \S+ MiB,")
        assert re.fullmatch(rf"restore into {re.escape(str(scratch))}: {grows} and the file system holds"
                            r" \S+ (KiB|MiB) free \(nothing was changed\)", result["msg"]), result["msg"]
        assert _tree_digest(scratch) == digest
        left = sorted(p.name for p in scratch.iterdir())
        assert left == ([] if mode == "scratch" else ["PG_VERSION", "global"])
    finally:
        unmount(scratch)


OTHER_CLUSTERS = {
    "another system": ("15", 42, "holds another cluster (system identifier 42; stanza main's is "),
    "another major": ("16", None,
                      "holds a PostgreSQL 16 cluster, the backups of stanza main are of PostgreSQL 15"),
}


@pytest.mark.parametrize("other", sorted(OTHER_CLUSTERS))
def test_replace_mode_refuses_another_cluster_s_directory(ansible, pitr_stanza, scratch, other):
    """A stopped cluster that is not the stanza's (another system, another major) and not a pgN-path
    of the stanza: replace mode would overwrite it with the stanza's backup. Refused, untouched."""
    version, identifier, refusal = OTHER_CLUSTERS[other]
    (scratch / "global").mkdir(parents=True)
    (scratch / "PG_VERSION").write_text(f"{version}\n")
    own = (pitr_stanza.stanza.server.datadir / "global" / "pg_control").read_bytes()
    control = own if identifier is None else identifier.to_bytes(8, sys.byteorder) + own[8:]
    (scratch / "global" / "pg_control").write_bytes(control)
    pgbr_harness.chown_to_cluster_user(scratch)
    digest = _tree_digest(scratch)
    result = _restore(ansible, pitr_stanza, data_directory=str(scratch), mode="replace")
    assert result.get("failed") is True and result["changed"] is False
    assert result["msg"].startswith(f"restore into {scratch}: {refusal}"), result["msg"]
    assert result["msg"].endswith("(nothing was changed)")
    assert _tree_digest(scratch) == digest
