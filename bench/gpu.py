"""GPU benchmark with no weights travelling: random-initialised models of real configurations (SmolLM2-135M,
Qwen2.5-0.5B, Llama-2-7B) built on the GPU in bf16, then quantised to nf4 (bitsandbytes), each driven through
terse's own code: `compressors.compress` (LongLLMLingua, rate 0.25) for a ~10k-token prompt at concurrency 1,
and `app.scheduler.Scheduler` (the service's batching model worker, in process) for 16 distinct prompts
submitted at once, batching on and off.

    bash bench/gpu.sh                              # on the GPU machine: versions, CUDA check, then this script
    python -m bench.gpu --dry-run                  # tiny configs on the CPU, seconds: checks the plumbing

No tokenizer files travel either: a synthetic tokenizer (word pieces hashed into the model's vocabulary, with
offsets) and synthetic documents (pseudo-words, Zipf-distributed) stand in. Costs depend on token counts and
shapes, not on what the tokens mean; the compressed outputs themselves mean nothing (random weights).

Per model x quantisation: build / quantise time, model memory, one forward pass over the whole prompt
(Scorer.nll: the prefill cost of any scorer), the compress latency at concurrency 1 (median of --repeats after
a warm-up on another prompt of the same size; forward tokens per input token; stage times), peak GPU memory,
and throughput at concurrency 16 (requests/s, input tokens/s, mean requests' jobs per model call) with the
scheduler's batching on and off. nf4 = the same random weights quantised in place (Linear -> bnb Linear4bit
with terse's own nf4 settings from compressors.scorer.loading: NF4, double quantisation, bf16 compute on CUDA,
the output head kept in bf16 as transformers does); `--nf4-method reload` instead saves the bf16 model and
reloads it with terse's from_pretrained arguments. BM25 and the sentence filter are compressors' own
(rank-bm25 and sentencex must be importable: carry their wheels, bench/README.md).

Results: a markdown table on stdout and JSON (+ markdown) in $OUT when it is set, else bench/results/
gpu-<tag>.{json,md}; the JSON is rewritten after every cell, so a run cut short keeps what it measured.
--time-budget-s skips the cells that would start after the budget (recorded as skipped).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import random
import re
import statistics
import sys
import threading
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a file (bench/gpu.sh) as well as with -m
    sys.path.insert(0, str(ROOT))
from loadtests import reports  # noqa: E402 - after the path, for a run as a file

# name -> (config class, real configuration). Values from the models' published config.json files.
MODELS = {
    "smollm2-135m": (
        "llama",
        dict(
            hidden_size=576,
            num_hidden_layers=30,
            num_attention_heads=9,
            num_key_value_heads=3,
            intermediate_size=1536,
            vocab_size=49152,
            tie_word_embeddings=True,
            max_position_embeddings=8192,
            rope_theta=100000.0,
            rms_norm_eps=1e-5,
        ),
    ),
    "qwen2.5-0.5b": (
        "qwen2",
        dict(
            hidden_size=896,
            num_hidden_layers=24,
            num_attention_heads=14,
            num_key_value_heads=2,
            intermediate_size=4864,
            vocab_size=151936,
            tie_word_embeddings=True,
            max_position_embeddings=32768,
            rope_theta=1000000.0,
            rms_norm_eps=1e-6,
        ),
    ),
    "llama-2-7b": (
        "llama",
        dict(
            hidden_size=4096,
            num_hidden_layers=32,
            num_attention_heads=32,
            num_key_value_heads=32,
            intermediate_size=11008,
            vocab_size=32000,
            tie_word_embeddings=False,
            max_position_embeddings=4096,
            rms_norm_eps=1e-5,
        ),
    ),
}
# --dry-run: the same three kinds, tiny (the Llama-2 stand-in keeps a short window, so prompts overflow it
# and the scorer's long-sequence paths run too).
_TINY = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, intermediate_size=128)
TINY = {
    "smollm2-135m": {**_TINY, "vocab_size": 4096},
    "qwen2.5-0.5b": {**_TINY, "vocab_size": 8192},
    "llama-2-7b": {**_TINY, "num_key_value_heads": 4, "vocab_size": 4096, "max_position_embeddings": 1024},
}
BATCH_TOKENS = {"cuda": 16384, "cpu": 2048}  # the service's defaults (app/settings.py DEFAULT_BATCH_TOKENS)
SHIMS: list[str] = []


# ---------------------------------------------------------------- synthetic tokenizer and text
class SyntheticTokenizer:
    """Word pieces (letters up to 6, digits up to 3, one symbol, a leading space kept) hashed into the
    vocabulary; the interface the compressors use: __call__ with offsets, start-token lookups."""

    _PIECE = re.compile(r" ?[^\W\d_]{1,6}| ?\d{1,3}| ?[^\w\s]| ?_|\s+|.", re.S)
    START = "<|endoftext|>"

    def __init__(self, vocab_size: int):
        self.vocab_size = vocab_size
        self.bos_token_id = self.eos_token_id = 0
        self._pieces: dict[int, str] = {}
        self._ids: dict[str, int] = {}  # piece -> id, memoised (threads may race on it harmlessly)

    def __len__(self) -> int:
        return self.vocab_size

    def _new_id(self, piece: str) -> int:
        i = 1 + zlib.crc32(piece.encode("utf-8")) % (self.vocab_size - 1)
        self._pieces.setdefault(i, piece)
        self._ids[piece] = i
        return i

    def __call__(self, text: str, add_special_tokens: bool = False, return_offsets_mapping: bool = False, **_):
        ids, offsets, known = [], [], self._ids
        for m in self._PIECE.finditer(text):
            piece = m.group()
            i = known.get(piece)
            ids.append(i if i is not None else self._new_id(piece))
            offsets.append(m.span())
        out = {"input_ids": ids}
        if return_offsets_mapping:
            out["offset_mapping"] = offsets
        return out

    def encode(self, text: str, add_special_tokens: bool = False, **_) -> list[int]:
        return self(text)["input_ids"]

    def decode(self, ids, **_) -> str:
        return "".join(self._pieces.get(int(i), "") for i in ids)

    def get_vocab(self) -> dict[str, int]:
        return {self.START: 0}

    def convert_tokens_to_ids(self, token: str) -> int | None:
        return 0 if token == self.START else None


# all-MiniLM-L6-v2's configuration (the hybrid ranker's retriever), from its published config.json.
MINILM = dict(hidden_size=384, num_hidden_layers=6, num_attention_heads=12, intermediate_size=1536, vocab_size=30522)
MINILM_TINY = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64, vocab_size=4096)


def synthetic_retriever(device: str, dry_run: bool):
    """The hybrid ranker's retriever, random-initialised like the LMs (its 90 MB of weights do not travel):
    a BERT of all-MiniLM-L6-v2's configuration in bf16 and a word-piece tokenizer hashed into its vocabulary,
    handed to each scorer as its retriever. Costs are real; scores mean nothing."""
    import torch
    from transformers import BatchEncoding, BertConfig, BertModel

    from compressors.ranking import embedding

    cfg = BertConfig(**(MINILM_TINY if dry_run else MINILM), max_position_embeddings=512)
    model = BertModel(cfg).to(device=device, dtype=torch.bfloat16).eval()
    pieces = SyntheticTokenizer(cfg.vocab_size)

    def tok(texts, padding=False, truncation=True, max_length=256, return_tensors=None, **_):
        rows = [[101, *pieces(t)["input_ids"][: max_length - 2], 102] for t in texts]
        if not padding:
            return {"input_ids": rows}
        width = max(len(r) for r in rows)
        ids = torch.tensor([r + [0] * (width - len(r)) for r in rows])
        mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows])
        return BatchEncoding({"input_ids": ids, "attention_mask": mask})

    SHIMS.append(f"retriever: random-initialised {'tiny BERT' if dry_run else 'all-MiniLM-L6-v2 configuration'}")
    return embedding.Retriever(device, tokenizer=tok, model=model)


_SYLLABLES = "ka lo mi ren tu sa vo pe ri dan mor el ith qua zen bo li ter gan fu nor as be cal dis".split()
INSTRUCTION = (
    "Write a high-quality answer for the given question using only the provided search results "
    "(some of which might be irrelevant)."
)


def _lexicon(n: int = 6000) -> list[str]:
    rng = random.Random("terse-gpu-lexicon")
    words = set()
    while len(words) < n:
        words.add("".join(rng.choice(_SYLLABLES) for _ in range(rng.choice((1, 2, 2, 3)))))
    return sorted(words)


LEXICON = _lexicon()
_ZIPF = [1.0 / (r + 1) for r in range(len(LEXICON))]


def synthetic_prompt(seed: str, target_tokens: int, tok: SyntheticTokenizer) -> dict:
    """Documents of ~150 tokens in the NQ layout, added until the assembled prompt reaches target_tokens;
    the question borrows words from one of them (so BM25 and the question-aware ranking have work to do)."""
    rng = random.Random(seed)

    def sentence() -> str:
        words = rng.choices(LEXICON, weights=_ZIPF, k=rng.randint(8, 20))
        if rng.random() < 0.3:
            words.insert(rng.randrange(len(words)), str(rng.randint(1, 2030)))
        return " ".join(words).capitalize() + "."

    docs: list[str] = []
    question_words = rng.sample(LEXICON[200:2000], 6)
    fixed = tok.encode(INSTRUCTION) + tok.encode("Question: " + " ".join(question_words) + "?\nAnswer:")
    total = len(fixed)
    while total < target_tokens:
        title = " ".join(w.capitalize() for w in rng.sample(LEXICON[:3000], 2))
        body = []
        while sum(len(tok.encode(s)) for s in body) < 140:
            body.append(sentence())
        doc = f"Document [{len(docs) + 1}](Title: {title}) " + " ".join(body)
        docs.append(doc)
        total += len(tok.encode(doc)) + 2  # "\n\n" joins
    gold = rng.randrange(len(docs))
    docs[gold] = docs[gold] + " " + " ".join(question_words).capitalize() + "."
    return {
        "instruction": INSTRUCTION,
        "documents": docs,
        "question": "Question: " + " ".join(question_words) + "?\nAnswer:",
    }


def prompt_tokens(p: dict, tok: SyntheticTokenizer) -> int:
    return len(tok.encode("\n\n".join([p["instruction"], *p["documents"], p["question"]])))


# ---------------------------------------------------------------- models
def build_model(name: str, dry_run: bool, device: str):
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig, Qwen2Config

    kind, kw = MODELS[name]
    kw = dict(kw)
    if dry_run:
        kw.update(TINY[name])
    cfg = (LlamaConfig if kind == "llama" else Qwen2Config)(**kw)
    torch.manual_seed(0)
    with torch.device(device):
        try:
            model = AutoModelForCausalLM.from_config(cfg, dtype=torch.bfloat16)
        except TypeError:  # transformers < 4.56 spells it torch_dtype
            model = AutoModelForCausalLM.from_config(cfg, torch_dtype=torch.bfloat16)
    model.to(device=device, dtype=torch.bfloat16)
    if any(p.is_meta for p in model.parameters()):
        raise RuntimeError("from_config left parameters on the meta device")
    model.eval()
    return model


def nf4_config(device: str):
    """terse's nf4 scheme (compressors.scorer.loading): NF4, double quantisation, bf16 compute on CUDA."""
    from compressors.scorer.loading import load_kwargs

    return load_kwargs("nf4", device)["quantization_config"]


def quantize_nf4_inplace(model, device: str) -> int:
    """Every nn.Linear but the output head -> bnb Linear4bit with terse's nf4 settings, quantised on
    `device` from the bf16 weights already there. Returns the number of layers converted."""
    import bitsandbytes as bnb
    import torch

    cfg = nf4_config(device)
    double, kind = cfg.bnb_4bit_use_double_quant, cfg.bnb_4bit_quant_type

    def params(weight):
        return bnb.nn.Params4bit(weight, requires_grad=False, compress_statistics=double, quant_type=kind)

    head = model.get_output_embeddings()
    converted = 0
    for parent in list(model.modules()):
        for child_name, child in list(parent.named_children()):
            if not isinstance(child, torch.nn.Linear) or child is head:
                continue
            new = bnb.nn.Linear4bit(
                child.in_features,
                child.out_features,
                bias=child.bias is not None,
                compute_dtype=cfg.bnb_4bit_compute_dtype,
                compress_statistics=double,
                quant_type=kind,
                device="meta",
            )
            if child.bias is not None:
                new.bias = torch.nn.Parameter(child.bias.data, requires_grad=False)
            new.weight = params(child.weight.data)
            new = new.to(device)  # Params4bit quantises when moved to a device
            if getattr(new.weight, "quant_state", None) is None:  # older bitsandbytes: only a CPU -> CUDA move does
                new.weight = params(child.weight.data.cpu())
                new = new.to(device)
            if getattr(new.weight, "quant_state", None) is None:
                raise RuntimeError(f"bitsandbytes did not quantise {child_name}")
            setattr(parent, child_name, new)
            del child
            converted += 1
    return converted


def quantize_nf4_reload(model, device: str, tmp_root: Path):
    """Save the bf16 model, reload it with terse's nf4 arguments (compressors.scorer.loading.load_kwargs)."""
    import shutil
    import tempfile

    from transformers import AutoModelForCausalLM

    from compressors.scorer.loading import load_kwargs

    tmp = Path(tempfile.mkdtemp(prefix="terse-gpu-", dir=tmp_root))
    try:
        model.save_pretrained(tmp, safe_serialization=True)
        kwargs = load_kwargs("nf4", device)
        try:
            new = AutoModelForCausalLM.from_pretrained(tmp, **kwargs)
        except TypeError:  # transformers < 4.56 spells dtype torch_dtype
            kwargs["torch_dtype"] = kwargs.pop("dtype")
            new = AutoModelForCausalLM.from_pretrained(tmp, **kwargs)
        new.eval()
        return new
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def model_bytes(model) -> int:
    seen, total = set(), 0
    for t in list(model.parameters()) + list(model.buffers()):
        if t.data_ptr() in seen:
            continue
        seen.add(t.data_ptr())
        total += t.numel() * t.element_size()
    return total


# ---------------------------------------------------------------- measurements
class Bench:
    def __init__(self, args):
        self.args = args
        self.t0 = time.perf_counter()
        self.out_dir = Path(os.environ["OUT"]) if os.environ.get("OUT") else args.results_dir
        self.tag = args.tag or ("dry-run" if args.dry_run else "h100")
        self.result = {
            "benchmark": "gpu",
            "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
            "environment": environment(args.device),
            "machine": reports.machine(),
            "shims": SHIMS,
            "cells": [],
        }

    def over_budget(self) -> bool:
        return time.perf_counter() - self.t0 > self.args.time_budget_s

    def save(self) -> None:
        self.result["elapsed_s"] = round(time.perf_counter() - self.t0, 1)
        reports.write(self.out_dir, f"gpu-{self.tag}", self.result, markdown(self.result))


def environment(device: str) -> dict:
    import importlib.metadata as md

    import torch

    env = {"python": platform.python_version(), "platform": platform.platform(), "device": device}
    for name in ("torch", "transformers", "bitsandbytes", "accelerate", "rank-bm25", "sentencex"):
        try:
            env[name] = md.version(name)
        except md.PackageNotFoundError:
            env[name] = None
    env["cuda_available"] = torch.cuda.is_available()
    if torch.cuda.is_available():
        env["gpu"] = torch.cuda.get_device_name(0)
        env["cuda"] = torch.version.cuda
        env["gpu_memory_gib"] = round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1)
    env["torch_threads"] = torch.get_num_threads()
    return env


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _reset_peak(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()


def _peak(device: str) -> int | None:
    import torch

    return int(torch.cuda.max_memory_allocated()) if device.startswith("cuda") else None


def _spec(p: dict, args):
    from compressors import CompressionSpec

    return CompressionSpec(
        context=p["documents"], instruction=p["instruction"], question=p["question"], rate=args.rate, method=args.method
    )


def measure_latency(scorer, tok, args, name: str) -> dict:
    from compressors import compress

    device = args.device
    warm = synthetic_prompt(f"{name}:warm", args.tokens, tok)
    prompt = synthetic_prompt(f"{name}:latency", args.tokens, tok)
    n_in = prompt_tokens(prompt, tok)
    t0 = time.perf_counter()
    compress(scorer, _spec(warm, args))  # kernels, allocator, autotuning stay out of the timings
    warm_s = time.perf_counter() - t0
    # One forward pass over the whole prompt: the prefill cost any scorer pays at least once.
    ids = tok.encode("\n\n".join([prompt["instruction"], *prompt["documents"], prompt["question"]]))
    prefill = []
    for _ in range(2):  # the first pass at a new shape pays for kernel selection; the second is reported
        _sync(device)
        t0 = time.perf_counter()
        scorer.nll([ids])
        _sync(device)
        prefill.append(time.perf_counter() - t0)
    prefill_s = prefill[-1]
    _reset_peak(device)
    runs = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        res = compress(scorer, _spec(prompt, args))
        _sync(device)
        runs.append((time.perf_counter() - t0, res))
    lat = [r[0] for r in runs]
    res = runs[len(runs) // 2][1]
    return {
        "input_tokens": n_in,
        "warmup_s": round(warm_s, 3),
        "prefill_s": round(prefill_s, 4),
        "prefill_first_s": round(prefill[0], 4),
        "prefill_tokens_per_s": round(len(ids) / prefill_s, 1) if prefill_s else None,
        "latency_s": [round(x, 4) for x in lat],
        "latency_median_s": round(statistics.median(lat), 4),
        "scored_tokens": res.scored_tokens,
        "fwd_per_input": round(res.scored_tokens / res.original_tokens, 3) if res.original_tokens else None,
        "achieved_rate": round(res.rate, 4),
        "timings_ms": res.timings_ms,
        "peak_bytes": _peak(device),
    }


def measure_throughput(scorer, tok, args, name: str, batching: bool) -> dict:
    from app.scheduler import Scheduler
    from compressors import compress

    device = args.device
    prompts = [synthetic_prompt(f"{name}:tp{i}", args.throughput_tokens, tok) for i in range(args.requests)]
    n_in = [prompt_tokens(p, tok) for p in prompts]
    batches: list[tuple[int, int]] = []
    lock = threading.Lock()

    def on_batch(size: int, tokens: int) -> None:
        with lock:
            batches.append((size, tokens))

    batch_tokens = BATCH_TOKENS["cuda" if device.startswith("cuda") else "cpu"]
    sched = Scheduler(
        scorer,
        max_batch_tokens=batch_tokens,
        max_batch_requests=32,
        batch_wait_ms=2.0,
        batching=batching,
        on_batch=on_batch,
    )
    sched.start()

    def one(i: int) -> tuple[float, int]:
        ticket = sched.open(f"r{i}")
        t0 = time.perf_counter()
        try:
            res = compress(sched.bind(ticket), _spec(prompts[i], args), should_stop=ticket.should_stop)
        finally:
            sched.close(ticket)
        return time.perf_counter() - t0, res.scored_tokens

    _reset_peak(device)
    try:
        with ThreadPoolExecutor(max_workers=args.concurrency) as pool:
            t0 = time.perf_counter()
            done = list(pool.map(one, range(len(prompts))))
            wall = time.perf_counter() - t0
    finally:
        sched.stop()
    lat = sorted(d[0] for d in done)
    nll_sizes = [s for s, _ in batches]
    return {
        "batching": "on" if batching else "off",
        "concurrency": args.concurrency,
        "requests": len(prompts),
        "input_tokens_median": statistics.median(n_in),
        "wall_s": round(wall, 3),
        "requests_per_s": round(len(prompts) / wall, 3),
        "tokens_per_s": round(sum(n_in) / wall, 1),
        "latency_p50_s": round(statistics.median(lat), 3),
        "latency_max_s": round(lat[-1], 3),
        "model_calls": len(batches),
        "jobs_per_call": round(sum(nll_sizes) / len(nll_sizes), 3) if nll_sizes else None,
        "max_jobs_per_call": max(nll_sizes) if nll_sizes else None,
        "scored_tokens": sum(d[1] for d in done),
        "peak_bytes": _peak(device),
    }


def run_model(bench: Bench, name: str) -> None:
    import torch

    from compressors import CausalLMScorer as Scorer
    from compressors.scorer import LoadedModel

    args, device = bench.args, bench.args.device
    log(f"== {name}")
    base_alloc = torch.cuda.memory_allocated() if device.startswith("cuda") else 0
    t0 = time.perf_counter()
    model = build_model(name, args.dry_run, device)
    _sync(device)
    build_s = time.perf_counter() - t0
    n_params = sum(p.numel() for p in model.parameters())
    tok = SyntheticTokenizer(model.config.vocab_size)
    for q in args.quantizations:
        cell = {"model": name, "quantization": q, "params": n_params, "dry_run": args.dry_run}
        bench.result["cells"].append(cell)
        if bench.over_budget():
            cell["skipped"] = f"time budget ({args.time_budget_s}s) spent"
            log(f"{name} {q}: skipped (time budget)")
            bench.save()
            continue
        try:
            if q == "bf16":
                cell["build_s"] = round(build_s, 2)
            else:
                t0 = time.perf_counter()
                if args.nf4_method == "inplace":
                    cell["converted_linears"] = quantize_nf4_inplace(model, device)
                else:
                    model = quantize_nf4_reload(model, device, Path(args.tmp_dir))
                gc.collect()
                if device.startswith("cuda"):
                    torch.cuda.empty_cache()
                _sync(device)
                cell["quantize_s"] = round(time.perf_counter() - t0, 2)
                cell["nf4_method"] = args.nf4_method
            cell["model_bytes"] = model_bytes(model)
            if device.startswith("cuda"):
                cell["allocated_bytes"] = int(torch.cuda.memory_allocated() - base_alloc)
            dtype = str(next(model.parameters()).dtype).removeprefix("torch.")
            scorer = Scorer(
                LoadedModel(model, tok, f"{name}-random", q, device, dtype),
                max_batch_tokens=BATCH_TOKENS["cuda" if device.startswith("cuda") else "cpu"],
                retriever=bench.retriever,
            )
            cell["max_positions"] = scorer.max_positions
            cell["c1"] = measure_latency(scorer, tok, args, name)
            log(
                f"{name} {q}: c=1 {cell['c1']['latency_median_s']:.3f}s on {cell['c1']['input_tokens']} tokens "
                f"(prefill {cell['c1']['prefill_s']:.3f}s), fwd/in {cell['c1']['fwd_per_input']}"
            )
            bench.save()
            cell["throughput"] = {}
            for mode in args.batching:
                if bench.over_budget():
                    cell["throughput"][mode] = {"skipped": "time budget"}
                    continue
                tp = measure_throughput(scorer, tok, args, name, mode == "on")
                cell["throughput"][mode] = tp
                log(
                    f"{name} {q}: c={args.concurrency} batching {mode}: {tp['requests_per_s']} req/s, "
                    f"{tp['tokens_per_s']} tokens/s, {tp['jobs_per_call']} jobs/call"
                )
                bench.save()
            del scorer
        except Exception as exc:  # one model's trouble (no bitsandbytes, out of memory) must not end the run
            cell["error"] = f"{type(exc).__name__}: {exc}"
            log(f"{name} {q}: ERROR {cell['error']}")
            if q == "bf16":
                bench.save()
                break
        bench.save()
    del model
    gc.collect()
    if device.startswith("cuda"):
        torch.cuda.empty_cache()


# ---------------------------------------------------------------- report
def _f(x, spec: str) -> str:
    return "-" if x is None else format(x, spec)


def _gib(x) -> str:
    return "-" if x is None else f"{x / 2**30:.2f}"


def markdown(result: dict) -> str:
    env, cfg = result["environment"], result["config"]
    where = env.get("gpu") or "CPU"
    lines = [
        f"# GPU benchmark ({'DRY RUN, tiny configs' if cfg['dry_run'] else 'random-initialised real configs'}) "
        f"on {where}",
        "",
        f"torch {env.get('torch')} (CUDA {env.get('cuda')}), transformers {env.get('transformers')}, bitsandbytes "
        f"{env.get('bitsandbytes')}. {cfg['method']} at rate {cfg['rate']}; c=1: ~{cfg['tokens']}-token prompt, "
        f"median of {cfg['repeats']}; c={cfg['concurrency']}: {cfg['requests']} distinct ~{cfg['throughput_tokens']}"
        "-token prompts through app.scheduler (in process), batching on / off. prefill = one Scorer.nll pass over "
        "the whole prompt. jobs/call = requests' jobs merged per model call."
        + (f" Stand-ins: {', '.join(result['shims'])}." if result.get("shims") else ""),
        "",
        "| model | quant | params | model GiB | prefill s | c=1 s | fwd/in | peak GiB | on req/s | on tok/s "
        "| on jobs/call | off req/s | off tok/s | on/off |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for c in result["cells"]:
        head = f"| {c['model']} | {c['quantization']} | {c['params'] / 1e6:.3g}M "
        if "skipped" in c or "error" in c:
            lines.append(head + f"| {c.get('skipped') or c.get('error')} |" + " |" * 10)
            continue
        c1 = c.get("c1") or {}
        tp = c.get("throughput") or {}
        on, off = tp.get("on") or {}, tp.get("off") or {}
        ratio = None
        if on.get("requests_per_s") and off.get("requests_per_s"):
            ratio = on["requests_per_s"] / off["requests_per_s"]
        lines.append(
            head + f"| {_gib(c.get('model_bytes'))} | {_f(c1.get('prefill_s'), '.3f')} "
            f"| {_f(c1.get('latency_median_s'), '.3f')} | {_f(c1.get('fwd_per_input'), '.2f')} "
            f"| {_gib(c1.get('peak_bytes'))} | {_f(on.get('requests_per_s'), '.2f')} "
            f"| {_f(on.get('tokens_per_s'), '.0f')} "
            f"| {_f(on.get('jobs_per_call'), '.2f')} | {_f(off.get('requests_per_s'), '.2f')} "
            f"| {_f(off.get('tokens_per_s'), '.0f')} | {_f(ratio, '.2f')} |"
        )
    lines += ["", f"Elapsed {result.get('elapsed_s')} s.", ""]
    return "\n".join(lines)


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="GPU benchmark on random-initialised real configurations")
    ap.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    ap.add_argument("--quantizations", nargs="+", default=["bf16", "nf4"], choices=["bf16", "nf4"])
    ap.add_argument("--batching", nargs="+", default=["on", "off"], choices=["on", "off"])
    ap.add_argument("--tokens", type=int, default=10000, help="prompt size at concurrency 1")
    ap.add_argument("--throughput-tokens", type=int, default=10000, help="prompt size in the throughput test")
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--requests", type=int, default=None, help="distinct prompts in the throughput test (default: c)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--rate", type=float, default=0.25)
    ap.add_argument("--method", default="longllmlingua", choices=["longllmlingua", "llmlingua"])
    ap.add_argument("--device", default=None, help="default: cuda, or cpu with --dry-run")
    ap.add_argument("--nf4-method", default="inplace", choices=["inplace", "reload"])
    ap.add_argument("--tmp-dir", default="/tmp", help="where --nf4-method reload saves the bf16 model")
    ap.add_argument("--time-budget-s", type=float, default=480.0, help="cells starting later are skipped")
    ap.add_argument("--results-dir", type=Path, default=ROOT / "bench" / "results", help="used when $OUT is unset")
    ap.add_argument("--tag", default=None, help="gpu-<tag>.json (default: h100, or dry-run)")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: 1 with --dry-run)")
    ap.add_argument("--dry-run", action="store_true", help="tiny configs on the CPU, small prompts: seconds")
    args = ap.parse_args(argv)
    if args.dry_run:
        args.device = args.device or "cpu"
        args.tokens = min(args.tokens, 1500)
        args.throughput_tokens = min(args.throughput_tokens, 300)
        args.repeats = min(args.repeats, 1)
    args.device = args.device or "cuda"
    args.requests = args.requests or args.concurrency
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    import torch

    threads = args.threads or (1 if args.dry_run else None)
    if threads:  # tiny CPU ops: OpenMP threads only spin against each other (and neighbours) on a busy box
        torch.set_num_threads(threads)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        log("CUDA is not available: nothing to measure (use --dry-run for the CPU plumbing check)")
        return 2
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    except ImportError:
        pass
    bench = Bench(args)
    bench.retriever = synthetic_retriever(args.device, args.dry_run)
    log(f"gpu bench: {json.dumps(bench.result['environment'])}")
    if SHIMS:
        log(f"stand-ins for missing packages: {SHIMS}")
    bench.save()
    for name in args.models:
        run_model(bench, name)
    bench.save()
    print(markdown(bench.result))
    log(f"-> {bench.out_dir / f'gpu-{bench.tag}.json'}")
    errors = [c for c in bench.result["cells"] if "error" in c]
    return 1 if errors and len(errors) == len(bench.result["cells"]) else 0


if __name__ == "__main__":
    raise SystemExit(main())
