#!/usr/bin/env bash
# `make test`: the test tools (Prometheus, validators), then the whole suite but the slow marks,
# in one process: tests that load a model must never run beside another torch process on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"
[ -f scripts/setup-test-tools.sh ] && bash scripts/setup-test-tools.sh
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
exec "$VENV/bin/python" -m pytest -p no:cacheprovider "$@"
