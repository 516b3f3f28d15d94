"""pgBackRest helpers without a server: info parsing, the recovery window, target checks, argv, guards."""

from __future__ import annotations

import copy
import datetime as dt
import json
import os
import stat
import sys
from pathlib import Path

import pytest

from ansible_collections.dbops.datastores.plugins.module_utils import _pgbackrest
from ansible_collections.dbops.datastores.plugins.module_utils._errors import DbopsError

# What pgBackRest 2.45 printed for a stanza with a full and an incremental backup.
SAMPLE = Path(__file__).resolve().parents[3] / "fixtures" / "pgbackrest" / "info-2.45-full-incr.json"
INFO = json.loads(SAMPLE.read_text())[0]
FULL_STOP, INCR_STOP = 1796079547, 1796079550
WAL_TIME = 1796079600


def at(epoch: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(epoch, tz=dt.timezone.utc)


def test_iso_and_parse_time_round_trip():
    assert _pgbackrest.iso(FULL_STOP) == "2026-11-30T22:59:07Z"
    assert _pgbackrest.parse_time("2026-11-30T22:59:07Z") == at(FULL_STOP)
    assert _pgbackrest.parse_time("2026-11-30 23:59:07+01:00") == at(FULL_STOP)
    assert _pgbackrest.pg_target(at(FULL_STOP)) == "2026-11-30 22:59:07.000000+00"


@pytest.mark.parametrize("text, cause", [
    ("2026-11-30T22:59:07", "no time zone; add Z or an offset such as +01:00"),
    ("yesterday", "not an ISO 8601 time (e.g. 2026-11-30T14:05:00Z)"),
])
def test_parse_time_refuses_ambiguous_or_bad_times(text, cause):
    with pytest.raises(DbopsError) as err:
        _pgbackrest.parse_time(text)
    assert err.value.msg == f"read target time {text!r}: {cause}"


def test_stanza_view_has_backups_sizes_wal_range_and_window():
    view = _pgbackrest.stanza_view(INFO, WAL_TIME)
    assert view["status"] == {"code": 0, "message": "ok"}
    assert view["backups"][0] == {
        "label": "20261130-225904F", "type": "full", "start": "2026-11-30T22:59:04Z",
        "stop": "2026-11-30T22:59:07Z", "size": 23058137, "repo_size": 3364336, "reference": [],
        "wal_start": "000000010000000000000002", "wal_stop": "000000010000000000000002", "error": False}
    assert view["backups"][1]["reference"] == ["20261130-225904F"]
    assert view["archive"] == {"id": "15-1", "min": "000000010000000000000001",
                               "max": "000000010000000000000005"}
    assert view["recovery_window"] == {"from": "2026-11-30T22:59:07Z", "to": "2026-11-30T23:00:00Z",
                                       "to_source": "newest archived WAL segment"}
    assert view["summary"] == ("stanza main: can restore to any moment between 2026-11-30T22:59:07Z and "
                               "2026-11-30T23:00:00Z (1 full, 1 incr backups)")


def test_window_without_wal_time_ends_at_the_newest_backup():
    window = _pgbackrest.recovery_window(INFO, None)
    assert window == {"from": "2026-11-30T22:59:07Z", "to": "2026-11-30T22:59:10Z",
                      "to_source": "newest backup"}


def test_backups_whose_wal_is_gone_or_failed_do_not_open_the_window():
    raw = copy.deepcopy(INFO)
    raw["archive"][0]["min"] = "000000010000000000000003"   # the full's WAL expired
    assert _pgbackrest.recovery_window(raw, WAL_TIME)["from"] == "2026-11-30T22:59:10Z"
    raw["backup"][1]["error"] = True
    assert _pgbackrest.recovery_window(raw, WAL_TIME) is None
    assert (_pgbackrest.stanza_view(raw, WAL_TIME)["summary"]
            == "stanza main: no restorable backup; nothing to restore")


def test_missing_stanza_and_wrong_passphrase_statuses():
    missing = {"archive": [], "backup": [], "name": "nope", "repo": [
        {"key": 1, "status": {"code": 1, "message": "missing stanza path"}}],
        "status": {"code": 1, "message": "missing stanza path"}}
    view = _pgbackrest.stanza_view(missing)
    assert view["status"] == {"code": 1, "message": "missing stanza path"}
    assert view["summary"] == "stanza nope: missing stanza path; nothing to restore"
    with pytest.raises(DbopsError, match=r"^read stanza nope: unknown stanza \(missing stanza path\)"):
        _pgbackrest.check_stanza_status(view)

    garbage = ("[FormatError] unable to load info file '/r/backup.info':\n"
               "FormatError: key/value \x01\x9f\x00 line 1")
    wrong = {"archive": [], "backup": [], "name": "main", "repo": [
        {"key": 1, "status": {"code": 99, "message": garbage}}], "status": {"code": 99, "message": "other"}}
    view = _pgbackrest.stanza_view(wrong)
    assert view["status"]["message"] == ("other: repo1: [FormatError] unable to load info file "
                                         "'/r/backup.info':")
    with pytest.raises(DbopsError, match=r"^read stanza main: cannot decrypt the repository's info "
                                         r"files: wrong passphrase"):
        _pgbackrest.check_stanza_status(view)


def test_parse_info_accepts_control_bytes_and_refuses_non_json():
    text = '[{"name": "main", "status": {"code": 99, "message": "bad \x01 bytes"}}]'
    assert _pgbackrest.parse_info(text)[0]["name"] == "main"
    with pytest.raises(DbopsError, match=r"^read pgbackrest info: not JSON"):
        _pgbackrest.parse_info("ERROR: [055]")
    with pytest.raises(DbopsError, match=r"^read pgbackrest info: expected a list of stanzas"):
        _pgbackrest.parse_info('{"name": "main"}')


def test_newest_segment_time_reads_the_push_time():
    listing = json.dumps({
        "000000010000000000000005-abc.gz": {"type": "file", "size": 10, "time": WAL_TIME},
        "000000010000000000000005.partial-x": {"type": "file", "time": WAL_TIME + 99},
        "000000010000000000000004-def.gz": {"type": "file", "time": WAL_TIME - 5}})
    assert _pgbackrest.newest_segment_time(listing, "000000010000000000000005") == WAL_TIME
    assert _pgbackrest.newest_segment_time("{}", "000000010000000000000005") is None
    assert _pgbackrest.newest_segment_time("not json", "000000010000000000000005") is None


def test_validate_target_inside_before_and_after_the_window():
    view = _pgbackrest.stanza_view(INFO, WAL_TIME)
    _pgbackrest.validate_target(at(FULL_STOP + 10), view)
    _pgbackrest.validate_target(None, view)
    with pytest.raises(DbopsError) as err:
        _pgbackrest.validate_target(at(FULL_STOP - 1), view)
    assert err.value.msg == ("plan restore to 2026-11-30T22:59:06Z: before the oldest backup's end "
                             "(2026-11-30T22:59:07Z); the stanza can restore to moments between "
                             "2026-11-30T22:59:07Z and 2026-11-30T23:00:00Z")
    with pytest.raises(DbopsError, match=r"^plan restore to 2026-11-30T23:00:01Z: after the newest "
                                         r"archived WAL"):
        _pgbackrest.validate_target(at(WAL_TIME + 1), view)


def test_without_the_wal_time_only_the_future_is_after_the_window():
    view = _pgbackrest.stanza_view(INFO, None)
    assert view["recovery_window"]["to_source"] == "newest backup"
    _pgbackrest.validate_target(at(INCR_STOP + 60), view)
    future = dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1)
    with pytest.raises(DbopsError, match=r"^plan restore to .*: in the future \(now "):
        _pgbackrest.validate_target(future, view)


def test_choose_backup_takes_the_newest_that_ended_before_the_target():
    assert _pgbackrest.choose_backup(INFO, at(FULL_STOP + 1))["label"] == "20261130-225904F"
    assert _pgbackrest.choose_backup(INFO, at(INCR_STOP))["label"] == "20261130-225904F_20261130-225908I"
    assert _pgbackrest.choose_backup(INFO, None)["type"] == "incr"


def test_restore_argv_scratch_and_replace():
    target = at(FULL_STOP + 10)
    scratch = _pgbackrest.restore_argv("pgbackrest", "/etc/pgbackrest/pgbackrest.conf", "main",
                                       data_directory="/srv/drill/data", mode="scratch", target_time=target,
                                       target_action="promote", backup_set="20261130-225904F")
    assert scratch == ["pgbackrest", "--config=/etc/pgbackrest/pgbackrest.conf", "--stanza=main",
                       "--pg1-path=/srv/drill/data", "--set=20261130-225904F", "--type=time",
                       "--target=2026-11-30 22:59:17.000000+00", "--target-action=promote",
                       "--archive-mode=off", "--tablespace-map-all=/srv/drill/data.tablespaces", "restore"]
    replace = _pgbackrest.restore_argv("pgbackrest", "/c", "main",
                                       data_directory="/var/lib/postgresql/15/main",
                                       mode="replace", target_time=None, target_action="promote",
                                       backup_set=None)
    assert replace == ["pgbackrest", "--config=/c", "--stanza=main", "--pg1-path=/var/lib/postgresql/15/main",
                       "--delta", "restore"]
    with pytest.raises(DbopsError, match="mode must be one of scratch, replace"):
        _pgbackrest.restore_argv("pgbackrest", "/c", "main", data_directory="/d", mode="overwrite",
                                 target_time=None, target_action="promote", backup_set=None)


def test_no_secret_ever_reaches_an_argv():
    with pytest.raises(DbopsError, match=r"--repo1-cipher-pass must not be on the command line"):
        _pgbackrest.assert_no_secret(["pgbackrest", "--repo1-cipher-pass=x", "info"])
    with pytest.raises(DbopsError):
        _pgbackrest.assert_no_secret(["pgbackrest", "--repo2-s3-key=x"])
    _pgbackrest.assert_no_secret(_pgbackrest.info_argv("pgbackrest", "/c", "main"))


@pytest.mark.parametrize("stanza", ["../x", "a b", "", "x;rm", "-main"])
def test_stanza_names_are_checked(stanza):
    with pytest.raises(DbopsError, match="letters, digits"):
        _pgbackrest.check_stanza_name(stanza)


def test_repo_ls_argv_lists_only_the_newest_segment():
    assert _pgbackrest.repo_ls_argv("pgbackrest", "/c", "main", "15-1", "000000010000000000000005") == [
        "pgbackrest", "--config=/c", "--stanza=main", "--output=json", "--filter=^000000010000000000000005-",
        "repo-ls", "archive/main/15-1/0000000100000000"]
    with pytest.raises(DbopsError):
        _pgbackrest.repo_ls_argv("pgbackrest", "/c", "main", "../..", "000000010000000000000005")


LIVE = ["/var/lib/postgresql/15/main"]


@pytest.mark.parametrize("case", [
    ("scratch", "/srv/drill", "non-empty", None, "absent", "scratch mode needs an empty or absent directory"),
    ("scratch", "/srv/drill", "absent", 4242, "absent", "a postmaster (PID 4242) is running on it"),
    ("scratch", "/var/lib/postgresql/15/main/drill", "absent", None, "absent",
     "overlaps the live data directory"),
    ("scratch", "/var/lib/postgresql", "empty", None, "absent", "overlaps the live data directory"),
    ("scratch", "/srv/drill", "absent", None, "non-empty", "is not empty"),
    ("scratch", "relative/dir", "absent", None, "absent", "must be an absolute path"),
    ("scratch", "/srv/file", "not-a-directory", None, "absent", "exists and is not a directory"),
    ("replace", "/srv/empty", "empty", None, "absent",
     "replace mode needs the stopped cluster's data directory"),
    ("replace", "/var/lib/postgresql/15/main", "non-empty", 17, "absent", "a postmaster (PID 17) is running"),
])
def test_restore_target_guards(case):
    mode, path, state, pid, tbs, msg = case
    with pytest.raises(DbopsError) as err:
        _pgbackrest.check_restore_target(mode, path, state=state, postmaster_pid=pid, live_paths=LIVE,
                                         tablespace_state=tbs)
    assert msg in err.value.msg
    assert err.value.msg.startswith(f"restore into {path}: ")


def test_restore_target_guards_accept(tmp_path):
    guard = _pgbackrest.check_restore_target
    guard("scratch", "/srv/drill", state="absent", postmaster_pid=None, live_paths=LIVE,
          tablespace_state="absent")
    guard("scratch", "/srv/drill", state="empty", postmaster_pid=None, live_paths=LIVE,
          tablespace_state="empty")
    (tmp_path / "PG_VERSION").write_text("15\n")
    guard("replace", str(tmp_path), state="non-empty", postmaster_pid=None, live_paths=[str(tmp_path)],
          tablespace_state="absent")
    os.unlink(tmp_path / "PG_VERSION")
    (tmp_path / "x").write_text("")
    with pytest.raises(DbopsError, match="no PG_VERSION"):
        guard("replace", str(tmp_path), state="non-empty", postmaster_pid=None, live_paths=[],
              tablespace_state="absent")


@pytest.mark.parametrize("mode, owner, msg", [
    (0o600, 1000, None), (0o640, 1000, None), (0o600, 0, None),
    (0o644, 1000, "readable by others (mode 0644)"),
    (0o660, 1000, "writable by group or others (mode 0660)"),
    (0o600, 1001, "owned by uid 1001, not by the user running pgBackRest (uid 1000) or root"),
])
def test_config_file_owner_and_mode(mode, owner, msg):
    if msg is None:
        _pgbackrest.check_config_file("/c", stat.S_IFREG | mode, owner, 1000)
        return
    with pytest.raises(DbopsError) as err:
        _pgbackrest.check_config_file("/c", stat.S_IFREG | mode, owner, 1000)
    assert err.value.msg.startswith(f"read /c: {msg}")


def test_config_pg_paths_and_directory_state(tmp_path):
    text = "[global]\nrepo1-path=/r\n[main]\npg1-path = /var/lib/postgresql/15/main/\n pg2-path=/other\n"
    assert _pgbackrest.config_pg_paths(text) == ["/var/lib/postgresql/15/main", "/other"]
    assert _pgbackrest.directory_state(str(tmp_path / "none")) == "absent"
    assert _pgbackrest.directory_state(str(tmp_path)) == "empty"
    (tmp_path / "f").write_text("")
    assert _pgbackrest.directory_state(str(tmp_path)) == "non-empty"
    assert _pgbackrest.directory_state(str(tmp_path / "f")) == "not-a-directory"
    os.symlink(tmp_path, tmp_path / "link")
    assert _pgbackrest.directory_state(str(tmp_path / "link")) == "not-a-directory"


def test_running_postmaster_reads_the_pid_file(tmp_path):
    assert _pgbackrest.running_postmaster(str(tmp_path)) is None
    (tmp_path / "postmaster.pid").write_text(f"{os.getpid()}\n/data\n")
    assert _pgbackrest.running_postmaster(str(tmp_path)) == os.getpid()
    (tmp_path / "postmaster.pid").write_text("999999999\n")
    assert _pgbackrest.running_postmaster(str(tmp_path)) is None
    (tmp_path / "postmaster.pid").write_text("garbage\n")
    assert _pgbackrest.running_postmaster(str(tmp_path)) is None


def test_remove_scratch_keeps_a_directory_that_existed(tmp_path):
    data = tmp_path / "data"
    (data / "base").mkdir(parents=True)
    (data / "PG_VERSION").write_text("15")
    (tmp_path / "data.tablespaces").mkdir()
    _pgbackrest.remove_scratch(str(data), existed=True)
    assert data.is_dir() and not list(data.iterdir())
    assert not (tmp_path / "data.tablespaces").exists()
    (data / "x").write_text("")
    _pgbackrest.remove_scratch(str(data), existed=False)
    assert not data.exists()


def test_check_free_space_refuses_a_scratch_restore_that_cannot_fit(tmp_path):
    _pgbackrest.check_free_space("/srv/copy", 10 * 1024 * 1024, 10 * 1024 * 1024)  # just fits
    _pgbackrest.check_free_space("/srv/copy", None, 5)  # size unknown: pgBackRest decides
    _pgbackrest.check_free_space("/srv/copy", 5, None)  # free space unknown
    with pytest.raises(DbopsError) as err:
        _pgbackrest.check_free_space("/srv/copy", 30 * 1024 * 1024, 3 * 1024 * 1024)
    assert err.value.msg == ("restore into /srv/copy: the backup needs 30.0 MiB and the file system holds "
                             "3.0 MiB free (nothing was changed)")
    # an absent directory is measured on its nearest existing parent
    assert _pgbackrest.free_bytes(str(tmp_path / "a" / "b")) == _pgbackrest.free_bytes(str(tmp_path)) > 0


def test_replace_growth_is_the_backup_beyond_what_the_directory_holds():
    assert _pgbackrest.replace_growth(100, 30) == 70
    assert _pgbackrest.replace_growth(30, 100) == 0  # shrinks: rewritten in place, nothing to add
    assert _pgbackrest.replace_growth(None, 30) is None  # size unknown: pgBackRest decides
    assert _pgbackrest.replace_growth(100, None) is None  # the directory could not be read


def test_check_free_space_refuses_a_replace_restore_that_cannot_grow_enough():
    mib = 1024 * 1024
    _pgbackrest.check_free_space("/var/lib/pg", 20 * mib, 20 * mib, replacing=10 * mib)  # just fits
    with pytest.raises(DbopsError) as err:
        _pgbackrest.check_free_space("/var/lib/pg", 20 * mib, 3 * mib, replacing=10 * mib)
    assert err.value.msg == ("restore into /var/lib/pg: the backup is 30.0 MiB, the data directory holds "
                             "10.0 MiB now, so it grows by at least 20.0 MiB, and the file system holds "
                             "3.0 MiB free (nothing was changed)")


def test_used_bytes_counts_files_and_tablespaces_once(tmp_path):
    data = tmp_path / "data"
    (data / "base" / "1").mkdir(parents=True)
    (data / "base" / "1" / "1259").write_bytes(b"x" * 8192)
    (data / "PG_VERSION").write_text("15\n")
    tablespace = tmp_path / "ts"
    (tablespace / "PG_15_1").mkdir(parents=True)
    (tablespace / "PG_15_1" / "16384").write_bytes(b"y" * 4096)
    (data / "pg_tblspc").mkdir()
    (data / "pg_tblspc" / "16400").symlink_to(tablespace)
    (data / "base" / "1" / "link").symlink_to(data / "PG_VERSION")  # a link is not counted twice
    assert _pgbackrest.used_bytes(str(data)) == 8192 + 3 + 4096
    assert _pgbackrest.used_bytes(str(tmp_path / "absent")) is None  # replace mode refuses it before


def test_used_bytes_is_unknown_when_a_part_cannot_be_read(tmp_path, monkeypatch):
    data = tmp_path / "data"
    (data / "base").mkdir(parents=True)

    def refused(path):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(_pgbackrest.os, "scandir", refused)
    assert _pgbackrest.used_bytes(str(data)) is None


def test_stanza_pg_paths_reads_the_stanza_s_own_sections_only():
    text = ("[global]\nrepo1-path=/repo\n[main]\npg1-path=/var/lib/postgresql/15/main/\n"
            "[main:restore]\npg2-path = /srv/pg2\n[reporting]\npg1-path=/var/lib/postgresql/15/reporting\n")
    assert _pgbackrest.config_pg_paths(text, "main") == ["/var/lib/postgresql/15/main", "/srv/pg2"]
    assert _pgbackrest.config_pg_paths(text, "reporting") == ["/var/lib/postgresql/15/reporting"]
    assert _pgbackrest.config_pg_paths(text, "nope") == []


def test_data_directory_identity_reads_pg_version_and_the_system_identifier(tmp_path):
    assert _pgbackrest.data_directory_identity(str(tmp_path)) == (None, None)
    (tmp_path / "PG_VERSION").write_text("15\n")
    (tmp_path / "global").mkdir()
    (tmp_path / "global" / "pg_control").write_bytes((7_300_000_000_000_000_001).to_bytes(8, sys.byteorder)
                                                     + b"\0" * 100)
    assert _pgbackrest.data_directory_identity(str(tmp_path)) == ("15", 7_300_000_000_000_000_001)
    (tmp_path / "global" / "pg_control").write_bytes(b"\1\2")  # too short: unreadable
    assert _pgbackrest.data_directory_identity(str(tmp_path)) == ("15", None)


STANZA_DB = {"id": 1, "system-id": 7_300_000_000_000_000_001, "version": "15"}
OWN = STANZA_DB["system-id"]
check_replace_target = _pgbackrest.check_replace_target


def test_check_replace_target_accepts_the_stanza_s_own_cluster_or_its_configured_path():
    check_replace_target("/x", "main", version="15", system_id=OWN, stanza_db=STANZA_DB, stanza_paths=[])
    # a cluster created anew at the stanza's path, or one whose pg_control is damaged
    for system_id in (42, None):
        check_replace_target("/var/lib/postgresql/15/main/", "main", version="15", system_id=system_id,
                             stanza_db=STANZA_DB, stanza_paths=["/var/lib/postgresql/15/main"])


@pytest.mark.parametrize(("version", "system_id", "message"), [
    ("16", OWN, "restore into /x: holds a PostgreSQL 16 cluster, the backups of stanza main"
     " are of PostgreSQL 15 (nothing was changed)"),
    (None, OWN, "restore into /x: holds no readable PG_VERSION, the backups of stanza main"
     " are of PostgreSQL 15 (nothing was changed)"),
    ("15", 42, "restore into /x: holds another cluster (system identifier 42; stanza main's is"
     " 7300000000000000001) and is not a pgN-path of stanza main in the pgBackRest configuration; replace"
     " mode overwrites only the stanza's own cluster (nothing was changed)"),
    ("15", None, "restore into /x: holds another cluster (an unreadable global/pg_control; stanza main's is"
     " 7300000000000000001) and is not a pgN-path"),
])
def test_check_replace_target_refuses_another_cluster(version, system_id, message):
    with pytest.raises(DbopsError) as refused:
        check_replace_target("/x", "main", version=version, system_id=system_id, stanza_db=STANZA_DB,
                             stanza_paths=["/var/lib/postgresql/15/main"])
    assert refused.value.msg.startswith(message)


def test_directory_state_names_a_directory_it_cannot_list(tmp_path, monkeypatch):
    def denied(path):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(_pgbackrest.os, "listdir", denied)
    with pytest.raises(DbopsError) as refused:
        _pgbackrest.directory_state(str(tmp_path))
    assert refused.value.msg == (f"read {tmp_path}: cannot list it (Permission denied); run as its owner"
                                 " or root")


def test_a_failed_scratch_restore_reports_its_own_error_when_the_clean_up_fails(tmp_path, monkeypatch):
    target = tmp_path / "copy"
    plan = {"mode": "scratch", "existed": False, "data_directory": str(target), "stanza": "main",
            "command": ["pgbackrest", "restore"]}

    def failing_run(argv, action, timeout=3600):
        raise DbopsError(f"{action}: pgBackRest failed (exit 56)")

    def failing_clean_up(data_directory, existed):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(_pgbackrest, "run", failing_run)
    monkeypatch.setattr(_pgbackrest, "remove_scratch", failing_clean_up)
    with pytest.raises(DbopsError) as failed:
        _pgbackrest.execute_restore(plan)
    assert failed.value.msg == (f"restore stanza main into {target}: pgBackRest failed (exit 56); what it"
                                f" wrote in {target} could not all be removed (Permission denied): remove it"
                                " by hand")
