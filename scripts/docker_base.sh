#!/usr/bin/env bash
# Make a local Debian bookworm base image (default tag evs-base:bookworm) without any image
# registry: debootstrap a minimal bookworm from the Debian mirror apt already uses on this host,
# then `docker import` it. Used where registries are out of reach (our CI); elsewhere build on
# the Dockerfile's default base (python:3.11-slim-bookworm) instead.
#
#   sudo bash scripts/docker_base.sh [TAG]
#
# Idempotent: an existing image with the tag is kept (DOCKER_BASE_REBUILD=1 makes it again).
# The image carries the host's bookworm apt sources (same mirror, same suites), so `apt-get
# install` in the Dockerfile reaches the mirror this host reaches.
set -euo pipefail
TAG=${1:-evs-base:bookworm}
SUITE=bookworm

if [ "${DOCKER_BASE_REBUILD:-0}" != 1 ] && docker image inspect "$TAG" >/dev/null 2>&1; then
  echo "docker_base: $TAG exists (DOCKER_BASE_REBUILD=1 to make it again)" >&2
  exit 0
fi
[ "$(id -u)" = 0 ] || { echo "docker_base: debootstrap needs root" >&2; exit 1; }
command -v debootstrap >/dev/null || { echo "docker_base: apt-get install debootstrap" >&2; exit 1; }

# The mirror: the first Debian URI of a bookworm suite in the host's apt sources (deb822 or
# one-line format), else deb.debian.org.
mirror_from_sources() {
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    awk -v suite="$SUITE" '
      /^[[:space:]]*$/ { if (uri && ok) { print uri; exit } uri=""; ok=0; next }
      /^URIs:/ { uri=$2 }
      /^Suites:/ { for (i = 2; i <= NF; i++) if ($i == suite) ok=1 }
      END { if (uri && ok) print uri }' "$f" | grep -v -- '-security' | head -1
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    awk -v suite="$SUITE" '$1 == "deb" && $0 !~ /^#/ {
        for (i = 2; i <= NF; i++) if ($i == suite) { print $(i-1); exit } }' "$f" |
      sed 's/^\[.*\]$//' | head -1
  done
}
MIRROR=${DOCKER_BASE_MIRROR:-$(mirror_from_sources | grep -m1 . || true)}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
SECURITY=${MIRROR%/debian}/debian-security
echo "docker_base: debootstrap $SUITE from $MIRROR" >&2

ROOTFS=$(mktemp -d /tmp/evs-base.XXXXXX)
trap 'rm -rf "$ROOTFS"' EXIT
debootstrap --variant=minbase "$SUITE" "$ROOTFS" "$MIRROR" >/tmp/evs-debootstrap.log 2>&1 || {
  tail -20 /tmp/evs-debootstrap.log >&2
  exit 1
}

# Apt inside the image: same mirror, with updates and security, like the official debian image;
# the host's Check-Valid-Until setting comes along (a dated snapshot mirror needs it off).
cat >"$ROOTFS/etc/apt/sources.list" <<SOURCES
deb $MIRROR $SUITE main
deb $MIRROR $SUITE-updates main
deb $SECURITY $SUITE-security main
SOURCES
if grep -rqs 'Check-Valid-Until "false"' /etc/apt/apt.conf.d/; then
  echo 'Acquire::Check-Valid-Until "false";' >"$ROOTFS/etc/apt/apt.conf.d/10-no-check-valid"
fi
# Small images, as the official debian image does.
cat >"$ROOTFS/etc/apt/apt.conf.d/docker-clean" <<'CONF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Install-Recommends "false";
CONF
rm -rf "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/var/cache/apt/*.bin

tar --numeric-owner -C "$ROOTFS" -c . |
  docker import -c 'ENV LANG=C.UTF-8' -c 'CMD ["bash"]' - "$TAG" >/dev/null
echo "docker_base: made $TAG ($(docker image inspect -f '{{.Size}}' "$TAG" | awk '{printf "%.0f MB", $1/1e6}'))" >&2
