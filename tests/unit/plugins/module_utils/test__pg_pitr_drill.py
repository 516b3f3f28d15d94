"""The PITR drill's pure parts: the copy's settings and the input checks."""

from __future__ import annotations

import pytest

from ansible_collections.dbops.datastores.plugins.module_utils import _pg_pitr_drill
from ansible_collections.dbops.datastores.plugins.module_utils._errors import DbopsError


def test_the_copy_listens_on_no_tcp_address_and_never_archives():
    settings = _pg_pitr_drill.drill_settings(55432, "/srv/drill.run")
    assert settings["listen_addresses"] == "''"
    assert settings["unix_socket_directories"] == "'/srv/drill.run'"
    assert settings["hba_file"] == "'/srv/drill.run/pg_hba.conf'"
    assert settings["archive_mode"] == "off"
    assert settings["primary_conninfo"] == "''"
    assert settings["hot_standby"] == "off"
    assert settings["port"] == "55432"
    text = _pg_pitr_drill.settings_text(settings)
    assert "\nlisten_addresses = ''\n" in text and text.endswith("cluster_name = 'dbops-pitr-drill'\n")


def test_quotes_in_paths_are_doubled():
    assert _pg_pitr_drill.quote_setting("/srv/it's") == "'/srv/it''s'"
    assert _pg_pitr_drill.run_dir("/srv/drill/") == "/srv/drill.run"


@pytest.mark.parametrize("port", [0, 80, 1023, 65536])
def test_privileged_or_impossible_ports_are_refused(port):
    with pytest.raises(DbopsError, match=rf"^check port {port}: use an unprivileged port"):
        _pg_pitr_drill.check_port(port)


def test_check_names_must_be_unique():
    _pg_pitr_drill.check_checks([{"name": "a"}, {"name": "b"}])
    with pytest.raises(DbopsError, match="names must be unique"):
        _pg_pitr_drill.check_checks([{"name": "a"}, {"name": "a"}])


def test_bin_dir_must_hold_pg_ctl_and_psql(tmp_path):
    with pytest.raises(DbopsError, match=rf"^find pg_ctl in {tmp_path}: not there; set bin_dir to the "
                                         r"PostgreSQL 15"):
        _pg_pitr_drill.bin_dir_for(str(tmp_path), "15")
    for tool in ("pg_ctl", "psql"):
        (tmp_path / tool).write_text("#!/bin/sh\n")
        (tmp_path / tool).chmod(0o755)
    assert _pg_pitr_drill.bin_dir_for(str(tmp_path), "15") == str(tmp_path)
