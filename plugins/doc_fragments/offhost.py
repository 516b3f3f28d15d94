# Copyright: dbops.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # The off-host repository (restic) as the backup modules take it; the same keys as the
    # ``offhost`` section of dbops-backup's config (``_offhost.offhost_option_spec()``;
    # tests/unit/plugins/module_utils/test__offhost.py fails when they drift apart).
    DOCUMENTATION = r"""
options:
  offhost:
    description:
      - The off-host repository holding encrypted copies of the backups (restic), as in the
        C(offhost) section of the C(dbops-backup) configuration (the db_backup role writes it to
        C(/etc/dbops/backup.json)).
    type: dict
    suboptions:
      enabled:
        description: Whether off-host copies are used.
        type: bool
        default: true
      repository:
        description:
          - V(sftp:user@host:/path), V(sftp://user@host:port//path) or an absolute local path.
        type: str
        required: true
      password_file:
        description:
          - File holding the repository password; restic reads it (E(RESTIC_PASSWORD_FILE)), it is
            never passed on a command line.
        type: path
        required: true
      ssh_key_file:
        description: Private SSH key for the SFTP login.
        type: path
      known_hosts_file:
        description: known_hosts file pinning the repository host's key (strict checking).
        type: path
      connect_timeout:
        description: Seconds ssh waits for the repository host.
        type: int
        default: 10
      host:
        description:
          - Host name the copies are recorded under (restic C(--host)); defaults to this host's name.
        type: str
      cache_dir:
        description: restic's cache directory; without it restic runs with C(--no-cache).
        type: path
      restic_bin:
        description: The restic program.
        type: path
        default: restic
      keep_last:
        description: Off-host retention; each C(keep_*) not given takes the local retention's value.
        type: int
      keep_hourly:
        description: See O(offhost.keep_last).
        type: int
      keep_daily:
        description: See O(offhost.keep_last).
        type: int
      keep_weekly:
        description: See O(offhost.keep_last).
        type: int
      keep_monthly:
        description: See O(offhost.keep_last).
        type: int
      keep_yearly:
        description: See O(offhost.keep_last).
        type: int
      keep_within:
        description: See O(offhost.keep_last) (a duration such as V(30d)).
        type: str
"""

    # The restore modules' choice of source (``_backup_offhost.restore_option_spec()``).
    RESTORE = r"""
options:
  source:
    description:
      - V(local) restores from the backup root. V(offhost) takes the backup (O(backup), or the
        newest copy of O(source_database)) from the off-host repository O(offhost) when it is not
        in the backup root, puts it there after checking every file against its manifest, then
        restores it like a local one. For when the local copy is gone.
    type: str
    choices: [local, offhost]
    default: local
"""
