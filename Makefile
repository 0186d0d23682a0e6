# The two commands a newcomer needs: `make run` and `make test`. Both set up on first use.
VENV ?= .venv
PY := $(VENV)/bin/python
TERSE_HOST ?= 127.0.0.1
TERSE_PORT ?= 8000
export TERSE_HOST TERSE_PORT

.PHONY: setup run test test-tools test-slow lint bench loadtest fuzz soak overload clean

$(VENV)/.installed: pyproject.toml scripts/setup.sh clients/python/pyproject.toml clients/llama-index/pyproject.toml clients/langchain/pyproject.toml
	VENV=$(VENV) bash scripts/setup.sh
	touch $@

setup: $(VENV)/.installed

run: setup
	$(PY) -m app --host $(TERSE_HOST) --port $(TERSE_PORT)

# scripts/test.sh installs the test tools first (scripts/setup-test-tools.sh: skips what is present).
test: setup
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

# Load and reliability (loadtests/README.md). `make test` runs short versions of each; these are the long ones.
# loadtest: starts terse (embedded model), finds capacity, 0.5x/1x/2x + the mix; ~40 min on 2 cores.
LOADTEST_ARGS ?=
RELIABILITY := HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false $(PY) -m pytest -p no:cacheprovider -m slow
loadtest: setup
	$(PY) -m loadtests $(LOADTEST_ARGS)

fuzz: setup
	$(RELIABILITY) tests/api/test_fuzz.py

soak: setup
	$(RELIABILITY) tests/api/test_reliability.py -k soak_10000

overload: setup
	$(RELIABILITY) tests/api/test_reliability.py -k overload_60s

# Quality benchmark (bench/, synthetic NQ-20): terse over HTTP vs llmlingua 0.2.2 (.venv-ref) vs baselines.
# The terse systems need the service running at BENCH_URL (`make run` in another shell). Resumable.
.PHONY: bench-reference-setup bench-quality bench-gsm8k
BENCH_SPLIT ?= dev
BENCH_N ?= 20
BENCH_RATES ?= 0.5 0.25 0.1
BENCH_SYSTEMS ?= terse-longllmlingua terse-llmlingua reference bm25 random
BENCH_URL ?= http://$(TERSE_HOST):$(TERSE_PORT)

bench-reference-setup:
	bash bench/setup_reference.sh

bench-quality: setup bench-reference-setup
	$(PY) -m bench.quality --split $(BENCH_SPLIT) --n $(BENCH_N) --rates $(BENCH_RATES) \
		--systems $(BENCH_SYSTEMS) --url $(BENCH_URL) --keep-going; rc=$$?; \
	$(PY) -m bench.report --split $(BENCH_SPLIT); exit $$rc

bench-gsm8k: setup
	$(PY) -m bench.gsm8k --url $(BENCH_URL)

# Speed benchmarks (bench/README.md): each starts what it needs; one model at a time. Resumable; --quick smoke.
.PHONY: bench-speed bench-quant bench-throughput bench-memory bench-overhead bench-invariance bench-gpu-dry
bench-speed: setup bench-reference-setup
	$(PY) -m bench.speed $(BENCH_SPEED_ARGS)

bench-quant: setup
	$(PY) -m bench.quantization $(BENCH_QUANT_ARGS)

bench-throughput: setup
	$(PY) -m bench.throughput $(BENCH_THROUGHPUT_ARGS)

bench-memory: setup
	$(PY) -m bench.memory $(BENCH_MEMORY_ARGS)

# The pipeline's own cost (total - model time) on a tiny model; add BENCH_OVERHEAD_ARGS="--compare DIR".
bench-overhead: setup
	$(PY) -m bench.overhead --plot docs/img/overhead.png $(BENCH_OVERHEAD_ARGS)

# Hostile input (issue 22): each detector and the whole request on adversarial 10 KB / 100 KB / 1 MB
# inputs, with the growth per 10x (linear ~10x). BENCH_HOSTILE_ARGS="--cap 5 --sizes 10000 100000".
.PHONY: hostile
hostile: setup
	$(PY) -m bench.hostile $(BENCH_HOSTILE_ARGS)

# Byte-identical outputs: 8 NQ-20 prompts on the embedded model, serial vs concurrency 8.
bench-invariance: setup
	$(PY) -m bench.invariance $(BENCH_INVARIANCE_ARGS)

bench-gpu-dry: setup
	$(PY) -m bench.gpu --dry-run
