"""Every playbook parses against every environment's inventory, and each inventory resolves the
variables the playbooks and roles need (vaulted secrets included, for the demo)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.harness.runner import COLLECTIONS_PATH, REPO_ROOT

PLAYBOOKS = sorted(p.name for p in (REPO_ROOT / "playbooks").glob("*.yml"))
ENVIRONMENTS = ["local", "dev", "staging", "prod"]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS_PATH), ANSIBLE_NOCOLOR="1")
    return env


def _bin(name: str) -> str:
    return str(Path(sys.executable).with_name(name))


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_playbooks_syntax_check_against_inventory(environment):
    cmd = [_bin("ansible-playbook"), "--syntax-check", "-i", f"inventories/{environment}"]
    cmd += [f"playbooks/{p}" for p in PLAYBOOKS]
    proc = subprocess.run(cmd, cwd=REPO_ROOT, env=_env(), capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_playbooks_are_listed():
    assert {"site.yml", "migrate.yml", "backup.yml", "restore.yml", "rolling_restart.yml",
            "health.yml", "status.yml"} <= set(PLAYBOOKS)


def test_demo_inventory_resolves_every_host_variable_with_its_vault():
    cmd = [_bin("ansible-inventory"), "-i", "inventories/local", "--vault-id",
           "local@inventories/local/vault-password", "--host", "dbops-demo"]
    proc = subprocess.run(cmd, cwd=REPO_ROOT, env=_env(), capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    host = json.loads(proc.stdout)
    assert host["dbops_environment"] == "local"
    assert host["vault_pg_app_password"].startswith("demo-")  # decrypted with the demo vault id
    for name in ["postgresql_users", "postgresql_databases", "mongodb_admin_password", "db_backup_jobs",
                 "db_monitoring_postgresql_password", "dbops_pg_migrations", "dbops_mongodb_schemas",
                 "health_postgresql", "health_mongodb"]:
        assert name in host, name


@pytest.mark.parametrize("environment", ["dev", "staging", "prod"])
def test_environment_secrets_are_only_vault_references(environment):
    """Plain group_vars never hold a secret: passwords are vault_* references."""
    for path in (REPO_ROOT / "inventories" / environment / "group_vars").rglob("main.yml"):
        for line in path.read_text().splitlines():
            key, _sep, value = line.strip().partition(":")
            if "password" in key and value.strip():
                assert "vault_" in value, f"{path}: {line}"
    example = REPO_ROOT / "inventories" / environment / "group_vars" / "all" / "vault.example.yml"
    assert "CHANGE_ME" in example.read_text()


def test_prod_policy_is_stricter_than_dev():
    def policy(environment):
        text = (REPO_ROOT / "inventories" / environment / "group_vars" / "all" / "main.yml").read_text()
        return {k.strip(): v.strip() for k, _s, v in (line.partition(":") for line in text.splitlines())
                if k.startswith("dbops_migrate_")}

    assert policy("prod")["dbops_migrate_require_verified_backup"] == "true"
    assert policy("dev")["dbops_migrate_require_verified_backup"] == "false"
