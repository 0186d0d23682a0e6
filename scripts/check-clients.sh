#!/usr/bin/env bash
# CI check of the client packages: a FRESH virtualenv installs clients/python (terse-client) and
# clients/llama-index (llama-index-postprocessor-terse) from this checkout, imports them, proves that
# neither torch nor transformers came along, and runs the packages' own standalone tests there.
#   PYTHON=python3   interpreter for the new virtualenv
#   KEEP_VENV=1      keep the virtualenv (its path is printed) instead of deleting it
set -euo pipefail
cd "$(dirname "$0")/.."
REPO="$PWD"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/terse-clients.XXXXXX")"
if [ "${KEEP_VENV:-0}" = "1" ]; then
  echo "check-clients: keeping $WORK"
else
  trap 'rm -rf "$WORK"' EXIT
fi

"${PYTHON:-python3}" -m venv "$WORK/venv"
PY="$WORK/venv/bin/python"
PIP=("$PY" -m pip install --disable-pip-version-check -q)

echo "check-clients: installing both packages into a fresh virtualenv ($("$PY" --version))"
# One pip call, so the llama-index package's terse-client requirement resolves to the local copy.
"${PIP[@]}" "$REPO/clients/python" "$REPO/clients/llama-index"

cd "$WORK"  # away from the checkout: imports must come from the installed packages
"$PY" - <<'PY'
import importlib.metadata as md
import importlib.util
import json
import sys

for banned in ("torch", "transformers"):
    assert importlib.util.find_spec(banned) is None, f"{banned} is importable in the clients' virtualenv"

import terse_client
from llama_index.postprocessor.terse import TerseNodePostprocessor
from terse_client import AsyncTerseClient, TerseClient

for name in ("terse-client", "llama-index-postprocessor-terse", "llama-index-core"):
    print(f"  {name} {md.version(name)}")
assert "site-packages" in terse_client.__file__, terse_client.__file__
assert not any(m in sys.modules for m in ("torch", "transformers")), "an import pulled torch/transformers"

TerseClient("http://127.0.0.1:9").close()
AsyncTerseClient("http://127.0.0.1:9")
p = TerseNodePostprocessor(base_url="http://127.0.0.1:9", api_key="do-not-serialise")
assert "do-not-serialise" not in p.to_json(), "the API key leaked into to_json()"
assert json.loads(p.to_json())["class_name"] == "TerseNodePostprocessor"
print("check-clients: imports ok, no torch, no transformers")
PY

echo "check-clients: running the packages' standalone tests"
"${PIP[@]}" pytest
for pkg in python llama-index; do
  (cd "$REPO/clients/$pkg" && "$PY" -m pytest -q -p no:cacheprovider tests)
done
"$PY" -c 'import importlib.util as u; assert u.find_spec("torch") is None and u.find_spec("transformers") is None'
echo "check-clients: ok"
