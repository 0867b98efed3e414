#!/usr/bin/env bash
# Set up (or update) the project's virtualenv in .venv from the pinned constraints.
# Usage: ./setup.sh        runtime only
#        ./setup.sh dev    runtime + test dependencies
# torch is installed first and pinned: a bare `torch` requirement would pull a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3}
"$PY" -c 'import sys; sys.exit(sys.version_info < (3, 10))' || { echo "setup.sh: Python >= 3.10 required" >&2; exit 1; }
[ -x .venv/bin/python ] || "$PY" -m venv .venv
. .venv/bin/activate
python -m pip install -q --upgrade pip
python -m pip install -q -c constraints.txt torch==2.13.0
extra=""
[ "${1:-}" = "dev" ] && extra="[dev]"
python -m pip install -q -c constraints.txt -e ".${extra}"
echo "setup.sh: ready (.venv, $(python -c 'import torch; print("torch", torch.__version__)'))"
