# Copyright: dbops.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # Mirrors pg_argument_spec() in plugins/module_utils/_postgres.py.
    DOCUMENTATION = r"""
options:
  login_host:
    description:
      - Host name or IP address of the PostgreSQL server.
      - When neither this nor O(login_unix_socket) is set, libpq's default (the local socket) applies.
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
      - Password of O(login_user). Falls back to E(PGPASSWORD); a C(~/.pgpass) file also works.
    type: str
  login_unix_socket:
    description:
      - Directory of the server's unix socket. Takes precedence over O(login_host).
    type: str
    aliases: [unix_socket]
  login_db:
    description:
      - Database to connect to. Falls back to E(PGDATABASE), then V(postgres).
    type: str
    aliases: [login_database]
  ssl_mode:
    description:
      - libpq C(sslmode). Use V(verify-full) with O(ca_cert) in production.
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
requirements:
  - psycopg2 (C(psycopg2-binary) or C(psycopg2)) on the host that runs the module
notes:
  - Set the connection options once per play with C(module_defaults) and the group
    C(group/dbops.datastores.postgresql).
  - Supports PostgreSQL 13 and newer; the collection's tests run on every major from 13 to 18. A server
    of 12 or older is refused when the module connects, with its version in the message.
"""
