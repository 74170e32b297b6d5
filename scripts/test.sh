#!/usr/bin/env bash
# Set up (if needed) and run the whole test suite: unit, integration, e2e. Extra args go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/python -m ruff check src tests scripts
.venv/bin/python -m ruff format --check src tests scripts
.venv/bin/python -m pytest "$@"
