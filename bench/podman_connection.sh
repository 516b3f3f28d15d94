#!/usr/bin/env bash
# The Molecule scenarios' connection (molecule/plugins/connection/podman.py, pipelining) against
# containers.podman.podman: the same playbook of N `ansible.builtin.ping` tasks (default 20) on one
# container of the test image, ROUNDS times each way (default 3), alternating. Both must report
# ok=N with nothing failed; prints each run's wall time, the best of each and their ratio.
#
#   bash bench/podman_connection.sh            # N=20 ROUNDS=3
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
n="${N:-20}"
rounds="${ROUNDS:-3}"
export PATH="$here/.venv/bin:$PATH" CONTAINERS_CONF="$here/molecule/containers.conf"
export ANSIBLE_COLLECTIONS_PATH="$here/.build/collections" ANSIBLE_NOCOLOR=1
image="${DBOPS_TEST_IMAGE:-localhost/dbops-debian-bookworm-systemd:latest}"
name=dbops-bench-connection
work="$(mktemp -d)"
trap 'podman rm -f "$name" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
podman rm -f "$name" >/dev/null 2>&1 || true
podman run -d --name "$name" --systemd=always "$image" /sbin/init >/dev/null
sleep 3
echo "$name ansible_connection=podman ansible_python_interpreter=/usr/bin/python3" >"$work/inventory"
{
  echo "- hosts: all"
  echo "  gather_facts: false"
  echo "  tasks:"
  for _ in $(seq "$n"); do echo "    - ansible.builtin.ping:"; done
} >"$work/play.yml"
declare -A best
for round in $(seq "$rounds"); do
  for way in containers.podman pipelining; do
    plugins=""
    [ "$way" = pipelining ] && plugins="$here/molecule/plugins/connection"
    started=$(date +%s%N)
    ANSIBLE_CONNECTION_PLUGINS="$plugins" ansible-playbook -i "$work/inventory" "$work/play.yml" >"$work/run.log" 2>&1 \
      || { tail -20 "$work/run.log" >&2; exit 1; }
    took=$(awk -v a="$started" -v b="$(date +%s%N)" 'BEGIN { printf "%.2f", (b - a) / 1e9 }')
    grep -qE "^$name +: ok=$n +changed=0 +unreachable=0 +failed=0" "$work/run.log" \
      || { echo "$way: not $n ok tasks: $(grep -E "^$name +:" "$work/run.log")" >&2; exit 1; }
    echo "round $round, $way: $took s"
    if [ -z "${best[$way]:-}" ] || awk -v a="$took" -v b="${best[$way]}" 'BEGIN { exit !(a < b) }'; then
      best[$way]=$took
    fi
  done
done
ratio=$(awk -v a="${best[pipelining]}" -v b="${best[containers.podman]}" 'BEGIN { printf "%.2f", a / b }')
echo "$n ping tasks, best of $rounds: containers.podman.podman ${best[containers.podman]} s," \
  "pipelining connection ${best[pipelining]} s: ${ratio}x"
