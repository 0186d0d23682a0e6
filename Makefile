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

# Benchmarks (bench/README.md, docs/benchmarks.md): one harness (bench/runner.py) that starts what it needs on
# 127.0.0.1, one model at a time; results in bench/results/<study>-<tag>.{json,md}; resumable. BENCH_ARGS adds
# options to any of them (e.g. BENCH_ARGS=--quick for a smoke test).
.PHONY: bench-reference-setup bench-quality bench-gsm8k bench-speed bench-quant bench-throughput bench-memory \
	bench-overhead bench-ab bench-labels bench-invariance bench-gpu-dry
BENCH_ARGS ?=
BENCH := HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false $(PY) -m
BENCH_RATES ?= 0.5 0.25 0.1 0.05 0.03 0.02
BENCH_SYSTEMS ?= terse reference bm25 random random-passages first-passages

bench-reference-setup:
	bash bench/setup_reference.sh

# Quality: every set (NQ-20, needles as passages and as one string, ACL papers, GSM8K) x 2x..50x, terse /
# the reference / BM25 / random words / random and first passages at the same budget (hours on 2 cores).
bench-quality: setup bench-reference-setup
	$(BENCH) bench.quality --rates $(BENCH_RATES) --systems $(BENCH_SYSTEMS) \
		--plot docs/img/retention_vs_compression.png --positions-plot docs/img/retention_by_position.png $(BENCH_ARGS)

# GSM8K's 8-shot chain-of-thought prompt through terse at 5x / 10x / 20x.
bench-gsm8k: setup
	$(BENCH) bench.quality --sets gsm8k --n 1 --rates 0.2 0.1 0.05 --systems terse bm25 --tag gsm8k $(BENCH_ARGS)

# Speed side by side with the reference: LLMLingua + LongLLMLingua x 0.5/0.25/0.1 x ~1k/~3k/~8k tokens (~2-3 h).
bench-speed: setup bench-reference-setup
	$(BENCH) bench.speed --plot docs/img/speed_vs_reference.png $(BENCH_ARGS)

bench-quant: setup
	$(BENCH) bench.quantization $(BENCH_ARGS)

bench-throughput: setup
	$(BENCH) bench.throughput $(BENCH_ARGS)

bench-memory: setup
	$(BENCH) bench.memory $(BENCH_ARGS)

# The pipeline's own cost (total - model) on a tiny model, per stage; BENCH_ARGS="--against DIR" for a before/after.
bench-overhead: setup
	$(BENCH) bench.compare --model tiny --sizes 2.5k 10k --n 3 --rounds 3 --rates 0.25 --tag overhead \
		--configs llmlingua longllmlingua-bm25 longllmlingua-hybrid longllmlingua-question \
		--plot docs/img/overhead.png $(BENCH_ARGS)

# This checkout against another (BEFORE=/tmp/before, e.g. `git archive main | tar -x -C /tmp/before`):
# held-out NQ-20 on the embedded model, retention, cost, identical outputs.
BEFORE ?=
bench-ab: setup
	$(BENCH) bench.compare --against $(BEFORE) --split test --n 8 --rates 0.25 0.1 --tag ab $(BENCH_ARGS)

# What return_labels costs: the same requests with and without it, on one server.
bench-labels: setup
	$(BENCH) bench.compare --variants '{"without": {}, "with": {"return_labels": true}}' --sizes 2.5k \
		--configs default --split dev --n 6 --rounds 3 --rates 0.25 --tag labels $(BENCH_ARGS)

# Hostile input (issue 22): each detector and the whole request on adversarial 10 KB / 100 KB / 1 MB
# inputs, with the growth per 10x (linear ~10x). BENCH_HOSTILE_ARGS="--cap 5 --sizes 10000 100000".
.PHONY: hostile
hostile: setup
	$(PY) -m bench.hostile $(BENCH_HOSTILE_ARGS)

# Away from home (issue 21), in process on the embedded model (fp32 by default: bf16 is emulated on CPUs
# without AVX-512): the out-of-domain development sets, where each answer was lost (coarse, sentence, token).
.PHONY: bench-ood bench-long-texts
bench-ood: setup
	$(BENCH) bench.ood_eval $(BENCH_ARGS)

# Long single texts (issue 21): the needle prompts as one string and as passages; --long N for 128k.
bench-long-texts: setup
	$(BENCH) bench.long_texts --data ../shared/data/ood-niah-dev.jsonl.gz $(BENCH_ARGS)

# Byte-identical outputs: 8 NQ-20 prompts on the embedded model, serial vs concurrency 8.
bench-invariance: setup
	$(BENCH) bench.invariance $(BENCH_ARGS)

bench-gpu-dry: setup
	$(BENCH) bench.gpu --dry-run $(BENCH_ARGS)
