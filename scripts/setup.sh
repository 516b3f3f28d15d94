#!/usr/bin/env bash
# Install everything this project needs on a Debian bookworm machine, idempotently:
#   1. Debian packages (PostgreSQL 15 for test clusters, podman/runc/debootstrap for Molecule,
#      chromium for rendering the health report in tests, prometheus for promtool (alert rule
#      tests in make lint), prometheus-node-exporter, restic and openssh-server (off-host backup
#      copies: tests run sshd on a spare port)), installed only when missing;
#   2. the Python venv .venv from requirements-dev.txt with every transitive version pinned by
#      constraints.txt, rebuilt only when those files change;
#   3. the collection linked where Ansible finds it as dbops.datastores (.build/collections);
#   4. the Molecule base image, built by scripts/build_test_image.sh when it is missing or stale.
# A second run does nothing but checks and takes a few seconds.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
log() { printf '[setup] %s\n' "$*"; }

# Debian packages. Majors are pinned by package name (postgresql-15); Debian's stable updates
# provide the patch level.
apt_packages=(
  postgresql-15 postgresql-client-15 openssl git ca-certificates cron
  pgbackrest
  podman runc debootstrap slirp4netns fuse-overlayfs uidmap
  chromium shellcheck
  prometheus prometheus-node-exporter
  restic openssh-server
)
missing=()
for pkg in "${apt_packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done
python_bin=${DBOPS_PYTHON:-$(command -v python3.11 || command -v python3)}
if ! "$python_bin" -c 'import venv, ensurepip' 2>/dev/null; then
  missing+=(python3-venv python3-dev)
fi
if [ ${#missing[@]} -gt 0 ]; then
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  log "installing Debian packages: ${missing[*]}"
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  log "Debian packages present"
fi

# Python venv, keyed on the requirement files.
stamp=.venv/.dbops-requirements.sha256
want=$(cat requirements.txt requirements-dev.txt constraints.txt | sha256sum | cut -d' ' -f1)
if [ -x .venv/bin/python ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  log "Python venv up to date ($(.venv/bin/python --version))"
else
  log "building Python venv with $("$python_bin" --version)"
  [ -x .venv/bin/python ] || "$python_bin" -m venv .venv
  .venv/bin/python -m pip install -q --disable-pip-version-check -c constraints.txt pip
  .venv/bin/python -m pip install -q --disable-pip-version-check -r requirements-dev.txt -c constraints.txt
  echo "$want" > "$stamp"
fi

# The collection under its FQCN.
link=.build/collections/ansible_collections/dbops/datastores
mkdir -p "$(dirname "$link")"
if [ "$(readlink "$link" 2>/dev/null)" != "$repo" ]; then
  rm -rf "$link"
  ln -s "$repo" "$link"
  log "linked $link -> $repo"
fi

# Molecule base image (local, from Debian packages; no registry).
if [ -x scripts/build_test_image.sh ] && [ "${DBOPS_SKIP_IMAGE:-0}" != 1 ]; then
  scripts/build_test_image.sh
fi
log "done"
