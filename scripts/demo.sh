#!/usr/bin/env bash
# The demo environment, end to end: install what the machine needs (scripts/setup.sh), start a
# systemd container "dbops-demo" as the database host, converge it with site.yml and migrate.yml
# against inventories/local, then print a summary (playbooks/status.yml). Running it again reuses
# the container and reports 0 changed.
#
#   scripts/demo.sh          # make demo
#   scripts/demo.sh clean    # make demo-clean: remove the container and the demo's caches
#   scripts/demo.sh test     # make demo-test (part of make test): in a container of its own
#                            # (dbops-demo-test), run the demo twice, the second time followed by
#                            # migrate.yml in check mode; fail unless all of the second run reports
#                            # changed=0; remove that container (a running demo is left alone)
#
# Env: DBOPS_DEMO_CONTAINER (default dbops-demo; inventories/local connects to the container
#      of that name),
#      DBOPS_TEST_IMAGE (default localhost/dbops-debian-bookworm-systemd:latest).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
name="${DBOPS_DEMO_CONTAINER:-dbops-demo}"
image="${DBOPS_TEST_IMAGE:-localhost/dbops-debian-bookworm-systemd:latest}"
cache="$here/.cache/demo/$name"  # apt and pip downloads, one per container (apt locks it)
export CONTAINERS_CONF="${CONTAINERS_CONF:-$here/molecule/containers.conf}"

clean() {
  if podman container exists "$name"; then
    podman rm --force --time 10 "$name" >/dev/null
    echo "demo: container $name removed"
  else
    echo "demo: no container $name"
  fi
}

case "${1:-}" in
  clean) clean; rm -rf "$cache"; exit 0 ;;
  test)
    export DBOPS_DEMO_CONTAINER="${name}-test"
    name="$DBOPS_DEMO_CONTAINER"
    clean
    trap clean EXIT
    started=$SECONDS
    bash "$here/scripts/demo.sh"
    cold=$(( SECONDS - started ))
    DBOPS_DEMO_LOG="$here/.cache/demo-second-run.log" DBOPS_DEMO_CHECK_MIGRATE=1 bash "$here/scripts/demo.sh"
    warm=$(( SECONDS - started - cold ))
    recaps="$(grep -E '^[^ ]+ +: ok=' "$here/.cache/demo-second-run.log" || true)"
    echo "$recaps"
    if [ "$(echo "$recaps" | grep -c ': ok=')" -ne 4 ]; then
      echo "demo test: FAILED, expected the recaps of site, migrate, status and migrate --check" \
        "in .cache/demo-second-run.log" >&2
      exit 1
    fi
    if echo "$recaps" | grep -Ev 'changed=0 .*failed=0' >/dev/null; then
      echo "demo test: FAILED, the second run changed something or failed (see .cache/demo-second-run.log)" >&2
      exit 1
    fi
    echo "demo test: passed; first run ${cold} s, second run ${warm} s with changed=0"
    exit 0 ;;
  "") ;;
  *) echo "usage: $0 [clean|test]" >&2; exit 2 ;;
esac

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
case "$state" in
  running|degraded) ;;
  *) echo "demo: systemd in $name is still '$state' after 60 s; going on (see podman logs $name)" >&2 ;;
esac

log="${DBOPS_DEMO_LOG:-/dev/null}"
mkdir -p "$(dirname "$log")"
: >"$log"
run() {
  local started=$SECONDS
  ansible-playbook -i inventories/local --vault-id local@inventories/local/vault-password "$@" | tee -a "$log"
  echo "demo: $* took $(( SECONDS - started )) s"
}
started=$SECONDS
run dbops.datastores.site
run dbops.datastores.migrate
run dbops.datastores.status
if [ -n "${DBOPS_DEMO_CHECK_MIGRATE:-}" ]; then
  # The release dry run on a converged host: a plan with nothing in it, nothing changed.
  run --check --diff dbops.datastores.migrate
fi
echo "demo: converged $name in $(( SECONDS - started )) s"
