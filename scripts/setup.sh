#!/usr/bin/env bash
# Create .venv (if missing) and install robustpo into it; --dev adds the test and benchmark tools.
# torch is bounded (>=2.2,<2.14) so that pip takes the CPU build and never a CUDA wheel.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$python" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
target="."
[ "${1:-}" = "--dev" ] && target=".[dev]"
.venv/bin/python -m pip install --quiet -e "$target"
.venv/bin/python -c "import robustpo, torch; print(f'robustpo {robustpo.__version__} ready (torch {torch.__version__})')"
