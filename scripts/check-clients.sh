#!/usr/bin/env bash
# CI check of the client packages: clients/python (terse-client), clients/llama-index
# (llama-index-postprocessor-terse) and clients/langchain (langchain-terse) build as wheels that pass
# `twine check --strict`; a FRESH virtualenv installs each from its wheel, imports it, proves that
# neither torch nor transformers came along, and runs the packages' own standalone tests there.
#   BUILD_PYTHON=.venv/bin/python   interpreter with setuptools and twine (the dev virtualenv) that builds
#   PYTHON=python3                  interpreter for the new virtualenv
#   KEEP_VENV=1                     keep the work folder (its path is printed) instead of deleting it
# Fast on a second run: the wheels build offline (no build isolation) and pip's cache holds the
# dependencies, so only the first run downloads them.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO="$PWD"
BUILD_PYTHON="${BUILD_PYTHON:-$REPO/.venv/bin/python}"
PACKAGES=(python llama-index langchain)

WORK="$(mktemp -d "${TMPDIR:-/tmp}/terse-clients.XXXXXX")"
if [ "${KEEP_VENV:-0}" = "1" ]; then
  echo "check-clients: keeping $WORK"
else
  trap 'rm -rf "$WORK"' EXIT
fi

echo "check-clients: building wheels"
for pkg in "${PACKAGES[@]}"; do
  # A copy, so the build leaves no build/ or *.egg-info behind in the checkout.
  cp -r "$REPO/clients/$pkg" "$WORK/src-$pkg"
  rm -rf "$WORK/src-$pkg"/build "$WORK/src-$pkg"/*.egg-info
  "$BUILD_PYTHON" -m pip wheel -q --disable-pip-version-check --no-deps --no-build-isolation \
    -w "$WORK/dist" "$WORK/src-$pkg"
done
ls "$WORK/dist"
"$BUILD_PYTHON" -m twine check --strict "$WORK"/dist/*.whl
echo "check-clients: wheels built, twine check passed"

"${PYTHON:-python3}" -m venv "$WORK/venv"
PY="$WORK/venv/bin/python"
PIP=("$PY" -m pip install --disable-pip-version-check -q)

echo "check-clients: installing the wheels into a fresh virtualenv ($("$PY" --version))"
# One pip call with the wheel folder as a source, so terse-client resolves to the wheel just built.
"${PIP[@]}" --find-links "$WORK/dist" "$WORK"/dist/*.whl

cd "$WORK"  # away from the checkout: imports must come from the installed packages
"$PY" - <<'PY'
import importlib.metadata as md
import importlib.util
import json
import sys

for banned in ("torch", "transformers"):
    assert importlib.util.find_spec(banned) is None, f"{banned} is importable in the clients' virtualenv"

import terse_client
from langchain_terse import TerseDocumentCompressor
from llama_index.postprocessor.terse import TerseNodePostprocessor
from terse_client import AsyncTerseClient, TerseClient

for name in ("terse-client", "llama-index-postprocessor-terse", "langchain-terse", "llama-index-core", "langchain-core"):
    print(f"  {name} {md.version(name)}")
for mod in (terse_client, sys.modules["langchain_terse"], sys.modules["llama_index.postprocessor.terse"]):
    assert "site-packages" in mod.__file__, mod.__file__
assert not any(m in sys.modules for m in ("torch", "transformers")), "an import pulled torch/transformers"

TerseClient("http://127.0.0.1:9").close()
AsyncTerseClient("http://127.0.0.1:9")
p = TerseNodePostprocessor(base_url="http://127.0.0.1:9", api_key="do-not-serialise")
assert "do-not-serialise" not in p.to_json(), "the API key leaked into to_json()"
assert json.loads(p.to_json())["class_name"] == "TerseNodePostprocessor"
c = TerseDocumentCompressor(base_url="http://127.0.0.1:9", api_key="do-not-serialise")
assert "do-not-serialise" not in c.model_dump_json()
print("check-clients: imports ok, no torch, no transformers")
PY

echo "check-clients: running the packages' standalone tests"
"${PIP[@]}" pytest
for pkg in "${PACKAGES[@]}"; do
  (cd "$WORK/src-$pkg" && "$PY" -m pytest -q -p no:cacheprovider tests)
done
"$PY" -c 'import importlib.util as u; assert u.find_spec("torch") is None and u.find_spec("transformers") is None'
echo "check-clients: ok"
