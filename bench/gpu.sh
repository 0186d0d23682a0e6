#!/usr/bin/env bash
# The GPU benchmark in one command (bench/gpu.py): report the environment, check CUDA, run.
#
#   bash bench/gpu.sh                                   # 3 models x bf16/nf4, ~10k-token prompts (a few minutes)
#   bash bench/gpu.sh --models smollm2-135m qwen2.5-0.5b --time-budget-s 240
#   bash bench/gpu.sh --dry-run                         # tiny configs on the CPU (no GPU needed)
#
# Installs nothing from the network. The interpreter is $PYTHON, else the first of python3 / python /
# /opt/conda/bin/python that imports torch. If a wheelhouse .cache/gpu-wheels/ is present (e.g. carried
# with the working tree), its wheels are installed offline (--no-index --no-deps) into .cache/gpu-site,
# which goes first on PYTHONPATH. Results: $OUT/gpu-<tag>.{json,md} when OUT is set, else bench/results/.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

PY="${PYTHON:-}"
if [ -z "$PY" ]; then
    for cand in python3 python /opt/conda/bin/python /usr/bin/python3; do
        if command -v "$cand" >/dev/null 2>&1 && "$cand" -c "import torch" >/dev/null 2>&1; then
            PY="$cand"
            break
        fi
    done
fi
if [ -z "$PY" ]; then
    echo "gpu.sh: no python with torch found (set PYTHON=...)" >&2
    exit 3
fi

if [ -d .cache/gpu-wheels ] && ls .cache/gpu-wheels/*.whl >/dev/null 2>&1; then
    echo "== offline wheelhouse .cache/gpu-wheels -> .cache/gpu-site"
    "$PY" -m pip install --quiet --no-index --no-deps --target .cache/gpu-site .cache/gpu-wheels/*.whl \
        || echo "gpu.sh: wheelhouse install failed; going on with what is installed" >&2
fi
[ -d .cache/gpu-site ] && export PYTHONPATH=".cache/gpu-site${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONPATH=".${PYTHONPATH:+:$PYTHONPATH}"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false

echo "== environment"
uname -srm
command -v nvidia-smi >/dev/null 2>&1 \
    && nvidia-smi --query-gpu=name,memory.total,memory.used,driver_version --format=csv,noheader \
    || echo "nvidia-smi: not found"
"$PY" - <<'EOF'
import importlib.metadata as md
import platform
import sys

print("python", platform.python_version(), sys.executable)
for name in ("torch", "transformers", "bitsandbytes", "accelerate", "safetensors", "tokenizers",
             "huggingface-hub", "rank-bm25", "sentencex"):
    try:
        print(f"  {name} {md.version(name)}")
    except md.PackageNotFoundError:
        print(f"  {name} MISSING")
EOF
"$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'cuda available:', torch.cuda.is_available())"

dry=0
for a in "$@"; do [ "$a" = "--dry-run" ] && dry=1; done
if ! "$PY" -c "import transformers" >/dev/null 2>&1; then
    echo "gpu.sh: transformers is not importable with $PY; carry a wheelhouse in .cache/gpu-wheels (see bench/README.md)" >&2
    exit 3
fi
if ! "$PY" -c "import rank_bm25, sentencex" >/dev/null 2>&1; then
    echo "gpu.sh: rank-bm25 / sentencex are not importable with $PY (compressors imports them); carry their wheels in .cache/gpu-wheels (see bench/README.md)" >&2
    exit 3
fi
if [ "$dry" = 0 ] && [ "$("$PY" -c 'import torch; print(int(torch.cuda.is_available()))' 2>/dev/null)" != 1 ]; then
    echo "gpu.sh: CUDA is not available; nothing to measure (bash bench/gpu.sh --dry-run checks the plumbing on CPU)" >&2
    exit 2
fi
if ! "$PY" -c "import bitsandbytes" >/dev/null 2>&1; then
    echo "gpu.sh: bitsandbytes is not importable: the nf4 rows will be recorded as errors, bf16 still runs" >&2
fi

echo "== bench/gpu.py $*"
exec "$PY" -m bench.gpu "$@"
