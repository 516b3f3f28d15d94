"""Fixtures that start real servers and run Ansible against them.

Session-scoped servers are shared by the tests; each test works in its own uniquely named
database (``pg_db`` / ``mongo_db``) so tests do not see each other's objects.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness import mongo as mongo_harness
from tests.harness import pg as pg_harness
from tests.harness.runner import AnsibleRunner


def _client_tools_env() -> None:
    """Let the modules find the PostgreSQL 18 client tools (pg_dump can dump any older server)."""
    tools = pg_harness.client_tools_dir()
    if tools is not None and "DBOPS_PG_BIN_DIRS" not in os.environ:
        os.environ["DBOPS_PG_BIN_DIRS"] = str(tools)


_client_tools_env()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Every test that uses a local PostgreSQL fixture runs once per major under test."""
    if "pg_major" in metafunc.fixturenames:
        majors = pg_harness.majors_under_test(metafunc.config.getoption("--pg-versions"))
        metafunc.parametrize("pg_major", majors, indirect=True, scope="session",
                             ids=[f"pg{major}" for major in majors])


@pytest.fixture(scope="session")
def pg_major(request: pytest.FixtureRequest) -> int:
    """The PostgreSQL major under test (--pg-versions or DBOPS_TEST_PG_VERSIONS, default 15)."""
    return int(request.param)


@pytest.fixture(scope="session")
def pg_server(pg_major: int) -> Iterator[pg_harness.PgServer]:
    """A cluster of ``pg_major`` with scram-sha-256 auth (or DBOPS_TEST_PG_DSN)."""
    dsn = os.environ.get("DBOPS_TEST_PG_DSN")
    server = pg_harness.external_server(dsn) if dsn else pg_harness.start_cluster(major=pg_major)
    yield server
    pg_harness.stop_cluster(server)


@pytest.fixture(scope="session")
def pg_tls_server(pg_major: int) -> Iterator[pg_harness.PgServer]:
    """A cluster whose pg_hba accepts TCP clients only over TLS (hostssl)."""
    if os.environ.get("DBOPS_TEST_PG_DSN"):
        pytest.skip("the TLS-only cluster is always local (DBOPS_TEST_PG_DSN is set)")
    server = pg_harness.start_cluster(tls_required=True, major=pg_major)
    yield server
    pg_harness.stop_cluster(server)


@pytest.fixture
def pg_db(pg_server: pg_harness.PgServer) -> str:
    """A fresh database on the shared cluster."""
    return pg_server.create_database()


@pytest.fixture(scope="session")
def mongo_server() -> Iterator[mongo_harness.MongoServer]:
    """A MongoDB-wire server without auth (or DBOPS_TEST_MONGO_URI)."""
    uri = mongo_harness.env_uri(auth=False)
    server = mongo_harness.external_server(uri) if uri else mongo_harness.start_server()
    yield server
    mongo_harness.stop_server(server)


@pytest.fixture(scope="session")
def mongo_auth_server() -> Iterator[mongo_harness.MongoServer]:
    """A MongoDB-wire server with auth on and a root user (or DBOPS_TEST_MONGO_AUTH_URI)."""
    uri = mongo_harness.env_uri(auth=True)
    server = mongo_harness.external_server(uri) if uri else mongo_harness.start_server(auth=True)
    yield server
    mongo_harness.stop_server(server)


@pytest.fixture(scope="session")
def mongo_tls_server() -> Iterator[mongo_harness.MongoServer]:
    """A MongoDB-wire server that speaks TLS only."""
    if mongo_harness.env_uri(auth=False):
        pytest.skip("the TLS-only server is always local (DBOPS_TEST_MONGO_URI is set)")
    server = mongo_harness.start_server(tls=True)
    yield server
    mongo_harness.stop_server(server)


@pytest.fixture(params=["noauth", "auth"])
def any_mongo(request: pytest.FixtureRequest) -> mongo_harness.MongoServer:
    """Each test using this runs against the server without and with auth."""
    name = "mongo_server" if request.param == "noauth" else "mongo_auth_server"
    return request.getfixturevalue(name)


@pytest.fixture
def mongo_db(mongo_server: mongo_harness.MongoServer) -> str:
    return mongo_server.database_name()


@pytest.fixture
def ansible(tmp_path: Path) -> AnsibleRunner:
    """Run modules and playbooks through ansible-playbook with the collection under test."""
    return AnsibleRunner(tmp_path / "ansible")
