"""What the KV stream's attention masks cost (issue 12): the token-level stage's pattern -- a question
prefix, then 200-token windows over an NQ-20 prompt, each window followed by hiding part of it -- timed on
the scorer as implemented, beside the same windows with nothing hidden (no padding in the mask).

    python -m bench.stream_attention                    # embedded SmolLM2, bf16, CPU
    python -m bench.stream_attention --model tiny       # bench/overhead.py's tiny Llama, fp32
    python -m bench.stream_attention --compact          # and the alternative: hidden keys dropped from the cache
    python -m bench.stream_attention --kernels          # SDPA alone: masks, grouped-query heads, dropped keys
    python -m bench.stream_attention --save a.pt        # keep the NLLs, to compare two checkouts (--against)

Run it from another checkout (cd there; `python -m` imports that checkout's compressors) to time the
code before a change on the same prompt; --against compares the NLLs with a saved run's."""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def scorer_for(model: str):
    from compressors import load_scorer

    if model == "tiny":
        from bench.overhead import tiny_model

        path = tiny_model(ROOT / ".cache" / "bench" / "tiny-overhead")
        return load_scorer(str(path), quantization="fp32", device="cpu", retriever=None)
    return load_scorer("embedded", quantization="bf16", device="cpu", retriever=None)


def prompt_ids(scorer, docs: int) -> tuple[list[int], list[int]]:
    from bench import nq20
    from bench.speed import build_prompt

    c = nq20.corpus(str(nq20.DEFAULT_DATA))
    p = build_prompt(c, nq20.select_questions("test", 1, 0)[0], docs)
    return scorer.encode(p["instruction"] + "\n\n" + p["question_text"]), scorer.encode("\n\n".join(p["documents"]))


def compacting_stream(scorer, prefix: list[int]):
    """The alternative to masking: hidden entries are dropped from the KV cache before the next window
    (the kept ones keep their rotary positions, passed explicitly), so attention reads fewer keys, at the
    price of copying the cache. A prototype for this benchmark (no rebase past the model's window)."""
    from transformers import DynamicCache

    from compressors.scorer import Stream, attention

    class Compacting(Stream):
        position = 0  # rotary position of the next token: hidden ones keep theirs

        @torch.inference_mode()
        def _feed(self, ids, *, first_is_start, logical=None):
            if self.past is not None and not all(self.visible):
                keep = torch.tensor(self.visible).nonzero()[:, 0]
                for layer in self.past.layers:
                    layer.keys, layer.values = layer.keys.index_select(2, keep), layer.values.index_select(2, keep)
                self.logical = [n for n, v in zip(self.logical, self.visible[1:], strict=True) if v]
                self.ids = [t for t, v in zip(self.ids, self.visible, strict=True) if v]
                self.visible = [True] * len(self.ids)
            past = len(self.ids)
            everything = torch.ones(past, dtype=torch.bool)
            mask = attention.additive_mask(everything, len(ids), self.s._mask_dtype) if past else None
            out = self.s._base(
                input_ids=torch.tensor([ids]),
                attention_mask=mask,
                position_ids=torch.arange(self.position, self.position + len(ids))[None],
                use_cache=True,
                cache=self.past if self.past is not None else DynamicCache(),
            )
            self.past, self.position = out.past_key_values, self.position + len(ids)
            self.ids.extend(ids)
            self.visible.extend([True] * len(ids))
            new = len(ids) - 1 if first_is_start else len(ids)
            self.logical.extend(range(self.fed, self.fed + new))
            self.fed += new
            hidden = out.last_hidden_state[0]
            if first_is_start:
                preds, targets = hidden[:-1], ids[1:]
            else:
                preds, targets = torch.cat([self._last_hidden[None], hidden[:-1]]), ids
            self._last_hidden = hidden[-1]
            return self.s._target_nll(preds, torch.tensor(targets, dtype=torch.long))

    return Compacting(scorer, list(prefix), None)


def run_stream(
    scorer, prefix: list[int], ids: list[int], window: int, hide: float, compact: bool = False
) -> tuple[torch.Tensor, list[float]]:
    """The stream as compressors/tokens.py drives it; every k-th token of each window hidden after it."""
    stream = compacting_stream(scorer, prefix) if compact else scorer.stream(prefix)
    out, times = [], []
    step = round(1 / hide) if hide else 0
    for lo in range(0, len(ids), window):
        chunk = ids[lo : lo + window]
        base = len(stream)
        t0 = time.perf_counter()
        out.append(stream.extend(chunk))
        times.append(time.perf_counter() - t0)
        if step:
            stream.hide([base + i for i in range(len(chunk)) if i % step != step - 1])
    return torch.cat(out), times


def kernel_cases(q, k, v, allowed, hidden) -> dict:
    import torch.nn.functional as F

    sdpa = F.scaled_dot_product_attention
    additive = torch.zeros(allowed.shape, dtype=q.dtype).masked_fill_(~allowed, float("-inf"))
    kd, vd, dropped = k[:, :, ~hidden], v[:, :, ~hidden], allowed[..., ~hidden]
    rk, rv = k.repeat_interleave(3, 1), v.repeat_interleave(3, 1)
    return {
        "bool mask, K/V repeated per head (transformers' CPU path)": lambda: sdpa(
            q, k.repeat_interleave(3, 1), v.repeat_interleave(3, 1), attn_mask=allowed
        ),
        "bool mask, K/V repeated beforehand": lambda: sdpa(q, rk, rv, attn_mask=allowed),
        "bool mask, enable_gqa": lambda: sdpa(q, k, v, attn_mask=allowed, enable_gqa=True),
        "additive mask, enable_gqa": lambda: sdpa(q, k, v, attn_mask=additive, enable_gqa=True),
        "hidden keys dropped, bool mask, enable_gqa": lambda: sdpa(q, kd, vd, attn_mask=dropped, enable_gqa=True),
        "no mask, enable_gqa (wrong result; the floor)": lambda: sdpa(q, k, v, enable_gqa=True),
    }


def kernels() -> None:
    """SDPA alone, SmolLM2-135M's attention shape (9 query heads, 3 key/value heads, 64 dims), bf16: a
    200-token window over a cache, half of the cache hidden."""
    torch.manual_seed(0)
    for q_len, kv in ((200, 600), (200, 1400), (200, 2700), (200, 4000)):
        q = torch.randn(1, 9, q_len, 64, dtype=torch.bfloat16)
        k, v = torch.randn(1, 3, kv, 64, dtype=torch.bfloat16), torch.randn(1, 3, kv, 64, dtype=torch.bfloat16)
        past = kv - q_len
        hidden = torch.arange(kv) % 2 == 0
        hidden[past:] = False
        allowed = ((torch.arange(q_len)[:, None] + past >= torch.arange(kv)[None, :]) & ~hidden)[None, None]
        cases = kernel_cases(q, k, v, allowed, hidden)
        times: dict[str, list[float]] = {name: [] for name in cases}
        for _ in range(15):
            for name, fn in cases.items():
                t0 = time.perf_counter()
                fn()
                times[name].append((time.perf_counter() - t0) * 1e3)
        print(f"\nwindow {q_len} over {kv} keys (ms per layer, median of 15):")
        for name, ts in times.items():
            print(f"  {statistics.median(ts):6.2f}  {name}")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", choices=["embedded", "tiny"], default="embedded")
    ap.add_argument("--docs", type=int, default=20, help="NQ-20 documents in the prompt (20: ~2.7k tokens)")
    ap.add_argument("--window", type=int, default=200)
    ap.add_argument("--hide", type=float, default=0.5, help="share of each window hidden after it")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--kernels", action="store_true")
    ap.add_argument("--compact", action="store_true", help="also: hidden entries dropped from the cache")
    ap.add_argument("--save", type=Path, default=None)
    ap.add_argument("--against", type=Path, default=None)
    args = ap.parse_args(argv)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    if args.kernels:
        kernels()
        return
    scorer = scorer_for(args.model)
    prefix, ids = prompt_ids(scorer, args.docs)
    print(f"{scorer.info.model} {scorer.info.dtype}: prefix {len(prefix)}, {len(ids)} in windows of {args.window}")
    results = {}
    variants = [("hidden", args.hide, False), ("none hidden", 0.0, False)]
    if args.compact:
        variants.append(("compacted", args.hide, True))
    for name, hide, compact in variants:
        run_stream(scorer, prefix, ids[: args.window * 2], args.window, hide, compact)  # warm-up
        runs = [run_stream(scorer, prefix, ids, args.window, hide, compact) for _ in range(args.repeats)]
        nll = runs[0][0]
        same = all(torch.equal(nll, r[0]) for r in runs)
        total = statistics.median(sum(t) for _, t in runs) * 1e3
        last = statistics.median(r[1][-1] for r in runs) * 1e3
        results[name] = nll
        per = [round(statistics.median(r[1][i] for r in runs) * 1e3) for i in range(len(runs[0][1]))]
        print(f"  {name:12s}: {total:7.0f} ms for {len(per)} windows (last window {last:.0f} ms), deterministic {same}")
        print(f"    per window ms: {per}")
    if "compacted" in results:  # the same sums over fewer keys: equal up to rounding, if at all
        d = (results["compacted"] - results["hidden"]).abs()
        print(f"  compacted vs hidden: max |diff| {d.max():.2e}, mean {d.mean():.2e}")
    if args.save:
        torch.save(results, args.save)
    if args.against:
        before = torch.load(args.against)
        for name, nll in results.items():
            old = before[name if name in before else "hidden"]
            d = (nll - old).abs()
            same = torch.equal(nll, old)
            print(f"  {name:12s} vs {args.against}: max |diff| {d.max():.2e}, mean {d.mean():.2e}, equal {same}")


if __name__ == "__main__":
    main()
