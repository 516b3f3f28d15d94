"""The db_backup role's off-host tasks on localhost against a throwaway sshd: restic directory and
files with their modes, the host's own SSH key pair, the repository host's key scanned once, the
public key published for the repository host's play, idempotence, and a copy with what it made."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from ansible_collections.dbops.datastores.plugins.module_utils import _offhost
from tests.harness import sftp


@pytest.fixture(scope="module")
def sftp_server(tmp_path_factory):
    if not sftp.available():
        pytest.skip("openssh-server is not installed (scripts/setup.sh installs it)")
    server = sftp.start(tmp_path_factory.mktemp("sshd"))
    yield server
    sftp.stop(server)


def run_offhost_tasks(ansible, variables):
    play = {"hosts": "localhost", "gather_facts": False, "tasks": [
        {"name": "Off-host tasks of db_backup", "ansible.builtin.include_role": {
            "name": "dbops.datastores.db_backup", "tasks_from": "offhost.yml"}, "vars": variables},
        {"name": "Show the published key", "ansible.builtin.debug": {"var": "db_backup_offhost_public_key"}}]}
    path = ansible.workdir / f"offhost_{len(list(ansible.workdir.glob('offhost_*')))}.yml"
    path.write_text(json.dumps([play]))
    return ansible.playbook(path)


def test_role_sets_up_the_db_host_side_and_a_copy_works_with_it(ansible, sftp_server, tmp_path):
    directory = tmp_path / "restic"
    variables = {"db_backup_user": "root", "db_backup_group": "root",
                 "db_backup_offhost_host": "127.0.0.1", "db_backup_offhost_port": sftp_server.port,
                 "db_backup_offhost_path": str(tmp_path / "repo"), "db_backup_offhost_user": sftp_server.user,
                 "db_backup_offhost_password": "role-secret-pass", "db_backup_offhost_dir": str(directory),
                 "db_backup_offhost_cache_dir": str(tmp_path / "cache")}
    run = run_offhost_tasks(ansible, variables)
    assert run.rc == 0, run.stdout + run.stderr
    modes = {name: stat.S_IMODE(os.stat(directory / name).st_mode)
             for name in ("password", "id_ed25519", "id_ed25519.pub", "known_hosts")}
    assert stat.S_IMODE(os.stat(directory).st_mode) == 0o700
    assert modes == {"password": 0o600, "id_ed25519": 0o600, "id_ed25519.pub": 0o644, "known_hosts": 0o644}
    assert (directory / "password").read_text() == "role-secret-pass\n"
    public = (directory / "id_ed25519.pub").read_text().strip()
    shown = next(r for r in run.task_results() if r["_task"] == "Show the published key")
    assert shown["db_backup_offhost_public_key"] == public
    assert (directory / "known_hosts").read_text().split()[1:3] == \
        Path(sftp_server.known_hosts_file).read_text().split()[1:3]  # the scanned key is the server's
    assert "role-secret-pass" not in run.stdout

    again = run_offhost_tasks(ansible, variables)
    assert again.rc == 0 and again.stats["localhost"]["changed"] == 0, again.stdout

    # The repository host's play authorizes the published key; then restic works with these files.
    authorized = os.path.join(os.path.dirname(sftp_server.key_file), "authorized_keys")
    with open(authorized, "a", encoding="utf-8") as handle:
        handle.write(public + "\n")
    settings = _offhost.settings_from({
        "repository": f"sftp://{sftp_server.user}@127.0.0.1:{sftp_server.port}/{tmp_path / 'repo'}",
        "password_file": str(directory / "password"), "ssh_key_file": str(directory / "id_ed25519"),
        "known_hosts_file": str(directory / "known_hosts"), "connect_timeout": 5})
    _offhost.init_repository(settings)
    assert _offhost.list_copies(settings) == []
    assert (tmp_path / "repo" / "config").exists()
