"""Synthetic NQ-20: the LongLLMLingua multi-document QA layout, built offline from the NQ-open oracle file.

For each question: its gold passage plus 19 distractors = the passages of *other* questions closest to this
question by BM25 (rank_bm25's BM25Okapi over lower-cased word tokens of "title text") that contain none of
its answer strings (case-insensitive, whitespace-normalised), distinct from the gold passage and from each
other; distractors keep their BM25 order and the gold passage is inserted at position 1, 5, 10, 15 or 20.
The prompt template is that of "Lost in the Middle" / LongLLMLingua (../shared/data/README.md). Label
every figure built from it "synthetic NQ-20".

Splits (the oracle file holds 2,000 questions, indexed 0..1999 in file order):
- `dev`:  pool = indices 0..999, the questions tuning may look at;
- `test`: pool = indices 1000..1999, held out.
The pool is shuffled by `random.Random(f"nq20:{split}:{seed}")` (Python's string seeding is stable across
runs and platforms) and the first n are taken, so n=10 is a prefix of n=20 and results extend when n grows.
The distractor corpus is always all 2,000 passages. Everything is deterministic.

    python -m bench.nq20 --split dev --n 3 --positions 1 20        # prints a prompt, a quick look
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import re
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "nq-open-oracle.dev.jsonl.gz"

INSTRUCTION = (
    "Write a high-quality answer for the given question using only the provided search results "
    "(some of which might be irrelevant)."
)
POSITIONS = (1, 5, 10, 15, 20)
N_DOCS = 20
SPLITS = {"dev": range(0, 1000), "test": range(1000, 2000)}

_WORD = re.compile(r"\w+", re.UNICODE)


def normalize(text: str) -> str:
    """Case-insensitive, whitespace-normalised form used for every answer-string test."""
    return " ".join(text.lower().split())


def contains_answer(text: str, answers: Sequence[str]) -> bool:
    t = normalize(text)
    return any(normalize(a) and normalize(a) in t for a in answers)


def bm25_tokens(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def format_document(i: int, title: str, text: str) -> str:
    return f"Document [{i}](Title: {title}) {text}"


def question_text(question: str) -> str:
    return f"Question: {question}\nAnswer:"


@dataclass(frozen=True)
class Passage:
    title: str
    text: str


@dataclass
class Record:
    id: str  # "<qid>-p<position>"
    qid: str  # "nq<index>", index in the oracle file
    question: str
    answers: list[str]
    gold_position: int  # 1-based
    gold_index: int  # 0-based index of the gold document in `documents`
    gold_title: str
    instruction: str
    documents: list[str]
    question_text: str

    def prompt(self) -> str:
        """The uncompressed prompt, assembled as terse and the reference assemble it (blank-line joins)."""
        return "\n\n".join([self.instruction, *self.documents, self.question_text])

    def to_dict(self) -> dict:
        return asdict(self)


@lru_cache(maxsize=4)
def load_oracle(path: str | Path = DEFAULT_DATA) -> tuple[dict, ...]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return tuple(json.loads(line) for line in f if line.strip())


class Corpus:
    """The 2,000 gold passages with a BM25 index over them."""

    def __init__(self, rows: Sequence[dict]):
        from rank_bm25 import BM25Okapi

        self.rows = rows
        self.passages = [Passage(r["ctxs"][0]["title"], r["ctxs"][0]["text"]) for r in rows]
        self.bm25 = BM25Okapi([bm25_tokens(f"{p.title} {p.text}") for p in self.passages])

    def distractors(self, index: int, k: int = N_DOCS - 1) -> list[Passage]:
        row = self.rows[index]
        answers = row["answers"]
        gold = self.passages[index]
        scores = self.bm25.get_scores(bm25_tokens(row["question"]))
        order = sorted(range(len(scores)), key=lambda j: (-scores[j], j))  # ties: file order
        seen = {normalize(gold.text)}
        out: list[Passage] = []
        for j in order:
            if j == index:
                continue
            p = self.passages[j]
            key = normalize(p.text)
            if key in seen or contains_answer(f"{p.title} {p.text}", answers):
                continue
            seen.add(key)
            out.append(p)
            if len(out) == k:
                break
        if len(out) < k:
            raise ValueError(f"question {index}: only {len(out)} distractors without an answer string")
        return out


@lru_cache(maxsize=4)
def corpus(path: str | Path = DEFAULT_DATA) -> Corpus:
    return Corpus(load_oracle(path))


def select_questions(split: str, n: int, seed: int = 0) -> list[int]:
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; one of {sorted(SPLITS)}")
    pool = list(SPLITS[split])
    random.Random(f"nq20:{split}:{seed}").shuffle(pool)
    if n > len(pool):
        raise ValueError(f"split {split} has {len(pool)} questions, asked for {n}")
    return pool[:n]


def build_record(c: Corpus, index: int, position: int) -> Record:
    if not 1 <= position <= N_DOCS:
        raise ValueError(f"gold position must be in 1..{N_DOCS}, got {position}")
    row = c.rows[index]
    gold = c.passages[index]
    docs = c.distractors(index)
    docs.insert(position - 1, gold)
    qid = f"nq{index:04d}"
    return Record(
        id=f"{qid}-p{position:02d}",
        qid=qid,
        question=row["question"],
        answers=list(row["answers"]),
        gold_position=position,
        gold_index=position - 1,
        gold_title=gold.title,
        instruction=INSTRUCTION,
        documents=[format_document(i, p.title, p.text) for i, p in enumerate(docs, 1)],
        question_text=question_text(row["question"]),
    )


def build(
    split: str = "dev",
    n: int = 20,
    positions: Sequence[int] = POSITIONS,
    seed: int = 0,
    data: str | Path = DEFAULT_DATA,
) -> Iterator[Record]:
    """Records for n questions of the split x the gold positions, question-major."""
    c = corpus(str(data))
    for index in select_questions(split, n, seed):
        for position in positions:
            yield build_record(c, index, position)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Build synthetic NQ-20 records (JSONL to stdout or --out).")
    ap.add_argument("--split", default="dev", choices=sorted(SPLITS))
    ap.add_argument("--n", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--positions", type=int, nargs="+", default=list(POSITIONS))
    ap.add_argument("--data", default=str(DEFAULT_DATA))
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--show", action="store_true", help="print the first prompt in full")
    args = ap.parse_args(argv)
    records = list(build(args.split, args.n, args.positions, args.seed, args.data))
    lines = "".join(json.dumps(r.to_dict(), ensure_ascii=False) + "\n" for r in records)
    if args.out:
        args.out.write_text(lines, encoding="utf-8")
        print(f"{len(records)} records -> {args.out}")
    elif not args.show:
        print(lines, end="")
    if args.show and records:
        print(records[0].prompt())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
