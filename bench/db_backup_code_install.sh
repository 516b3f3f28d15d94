#!/usr/bin/env bash
# The db_backup role's "install the collection's backup code" step on a converged host: the former
# copy per module_utils file against the archive keyed by content hash (roles/db_backup/tasks/code.yml).
# Runs each way three times against a podman container the role already converged (for example
# bpg1 of the backup_repo scenario kept with MOLECULE_COMMAND=converge) and prints profile_tasks'
# times; the first run of each may change files, the others are the converged cost.
#   bench/db_backup_code_install.sh bpg1
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
host="${1:?usage: $0 <podman container converged by the db_backup role>}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
export ANSIBLE_LOCAL_TEMP="$here/.cache/ansible/tmp" ANSIBLE_COLLECTIONS_PATH="$here/.build/collections"
export CONTAINERS_CONF="${CONTAINERS_CONF:-$here/molecule/containers.conf}" ANSIBLE_PIPELINING=1
export ANSIBLE_CALLBACKS_ENABLED=ansible.posix.profile_tasks ANSIBLE_NOCOLOR=1
printf 'all:\n  hosts:\n    %s:\n      ansible_connection: containers.podman.podman\n      ansible_python_interpreter: /usr/bin/python3\n' "$host" > "$work/inventory.yml"
dest=/opt/dbops/backup/collections/ansible_collections/dbops/datastores/plugins/module_utils/
cat > "$work/copy_per_file.yml" <<YAML
- hosts: all
  gather_facts: false
  tasks:
    - name: Copy per file (before)
      ansible.builtin.copy: {src: "{{ item }}", dest: "$dest", owner: root, group: root, mode: "0644"}
      loop: "{{ lookup('ansible.builtin.fileglob', '$here/plugins/module_utils/*.py', wantlist=True) }}"
YAML
python3 - "$here/roles/db_backup/tasks/code.yml" "$work/archive_tasks.yml" <<'PY'
import sys
text = open(sys.argv[1]).read()
start = text.index("- name: Read the content hash of the installed backup code")
end = text.index("- name: Install the launcher")
open(sys.argv[2], "w").write("---\n" + text[start:end])
PY
cat > "$work/archive.yml" <<YAML
- hosts: all
  gather_facts: false
  vars_files: ["$here/roles/db_backup/vars/main.yml"]
  vars: {db_backup_install_dir: /opt/dbops/backup, db_backup_config_dir: /etc/dbops}
  tasks:
    - name: One archive keyed by content hash (after)
      ansible.builtin.include_tasks: $work/archive_tasks.yml
YAML
for way in copy_per_file archive; do
  for run in 1 2 3; do
    start=$(date +%s.%N)
    "$here/.venv/bin/ansible-playbook" -i "$work/inventory.yml" "$work/$way.yml" -e "__db_backup_source=$here" \
      | grep -E 'changed=' | sed "s/^/$way run $run: /"
    echo "$way run $run: $(echo "$(date +%s.%N) - $start" | bc) s wall, load $(cut -d' ' -f1 /proc/loadavg)"
  done
done
