# Copyright: dbops.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # Connection options of the engine-neutral backup modules that talk to a server (backup_verify
    # with restore_test). The suboptions are the dbops.datastores.postgres and
    # dbops.datastores.mongodb fragments indented one level (tests/unit/plugins/test_doc_fragments.py
    # fails when they drift apart).
    DOCUMENTATION = r"""
options:
  postgres:
    description:
      - How to connect to PostgreSQL when the backup is a PostgreSQL backup.
      - The same options as the C(pg_*) modules, including their environment fallbacks.
    type: dict
    suboptions:
        login_host:
          description:
            - Host name or IP address of the PostgreSQL server.
            - When neither this nor O(postgres.login_unix_socket) is set, libpq's default (the local
              socket) applies.
            - Falls back to the E(PGHOST) environment variable.
          type: str
          aliases: [host]
        login_port:
          description:
            - TCP port (or socket file suffix) of the server. Falls back to E(PGPORT).
          type: int
          default: 5432
          aliases: [port]
        login_user:
          description:
            - Role to log in as. Falls back to E(PGUSER).
          type: str
          default: postgres
          aliases: [login]
        login_password:
          description:
            - Password of O(postgres.login_user). Falls back to E(PGPASSWORD); a C(~/.pgpass) file also works.
          type: str
        login_unix_socket:
          description:
            - Directory of the server's unix socket. Takes precedence over O(postgres.login_host).
          type: str
          aliases: [unix_socket]
        login_db:
          description:
            - Database to connect to. Falls back to E(PGDATABASE), then V(postgres).
          type: str
          aliases: [login_database]
        ssl_mode:
          description:
            - libpq C(sslmode). Use V(verify-full) with O(postgres.ca_cert) in production.
            - Falls back to E(PGSSLMODE).
          type: str
          default: prefer
          choices: [disable, allow, prefer, require, verify-ca, verify-full]
        ca_cert:
          description:
            - CA certificate file used to verify the server (libpq C(sslrootcert)).
          type: path
          aliases: [ssl_rootcert]
        ssl_cert:
          description:
            - Client certificate file (libpq C(sslcert)).
          type: path
        ssl_key:
          description:
            - Client private key file (libpq C(sslkey)).
          type: path
        connect_timeout:
          description:
            - Seconds to wait for a connection before failing.
          type: int
          default: 10
  mongodb:
    description:
      - How to connect to MongoDB when the backup is a MongoDB backup.
      - The same options as the C(mongodb_*) modules, including their environment fallbacks.
    type: dict
    suboptions:
        login_uri:
          description:
            - A MongoDB connection string (C(mongodb://...) or C(mongodb+srv://...)).
            - When set, it replaces O(mongodb.login_host) and O(mongodb.login_port); other options
              still apply on top.
            - Falls back to the E(MONGODB_URI) environment variable.
          type: str
          aliases: [uri]
        login_host:
          description:
            - Host name or IP address of the server.
          type: str
          default: localhost
          aliases: [host]
        login_port:
          description:
            - TCP port of the server.
          type: int
          default: 27017
          aliases: [port]
        login_user:
          description:
            - User to authenticate as. Without it the connection is unauthenticated.
          type: str
          aliases: [login]
        login_password:
          description:
            - Password of O(mongodb.login_user). Falls back to E(MONGODB_PASSWORD).
          type: str
        login_database:
          description:
            - Database that holds O(mongodb.login_user) (the authentication source).
          type: str
          default: admin
          aliases: [auth_source]
        replica_set:
          description:
            - Replica set name the server must belong to.
          type: str
        direct_connection:
          description:
            - Connect to the named host only, without replica set discovery. Driver default when unset.
          type: bool
        tls:
          description:
            - Use TLS for the connection.
          type: bool
          default: false
          aliases: [ssl]
        tls_ca_file:
          description:
            - CA certificate file used to verify the server.
          type: path
        tls_certificate_key_file:
          description:
            - Client certificate and key (PEM) for X.509 or mutual TLS.
          type: path
        tls_allow_invalid_certificates:
          description:
            - Accept a server certificate that does not verify. For tests only.
          type: bool
          default: false
        connect_timeout:
          description:
            - Seconds to wait for the server before failing.
          type: int
          default: 10
"""
