#!/usr/bin/env bash
# The test command: set up (idempotent), lint, then the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# The service's browser test drives Debian's Chromium through Playwright (not Playwright's own download).
if ! command -v chromium >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
# The live-detection tests stream through a local ffmpeg binary (the Debian package).
if ! command -v ffmpeg >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ffmpeg >/dev/null
fi
.venv/bin/ruff check src tests benchmarks
.venv/bin/python -m pytest -q "$@"
