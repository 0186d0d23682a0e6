# The two commands a newcomer needs: `make run` and `make test`. Both set up on first use.
VENV ?= .venv
PY := $(VENV)/bin/python
TERSE_HOST ?= 127.0.0.1
TERSE_PORT ?= 8000
export TERSE_HOST TERSE_PORT

.PHONY: setup run test test-tools test-slow lint bench loadtest fuzz soak overload clean

$(VENV)/.installed: pyproject.toml scripts/setup.sh
	VENV=$(VENV) bash scripts/setup.sh
	touch $@

setup: $(VENV)/.installed

run: setup
	$(PY) -m app --host $(TERSE_HOST) --port $(TERSE_PORT)

test: setup test-tools
	bash scripts/test.sh

# What tests/deploy runs besides Python packages: promtool, node, the CRD schemas (idempotent).
test-tools:
	bash scripts/setup-test-tools.sh

test-slow: setup
	$(PY) -m pytest -m slow -p no:cacheprovider

lint: setup
	$(VENV)/bin/ruff check app compressors tests bench loadtests clients
	$(VENV)/bin/ruff format --check app compressors tests bench loadtests clients

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
