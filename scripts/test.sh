#!/usr/bin/env bash
# Set up (if needed), lint, and run the whole test suite (tests/unit, tests/integration; tests/e2e
# arrives with the server). Extra args go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/python -m ruff check src tests scripts
.venv/bin/python -m ruff format --check src tests scripts
.venv/bin/python -m pytest "$@"
