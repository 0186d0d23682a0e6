"""Compress the LLMLingua paper's GSM8K chain-of-thought prompt (8 demonstrations) through the terse
service at 5x, 10x and 20x and count what the reasoning keeps.

    python -m bench.gsm8k                          # terse, method llmlingua, rates 0.2 0.1 0.05
    python -m bench.gsm8k --method longllmlingua --with-question

The prompt (../shared/data/gsm8k-cot-prompt_hardest.txt, CRLF line ends) is 8 demonstrations separated by
blank lines, each "Question: ...\\nLet's think step by step\\n<reasoning lines>\\nThe answer is N"; they are
sent as a context list of 8 documents. Reported per rate:
- demonstrations whose final answer survives: "The answer is N" (case-insensitive, whitespace-normalised,
  N not followed by another digit) found in that demonstration's compressed text (`contexts[i].text`), or in
  the whole compressed prompt when the service does not return per-document text;
- the share of reasoning numbers kept: the numbers of the reasoning lines (between "Let's think step by step"
  and "The answer is"), as a multiset, matched against the numbers of the compressed demonstration.
Writes bench/results/gsm8k-terse-<method>.jsonl (one line per rate) and prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections import Counter
from pathlib import Path

from bench.nq20 import normalize
from bench.quality import DEFAULT_URL, RESULTS, ROOT

DEFAULT_PROMPT = ROOT.parent / "shared" / "data" / "gsm8k-cot-prompt_hardest.txt"
DEFAULT_TEST = ROOT.parent / "shared" / "data" / "gsm8k-test.jsonl"
RATES = (0.2, 0.1, 0.05)
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_ANSWER = re.compile(r"the answer is\s*(\S+)", re.IGNORECASE)


def load_demonstrations(path: Path = DEFAULT_PROMPT) -> list[str]:
    text = path.read_text(encoding="utf-8").replace("\r\n", "\n").replace("\r", "\n")
    return [d.strip() for d in re.split(r"\n\s*\n", text) if d.strip()]


def final_answer(demo: str) -> str:
    m = _ANSWER.findall(demo)
    if not m:
        raise ValueError(f"no 'The answer is' in demonstration: {demo[:80]!r}")
    return m[-1].rstrip(".")


def reasoning_numbers(demo: str) -> Counter:
    lines = demo.split("\n")
    start = next((i for i, line in enumerate(lines) if line.lower().startswith("let's think step by step")), 0)
    body = [line for line in lines[start + 1 :] if not line.lower().startswith("the answer is")]
    return Counter(_numbers("\n".join(body)))


def _numbers(text: str) -> list[str]:
    return [n.replace(",", "") for n in _NUMBER.findall(text)]


def answer_kept(text: str, answer: str) -> bool:
    pattern = r"the answer is " + re.escape(normalize(answer)) + r"(?![\d])"
    return re.search(pattern, normalize(text)) is not None


def numbers_kept(compressed: str, wanted: Counter) -> int:
    have = Counter(_numbers(compressed))
    return sum(min(c, have[n]) for n, c in wanted.items())


def score(demos: list[str], compressed_prompt: str, per_demo_text: list[str] | None) -> dict:
    answers = [final_answer(d) for d in demos]
    wanted = [reasoning_numbers(d) for d in demos]
    if per_demo_text is not None:
        kept = [answer_kept(t, a) for t, a in zip(per_demo_text, answers, strict=True)]
        nums = sum(numbers_kept(t, w) for t, w in zip(per_demo_text, wanted, strict=True))
        basis = "per-demonstration"
    else:
        kept = [answer_kept(compressed_prompt, a) for a in answers]
        nums = numbers_kept(compressed_prompt, sum(wanted, Counter()))
        basis = "whole prompt"
    total = sum(sum(w.values()) for w in wanted)
    return {
        "answers_kept": sum(kept),
        "answers_kept_ids": [i for i, k in enumerate(kept) if k],
        "demonstrations": len(demos),
        "reasoning_numbers_kept": nums,
        "reasoning_numbers": total,
        "reasoning_numbers_share": nums / total if total else None,
        "basis": basis,
    }


def main(argv: list[str] | None = None) -> int:
    import httpx

    ap = argparse.ArgumentParser(description="GSM8K CoT prompt compression through terse")
    ap.add_argument("--url", default=DEFAULT_URL)
    ap.add_argument("--rates", type=float, nargs="+", default=list(RATES))
    ap.add_argument("--method", default="llmlingua", choices=["llmlingua", "longllmlingua"])
    ap.add_argument("--with-question", action="store_true", help="append GSM8K test question 0 as the question")
    ap.add_argument("--extra", type=json.loads, default={}, help="extra request fields (JSON)")
    ap.add_argument("--prompt", type=Path, default=DEFAULT_PROMPT)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--timeout", type=float, default=600.0)
    args = ap.parse_args(argv)

    demos = load_demonstrations(args.prompt)
    question = ""
    if args.with_question:
        first = json.loads(DEFAULT_TEST.read_text(encoding="utf-8").splitlines()[0])
        question = f"Question: {first['question']}\nLet's think step by step"
    out = args.out or RESULTS / f"gsm8k-terse-{args.method}.jsonl"
    rows = []
    with httpx.Client(base_url=args.url, timeout=args.timeout) as client:
        for rate in args.rates:
            body = {"context": demos, "instruction": "", "question": question, "rate": rate, "method": args.method}
            body.update(args.extra)
            t0 = time.perf_counter()
            try:
                resp = client.post("/v1/compress", json=body)
            except httpx.TransportError as exc:
                print(f"terse service at {args.url} unreachable: {exc}", file=sys.stderr)
                return 1
            latency = time.perf_counter() - t0
            if resp.status_code != 200:
                print(f"rate {rate}: HTTP {resp.status_code}: {resp.text[:300]}", file=sys.stderr)
                return 1
            data = resp.json()
            contexts = data.get("contexts") or []
            per_demo = None
            if len(contexts) == len(demos) and all("text" in c for c in contexts):
                by_index = {c["index"]: c["text"] if c.get("kept") else "" for c in contexts}
                per_demo = [by_index.get(i, "") for i in range(len(demos))]
            res = score(demos, data["compressed_prompt"], per_demo)
            row = {
                "rate": rate,
                "method": args.method,
                "original_tokens": data.get("original_tokens"),
                "compressed_tokens": data.get("compressed_tokens"),
                "achieved_rate": data.get("rate"),
                "scored_tokens": data.get("scored_tokens"),
                "latency_s": round(latency, 4),
                "with_question": bool(question),
                **res,
                "compressed_prompt": data["compressed_prompt"],
            }
            rows.append(row)
            out.parent.mkdir(parents=True, exist_ok=True)
            with out.open("a", encoding="utf-8") as f:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
    print(f"### GSM8K 8-shot CoT prompt through terse ({args.method})\n")
    print("| target | rate | tokens | achieved | answers kept | reasoning numbers kept | latency (s) |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        share = r["reasoning_numbers_share"]
        print(
            f"| {1 / r['rate']:.0f}x | {r['rate']:g} | {r['original_tokens']} -> {r['compressed_tokens']} | "
            f"{r['achieved_rate']:.3f} | {r['answers_kept']}/{r['demonstrations']} | "
            f"{r['reasoning_numbers_kept']}/{r['reasoning_numbers']} ({100 * share:.0f}%) | {r['latency_s']:.2f} |"
        )
    print(f"\n-> {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
