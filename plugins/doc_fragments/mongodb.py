# Copyright: dbops.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # Mirrors mongodb_argument_spec() in plugins/module_utils/_mongodb.py.
    DOCUMENTATION = r"""
options:
  login_uri:
    description:
      - A MongoDB connection string (C(mongodb://...) or C(mongodb+srv://...)).
      - When set, it replaces O(login_host) and O(login_port); other options still apply on top.
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
      - Password of O(login_user). Falls back to E(MONGODB_PASSWORD).
    type: str
  login_database:
    description:
      - Database that holds O(login_user) (the authentication source).
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
requirements:
  - pymongo >= 4.0 on the host that runs the module
notes:
  - Set the connection options once per play with C(module_defaults) and the group
    C(group/dbops.datastores.mongodb).
"""
