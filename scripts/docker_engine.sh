#!/usr/bin/env bash
# Make a Docker engine available: install Debian's docker.io, docker-compose (v1, the Compose
# implementation in Debian bookworm) and debootstrap where missing, and start dockerd in the
# background where no daemon answers. Exit 0 when `docker info` works, else 1 with the reason.
# Used by .ci/run before scripts/docker_smoke.sh; harmless where Docker already runs.
set -uo pipefail

if docker info >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "docker_engine: no Docker daemon answers and this is not root: cannot start one" >&2
  exit 1
fi
missing=()
command -v dockerd >/dev/null || missing+=(docker.io)
command -v docker-compose >/dev/null || missing+=(docker-compose)
command -v debootstrap >/dev/null || missing+=(debootstrap)
if [ ${#missing[@]} -gt 0 ]; then
  echo "docker_engine: apt-get install ${missing[*]}" >&2
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"; } \
    >/tmp/evs-docker-apt.log 2>&1 || {
    tail -5 /tmp/evs-docker-apt.log >&2
    echo "docker_engine: apt-get install failed" >&2
    exit 1
  }
fi
if ! pgrep -x dockerd >/dev/null; then
  echo "docker_engine: starting dockerd (log: /tmp/evs-dockerd.log)" >&2
  nohup dockerd >/tmp/evs-dockerd.log 2>&1 &
fi
for _ in $(seq 60); do
  docker info >/dev/null 2>&1 && exit 0
  sleep 1
done
tail -5 /tmp/evs-dockerd.log >&2 2>/dev/null
echo "docker_engine: dockerd did not answer within 60 s" >&2
exit 1
