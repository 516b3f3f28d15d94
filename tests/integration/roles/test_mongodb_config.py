"""The mongodb role's configuration templates, rendered by ansible-playbook from the role's variables.

The mongodb-org flavour cannot be installed on CI machines (MongoDB's repository is unreachable);
this renders its mongod.conf, and the test flavour's options file, from the same variables the role
uses, and checks the result.
"""

import json
from pathlib import Path

import yaml

ROLE = Path(__file__).resolve().parents[3] / "roles" / "mongodb"


def render(ansible, tmp_path: Path, variables: dict) -> dict[str, str]:
    outputs = {"conf": tmp_path / "mongod.conf", "boot": tmp_path / "bootstrap.conf", "env": tmp_path / "env"}
    play = {
        "hosts": "localhost",
        "gather_facts": False,
        "vars_files": [str(ROLE / "defaults" / "main.yml"), str(ROLE / "vars" / "main.yml")],
        "tasks": [
            {
                "ansible.builtin.template": {
                    "src": str(ROLE / "templates" / "mongod.conf.j2"),
                    "dest": str(outputs["conf"]),
                    "mode": "0644",
                }
            },
            {
                "ansible.builtin.template": {
                    "src": str(ROLE / "templates" / "mongod.conf.j2"),
                    "dest": str(outputs["boot"]),
                    "mode": "0644",
                },
                "vars": {"__mongodb_bootstrap": True},
            },
            {
                "ansible.builtin.template": {
                    "src": str(ROLE / "templates" / "secantusdb.env.j2"),
                    "dest": str(outputs["env"]),
                    "mode": "0644",
                }
            },
        ],
    }
    playbook = tmp_path / "render.yml"
    playbook.write_text(json.dumps([play]))
    # extra vars: above the role's defaults loaded through vars_files, as a user's inventory would be
    run = ansible.playbook(playbook, extra_vars=variables)
    assert run.rc == 0, run.stdout + run.stderr
    return {name: path.read_text() for name, path in outputs.items()}


def test_replica_set_member_configuration(ansible, tmp_path):
    out = render(
        ansible,
        tmp_path,
        {
            "mongodb_bind_ip": ["127.0.0.1", "10.0.0.5"],
            "mongodb_port": 27018,
            "mongodb_storage_wiredtiger_cache_size_gb": 1.5,
            "mongodb_replication_set_name": "rs0",
            "mongodb_replication_oplog_size_mb": 2048,
            "mongodb_config_extra": {
                "operationProfiling": {"mode": "slowOp"},
                "net": {"maxIncomingConnections": 500},
            },
        },
    )
    conf = yaml.safe_load(out["conf"])
    assert conf["net"] == {"bindIp": "127.0.0.1,10.0.0.5", "port": 27018, "maxIncomingConnections": 500}
    assert conf["storage"] == {
        "dbPath": "/var/lib/mongodb",
        "wiredTiger": {"engineConfig": {"cacheSizeGB": 1.5}},
    }
    assert conf["security"] == {"authorization": "enabled", "keyFile": "/etc/mongodb-keyfile"}
    assert conf["replication"] == {"replSetName": "rs0", "oplogSizeMB": 2048}
    assert conf["systemLog"] == {
        "destination": "file",
        "logAppend": True,
        "path": "/var/log/mongodb/mongod.log",
    }
    assert conf["operationProfiling"] == {"mode": "slowOp"}


def test_standalone_defaults_and_bootstrap(ansible, tmp_path):
    out = render(ansible, tmp_path, {"mongodb_bind_ip": ["0.0.0.0"]})
    conf = yaml.safe_load(out["conf"])
    assert "replication" not in conf
    assert conf["security"] == {"authorization": "enabled"}
    assert "wiredTiger" not in conf["storage"]
    # while the first administrator is created: no enforced auth, loopback only
    boot = yaml.safe_load(out["boot"])
    assert boot["security"] == {"authorization": "disabled"}
    assert boot["net"]["bindIp"] == "127.0.0.1"
    assert (
        'MONGOD_OPTS="--host 0.0.0.0 --port 27017 --storage-path /var/lib/mongodb --standalone --auth"'
        in out["env"]
    )


def test_authorization_off_when_disabled(ansible, tmp_path):
    out = render(
        ansible, tmp_path, {"mongodb_auth_enabled": False, "mongodb_storage_wiredtiger_cache_size_gb": 0.25}
    )
    assert yaml.safe_load(out["conf"])["security"] == {"authorization": "disabled"}
    assert "--auth" not in out["env"]
    assert "--cache-size 256M" in out["env"]


def test_tls_disabled_by_default_leaves_no_tls_section(ansible, tmp_path):
    out = render(ansible, tmp_path, {})
    assert "tls" not in yaml.safe_load(out["conf"])["net"]
    assert "--tls" not in out["env"]


def test_require_tls_with_ca_and_x509_member_authentication(ansible, tmp_path):
    out = render(
        ansible,
        tmp_path,
        {
            "mongodb_bind_ip": ["0.0.0.0"],
            "mongodb_tls_mode": "requireTLS",
            "mongodb_tls_certificate_key_file": "/etc/ssl/mongo/server.pem",
            "mongodb_tls_ca_file": "/etc/ssl/mongo/ca.pem",
            "mongodb_replication_set_name": "rs0",
            "mongodb_cluster_auth_mode": "x509",
        },
    )
    conf = yaml.safe_load(out["conf"])
    assert conf["net"]["tls"] == {
        "mode": "requireTLS",
        "certificateKeyFile": "/etc/ssl/mongo/server.pem",
        "CAFile": "/etc/ssl/mongo/ca.pem",
        "allowConnectionsWithoutCertificates": True,
    }
    # x509 member authentication: no keyfile
    assert conf["security"] == {"authorization": "enabled", "clusterAuthMode": "x509"}
    # the bootstrap configuration keeps TLS (only authorization and the bind address change)
    assert yaml.safe_load(out["boot"])["net"]["tls"]["mode"] == "requireTLS"


def test_prefer_tls_keyfile_members_and_client_certificates_required(ansible, tmp_path):
    out = render(
        ansible,
        tmp_path,
        {
            "mongodb_tls_mode": "preferTLS",
            "mongodb_tls_ca_file": "/etc/ssl/mongo/ca.pem",
            "mongodb_tls_allow_connections_without_certificates": False,
            "mongodb_replication_set_name": "rs0",
        },
    )
    conf = yaml.safe_load(out["conf"])
    assert conf["net"]["tls"]["mode"] == "preferTLS"
    assert conf["net"]["tls"]["certificateKeyFile"] == "/etc/mongodb/tls/server.pem"
    assert conf["net"]["tls"]["allowConnectionsWithoutCertificates"] is False
    assert conf["security"] == {"authorization": "enabled", "keyFile": "/etc/mongodb-keyfile"}


def test_test_flavour_options_for_require_tls(ansible, tmp_path):
    out = render(
        ansible,
        tmp_path,
        {
            "mongodb_tls_mode": "requireTLS",
            "mongodb_tls_ca_file": "/etc/mongodb/tls/ca.pem",
            "mongodb_tls_allow_connections_without_certificates": False,
        },
    )
    assert (
        'MONGOD_OPTS="--host 127.0.0.1 --port 27017 --storage-path /var/lib/mongodb --standalone --auth'
        " --tls-cert-file /etc/mongodb/tls/server.pem --tls-key-file /etc/mongodb/tls/server.pem"
        ' --tls-ca-file /etc/mongodb/tls/ca.pem --tls-require-client-cert"' in out["env"]
    )
