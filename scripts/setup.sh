#!/usr/bin/env bash
# Create .venv with the pinned, tested package set (constraints.txt) and install perceptual into it.
# Idempotent: re-runs only when pyproject.toml or constraints.txt changed.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-$(command -v python3.11 || command -v python3)}"
stamp=".venv/.setup-$(cat pyproject.toml constraints.txt | sha256sum | cut -c1-16)"
if [[ -f "$stamp" ]]; then
  exit 0
fi
[[ -x .venv/bin/python ]] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev,video,export,demo]'
rm -f .venv/.setup-* && touch "$stamp"
echo "environment ready: $(.venv/bin/python -c 'import torch, pytorch_lightning as pl; print("torch", torch.__version__, "lightning", pl.__version__)')"
