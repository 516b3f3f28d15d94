#!/usr/bin/env bash
# Build the Debian 12 (bookworm) systemd image the Molecule scenarios run on, from Debian packages
# only (debootstrap; no container registry), and import it into podman.
#
# The packages the roles install (postgresql, mongodb's test flavour, db_backup, db_monitoring,
# pgBackRest, restic, SSH) and the virtualenvs they pip-install into (at the roles' default paths
# and versions) are baked in, so a scenario's apt and pip tasks find them present (`ok`) instead of
# unpacking and downloading them in every container of every run. The image then looks like a
# Debian host right after those installs, minus what a package would have started in a chroot: no
# PostgreSQL cluster (the postgresql role creates its own, as it does when the package's `main`
# cluster is absent), services enabled but started only when the container boots, SSH host keys
# made per container. The roles still install all of it on a real host; none of the roles' users,
# configuration or data is in the image. The price: every test host has every role's packages, so a
# task that wrongly relies on another role's package passes in Molecule.
#
# Cached: the image carries a label with a hash of this script, the package list and the host's
# extra CA certificates; when an image with the same hash exists, nothing is done.
#
# Env: DBOPS_TEST_IMAGE (default localhost/dbops-debian-bookworm-systemd:latest)
#      DEBIAN_MIRROR    (default http://deb.debian.org/debian)
#      CONTAINERS_CONF  (default molecule/containers.conf of this checkout)
#      FORCE=1          rebuild even when the cached image matches
# Needs root (debootstrap, chroot), podman, debootstrap.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
image="${DBOPS_TEST_IMAGE:-localhost/dbops-debian-bookworm-systemd:latest}"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
export CONTAINERS_CONF="${CONTAINERS_CONF:-$here/molecule/containers.conf}"
suite=bookworm
packages=python3,python3-apt,systemd,systemd-sysv,dbus,sudo,procps,iproute2,ca-certificates,cron,logrotate,gnupg,curl,locales
# What roles/*/tasks install with apt on Debian 12 (vars/Debian.yml, vars/main.yml, tasks/*.yml),
# with their recommended packages, as the roles' apt tasks install them.
role_packages=(
  postgresql-15 postgresql-client-15 postgresql-client python3-psycopg2 acl  # postgresql
  python3-venv python3-packaging                                            # mongodb, db_backup
  prometheus-node-exporter                                                  # db_monitoring
  pgbackrest restic openssh-server openssh-client                           # backups off the host
)
# What the roles install with pip, into the virtualenvs the roles use, at the roles' default versions.
role_default() { awk -v k="$1:" '$1 == k { print $2 }' "$here/roles/$2/defaults/main.yml"; }
secantusdb_version="$(role_default mongodb_secantusdb_version mongodb)"
mongodb_pymongo_version="$(role_default mongodb_pymongo_version mongodb)"
mongodb_pyyaml_version="$(role_default mongodb_pyyaml_version mongodb)"
backup_pymongo_version="$(role_default db_backup_pymongo_version db_backup)"
role_venvs=(
  "$(role_default mongodb_secantusdb_venv mongodb)|secantusdb==$secantusdb_version"
  "$(role_default mongodb_python_venv mongodb)|pymongo==$mongodb_pymongo_version PyYAML==$mongodb_pyyaml_version"
  "$(role_default db_backup_install_dir db_backup)/venv|pymongo==$backup_pymongo_version|--system-site-packages"
)
extra_ca_dir=/usr/local/share/ca-certificates

for tool in podman debootstrap sha256sum; do
  command -v "$tool" >/dev/null || { echo "build_test_image: $tool is not installed" >&2; exit 1; }
done

# The cache key: everything that changes the image's content.
inputs_hash="$(
  {
    sha256sum "${BASH_SOURCE[0]}" | cut -d' ' -f1
    echo "$mirror $suite $packages ${role_packages[*]} ${role_venvs[*]}"
    if [ -d "$extra_ca_dir" ]; then
      find "$extra_ca_dir" -type f -name '*.crt' -print0 | sort -z | xargs -0 -r sha256sum
    fi
  } | sha256sum | cut -d' ' -f1
)"

current="$(podman image inspect --format '{{ index .Labels "dbops.inputs-hash" }}' "$image" 2>/dev/null || true)"
if [ "${FORCE:-0}" != 1 ] && [ "$current" = "$inputs_hash" ]; then
  echo "build_test_image: $image is up to date (inputs $inputs_hash)"
  exit 0
fi

if [ "$(id -u)" != 0 ]; then
  echo "build_test_image: must run as root (debootstrap and chroot)" >&2
  exit 1
fi

work="$(mktemp -d /var/tmp/dbops-rootfs.XXXXXX)"
cleanup() {
  for m in proc sys dev; do umount -l "$work/rootfs/$m" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
rootfs="$work/rootfs"

echo "build_test_image: debootstrap $suite into $rootfs"
debootstrap --variant=minbase --include="$packages" "$suite" "$rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 \
  || { tail -n 40 "$work/debootstrap.log" >&2; exit 1; }

cat >"$rootfs/etc/apt/sources.list" <<SOURCES
deb $mirror $suite main
deb $mirror $suite-updates main
deb http://deb.debian.org/debian-security $suite-security main
SOURCES

# Trust what the host trusts (a TLS-intercepting proxy's CA, a corporate CA): pip inside the
# container verifies certificates against this bundle.
if compgen -G "$extra_ca_dir/*.crt" >/dev/null; then
  mkdir -p "$rootfs$extra_ca_dir"
  cp "$extra_ca_dir"/*.crt "$rootfs$extra_ca_dir/"
  chroot "$rootfs" update-ca-certificates >/dev/null
fi

# The roles' packages. No service starts in the chroot (policy-rc.d); postgresql-common would
# create and start a `main` cluster, so that is switched off for this install only and the
# package's own setting is put back afterwards.
mount -t proc proc "$rootfs/proc"
mount --bind /dev "$rootfs/dev"
mount -t sysfs sys "$rootfs/sys"
printf '#!/bin/sh\nexit 101\n' >"$rootfs/usr/sbin/policy-rc.d"
chmod 0755 "$rootfs/usr/sbin/policy-rc.d"
in_root() { chroot "$rootfs" env DEBIAN_FRONTEND=noninteractive LC_ALL=C "$@"; }
echo "build_test_image: installing ${role_packages[*]}"
{
  in_root apt-get update
  in_root apt-get install -y postgresql-common
  createcluster=/etc/postgresql-common/createcluster.conf
  sed -i 's/^#\?\s*create_main_cluster\s*=.*/create_main_cluster = false/' "$rootfs$createcluster"
  in_root apt-get install -y "${role_packages[@]}"
  sed -i 's/^create_main_cluster = false$/#create_main_cluster = true/' "$rootfs$createcluster"
} >"$work/packages.log" 2>&1 || { tail -n 40 "$work/packages.log" >&2; exit 1; }
for venv in "${role_venvs[@]}"; do
  IFS='|' read -r path reqs venv_opts <<<"$venv"
  # shellcheck disable=SC2086  # reqs and venv_opts are word lists
  { in_root /usr/bin/python3 -m venv $venv_opts "$path" && in_root "$path/bin/pip" install --no-cache-dir -q $reqs; } \
    >>"$work/packages.log" 2>&1 || { tail -n 40 "$work/packages.log" >&2; exit 1; }
done
if [ -n "$(chroot "$rootfs" pg_lsclusters -h 2>/dev/null)" ]; then
  echo "build_test_image: a PostgreSQL cluster was created in the image" >&2
  exit 1
fi
# Each container makes its own SSH host keys (at boot, before sshd starts) instead of sharing the image's.
rm -f "$rootfs"/etc/ssh/ssh_host_*
mkdir -p "$rootfs/etc/systemd/system/ssh.service.d"
cat >"$rootfs/etc/systemd/system/ssh.service.d/host-keys.conf" <<'UNIT'
[Service]
ExecStartPre=
ExecStartPre=/usr/bin/ssh-keygen -A
ExecStartPre=/usr/sbin/sshd -t
UNIT
rm -f "$rootfs/usr/sbin/policy-rc.d"
for m in proc sys dev; do umount -l "$rootfs/$m"; done

# systemd in a container: no getty, no udev-dependent units, no waiting for time sync.
chroot "$rootfs" systemctl mask getty.target systemd-udevd.service systemd-udev-trigger.service \
  systemd-timesyncd.service console-getty.service >/dev/null 2>&1 || true
echo 'en_US.UTF-8 UTF-8' >"$rootfs/etc/locale.gen"
chroot "$rootfs" locale-gen >/dev/null

chroot "$rootfs" apt-get clean
rm -rf "$rootfs"/var/lib/apt/lists/*
# An empty lists dir with a fresh mtime makes `apt: cache_valid_time` skip the update.
touch -d '2000-01-01' "$rootfs/var/lib/apt/lists"
: >"$rootfs/etc/machine-id"
rm -f "$rootfs/etc/hostname" "$rootfs/etc/resolv.conf"
rm -rf "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/var/cache/debconf/*-old

echo "build_test_image: importing $image"
tar -C "$rootfs" -c . | podman import \
  --change 'CMD ["/sbin/init"]' \
  --change 'ENV container=podman' \
  --change 'STOPSIGNAL SIGRTMIN+3' \
  --change "LABEL dbops.inputs-hash=$inputs_hash" \
  - "$image" >/dev/null
echo "build_test_image: built $image (inputs $inputs_hash)"
