"""Metrics of a scheduled pgBackRest backup, from a real ``pgbackrest info --output=json``, no server."""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path

import pytest

from ansible_collections.dbops.datastores.plugins.module_utils import _metrics
from ansible_collections.dbops.datastores.plugins.module_utils import _pgbackrest_metrics as pm
from ansible_collections.dbops.datastores.plugins.module_utils._errors import DbopsError

# What pgBackRest 2.45 printed for a stanza with a full and an incremental backup (the sample
# test__pgbackrest.py reads too).
SAMPLE = Path(__file__).resolve().parents[3] / "fixtures" / "pgbackrest" / "info-2.45-full-incr.json"
INFO = json.loads(SAMPLE.read_text())
NOW = 1796080000.0


def lines(metrics: list[_metrics.Metric]) -> list[str]:
    return [line for line in _metrics.render(metrics).splitlines() if not line.startswith("#")]


def test_successful_incremental_run_reports_every_figure_of_info():
    raw = pm.find_stanza(INFO, "main")
    got = lines(pm.run_samples("main", "incr", 0, duration=2.5, now=NOW, raw=raw))
    assert got == [
        'dbops_pgbackrest_backup_last_run_success{stanza="main",type="incr"} 1',
        'dbops_pgbackrest_backup_last_run_timestamp_seconds{stanza="main",type="incr"} 1796080000',
        'dbops_pgbackrest_backup_last_run_exit_code{stanza="main",type="incr"} 0',
        'dbops_pgbackrest_backup_last_run_duration_seconds{stanza="main",type="incr"} 2.5',
        'dbops_pgbackrest_backup_last_success_timestamp_seconds{stanza="main",type="full"} 1796079547',
        'dbops_pgbackrest_backup_last_success_timestamp_seconds{stanza="main",type="incr"} 1796079550',
        'dbops_pgbackrest_backup_duration_seconds{stanza="main",type="full"} 3',
        'dbops_pgbackrest_backup_duration_seconds{stanza="main",type="incr"} 2',
        'dbops_pgbackrest_backup_size_bytes{stanza="main",type="full"} 23058137',
        'dbops_pgbackrest_backup_size_bytes{stanza="main",type="incr"} 23090905',
        'dbops_pgbackrest_backup_delta_bytes{stanza="main",type="full"} 23058137',
        'dbops_pgbackrest_backup_delta_bytes{stanza="main",type="incr"} 663818',
        'dbops_pgbackrest_backup_repo_delta_bytes{stanza="main",type="full"} 3364336',
        'dbops_pgbackrest_backup_repo_delta_bytes{stanza="main",type="incr"} 68848',
        'dbops_pgbackrest_backups{stanza="main",type="full"} 1',
        'dbops_pgbackrest_backups{stanza="main",type="diff"} 0',
        'dbops_pgbackrest_backups{stanza="main",type="incr"} 1',
        'dbops_pgbackrest_newest_backup_timestamp_seconds{stanza="main"} 1796079550',
        'dbops_pgbackrest_stanza_status{stanza="main"} 0',
        'dbops_pgbackrest_info_success{stanza="main"} 1',
    ]


def test_failed_run_reports_the_exit_code_and_keeps_the_repository_figures():
    got = lines(pm.run_samples("main", "full", 82, duration=61.0, now=NOW, raw=pm.find_stanza(INFO, "main")))
    assert 'dbops_pgbackrest_backup_last_run_success{stanza="main",type="full"} 0' in got
    assert 'dbops_pgbackrest_backup_last_run_exit_code{stanza="main",type="full"} 82' in got
    # the newest full backup in the repository is still the one before
    assert ('dbops_pgbackrest_backup_last_success_timestamp_seconds{stanza="main",type="full"} 1796079547'
            in got)


def test_failed_info_after_a_successful_backup_still_reports_the_success():
    got = lines(pm.run_samples("main", "diff", 0, duration=4.0, now=NOW, raw=None))
    assert got == [
        'dbops_pgbackrest_backup_last_run_success{stanza="main",type="diff"} 1',
        'dbops_pgbackrest_backup_last_run_timestamp_seconds{stanza="main",type="diff"} 1796080000',
        'dbops_pgbackrest_backup_last_run_exit_code{stanza="main",type="diff"} 0',
        'dbops_pgbackrest_backup_last_run_duration_seconds{stanza="main",type="diff"} 4',
        'dbops_pgbackrest_backup_last_success_timestamp_seconds{stanza="main",type="diff"} 1796080000',
        'dbops_pgbackrest_newest_backup_timestamp_seconds{stanza="main"} 1796080000',
        'dbops_pgbackrest_info_success{stanza="main"} 0',
    ]


def test_failed_run_and_failed_info_report_only_the_failure():
    got = lines(pm.run_samples("main", "incr", 1, duration=0.2, now=NOW, raw=None))
    assert not any("last_success" in line or "newest" in line for line in got)
    assert 'dbops_pgbackrest_backup_last_run_success{stanza="main",type="incr"} 0' in got


def test_backups_with_errors_do_not_count():
    raw = copy.deepcopy(pm.find_stanza(INFO, "main"))
    raw["backup"][1]["error"] = True
    got = lines(pm.run_samples("main", "incr", 0, duration=1.0, now=NOW, raw=raw))
    assert 'dbops_pgbackrest_newest_backup_timestamp_seconds{stanza="main"} 1796079547' in got
    assert 'dbops_pgbackrest_backups{stanza="main",type="incr"} 0' in got
    assert not any('last_success_timestamp_seconds{stanza="main",type="incr"}' in line for line in got)


def test_newest_of_a_type_is_the_latest_stop():
    raw = copy.deepcopy(pm.find_stanza(INFO, "main"))
    later = copy.deepcopy(raw["backup"][1])
    later["timestamp"] = {"start": 1796079900, "stop": 1796079960}
    raw["backup"].insert(1, later)  # order in the list does not decide
    assert pm.newest_by_type(raw)["incr"]["timestamp"]["stop"] == 1796079960


def test_unknown_stanza_and_bad_names():
    assert pm.find_stanza(INFO, "other") is None
    with pytest.raises(DbopsError, match="not a stanza name"):
        pm.filename("../x")
    with pytest.raises(DbopsError, match="type must be one of"):
        pm.run_samples("main", "weekly", 0, duration=1.0, now=NOW, raw=None)
    assert pm.filename("main") == "dbops_pgbackrest_main.prom"


def test_previous_samples_carry_over_where_this_run_set_none(tmp_path):
    raw = pm.find_stanza(INFO, "main")
    first = pm.run_samples("main", "full", 0, duration=3.0, now=NOW - 3600, raw=raw)
    path = _metrics.write_textfile(str(tmp_path), pm.filename("main"), _metrics.render(first))
    # an incremental run whose backup and info failed
    fresh = pm.run_samples("main", "incr", 1, duration=0.5, now=NOW, raw=None)
    previous = _metrics.read_samples(path, {f.name for f in fresh})
    got = lines(pm.carry_over(fresh, previous))
    # the full run's gauges stay, the incremental's failure is new, the last successes stay
    assert 'dbops_pgbackrest_backup_last_run_success{stanza="main",type="full"} 1' in got
    assert 'dbops_pgbackrest_backup_last_run_success{stanza="main",type="incr"} 0' in got
    assert ('dbops_pgbackrest_backup_last_success_timestamp_seconds{stanza="main",type="incr"} 1796079550'
            in got)
    assert 'dbops_pgbackrest_newest_backup_timestamp_seconds{stanza="main"} 1796079550' in got
    assert 'dbops_pgbackrest_info_success{stanza="main"} 0' in got  # fresh wins over the carried 1
    assert sum("info_success" in line for line in got) == 1
    assert os.listdir(tmp_path) == ["dbops_pgbackrest_main.prom"]
