#!/usr/bin/env bash
# Set up the environment if needed (and Chromium for the web demo's browser test, where apt can install it), then run
# the test suite (CPU only, a few minutes on 2 cores).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/install_browser.sh
exec .venv/bin/python -m pytest "$@"
