"""Text files and notifications of dbops-backup runs (no server)."""

from __future__ import annotations

import json
import os
import stat

import pytest
from prometheus_client.parser import text_string_to_metric_families

from ansible_collections.dbops.datastores.plugins.module_utils import _backup_metrics as bm
from ansible_collections.dbops.datastores.plugins.module_utils import _metrics
from ansible_collections.dbops.datastores.plugins.module_utils._errors import DbopsError


def samples(path):
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def key(name, **labels):
    return (name, tuple(sorted(labels.items())))


def test_render_escapes_labels_and_parses():
    metric = _metrics.Metric("dbops_x", 'help with \\ and \n newline')
    metric.add(1.5, database='we"ird\\name\nx')
    metric.add(None, database="absent")  # not reported: no sample at all
    text = _metrics.render([metric])
    parsed = list(text_string_to_metric_families(text))
    assert [(s.labels, s.value) for s in parsed[0].samples] == [({"database": 'we"ird\\name\nx'}, 1.5)]


def test_render_refuses_bad_names():
    with pytest.raises(DbopsError, match="not a metric name"):
        _metrics.render([_metrics.Metric("bad-name", "x", samples=[({}, 1.0)])])
    with pytest.raises(DbopsError, match="not a label name"):
        _metrics.render([_metrics.Metric("ok", "x", samples=[({"bad-label": "v"}, 1.0)])])


def test_read_samples_round_trip_and_ignores_garbage(tmp_path):
    metric = _metrics.Metric("dbops_t", "t")
    metric.add(7, engine="postgresql", database='a"b,c')
    path = tmp_path / "x.prom"
    path.write_text(_metrics.render([metric]) + 'dbops_t{engine="x" 1\ndbops_t{engine="y"} notanumber\n')
    found = _metrics.read_samples(str(path), {"dbops_t"})
    assert found == {("dbops_t", (("database", 'a"b,c'), ("engine", "postgresql"))): 7.0}
    assert _metrics.read_samples(str(tmp_path / "missing.prom"), {"dbops_t"}) == {}


def test_write_textfile_is_atomic_and_checks_the_name(tmp_path):
    path = _metrics.write_textfile(str(tmp_path), "a.prom", "x 1\n", 0o640)
    with open(path, encoding="utf-8") as handle:
        assert handle.read() == "x 1\n"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640
    assert os.listdir(tmp_path) == ["a.prom"]  # no temporary file left behind
    with pytest.raises(DbopsError, match=r"must end in \.prom"):
        _metrics.write_textfile(str(tmp_path), "../a.prom", "", 0o644)


def _log(ok_pg=True, command="run"):
    return {
        "command": command, "host": "db1", "time": "2026-11-30T00:00:00Z", "duration_s": 3.5,
        "backups": [
            {"engine": "postgresql", "database": "app", "ok": ok_pg, "size": 1234, "duration_s": 2.0,
             **({} if ok_pg else {"error": "back up database app: boom"})},
            {"engine": "mongodb", "database": "shop", "ok": True, "size": 99, "duration_s": 1.0},
            {"engine": "mongodb", "database": "later", "ok": True, "skipped": "no such database"},
        ],
        "verifications": [{"engine": "mongodb", "database": "shop", "ok": True, "kind": "restore",
                           "rto_s": 4.2}],
        "retention": {"ok": True, "kept": 5, "removed": ["a", "b"], "removed_partials": []},
    }


def test_success_then_failure_keeps_the_last_success_timestamp(tmp_path):
    bm.write_metrics(str(tmp_path), _log(), 0, now=1000.0)
    jobs = samples(tmp_path / "dbops_backup_jobs.prom")
    assert jobs[key("dbops_backup_success", engine="postgresql", database="app")] == 1
    pg = {"engine": "postgresql", "database": "app"}
    assert jobs[key("dbops_backup_last_success_timestamp_seconds", **pg)] == 1000
    assert jobs[key("dbops_backup_size_bytes", engine="postgresql", database="app")] == 1234
    assert key("dbops_backup_success", engine="mongodb", database="later") not in jobs  # skipped: no metric
    assert not any(k[0] == "dbops_backup_last_failure_timestamp_seconds" for k in jobs)

    bm.write_metrics(str(tmp_path), _log(ok_pg=False), 1, now=2000.0)
    jobs = samples(tmp_path / "dbops_backup_jobs.prom")
    pg = {"engine": "postgresql", "database": "app"}
    assert jobs[key("dbops_backup_success", **pg)] == 0
    assert jobs[key("dbops_backup_last_failure_timestamp_seconds", **pg)] == 2000
    assert jobs[key("dbops_backup_last_success_timestamp_seconds", **pg)] == 1000  # carried over
    assert jobs[key("dbops_backup_size_bytes", **pg)] == 1234  # the last successful backup's size
    run = samples(tmp_path / "dbops_backup_run.prom")
    assert run[key("dbops_backup_run_success", command="run")] == 0
    assert run[key("dbops_backup_run_exit_code", command="run")] == 1
    verify = samples(tmp_path / "dbops_backup_verify.prom")
    assert verify[key("dbops_backup_restore_test_duration_seconds", engine="mongodb", database="shop")] == 4.2
    retention = samples(tmp_path / "dbops_backup_retention.prom")
    assert retention[key("dbops_backup_retention_removed")] == 2
    assert retention[key("dbops_backup_retention_kept")] == 5


def test_a_command_does_not_wipe_other_commands_or_jobs(tmp_path):
    bm.write_metrics(str(tmp_path), _log(), 0, now=1000.0)
    only_mongo = {"command": "backup", "duration_s": 1,
                  "backups": [{"engine": "mongodb", "database": "shop", "ok": True, "size": 5,
                               "duration_s": 1}]}
    bm.write_metrics(str(tmp_path), only_mongo, 0, now=3000.0)
    jobs = samples(tmp_path / "dbops_backup_jobs.prom")
    assert jobs[key("dbops_backup_last_run_timestamp_seconds", engine="postgresql", database="app")] == 1000
    assert jobs[key("dbops_backup_last_run_timestamp_seconds", engine="mongodb", database="shop")] == 3000
    run = samples(tmp_path / "dbops_backup_run.prom")
    assert run[key("dbops_backup_run_success", command="run")] == 1
    assert run[key("dbops_backup_run_success", command="backup")] == 1


def test_check_config():
    bm.check_config({"metrics": {"textfile_dir": "/x"}, "notify": {"webhook_url": "https://h/x"}}, "c")
    for bad, match in (({"metrics": {"textfile_dir": "/x", "nope": 1}}, "unknown option"),
                       ({"metrics": {}}, "textfile_dir"),
                       ({"metrics": {"textfile_dir": "/x", "file_mode": "644"}}, "octal"),
                       ({"notify": {"webhook_url": "file:///etc/passwd"}}, "http"),
                       ({"notify": {"webhook_url": "http://h", "format": "xml"}}, "format"),
                       ({"notify": {"webhook_url": "http://h", "timeout": "10"}}, "timeout"),
                       ({"notify": "x"}, "mapping")):
        with pytest.raises(DbopsError, match=match):
            bm.check_config(bad, "c")


def test_message_has_no_secrets_and_slack_format():
    log = _log(ok_pg=False)
    log["postgres"] = {"login_password": "s3cret"}
    body = bm.message(log, 1)
    assert body["ok"] is False and body["failures"] == [
        {"step": "backup", "engine": "postgresql", "database": "app", "error": "back up database app: boom"}]
    assert "s3cret" not in json.dumps(body)
    slack = bm.message(log, 1, "slack")
    assert set(slack) == {"text"} and "FAILED (exit 1)" in slack["text"] and "postgresql:app" in slack["text"]
    long = bm.message({"command": "run", "error": "x" * 1000}, 1)
    assert len(long["failures"][0]["error"]) == bm.MESSAGE_LIMIT


def test_after_run_records_its_own_failures_without_raising(tmp_path):
    log = _log(ok_pg=False)
    missing = tmp_path / "no-such-dir"
    bm.after_run({"metrics": {"textfile_dir": str(missing)},
                  "notify": {"webhook_url": "http://127.0.0.1:9/hook", "timeout": 2}}, log, 1)
    assert log["metrics_error"].startswith(f"write metrics {missing}")
    assert log["notify_error"].startswith("post notification webhook:")
    ok_log = _log()
    bm.after_run({"notify": {"webhook_url": "http://127.0.0.1:9/hook", "timeout": 2}}, ok_log, 0)
    assert "notify_error" not in ok_log and "notified" not in ok_log  # success: nothing posted


def test_offhost_newest_copy_gauge_survives_an_unreachable_repository(tmp_path):
    good = {"command": "backup", "offhost": {"ok": True, "groups": [
        {"engine": "postgresql", "database": "app", "count": 3, "latest_age_s": 600.0}]}}
    bm.write_metrics(str(tmp_path), good, 0, now=10000.0)
    offhost = samples(tmp_path / "dbops_backup_offhost.prom")
    pg = {"engine": "postgresql", "database": "app"}
    assert offhost[key("dbops_backup_offhost_newest_timestamp_seconds", **pg)] == 9400
    assert offhost[key("dbops_backup_offhost_copies", **pg)] == 3
    assert offhost[key("dbops_backup_offhost_success")] == 1

    down = {"command": "backup", "offhost": {"ok": False, "error": "list off-host copies in R: EOF"}}
    bm.write_metrics(str(tmp_path), down, 1, now=20000.0)
    offhost = samples(tmp_path / "dbops_backup_offhost.prom")
    assert offhost[key("dbops_backup_offhost_success")] == 0
    assert offhost[key("dbops_backup_offhost_newest_timestamp_seconds", **pg)] == 9400  # kept: still true
    assert bm.failures(down) == [{"step": "offhost", "engine": "", "database": "",
                                  "error": "list off-host copies in R: EOF"}]


def test_a_job_skipped_for_another_node_reports_other_node_not_a_stale_success(tmp_path):
    # After a switchover the former primary skips the job (`from: primary`): its file says so, the
    # last success stays as history, and the success/run gauges of the job no longer claim a result.
    bm.write_metrics(str(tmp_path), _log(), 0, now=1000.0)
    jobs = samples(tmp_path / "dbops_backup_jobs.prom")
    pg = {"engine": "postgresql", "database": "app"}
    assert jobs[key("dbops_backup_other_node", **pg)] == 0
    skipped = {"command": "run", "duration_s": 1, "backups": [
        {"engine": "postgresql", "database": "app", "ok": True, "other_node": True,
         "skipped": "back up database app: this node is a standby; the job runs on the primary"}]}
    bm.write_metrics(str(tmp_path), skipped, 0, now=90000.0)
    jobs = samples(tmp_path / "dbops_backup_jobs.prom")
    assert jobs[key("dbops_backup_other_node", **pg)] == 1
    assert jobs[key("dbops_backup_last_success_timestamp_seconds", **pg)] == 1000  # history kept
    assert key("dbops_backup_success", **pg) not in jobs
    assert key("dbops_backup_last_run_timestamp_seconds", **pg) not in jobs
    mongo = {"engine": "mongodb", "database": "shop"}
    assert jobs[key("dbops_backup_last_run_timestamp_seconds", **mongo)] == 1000  # untouched job kept
    assert key("dbops_backup_other_node", engine="mongodb", database="later") not in jobs  # missing db
