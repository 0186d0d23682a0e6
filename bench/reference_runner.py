"""Run the reference implementation (llmlingua 0.2.2) on a JSONL of jobs. Runs INSIDE .venv-ref
(bench/setup_reference.sh) and imports nothing of terse (only the harness's standard-library results
writer, loadtests/reports.py): it is the other side of a side-by-side.

    .venv-ref/bin/python bench/reference_runner.py --model DIR --jobs jobs.jsonl --out results.jsonl

A job: {"id", "instruction", "documents": [...], "question", "rate", "method": "longllmlingua"|"llmlingua",
"meta": {...}?}. Each result is appended as one JSON line: {"id", "method", "rate", "compressed_prompt",
"origin_tokens", "compressed_tokens", "latency_s", "forward_tokens", "forward_calls", "kept_context_ids",
"rank_order", "meta"}; token counts are SmolLM2 tokens. Resumable: ids already in the output file (without an
"error") are skipped, so an interrupted run continues where it stopped.

Three things make the reference run offline on the embedded model, each done here and nowhere else:
- tiktoken: llmlingua counts report tokens with `tiktoken.encoding_for_model("gpt-3.5-turbo")` (cl100k_base,
  downloaded on first use). Both `tiktoken.encoding_for_model` and `tiktoken.get_encoding` are replaced,
  before llmlingua is imported, by an encoding whose encode/decode use the SmolLM2 tokenizer, so every count
  it reports is in the scorer's tokens (the same unit the benchmark's budgets use).
- the model folder: the converted embedded model was saved by transformers 5.x, whose files 4.46.3 misreads:
  `tokenizer_class: TokenizersBackend` does not exist there, and RoPE's base sits in `rope_parameters`,
  which 4.46 ignores, silently falling back to rope_theta=10000 instead of SmolLM2's 100000 (the model
  would load without a warning and score with wrong positions). A compatibility folder (symlinked weights
  and tokenizer.json, rewritten config.json / tokenizer_config.json) is written next to the outputs.
- forward tokens: a forward pre-hook on the model counts the non-padding new tokens of every forward pass
  (attention-mask ones over the new positions; cached past positions are not counted).

Settings: LongLLMLingua with its authors' recommendation (rank_method="longllmlingua",
condition_in_question="after_condition", reorder_context="sort", dynamic_context_compression_ratio=0.3,
condition_compare=True, context_budget="+100"); LLMLingua with the defaults of compress_prompt.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

# Run as a script, the folder of this file is sys.path[0]; drop it so bench's modules never shadow anything.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
# The harness's results files (standard library only); last, so the reference's own packages win.
sys.path.append(str(_HERE.parent))
from loadtests import reports  # noqa: E402

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

LONGLLMLINGUA_SETTINGS = {
    "rank_method": "longllmlingua",
    "condition_in_question": "after_condition",
    "reorder_context": "sort",
    "dynamic_context_compression_ratio": 0.3,
    "condition_compare": True,
    "context_budget": "+100",
}
LLMLINGUA_SETTINGS: dict = {}  # compress_prompt's defaults (rank_method="llmlingua", context_budget="+100")
METHODS = {"longllmlingua": LONGLLMLINGUA_SETTINGS, "llmlingua": LLMLINGUA_SETTINGS}


# ---------------------------------------------------------------- model folder for transformers 4.46
def compat_model_dir(src: Path, dest_root: Path) -> Path:
    """A folder transformers 4.46.3 reads correctly, built from the 5.x-saved converted model (idempotent)."""
    src = src.resolve()
    dest = dest_root / f"{src.name}-tf446"
    config = json.loads((src / "config.json").read_text())
    rope = config.pop("rope_parameters", None) or {}
    if "rope_theta" not in config:
        if "rope_theta" not in rope:
            raise SystemExit(f"{src}/config.json: no rope_theta and no rope_parameters.rope_theta")
        config["rope_theta"] = rope["rope_theta"]
    if rope.get("rope_type", "default") != "default" and "rope_scaling" not in config:
        config["rope_scaling"] = {k: v for k, v in rope.items() if k != "rope_theta"}
    if "dtype" in config and "torch_dtype" not in config:
        config["torch_dtype"] = config.pop("dtype")
    tok_config = json.loads((src / "tokenizer_config.json").read_text())
    tok_config["tokenizer_class"] = "PreTrainedTokenizerFast"
    for key in ("backend", "is_local", "local_files_only"):
        tok_config.pop(key, None)
    want = {"config.json": config, "tokenizer_config.json": tok_config}

    dest.mkdir(parents=True, exist_ok=True)
    for name in ("model.safetensors", "tokenizer.json", "generation_config.json"):
        if not (src / name).exists():
            continue
        link = dest / name
        if link.is_symlink() or link.exists():
            if link.resolve() == (src / name).resolve():
                continue
            link.unlink()
        link.symlink_to(src / name)
    for name, content in want.items():
        text = json.dumps(content, indent=2, sort_keys=True)
        path = dest / name
        if not path.exists() or path.read_text() != text:
            tmp = path.with_suffix(".tmp")
            tmp.write_text(text)
            tmp.replace(path)
    return dest


# ---------------------------------------------------------------- tiktoken stub
class ScorerEncoding:
    """Stands in for tiktoken's cl100k_base: the same two methods llmlingua calls, in SmolLM2 tokens."""

    name = "smollm2-stub"

    def __init__(self, tokenizer):
        self._tok = tokenizer

    def encode(self, text: str, *args, **kwargs) -> list[int]:
        return self._tok(text, add_special_tokens=False).input_ids

    def decode(self, tokens, *args, **kwargs) -> str:
        return self._tok.decode(list(tokens))


def install_tiktoken_stub(tokenizer) -> ScorerEncoding:
    import tiktoken

    encoding = ScorerEncoding(tokenizer)
    tiktoken.encoding_for_model = lambda *a, **k: encoding
    tiktoken.get_encoding = lambda *a, **k: encoding
    return encoding


# ---------------------------------------------------------------- forward counting
class ForwardCounter:
    def __init__(self):
        self.tokens = 0
        self.calls = 0

    def reset(self) -> None:
        self.tokens = 0
        self.calls = 0

    def hook(self, module, args, kwargs):
        ids = args[0] if args else kwargs.get("input_ids")
        if ids is None:  # inputs_embeds: count its positions
            emb = kwargs.get("inputs_embeds")
            n_new, batch = emb.shape[1], emb.shape[0]
            ids_count = n_new * batch
        else:
            n_new = ids.shape[-1]
            ids_count = ids.numel()
        mask = kwargs.get("attention_mask")
        if mask is None and len(args) > 1:
            mask = args[1]
        if mask is not None and n_new > 0:
            ids_count = int(mask[..., -n_new:].sum().item())
        self.tokens += ids_count
        self.calls += 1
        return None


# ---------------------------------------------------------------- jobs
class Reference:
    def __init__(self, model_dir: Path, compat_root: Path, dtype: str, threads: int | None):
        import torch
        from transformers import AutoTokenizer

        if threads:
            torch.set_num_threads(threads)
        self.model_dir = compat_model_dir(model_dir, compat_root)
        self.tokenizer = AutoTokenizer.from_pretrained(self.model_dir)
        self.encoding = install_tiktoken_stub(self.tokenizer)
        from llmlingua import PromptCompressor  # after the stub: nothing reaches for cl100k_base

        torch_dtype = {"bf16": torch.bfloat16, "fp32": torch.float32, "fp16": torch.float16}[dtype]
        t0 = time.perf_counter()
        self.compressor = PromptCompressor(
            model_name=str(self.model_dir),
            device_map="cpu",
            model_config={"torch_dtype": torch_dtype, "trust_remote_code": False},
        )
        self.load_s = time.perf_counter() - t0
        model = self.compressor.model
        if abs(float(getattr(model.config, "rope_theta", 0)) - self._want_rope_theta(model_dir)) > 1e-3:
            raise SystemExit(f"reference model loaded with rope_theta={model.config.rope_theta}: wrong config")
        self.dtype = str(next(model.parameters()).dtype).replace("torch.", "")
        self.counter = ForwardCounter()
        model.register_forward_pre_hook(self.counter.hook, with_kwargs=True)
        # Capture the coarse filter's choice (third value returned by control_context_budget).
        self._coarse: list[int] | None = None
        original = self.compressor.control_context_budget

        def captured(*args, **kwargs):
            res = original(*args, **kwargs)
            self._coarse = [int(i) for i in res[2]]
            return res

        self.compressor.control_context_budget = captured
        self.torch_threads = torch.get_num_threads()
        self.versions = _versions()

    @staticmethod
    def _want_rope_theta(src: Path) -> float:
        config = json.loads((Path(src) / "config.json").read_text())
        return float(config.get("rope_theta") or (config.get("rope_parameters") or {}).get("rope_theta"))

    def count(self, text: str) -> int:
        return len(self.encoding.encode(text))

    def run(self, job: dict) -> dict:
        method = job.get("method", "longllmlingua")
        settings = dict(METHODS[method])
        documents = list(job["documents"])
        self._coarse = None
        self.counter.reset()
        self.compressor.context_idxs = []  # the reference appends to this list on every call
        t0 = time.perf_counter()
        res = self.compressor.compress_prompt(
            documents,
            instruction=job.get("instruction", ""),
            question=job.get("question", ""),
            rate=float(job["rate"]),
            **settings,
        )
        latency = time.perf_counter() - t0
        rank_order = [int(i) for i in self.compressor.context_idxs[-1]] if self.compressor.context_idxs else None
        kept = self._coarse if self._coarse is not None else list(range(len(documents)))
        prompt = res["compressed_prompt"]
        return {
            "id": job["id"],
            "method": method,
            "rate": float(job["rate"]),
            "compressed_prompt": prompt,
            "origin_tokens": int(res["origin_tokens"]),
            "compressed_tokens": self.count(prompt),
            "latency_s": round(latency, 4),
            "forward_tokens": self.counter.tokens,
            "forward_calls": self.counter.calls,
            "kept_context_ids": sorted(kept),
            "rank_order": rank_order,
            "settings": settings,
            "meta": job.get("meta"),
        }


def _versions() -> dict:
    import importlib.metadata as md

    return {n: md.version(n) for n in ("llmlingua", "transformers", "torch")}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True, type=Path, help="converted embedded SmolLM2 folder")
    ap.add_argument("--jobs", required=True, type=Path)
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--dtype", default="bf16", choices=["bf16", "fp32", "fp16"])
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    ap.add_argument("--compat-dir", type=Path, default=None, help="where the 4.46-compatible model folder goes")
    ap.add_argument("--limit", type=int, default=None, help="run at most this many pending jobs")
    ap.add_argument("--no-warmup", action="store_true")
    args = ap.parse_args(argv)

    jobs = reports.read_jsonl(args.jobs)
    done = reports.done_ids(args.out)
    pending = [j for j in jobs if j["id"] not in done]
    if args.limit is not None:
        pending = pending[: args.limit]
    print(f"reference: {len(jobs)} jobs, {len(jobs) - len(pending)} done, {len(pending)} to run", flush=True)
    if not pending:
        return 0
    compat_root = args.compat_dir or (_HERE.parent / ".cache" / "reference-model")
    ref = Reference(args.model, compat_root, args.dtype, args.threads)
    print(
        f"reference: loaded {ref.model_dir.name} ({ref.dtype}, {ref.torch_threads} threads) in {ref.load_s:.1f}s; "
        f"{ref.versions}",
        flush=True,
    )
    if not args.no_warmup:  # first-call overheads (lazy init, allocator) stay out of the timings
        first = pending[0]
        ref.run({**first, "id": "_warmup", "documents": first["documents"][:2], "rate": 0.5})
    for k, job in enumerate(pending, 1):
        try:
            rec = ref.run(job)
        except Exception as exc:  # recorded, and retried on the next run
            rec = {"id": job["id"], "error": f"{type(exc).__name__}: {exc}", "meta": job.get("meta")}
        rec["runner"] = {"dtype": ref.dtype, "threads": ref.torch_threads, **ref.versions}
        reports.append_jsonl(args.out, rec)
        if "error" in rec:
            print(f"reference [{k}/{len(pending)}] {job['id']}: ERROR {rec['error']}", flush=True)
        else:
            print(
                f"reference [{k}/{len(pending)}] {job['id']}: {rec['origin_tokens']}->{rec['compressed_tokens']} "
                f"tokens (rate {job['rate']}), {rec['latency_s']:.1f}s, {rec['forward_tokens']} fwd tokens",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
