#!/usr/bin/env bash
# Build the Debian 12 (bookworm) systemd image the Molecule scenarios run on, from Debian packages
# only (debootstrap; no container registry), and import it into podman.
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
extra_ca_dir=/usr/local/share/ca-certificates

for tool in podman debootstrap sha256sum; do
  command -v "$tool" >/dev/null || { echo "build_test_image: $tool is not installed" >&2; exit 1; }
done

# The cache key: everything that changes the image's content.
inputs_hash="$(
  {
    sha256sum "${BASH_SOURCE[0]}" | cut -d' ' -f1
    echo "$mirror $suite $packages"
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
