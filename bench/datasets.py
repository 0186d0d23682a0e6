"""Every data set of bench/, built offline from ../shared/data (its README holds sources, licences, metrics).

- `nq20`: synthetic NQ-20, the LongLLMLingua multi-document QA layout. Per question: its gold passage and
  19 distractors = the passages of *other* questions closest by BM25 (rank_bm25 over lower-cased words of
  "title text") that hold none of its answer strings, in BM25 order; the gold goes at position 1, 5, 10,
  15 or 20. Splits: `dev` = oracle questions 0..999 (tune on these), `test` = 1000..1999 (held out); the
  pool is shuffled by `random.Random(f"nq20:{split}:{seed}")`, so n=10 is a prefix of n=20. Label figures
  "synthetic NQ-20". Metric: answer retention (a gold answer string survives).
- `niah` / `niah-string`: needles in Paul Graham essays (~4k and ~16k tokens), sent as ~300-token passages
  (`docs`) or as one string (`text`). Metric: needle retention (an answer string survives outside the
  question).
- `aclsum`: ACL papers, one aspect question each, 4-sentence passages. Metric: evidence recall (words of
  3+ letters, not stop words, not in the question, found in the gold evidence and in no other sentence of
  the paper: the share still in the compressed prompt).
- `gsm8k`: the LLMLingua paper's 8-shot chain-of-thought prompt (8 demonstrations as 8 documents) before a
  GSM8K test question. Metric: the share of demonstrations whose "The answer is N" line survives.
The out-of-domain files are development halves only (the held-out halves are kept elsewhere).

    python -m bench.datasets nq20 --n 1 --show         # prints a prompt, a quick look
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# ../shared/data from the checkout (a worktree further down finds the same folder higher up).
DATA = next(
    (p / "shared" / "data" for p in ROOT.parents if (p / "shared" / "data").is_dir()), ROOT.parent / "shared" / "data"
)
DEFAULT_DATA = DATA / "nq-open-oracle.dev.jsonl.gz"
NIAH = DATA / "ood-niah-dev.jsonl.gz"
ACLSUM = DATA / "ood-aclsum-dev.jsonl.gz"
GSM8K_PROMPT = DATA / "gsm8k-cot-prompt_hardest.txt"
GSM8K_TEST = DATA / "gsm8k-test.jsonl"

INSTRUCTION = (
    "Write a high-quality answer for the given question using only the provided search results "
    "(some of which might be irrelevant)."
)
POSITIONS = (1, 5, 10, 15, 20)
N_DOCS = 20
SPLITS = {"dev": range(0, 1000), "test": range(1000, 2000)}
SETS = ("nq20", "niah", "niah-string", "aclsum", "gsm8k")

_WORD = re.compile(r"\w+", re.UNICODE)


def normalize(text: str) -> str:
    """Case-insensitive, whitespace-normalised form used for every answer-string test."""
    return " ".join(text.lower().split())


def contains_answer(text: str, answers: Sequence[str]) -> bool:
    t = normalize(text)
    return any(normalize(a) and normalize(a) in t for a in answers)


def bm25_tokens(text: str) -> list[str]:
    return _WORD.findall(text.lower())


# ---------------------------------------------------------------- one prompt of any set
@dataclass
class Example:
    """One prompt: what terse, the reference and the baselines get, and what its metric needs (`meta`)."""

    id: str
    set: str
    instruction: str
    documents: list[str]
    question: str  # as sent, e.g. "Question: ...\nAnswer:"
    query: str  # the bare question (BM25's query)
    meta: dict = field(default_factory=dict)

    def prompt(self) -> str:
        """The uncompressed prompt, assembled as terse and the reference assemble it (blank-line joins)."""
        return "\n\n".join(p for p in (self.instruction, *self.documents, self.question) if p)

    def to_dict(self) -> dict:
        return asdict(self)


# ---------------------------------------------------------------- synthetic NQ-20
def format_document(i: int, title: str, text: str) -> str:
    return f"Document [{i}](Title: {title}) {text}"


def question_text(question: str) -> str:
    return f"Question: {question}\nAnswer:"


@dataclass(frozen=True)
class Passage:
    title: str
    text: str


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
        scores = self.bm25.get_scores(bm25_tokens(row["question"]))
        order = sorted(range(len(scores)), key=lambda j: (-scores[j], j))  # ties: file order
        seen = {normalize(self.passages[index].text)}
        out: list[Passage] = []
        for j in order:
            p = self.passages[j]
            key = normalize(p.text)
            if j == index or key in seen or contains_answer(f"{p.title} {p.text}", row["answers"]):
                continue
            seen.add(key)
            out.append(p)
            if len(out) == k:
                return out
        raise ValueError(f"question {index}: only {len(out)} distractors without an answer string")


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


def nq_example(c: Corpus, index: int, position: int, n_docs: int = N_DOCS) -> Example:
    """A question's gold passage at `position` (1-based) among its n_docs - 1 BM25-nearest distractors."""
    if not 1 <= position <= n_docs:
        raise ValueError(f"gold position must be in 1..{n_docs}, got {position}")
    row, gold = c.rows[index], c.passages[index]
    docs = c.distractors(index, k=n_docs - 1)
    docs.insert(position - 1, gold)
    qid = f"nq{index:04d}"
    return Example(
        id=f"{qid}-p{position:02d}" if n_docs == N_DOCS else f"{qid}-d{n_docs}",
        set="nq20",
        instruction=INSTRUCTION,
        documents=[format_document(i, p.title, p.text) for i, p in enumerate(docs, 1)],
        question=question_text(row["question"]),
        query=row["question"],
        meta={
            "qid": qid,
            "answers": list(row["answers"]),
            "gold_position": position,
            "gold_index": position - 1,
            "gold_title": gold.title,
        },
    )


def nq20(
    split: str = "dev", n: int = 20, positions: Sequence[int] = POSITIONS, seed: int = 0, data=DEFAULT_DATA
) -> Iterator[Example]:
    """Records for n questions of the split x the gold positions, question-major."""
    c = corpus(str(data))
    for index in select_questions(split, n, seed):
        for position in positions:
            yield nq_example(c, index, position)


def nq_sized(split: str, n: int, n_docs: int, seed: int = 0) -> list[Example]:
    """Prompts of n_docs documents, the gold in the middle (speed, overhead, throughput, invariance)."""
    c = corpus(str(DEFAULT_DATA))
    return [nq_example(c, i, (n_docs + 1) // 2, n_docs) for i in select_questions(split, n, seed)]


# ---------------------------------------------------------------- out of domain: needles, papers
def _rows(path: Path) -> list[dict]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def niah(n: int | None = None, *, one_string: bool = False) -> list[Example]:
    out = []
    for r in _rows(NIAH)[:n]:
        docs = [r["text"]] if one_string else list(r["docs"])
        meta = {"answers": r["answers"], "length": r["length"], "depth": r["depth"]}
        out.append(
            Example(r["id"], "niah-string" if one_string else "niah", "", docs, r["question"], r["question"], meta)
        )
    return out


def aclsum(n: int | None = None) -> list[Example]:
    out = []
    for r in _rows(ACLSUM)[:n]:
        meta = {"evidence_words": sorted(evidence_words(r["docs"], r["evidence"], r["question"]))}
        out.append(Example(r["id"], "aclsum", "", list(r["docs"]), r["question"], r["question"], meta))
    return out


STOP_WORDS = frozenset(
    "the and for are was were with that this from which these those their they them have has had not but "
    "can all any its our out use used using into over under than then also such both each other more most "
    "been being who whom what when where why how does did doing will would could should may might must "
    "about between while there here his her she him you your one two very only just some many".split()
)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def content_words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z]{3,}", text.lower()) if w not in STOP_WORDS}


def evidence_words(docs: Sequence[str], evidence: Sequence[str], question: str) -> set[str]:
    """Words of the gold evidence found in no other sentence of the paper, nor in the question."""
    gold = {normalize(e) for e in evidence}
    others = [s for d in docs for s in _SENTENCE_END.split(d) if not any(normalize(s) in g for g in gold)]
    rest = set().union(*(content_words(s) for s in others)) if others else set()
    return set().union(*(content_words(e) for e in evidence)) - rest - content_words(question)


# ---------------------------------------------------------------- GSM8K
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_ANSWER = re.compile(r"the answer is\s*(\S+)", re.IGNORECASE)


@lru_cache(maxsize=2)
def _demonstrations(path: Path = GSM8K_PROMPT) -> tuple[str, ...]:
    return tuple(load_demonstrations(path))


def load_demonstrations(path: Path = GSM8K_PROMPT) -> list[str]:
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
    return re.search(r"the answer is " + re.escape(normalize(answer)) + r"(?![\d])", normalize(text)) is not None


def numbers_kept(compressed: str, wanted: Counter) -> int:
    have = Counter(_numbers(compressed))
    return sum(min(c, have[n]) for n, c in wanted.items())


def gsm8k_score(demos: list[str], compressed_prompt: str, per_demo_text: list[str] | None = None) -> dict:
    """Demonstrations whose final answer line survives (in its own compressed text where the service
    returns it, else anywhere in the prompt) and the reasoning numbers kept."""
    answers = [final_answer(d) for d in demos]
    wanted = [reasoning_numbers(d) for d in demos]
    if per_demo_text is not None:
        kept = [answer_kept(t, a) for t, a in zip(per_demo_text, answers, strict=True)]
        nums = sum(numbers_kept(t, w) for t, w in zip(per_demo_text, wanted, strict=True))
    else:
        kept = [answer_kept(compressed_prompt, a) for a in answers]
        nums = numbers_kept(compressed_prompt, sum(wanted, Counter()))
    total = sum(sum(w.values()) for w in wanted)
    return {
        "answers_kept": sum(kept),
        "answers_kept_ids": [i for i, k in enumerate(kept) if k],
        "demonstrations": len(demos),
        "reasoning_numbers_kept": nums,
        "reasoning_numbers": total,
        "reasoning_numbers_share": nums / total if total else None,
    }


def gsm8k(n: int = 1) -> list[Example]:
    demos = load_demonstrations()
    out = []
    for i, line in enumerate(GSM8K_TEST.read_text(encoding="utf-8").splitlines()[:n]):
        q = json.loads(line)["question"]
        out.append(Example(f"gsm8k-{i:04d}", "gsm8k", "", demos, f"Question: {q}\nLet's think step by step", q))
    return out


# ---------------------------------------------------------------- sets and metrics, by name
def examples(
    name: str, n: int, split: str = "dev", seed: int = 0, positions: Sequence[int] = POSITIONS
) -> list[Example]:
    """n prompts of a set (NQ-20: n questions x positions; the others: the first n of the file)."""
    if name == "nq20":
        return list(nq20(split, n, positions, seed))
    if name in ("niah", "niah-string"):
        return niah(n, one_string=name == "niah-string")
    if name == "aclsum":
        return aclsum(n)
    if name == "gsm8k":
        return gsm8k(n)
    raise ValueError(f"unknown set {name!r}; one of {SETS}")


def without_question(prompt: str, question: str) -> str:
    """The compressed prompt less its (last) copy of the question: a needle must survive outside it."""
    head, sep, tail = prompt.rpartition(question) if question else ("", "", prompt)
    return head + tail if sep else prompt


def score(name: str, meta: dict, question: str, prompt: str) -> float | None:
    """Set `name`'s metric on one compressed prompt, in [0, 1] (None: nothing to measure); `meta` and
    `question` are the Example's."""
    if name == "nq20":
        return float(contains_answer(prompt, meta["answers"]))
    if name in ("niah", "niah-string"):
        return float(contains_answer(without_question(prompt, question), meta["answers"]))
    if name == "aclsum":
        wanted = set(meta["evidence_words"])
        have = content_words(without_question(prompt, question))
        return len(wanted & have) / len(wanted) if wanted else None
    if name == "gsm8k":
        res = gsm8k_score(list(_demonstrations()), prompt)
        return res["answers_kept"] / res["demonstrations"]
    raise ValueError(f"unknown set {name!r}")


METRIC = {
    "nq20": "answer retention",
    "niah": "needle retention",
    "niah-string": "needle retention",
    "aclsum": "evidence recall",
    "gsm8k": "demonstrations keeping 'The answer is N'",
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Build a set's prompts (JSONL to stdout).")
    ap.add_argument("set", choices=SETS)
    ap.add_argument("--split", default="dev", choices=sorted(SPLITS))
    ap.add_argument("--n", type=int, default=1)
    ap.add_argument("--show", action="store_true", help="print the first prompt in full")
    args = ap.parse_args(argv)
    records = examples(args.set, args.n, args.split)
    if args.show:
        print(records[0].prompt())
    else:
        print("".join(json.dumps(r.to_dict(), ensure_ascii=False) + "\n" for r in records), end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
