#!/usr/bin/env bash
# Set up (if needed), lint, and run the whole test suite: tests/unit, tests/integration and
# tests/e2e (a real server process; the browser test needs Debian's chromium + chromium-driver
# and skips without them; the OpenAI-backend tests need LLAMA_SERVER_PYTHON, see
# scripts/setup_llama_server.sh, and skip without it). Extra args go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/python -m ruff check src tests scripts
.venv/bin/python -m ruff format --check src tests scripts
.venv/bin/python -m pytest "$@"
