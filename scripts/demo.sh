#!/usr/bin/env bash
# The demo environment, end to end: install what the machine needs (scripts/setup.sh), start a
# systemd container "dbops-demo" as the database host, converge it with site.yml and migrate.yml
# against inventories/local, then print a summary (playbooks/status.yml). Running it again reuses
# the container and reports 0 changed.
#
#   scripts/demo.sh          # make demo
#   scripts/demo.sh clean    # make demo-clean: remove the container and the demo's caches
#
# Env: DBOPS_DEMO_CONTAINER (default dbops-demo; the inventory's host name must match),
#      DBOPS_TEST_IMAGE (default localhost/dbops-debian-bookworm-systemd:latest).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
name="${DBOPS_DEMO_CONTAINER:-dbops-demo}"
image="${DBOPS_TEST_IMAGE:-localhost/dbops-debian-bookworm-systemd:latest}"
cache="$here/.cache/demo"
export CONTAINERS_CONF="${CONTAINERS_CONF:-$here/molecule/containers.conf}"

if [ "${1:-}" = clean ]; then
  if podman container exists "$name"; then
    podman rm --force --time 10 "$name" >/dev/null
    echo "demo: container $name removed"
  else
    echo "demo: no container $name"
  fi
  rm -rf "$cache"
  exit 0
fi

bash scripts/setup.sh

export PATH="$here/.venv/bin:$PATH"
export ANSIBLE_COLLECTIONS_PATH="$here/.build/collections"
export ANSIBLE_LOCAL_TEMP="$here/.cache/ansible/tmp"
export ANSIBLE_NOCOLOR=1 ANSIBLE_FORCE_COLOR=0
export ANSIBLE_CALLBACKS_ENABLED=ansible.posix.profile_tasks
export ANSIBLE_PIPELINING=true

if ! podman container exists "$name"; then
  mkdir -p "$cache/apt/partial" "$cache/pip"
  podman run --detach --name "$name" --hostname "$name" --systemd=always \
    --volume "$cache/apt:/var/cache/apt/archives" --volume "$cache/pip:/root/.cache/pip" \
    "$image" /sbin/init >/dev/null
  echo "demo: container $name started from $image"
elif [ "$(podman container inspect --format '{{.State.Running}}' "$name")" != true ]; then
  podman start "$name" >/dev/null
  echo "demo: container $name restarted"
fi
# systemd must be up before the roles manage services.
for _ in $(seq 1 60); do
  state="$(podman exec "$name" systemctl is-system-running 2>/dev/null || true)"
  case "$state" in running|degraded) break ;; esac
  sleep 1
done

run() {
  local started=$SECONDS
  ansible-playbook -i inventories/local --vault-id local@inventories/local/vault-password "$@"
  echo "demo: $* took $(( SECONDS - started )) s"
}
started=$SECONDS
run dbops.datastores.site
run dbops.datastores.migrate
run dbops.datastores.status
echo "demo: converged $name in $(( SECONDS - started )) s"
