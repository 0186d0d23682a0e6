"""terse's sentence boundaries (compressors/sentences.py) against pysbd, the splitter it used before, and
any of blingfire / syntok that are installed: same boundaries per text, time per text, and every boundary
on which they differ (for reading which one is right). Texts: the 2,000 NQ passages as NQ-20 prompts show
them ("Document [i](Title: ...) text"), the GSM8K test questions with their worked answers (multi-line),
and the GSM8K chain-of-thought prompt.

    pip install pysbd blingfire syntok    # not dependencies of terse; only for this comparison
    python -m bench.sentence_splitters --diffs /tmp/sentence-diffs.txt
"""

from __future__ import annotations

import argparse
import gzip
import importlib.util
import json
import time
from pathlib import Path

from compressors.sentences import sentence_starts

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def texts(data: Path) -> dict[str, list[str]]:
    nq = []
    with gzip.open(data / "nq-open-oracle.dev.jsonl.gz", "rt") as f:
        for k, line in enumerate(f):
            ctx = json.loads(line)["ctxs"][0]
            nq.append(f"Document [{k % 20 + 1}](Title: {ctx['title']}) {ctx['text']}")
    gsm = [json.loads(x) for x in (data / "gsm8k-test.jsonl").read_text().splitlines() if x.strip()]
    cot = (data / "gsm8k-cot-prompt_hardest.txt").read_text()
    return {"nq": nq, "gsm8k": [g["question"] + "\n" + g["answer"] for g in gsm], "gsm8k-cot": [cot]}


def normalised(text: str, starts) -> list[int]:
    """Starts as sentence_starts gives them: 0, then first non-space characters."""
    out = set()
    for x in starts:
        while x < len(text) and text[x].isspace():
            x += 1
        out.add(x)
    first = min((i for i, c in enumerate(text) if not c.isspace()), default=len(text))
    return sorted({0, *(x for x in out if first < x < len(text))}) if text.strip() else []


def others() -> dict:
    found = {}
    if importlib.util.find_spec("pysbd"):
        import pysbd

        seg = pysbd.Segmenter(language="en", clean=False, char_span=True)
        found["pysbd"] = lambda t: [s.start for s in seg.segment(t)]
    if importlib.util.find_spec("blingfire"):
        import blingfire

        found["blingfire"] = lambda t: [a for a, _ in blingfire.text_to_sentences_and_offsets(t)[1]]
    if importlib.util.find_spec("syntok"):
        import syntok.segmenter as syntok

        found["syntok"] = lambda t: [s[0].offset - len(s[0].spacing) for p in syntok.analyze(t) for s in p]
    return found


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--diffs", type=Path, help="write every differing boundary here")
    args = ap.parse_args()
    found = others()
    if "pysbd" not in found:
        raise SystemExit("pysbd is not installed: pip install pysbd (it is the reference here)")
    splitters = {"pysbd": found.pop("pysbd"), "terse": sentence_starts, **found}
    lines = []
    for kind, xs in texts(args.data).items():
        got = {}
        for name, split in splitters.items():
            t0 = time.perf_counter()
            got[name] = [normalised(t, split(t)) for t in xs]
            ms = (time.perf_counter() - t0) / len(xs) * 1e3
            same = sum(a == b for a, b in zip(got[name], got["pysbd"], strict=True))
            n = sum(map(len, got[name]))
            print(f"{kind:10s} {name:10s} {ms:7.3f} ms/text {n:6d} sentences, same as pysbd on {same}/{len(xs)}")
        for name in (n for n in got if n != "pysbd"):
            for t, a, b in zip(xs, got["pysbd"], got[name], strict=True):
                for x in sorted(set(a) ^ set(b)):
                    only = "pysbd" if x in a else name
                    lines.append(f"{kind}\t{name}\tonly {only}\t{t[max(0, x - 45) : x]!r} | {t[x : x + 25]!r}")
    if args.diffs:
        args.diffs.write_text("\n".join(lines) + "\n")
        print(f"{len(lines)} differing boundaries -> {args.diffs}")


if __name__ == "__main__":
    main()
