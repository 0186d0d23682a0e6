#!/usr/bin/env bash
# Creates .venv-ref: the reference implementation (llmlingua 0.2.2) in its own virtualenv, so its
# pinned transformers (<=4.46) never touches terse's. Idempotent: a finished venv is left as it is.
#   REF_VENV=.venv-ref   TORCH_VERSION=2.13.0
set -euo pipefail
cd "$(dirname "$0")/.."

REF_VENV="${REF_VENV:-.venv-ref}"
TORCH_VERSION="${TORCH_VERSION:-2.13.0}"
STAMP="$REF_VENV/.ref-installed"
WANT="llmlingua==0.2.2 transformers==4.46.3 torch==$TORCH_VERSION"

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT" ]; then
  echo "reference venv $REF_VENV: up to date ($WANT)"
  exit 0
fi

[ -x "$REF_VENV/bin/python" ] || "${PYTHON:-python3}" -m venv "$REF_VENV"
PIP=("$REF_VENV/bin/python" -m pip install --disable-pip-version-check -q)

echo "reference setup: $WANT into $REF_VENV"
# The CPU wheel: from the local wheel cache when present, else PyTorch's CPU index.
if ls /opt/wheels/torch-"$TORCH_VERSION"+cpu-*.whl >/dev/null 2>&1; then
  "${PIP[@]}" /opt/wheels/torch-"$TORCH_VERSION"+cpu-*.whl
else
  "${PIP[@]}" "torch==$TORCH_VERSION" --index-url https://download.pytorch.org/whl/cpu
fi
# torch is already satisfied, so this never swaps it for another build. accelerate: device_map.
"${PIP[@]}" "llmlingua==0.2.2" "transformers==4.46.3" "accelerate" "safetensors"
"$REF_VENV/bin/python" - <<'PY'
import importlib.metadata as md
for name in ("llmlingua", "transformers", "torch", "tiktoken"):
    print(f"  {name} {md.version(name)}")
PY
echo "$WANT" > "$STAMP"
echo "reference setup: done"
