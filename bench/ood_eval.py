"""In-process quality check on the development sets of issue 21, the embedded model, no service:
needles (ood-niah-dev, `docs` form), ACL papers (ood-aclsum-dev, evidence recall), synthetic NQ-20 dev
and GSM8K's 8-shot CoT prompt. Per set and rate: the quality figure, achieved rate (median and worst
miss of the request), scored tokens per input token, median latency; per lost prompt, where the answer
was lost: `coarse` (its document dropped), `sentence` (document kept, under 30% of the answer's
sentence kept), `token` (the sentence kept, the answer cut inside it).

    python -m bench.ood_eval --sets niah aclsum nq gsm8k --rates 0.1 0.05
    python -m bench.ood_eval --sets niah --rates 0.1 --extra '{"relevance": "lexical"}'

Development halves only: the needles and aclsum files in ../shared/data are the dev halves; NQ-20 uses
bench/datasets.py's NQ-20 `dev` split (questions 0..999 of the oracle file).
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import statistics
import time
import traceback
from pathlib import Path

from bench import datasets
from bench.datasets import answer_kept, final_answer, load_demonstrations
from bench.metrics import answer_retained

# ../shared/data from the main checkout; a worktree under /work/wt reads the same folder
DATA = next(
    (p for p in (Path(__file__).resolve().parents[2] / "shared" / "data", Path("/work/shared/data")) if p.is_dir()),
    Path("../shared/data"),
)
_WORD = re.compile(r"[A-Za-z][A-Za-z\-]+")
_SENTENCE = re.compile(r"(?<=[.!?])\s+")
STOP = frozenset(
    """the and for are but not you all any can had her was one our out has him his how its may new now old see two
    who did get let say she too use that with have this will your from they been were said each which their
    what there when make like into than then them these some would other more also such only over most very
    using used based both while where between through because however about after before under within
    paper propose proposed approach method methods model models show shows results result task tasks""".split()
)


def words(text: str) -> set[str]:
    return {w.lower() for w in _WORD.findall(text) if len(w) >= 3}


def load(name: str) -> list[dict]:
    with gzip.open(DATA / name, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


# -- the sets, as (id, context, instruction, question, judge) --------------------------------------
def niah_jobs(n: int, length: int) -> list[dict]:
    rows = [r for r in load("ood-niah-dev.jsonl.gz") if r["length"] == length][:n]
    return [
        {"id": r["id"], "context": r["docs"], "instruction": "", "question": r["question"], "answers": r["answers"]}
        for r in rows
    ]


def nq_jobs(n: int, positions: list[int]) -> list[dict]:
    return [
        {
            "id": r.id,
            "context": r.documents,
            "instruction": r.instruction,
            "question": r.question,
            "answers": r.meta["answers"],
        }
        for r in datasets.nq20("dev", n, positions, data=DATA / "nq-open-oracle.dev.jsonl.gz")
    ]


def aclsum_jobs(n: int) -> list[dict]:
    out = []
    for r in load("ood-aclsum-dev.jsonl.gz")[:n]:
        paper = " ".join(r["docs"])
        rest = paper
        for s in r["evidence"]:
            rest = rest.replace(s, " ")
        gold = words(" ".join(r["evidence"])) - words(rest) - words(r["question"]) - STOP
        out.append({"id": r["id"], "context": r["docs"], "instruction": "", "question": r["question"], "gold": gold})
    return out


def gsm8k_jobs() -> list[dict]:
    demos = load_demonstrations(DATA / "gsm8k-cot-prompt_hardest.txt")
    return [{"id": "gsm8k-8shot", "context": demos, "instruction": "", "question": "", "demos": demos}]


# -- judging ---------------------------------------------------------------------------------------
def where_lost(job: dict, contexts) -> str:
    """coarse / sentence / token: the stage that lost the answer (first document holding it)."""
    for i, doc in enumerate(job["context"]):
        if not answer_retained(doc, job["answers"]):
            continue
        if not contexts[i].kept:
            return "coarse"
        sentence = next(s for s in _SENTENCE.split(doc) if answer_retained(s, job["answers"]))
        rest = words(sentence) - set().union(*(words(a) for a in job["answers"]))
        kept = words(contexts[i].text)
        return "token" if rest and len(rest & kept) / len(rest) >= 0.3 else "sentence"
    return "?"


def judge(kind: str, job: dict, res) -> dict:
    ctx_text = "\n\n".join(c.text for c in res.contexts if c.kept)
    if kind in ("niah", "nq"):
        ok = answer_retained(ctx_text, job["answers"])
        return {"score": float(ok), "lost": None if ok else where_lost(job, res.contexts)}
    if kind == "aclsum":
        gold = job["gold"]
        return {"score": len(gold & words(ctx_text)) / len(gold) if gold else 1.0, "lost": None}
    demos = job["demos"]
    kept = [c for c in res.contexts if c.kept]
    good = [answer_kept(c.text, final_answer(demos[c.index])) for c in kept]
    return {"score": sum(good) / max(len(kept), 1), "lost": f"{sum(good)}/{len(kept)} kept demos keep the answer"}


def bm25_passages(job: dict, rate: float, count) -> float | None:
    """Whole passages by BM25 to the same budget (the issue's baseline), judged like terse."""
    from compressors.ranking import bm25_scores

    if not job["question"]:
        return None
    docs = job["context"]
    total = count("\n\n".join([job["instruction"], *docs, job["question"]]))
    budget = rate * total - count(job["instruction"]) - count(job["question"])
    scores = bm25_scores(docs, job["question"])
    taken, used = [], 0
    for i in sorted(range(len(docs)), key=lambda i: (-scores[i], i)):
        n = count(docs[i])
        if used + n > budget and taken:
            break
        taken.append(i)
        used += n
    text = "\n\n".join(docs[i] for i in sorted(taken))
    if "answers" in job:
        return float(answer_retained(text, job["answers"]))
    return len(job["gold"] & words(text)) / len(job["gold"]) if job["gold"] else 1.0


def summary(kind: str, rate: float, name: str, rows: list[dict]) -> str:
    miss = max(rows, key=lambda r: abs(r["achieved"] - 1))["achieved"]
    lost: dict[str, int] = {}
    for r in rows:
        if r["lost"]:
            lost[r["lost"]] = lost.get(r["lost"], 0) + 1
    bm = [r["bm25"] for r in rows if r["bm25"] is not None]
    cells = [
        kind,
        f"{rate:g}",
        name,
        str(len(rows)),
        f"{statistics.mean(r['score'] for r in rows):.2f}",
        f"{statistics.mean(bm):.2f}" if bm else "-",
        f"{statistics.median(r['achieved'] for r in rows):.3f}, {miss:.3f}",
        f"{statistics.median(r['scored'] for r in rows):.2f}",
        f"{statistics.median(r['latency'] for r in rows):.2f}",
        ", ".join(f"{k} {v}" for k, v in sorted(lost.items())) or "-",
    ]
    out = "| " + " | ".join(cells) + " |"
    lost_ids = [f"{r['id']}:{r['lost']}" for r in rows if r["lost"] and kind != "gsm8k"]
    return out + (f"\n  lost: {' '.join(lost_ids)}" if lost_ids else "")


def main(argv: list[str] | None = None) -> int:
    import dataclasses
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from compressors import CompressionSpec, load_scorer
    from compressors.pipelines import METHODS
    from compressors.pipelines.coarse_to_fine import run

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sets", nargs="+", default=["niah", "aclsum", "nq", "gsm8k"])
    ap.add_argument("--rates", type=float, nargs="+", default=[0.1, 0.05])
    ap.add_argument("--niah", type=int, default=12, help="needle prompts (the ~4k ones)")
    ap.add_argument("--niah-length", type=int, default=4000)
    ap.add_argument("--aclsum", type=int, default=20)
    ap.add_argument("--nq", type=int, default=10, help="NQ-20 dev questions (x --positions)")
    ap.add_argument("--positions", type=int, nargs="+", default=[1, 10])
    ap.add_argument(
        "--variants",
        type=json.loads,
        default=[{"name": "default"}],
        help='JSON list of {"name", "spec": CompressionSpec fields, "cfg": MethodConfig fields}, run side by side',
    )
    ap.add_argument(
        "--quantization",
        default="fp32",
        help="the embedded model's weights on CPU: fp32 (bf16, the service's auto, is emulated without AVX-512)",
    )
    ap.add_argument("--verbose", action="store_true", help="print the end of each prompt lost inside its document")
    args = ap.parse_args(argv)

    scorer = load_scorer("embedded", quantization=args.quantization)
    builders = {
        "niah": lambda: niah_jobs(args.niah, args.niah_length),
        "aclsum": lambda: aclsum_jobs(args.aclsum),
        "nq": lambda: nq_jobs(args.nq, args.positions),
        "gsm8k": gsm8k_jobs,
    }
    print(f"variants={json.dumps(args.variants)}")
    print(
        "| set | rate | variant | prompts | score | bm25 passages | size / asked (median, worst) "
        "| scored/input | latency s | lost at |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for kind in args.sets:
        jobs = builders[kind]()
        warm = CompressionSpec(context=jobs[0]["context"][:2], question=jobs[0]["question"], rate=0.5)
        run(scorer, warm, METHODS[warm.resolved_method()], None)
        for rate in args.rates:
            rows: dict[str, list[dict]] = {v["name"]: [] for v in args.variants}
            for job in jobs:
                base = bm25_passages(job, rate, scorer.count) if kind != "gsm8k" else None
                for v in args.variants:  # side by side, prompt by prompt
                    spec = CompressionSpec(
                        context=list(job["context"]),
                        instruction=job["instruction"],
                        question=job["question"],
                        rate=rate,
                        **v.get("spec", {}),
                    )
                    cfg = dataclasses.replace(METHODS[spec.resolved_method()], **v.get("cfg", {}))
                    t0 = time.perf_counter()
                    try:
                        res = run(scorer, spec, cfg, None)
                    except Exception:  # noqa: BLE001 - one broken variant must not end the side-by-side run
                        traceback.print_exc()
                        continue
                    latency = time.perf_counter() - t0
                    got = judge(kind, job, res)
                    rows[v["name"]].append(
                        {
                            **got,
                            "id": job["id"],
                            "latency": latency,
                            "scored": res.scored_tokens / res.original_tokens,
                            "achieved": res.compressed_tokens / (rate * res.original_tokens),
                            "bm25": base,
                        }
                    )
                    if args.verbose and got["lost"] in ("token", "sentence"):
                        print(f"  {v['name']} {job['id']} lost at {got['lost']}: {res.compressed_prompt[-500:]!r}")
            for name, rs in rows.items():
                if rs:
                    print(summary(kind, rate, name, rs), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
