#!/usr/bin/env bash
# Set up avforensics in ./.venv: PyTorch first (CPU build unless TORCH_SPEC says otherwise), then the
# package with its test extras, then the two packages used only as carriers of files (--no-deps):
# facenet-pytorch (MTCNN weights) and openai-whisper (the log-mel reference the tests compare against).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
PIP=(.venv/bin/python -m pip install --quiet --disable-pip-version-check)
.venv/bin/python -c "import torch" 2>/dev/null || "${PIP[@]}" "$TORCH_SPEC"
"${PIP[@]}" -e ".[test]"
"${PIP[@]}" --no-deps "facenet-pytorch==2.6.0" "openai-whisper==20250625"
echo "avforensics is set up in $(pwd)/.venv"
