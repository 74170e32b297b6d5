#!/usr/bin/env bash
# Build llama-cpp-python's OpenAI-compatible server into its own venv (.llama-server), so the
# OpenAI-backend tests run against a real server process on the packaged SmolLM2 GGUF.
# There is no prebuilt wheel on PyPI: this compiles llama.cpp (about 5 minutes on 2 cores).
# Kept out of .venv because the project never imports it. Prints the python to use.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .llama-server/bin/python ] || ! .llama-server/bin/python -c "import llama_cpp.server" 2>/dev/null; then
  echo "setup: building llama-cpp-python[server] into .llama-server (about 5 minutes)" >&2
  python3 -m venv .llama-server
  .llama-server/bin/python -m pip install --disable-pip-version-check -q \
    "llama-cpp-python[server]==0.3.36" >&2
fi
echo "$PWD/.llama-server/bin/python"
