"""pgbackrest_info against a real stanza: backups, sizes, WAL range, recovery window; refusals."""

from __future__ import annotations

import datetime as dt
import os

from tests.harness import pgbackrest as pgbr_harness


def _info(ansible, pitr_stanza, **args):
    stanza = pitr_stanza.stanza
    return pgbr_harness.run_module_as(ansible, stanza, "pgbackrest_info",
                                      {"config": str(stanza.config), **args})


def _time(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_info_shows_full_and_incremental_backups_and_the_window(ansible, pitr_stanza):
    result = _info(ansible, pitr_stanza, stanza="main")
    assert not result.get("failed"), result.get("msg") or result
    assert result["changed"] is False
    [stanza] = result["stanzas"]
    assert stanza["name"] == "main"
    assert stanza["status"] == {"code": 0, "message": "ok"}
    assert stanza["cipher"] == "aes-256-cbc"
    full, incr = stanza["backups"]
    assert (full["type"], incr["type"]) == ("full", "incr")
    assert incr["reference"] == [full["label"]]
    assert full["size"] > 1_000_000 and full["repo_size"] > 0
    # The incremental holds only the changed pages: far less in the repository than the full.
    assert incr["repo_size"] - full["repo_size"] < full["repo_size"]
    assert full["wal_start"] <= full["wal_stop"] < incr["wal_start"] <= incr["wal_stop"]
    assert stanza["archive"]["min"] <= full["wal_start"]
    assert stanza["archive"]["max"] > incr["wal_stop"]
    window = stanza["recovery_window"]
    assert window["from"] == full["stop"]
    assert window["to_source"] == "newest archived WAL segment"
    # The newest segment holds the "after" marker; its push time is at or after that commit.
    assert _time(window["to"]) >= pitr_stanza.after_commit.replace(microsecond=0)
    assert _time(window["from"]) < pitr_stanza.before_commit
    assert stanza["summary"] == (f"stanza main: can restore to any moment between {window['from']} and "
                                 f"{window['to']} (1 full, 1 incr backups)")


def test_info_without_stanza_lists_all_and_runs_in_check_mode(ansible, pitr_stanza):
    result = pgbr_harness.run_module_as(ansible, pitr_stanza.stanza, "pgbackrest_info",
                                        {"config": str(pitr_stanza.stanza.config)}, check=True)
    assert not result.get("failed"), result.get("msg") or result
    assert [item["name"] for item in result["stanzas"]] == ["main"]
    assert len(result["stanzas"][0]["backups"]) == 2


def test_unknown_stanza_is_reported_not_guessed(ansible, pitr_stanza):
    result = _info(ansible, pitr_stanza, stanza="nope")
    assert not result.get("failed"), result.get("msg") or result
    [stanza] = result["stanzas"]
    assert stanza["status"] == {"code": 1, "message": "missing stanza path"}
    assert stanza["recovery_window"] is None
    assert stanza["summary"] == "stanza nope: missing stanza path; nothing to restore"


def test_wrong_passphrase_is_a_clean_status(ansible, pitr_stanza, tmp_path):
    stanza = pitr_stanza.stanza
    bad = stanza.base / "wrong-passphrase.conf"
    bad.write_text(stanza.config.read_text().replace(stanza.passphrase, "not-the-passphrase"))
    bad.chmod(0o600)
    pgbr_harness.chown_to_cluster_user(bad)
    try:
        result = pgbr_harness.run_module_as(ansible, stanza, "pgbackrest_info",
                                            {"config": str(bad), "stanza": "main"})
    finally:
        bad.unlink()
    assert not result.get("failed"), result.get("msg") or result
    [view] = result["stanzas"]
    assert view["status"]["code"] == 99
    assert view["status"]["message"].startswith("other: repo1: [FormatError] unable to load info file")
    assert all(ch.isprintable() for ch in view["status"]["message"])
    assert view["recovery_window"] is None


def test_a_config_others_can_read_is_refused(ansible, pitr_stanza):
    stanza = pitr_stanza.stanza
    os.chmod(stanza.config, 0o644)
    try:
        result = _info(ansible, pitr_stanza, stanza="main")
    finally:
        os.chmod(stanza.config, 0o600)
    assert result.get("failed") is True
    assert result["msg"] == (f"read {stanza.config}: readable by others (mode 0644) while it holds the "
                             "repository passphrase; use 0600 or 0640")
    assert "stanzas" in result and result["stanzas"] == []
