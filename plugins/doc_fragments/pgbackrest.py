# Copyright: dbops.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # The options of every pgBackRest module; mirrored by _pgbackrest.pgbackrest_argument_spec().
    DOCUMENTATION = r"""
options:
  stanza:
    description:
      - The pgBackRest stanza (one per PostgreSQL cluster; the roles name it after the cluster,
        for example C(main)).
    type: str
  config:
    description:
      - The pgBackRest configuration file. It holds the repository passphrase
        (C(repo1-cipher-pass)), so it must be owned by the user running the module (or root),
        writable by nobody else and not readable by others (0600 or 0640); the module refuses it
        otherwise. The passphrase may instead come from the environment variable
        C(PGBACKREST_REPO1_CIPHER_PASS) (the task's C(environment)); it is never put on a command line.
    type: path
    default: /etc/pgbackrest/pgbackrest.conf
  pgbackrest_bin:
    description: The pgBackRest executable.
    type: str
    default: pgbackrest
notes:
  - Run the module as the user that owns the repository and the cluster (C(become_user=postgres));
    pgBackRest refuses to back up as root and files it writes must belong to that user.
"""
