#!/usr/bin/env bash
# GPU-day check: the `gpu` profile on one NVIDIA GPU (H100/H200 class), in under 8 minutes.
#
#   bash scripts/gpu_check.sh [OUTDIR]                 # in a venv or the GPU image, repo root
#   docker run --rm --gpus all -v "$PWD":/src -w /src --entrypoint bash eventvstream:gpu \
#     scripts/gpu_check.sh /src/test-artifacts/gpu-check
#
# Records (OUTDIR/gpu_check.jsonl, one JSON record per step, and OUTDIR/summary.md):
#   1. the machine: GPU, driver, torch and its CUDA;
#   2. the gpu profile's encoder (open_clip ViT-L-14, fp16) loaded, with hub weights or, where
#      the hub cannot be reached, random weights of the same shapes (the record says which),
#      and its frames encoded per second at batch sizes 1..256 (scripts/bench_encoder.py);
#   3. scripts/bench_decoder.py --llama3-8b: a random Llama-3-8B-shaped decoder, bf16, time to
#      first token and tokens/s;
#   4. scripts/bench_server.py at 16, 64 and 128 live 2-fps streams with the gpu profile's
#      encoder (a generated profile: configs/gpu.yaml, random encoder weights where the hub is
#      unreachable, and the packaged SmolLM2 decoder on the GPU so the server starts in seconds;
#      step 3 measures the 8B decoder on its own).
# Each step has its own time limit (together about 7 minutes) and a failing step does not stop
# the next. Needs: the package's dependencies (the GPU image has them), PYTHON (default
# python3) with a CUDA torch; for step 4 the benchmark clips (.bench/videos, made here with
# ffmpeg by scripts/make_bench_videos.py, or carried from another machine).
# GPU_CHECK_DEVICE=cpu runs the same steps on the CPU with small sizes (a dry run).
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
OUTDIR=${1:-test-artifacts/gpu-check}
mkdir -p "$OUTDIR"
OUTDIR=$(cd "$OUTDIR" && pwd)
JSONL=$OUTDIR/gpu_check.jsonl
: >"$JSONL"
export PYTHONPATH=$PWD/src${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
DEVICE=${GPU_CHECK_DEVICE:-cuda}
if [ "$DEVICE" = cpu ]; then # dry run: same code paths, sizes a laptop finishes
  BATCHES=(1 2)
  ENC_S=1
  DEC_ARGS=(--config tiny --device cpu --tokens 4 --runs 1)
  STREAMS=(1 2)
  SERVER_S=8
else
  BATCHES=(1 8 32 64 128 256)
  ENC_S=3
  DEC_ARGS=(--config gpu --llama3-8b --device cuda --precision bf16 --tokens 64 --runs 3)
  STREAMS=(16 64 128)
  SERVER_S=20
fi
started=$(date +%s)
status=0
log() { echo "gpu_check: $*" >&2; }
record() { # record STEP RC JSON-OR-EMPTY
  "$PY" - "$1" "$2" "$3" >>"$JSONL" <<'PYCODE'
import json, sys
step, rc, text = sys.argv[1], int(sys.argv[2]), sys.argv[3]
try:
    data = json.loads(text) if text.strip() else None
except ValueError:
    data = {"raw": text[-2000:]}
print(json.dumps({"step": step, "ok": rc == 0, "rc": rc, "result": data}))
PYCODE
  [ "$2" = 0 ] || status=1
}
run_step() { # run_step NAME LIMIT_S CMD... : the command's last stdout line is its JSON record
  local name=$1 limit=$2
  shift 2
  log "$name (limit ${limit} s): $*"
  timeout --kill-after=10 "$limit" "$@" >"$OUTDIR/$name.out" 2>"$OUTDIR/$name.err"
  local rc=$?
  [ $rc = 124 ] && log "$name: timed out after $limit s"
  [ $rc = 0 ] || tail -5 "$OUTDIR/$name.err" >&2
  record "$name" $rc "$(grep -E '^\{' "$OUTDIR/$name.out" | tail -1)"
}

# --- 1. the machine ---------------------------------------------------------------------------
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader >"$OUTDIR/nvidia-smi.txt" 2>&1
run_step machine 60 "$PY" -c '
import json, platform, torch
cuda = torch.cuda.is_available()
print(json.dumps({
    "torch": torch.__version__, "torch_cuda": torch.version.cuda, "cuda_available": cuda,
    "gpu": torch.cuda.get_device_name(0) if cuda else None,
    "gpu_memory_gib": round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1) if cuda else None,
    "capability": ".".join(map(str, torch.cuda.get_device_capability(0))) if cuda else None,
    "cpu_cores": __import__("os").cpu_count(), "python": platform.python_version(),
}))'
if [ "$DEVICE" = cuda ] && ! grep -q '"cuda_available": true' "$JSONL"; then
  log "torch sees no CUDA device: install a CUDA torch (docs/deploy.md) or set GPU_CHECK_DEVICE=cpu"
  exit 1
fi

# --- 2. the gpu profile's encoder: loaded, frames/s per batch size ----------------------------
enc_config=gpu
[ "$DEVICE" = cpu ] && enc_config=tiny
run_step encoder 110 "$PY" scripts/bench_encoder.py --config "$enc_config" --device "$DEVICE" \
  --random-if-offline --batch-sizes "${BATCHES[@]}" --seconds "$ENC_S"

# --- 3. the decoder: random Llama-3-8B shapes ---------------------------------------------------
run_step decoder 150 "$PY" scripts/bench_decoder.py "${DEC_ARGS[@]}"

# --- 4. the server at N live streams with the gpu profile's encoder ---------------------------
PROFILE=$OUTDIR/gpu-check-profile.yaml
"$PY" - "$PROFILE" "$DEVICE" "$JSONL" <<'PYCODE'
import json, sys
from pathlib import Path
import yaml
out, device, jsonl = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
base = "tiny" if device == "cpu" else "gpu"
profile = yaml.safe_load(Path(f"configs/{base}.yaml").read_text())
profile["device"] = device
encoder = next((json.loads(l)["result"] for l in jsonl.read_text().splitlines()
                if json.loads(l)["step"] == "encoder"), None) or {}
if str(encoder.get("weights", "")).startswith("random"):
    profile["encoder"]["pretrained"] = None  # the hub is unreachable: same shapes, random
if device != "cpu":
    # The packaged SmolLM2 on the GPU: the server starts in seconds; step 3 measured the 8B.
    profile["language"] = {"backend": "transformers", "model": "packaged", "precision": "bf16"}
out.write_text(yaml.safe_dump(profile))
print(f"gpu_check: server profile {out}: encoder {profile['encoder']['model']} "
      f"pretrained={profile['encoder'].get('pretrained')}", file=sys.stderr)
PYCODE
if [ ! -f .bench/videos/manifest.json ] && command -v ffmpeg >/dev/null; then
  log "making the benchmark clips (.bench/videos)"
  timeout 120 "$PY" scripts/make_bench_videos.py --no-fetch >"$OUTDIR/videos.log" 2>&1 || tail -3 "$OUTDIR/videos.log" >&2
fi
if [ -f .bench/videos/manifest.json ]; then
  run_step server 240 "$PY" scripts/bench_server.py --config "$PROFILE" --streams "${STREAMS[@]}" \
    --seconds "$SERVER_S" --stop-after-fail "${#STREAMS[@]}" --json "$OUTDIR/server.json"
  if [ -f "$OUTDIR/server.json" ]; then # the whole result, not the markdown it printed
    sed -i '$d' "$JSONL"
    record server 0 "$("$PY" -c 'import json, sys; print(json.dumps(json.load(open(sys.argv[1]))))' "$OUTDIR/server.json")"
  fi
else
  log "no .bench/videos/manifest.json and no ffmpeg: the server step is skipped"
  record server 3 '{"skipped": "no benchmark clips (scripts/make_bench_videos.py needs ffmpeg)"}'
fi

# --- summary ------------------------------------------------------------------------------------
elapsed=$(($(date +%s) - started))
"$PY" - "$JSONL" "$elapsed" >"$OUTDIR/summary.md" <<'PYCODE'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
by = {r["step"]: r for r in rows}
print(f"# gpu_check ({sys.argv[2]} s)\n")
m = (by.get("machine") or {}).get("result") or {}
print(f"Machine: {m.get('gpu')} ({m.get('gpu_memory_gib')} GiB, sm {m.get('capability')}), "
      f"torch {m.get('torch')} CUDA {m.get('torch_cuda')}, {m.get('cpu_cores')} CPU cores\n")
e = (by.get("encoder") or {}).get("result") or {}
if e.get("levels"):
    print(f"Encoder {e['encoder']} {e['precision']}, weights: {e['weights']}, frames {e['frame']}, "
          f"load {e['load_s']} s\n\n| batch | frames/s | ms/batch |\n|---|---|---|")
    for lv in e["levels"]:
        print(f"| {lv['batch']} | {lv['frames_per_s']:.0f} | {lv['ms_per_batch']:.1f} |")
    print(f"\nBest rate holds {e['streams_at_2fps_best']} streams at 2 fps (encoder alone).\n")
d = (by.get("decoder") or {}).get("result") or {}
if d:
    print(f"Decoder: {json.dumps(d)}\n")
s = (by.get("server") or {}).get("result") or {}
for lv in s.get("levels", []):
    print(f"Server, {lv['streams']} streams: lag p95 {lv['lag_p95_s']:.2f} s, worst stream "
          f"{lv['worst_stream_p95_s']:.2f} s, dropped {lv['dropped']}, held {lv['held']}")
if s.get("skipped"):
    print(f"Server: skipped ({s['skipped']})")
for r in rows:
    if not r["ok"]:
        print(f"\nstep {r['step']} FAILED (rc {r['rc']}); see its .err file")
PYCODE
cat "$OUTDIR/summary.md"
log "done in ${elapsed} s; records in $JSONL"
exit $status
