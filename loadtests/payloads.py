"""The payload mix of the load tests: compression requests shaped like terse's real traffic, sized in
scorer tokens (the embedded SmolLM2 tokenizer, which the tiny test models share).

Kinds (`kind@size`, e.g. `rag20@2k`, `chat@300`):
- `rag5`, `rag20`: LongLLMLingua's multi-document QA layout from synthetic NQ-20 (bench/datasets.py): the
  gold passage and 4 or 19 BM25 distractors as documents (the gold at a random position), the
  instruction and the question. To reach the size, each document is filled with further answer-free
  distractor passages, or cut to its share of the size, on word boundaries.
- `gsm8k`: the 8-shot chain-of-thought prompt of the LLMLingua paper
  (../shared/data/gsm8k-cot-prompt_hardest.txt), one demonstration per context, continued with GSM8K
  test problems written the same way when the size asks for more, cut on a word boundary; a GSM8K test
  question as the question.
- `chat`: a short conversation built from NQ questions and the first sentences of their passages, one
  turn per context, the next user message as the question.

Every payload of a (kind, size) is distinct (a different question), and deterministic for a seed.

    python -m loadtests.payloads rag20@2k gsm8k@8k chat@300      # sizes of each, a quick look
"""

from __future__ import annotations

import argparse
import json
import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from itertools import cycle
from pathlib import Path

from compressors.tokenizing import SEPARATOR

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
KINDS = ("rag5", "rag20", "gsm8k", "chat")
CHAT_INSTRUCTION = "You are a helpful assistant. Continue the conversation: answer the user's last message."
# The default mix: RAG at the three sizes, the GSM8K CoT prompt, short chats.
DEFAULT_MIX = "rag5@512:2,rag20@2k:3,rag5@2k:1,rag20@8k:1,gsm8k@2k:1,gsm8k@8k:1,chat@300:2"
SOAK_MIX = "chat@300,rag5@300"  # ~300-token requests: `make soak` and bench/memory.py


@dataclass(frozen=True)
class Payload:
    kind: str
    size: int  # nominal tokens
    tokens: int  # scorer tokens of the assembled prompt
    body: dict = field(compare=False)

    @property
    def label(self) -> str:
        return f"{self.kind}@{format_size(self.size)}"


def parse_size(text: str) -> int:
    m = re.fullmatch(r"(\d+(?:\.\d+)?)([kK]?)", text.strip())
    if not m:
        raise ValueError(f"bad size {text!r}: a token count such as 300, 512, 2k or 8k")
    return round(float(m.group(1)) * (1024 if m.group(2) else 1))


def format_size(n: int) -> str:
    return f"{n // 1024}k" if n >= 1024 and n % 1024 == 0 else str(n)


def parse_mix(spec: str) -> list[tuple[str, int, float]]:
    """`rag20@2k:3,chat@300` -> [(kind, tokens, weight)]; the weight defaults to 1."""
    out = []
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        m = re.fullmatch(r"(\w+)@([\d.]+[kK]?)(?::([\d.]+))?", part)
        if not m or m.group(1) not in KINDS:
            raise ValueError(f"bad mix entry {part!r}: kind@size[:weight], kind one of {', '.join(KINDS)}")
        weight = float(m.group(3) or 1)
        if weight <= 0:
            raise ValueError(f"bad weight in {part!r}")
        out.append((m.group(1), parse_size(m.group(2)), weight))
    if not out:
        raise ValueError("empty mix")
    return out


def load_tokenizer():
    from transformers import AutoTokenizer

    from compressors.scorer import converted_dir

    return AutoTokenizer.from_pretrained(converted_dir(), local_files_only=True)


def _first_sentences(text: str, n: int = 2) -> str:
    parts = re.split(r"(?<=[.!?])\s+", text.strip())
    return " ".join(parts[:n])


class Builder:
    """Builds payloads; `count` is the scorer's token count (the embedded tokenizer by default)."""

    def __init__(
        self,
        *,
        data: Path = DATA,
        count: Callable[[str], int] | None = None,
        rate: float = 0.5,
        split: str = "dev",
        seed: int = 0,
    ) -> None:
        self.data = Path(data)
        self.rate = rate
        self.split = split
        self.seed = seed
        if count is None:
            tok = load_tokenizer()

            def count(text: str) -> int:
                return len(tok(text, add_special_tokens=False)["input_ids"]) if text else 0

        self.count = count

    # -- data ----------------------------------------------------------------------------------------
    @cached_property
    def corpus(self):
        from bench import datasets

        return datasets.corpus(str(self.data / "nq-open-oracle.dev.jsonl.gz"))

    @cached_property
    def questions(self) -> list[int]:
        from bench import datasets

        return datasets.select_questions(self.split, len(datasets.SPLITS[self.split]), self.seed)

    @cached_property
    def demonstrations(self) -> list[str]:
        from bench.datasets import load_demonstrations

        return load_demonstrations(self.data / "gsm8k-cot-prompt_hardest.txt")

    @cached_property
    def gsm8k_test(self) -> list[dict]:
        with open(self.data / "gsm8k-test.jsonl", encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.strip()]

    # -- sizing --------------------------------------------------------------------------------------
    def fit(self, text: str, max_tokens: int) -> str:
        """The longest word prefix of `text` within max_tokens (at least one word)."""
        if self.count(text) <= max_tokens:
            return text
        spans = [m.end() for m in re.finditer(r"\S+", text)]
        lo, hi = 1, len(spans)  # lo words always kept
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self.count(text[: spans[mid - 1]]) <= max_tokens:
                lo = mid
            else:
                hi = mid - 1
        return text[: spans[lo - 1]] if spans else text

    def _fill(self, pieces: list[str], more: Callable[[int], str], size: int, fixed: int) -> list[str]:
        """Pieces (each its own context) taken in order, then `more(k)` for k = 0, 1, ..., until the
        prompt reaches `size` tokens; the last one cut to fit."""
        out: list[str] = []
        used = fixed
        k, source = 0, iter(pieces)
        while used < size:
            piece = next(source, None)
            if piece is None:
                piece = more(k)
                k += 1
            cost = self.count(piece) + 1  # + the blank-line separator
            if used + cost > size:
                piece = self.fit(piece, max(1, size - used - 1))
                cost = self.count(piece) + 1
            out.append(piece)
            used += cost
        return out

    def _payload(self, kind: str, size: int, instruction: str, contexts: list[str], question: str) -> Payload:
        prompt = SEPARATOR.join(p for p in (instruction, *contexts, question) if p)
        body = {"context": contexts, "instruction": instruction, "question": question, "rate": self.rate}
        return Payload(kind, size, self.count(prompt), body)

    # -- kinds ---------------------------------------------------------------------------------------
    def rag(self, n_docs: int, size: int, i: int) -> Payload:
        from bench import datasets

        c = self.corpus
        index = self.questions[i % len(self.questions)]
        row = c.rows[index]
        rng = random.Random(f"rag:{self.seed}:{n_docs}:{size}:{i}")
        fixed = self.count(SEPARATOR.join([datasets.INSTRUCTION, datasets.question_text(row["question"])])) + 1
        per_doc = max(8, (size - fixed) // n_docs - 1)
        # Answer-free passages, the closest by BM25 first: the distractors, then the filler.
        pool = c.distractors(index, k=min(len(c.passages) - 1, n_docs - 1 + max(8, 2 * size // 100)))
        passages = pool[: n_docs - 1]
        passages.insert(rng.randrange(n_docs), c.passages[index])
        filler = cycle(pool[n_docs - 1 :] or pool)
        docs = []
        for k, p in enumerate(passages, 1):
            doc = datasets.format_document(k, p.title, p.text)
            while self.count(doc) < per_doc:
                doc += " " + next(filler).text
            docs.append(self.fit(doc, per_doc))
        return self._payload(f"rag{n_docs}", size, datasets.INSTRUCTION, docs, datasets.question_text(row["question"]))

    def gsm8k(self, size: int, i: int) -> Payload:
        test = self.gsm8k_test
        q = test[i % len(test)]
        question = f"Question: {q['question']}\nLet's think step by step"

        def more(k: int) -> str:
            ex = test[(i + 1 + k) % len(test)]
            steps, _, answer = ex["answer"].rpartition("####")
            steps = re.sub(r"<<[^>]*>>", "", steps).strip()
            return f"Question: {ex['question']}\nLet's think step by step\n{steps}\nThe answer is {answer.strip()}"

        fixed = self.count(question) + 1
        return self._payload("gsm8k", size, "", self._fill(self.demonstrations, more, size, fixed), question)

    def chat(self, size: int, i: int) -> Payload:
        c = self.corpus
        qs = self.questions
        start = (i * 7) % len(qs)
        question = f"User: {c.rows[qs[start]]['question']}?\nAssistant:"

        def turn(k: int) -> str:
            j = qs[(start + 1 + k) % len(qs)]
            return f"User: {c.rows[j]['question']}?\nAssistant: {_first_sentences(c.passages[j].text)}"

        fixed = self.count(SEPARATOR.join([CHAT_INSTRUCTION, question])) + 1
        return self._payload("chat", size, CHAT_INSTRUCTION, self._fill([], turn, size, fixed), question)

    def build(self, kind: str, size: int, i: int) -> Payload:
        if kind.startswith("rag"):
            return self.rag(int(kind[3:]), size, i)
        if kind == "gsm8k":
            return self.gsm8k(size, i)
        if kind == "chat":
            return self.chat(size, i)
        raise ValueError(f"unknown kind {kind!r}")


class Mix:
    """Weighted payloads: `per_entry` distinct payloads per mix entry, drawn by weight."""

    def __init__(self, builder: Builder, spec: str | Sequence[tuple[str, int, float]], per_entry: int = 8) -> None:
        entries = parse_mix(spec) if isinstance(spec, str) else list(spec)
        self.entries = [
            (kind, size, w, [builder.build(kind, size, i) for i in range(per_entry)]) for kind, size, w in entries
        ]
        self._weights = [w for _, _, w, _ in self.entries]
        self._next = [0] * len(self.entries)

    def pick(self, rng: random.Random) -> Payload:
        e = rng.choices(range(len(self.entries)), weights=self._weights)[0]
        pool = self.entries[e][3]
        payload = pool[self._next[e] % len(pool)]
        self._next[e] += 1
        return payload

    def sample(self, n: int) -> list[Payload]:
        """n distinct payloads, taken in turn from each entry (not drawn: the same every time)."""
        out, k = [], 0
        while len(out) < n and k < max(len(ps) for *_, ps in self.entries):
            out += [ps[k] for *_, ps in self.entries if k < len(ps)]
            k += 1
        return out[:n]

    def mean_tokens(self) -> float:
        total = sum(self._weights)
        return sum(w * sum(p.tokens for p in ps) / len(ps) for _, _, w, ps in self.entries) / total

    def describe(self) -> list[dict]:
        total = sum(self._weights)
        return [
            {
                "payload": f"{kind}@{format_size(size)}",
                "share": round(w / total, 3),
                "tokens_mean": round(sum(p.tokens for p in ps) / len(ps)),
                "distinct": len(ps),
            }
            for kind, size, w, ps in self.entries
        ]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Build load-test payloads and print their token counts.")
    ap.add_argument("entries", nargs="*", default=[DEFAULT_MIX], help="kind@size[:weight], comma-separated")
    ap.add_argument("--n", type=int, default=3, help="payloads per entry")
    ap.add_argument("--show", action="store_true", help="print the first payload's body")
    args = ap.parse_args(argv)
    mix = Mix(Builder(), ",".join(args.entries), per_entry=args.n)
    for row in mix.describe():
        print(json.dumps(row))
    if args.show:
        print(json.dumps(mix.entries[0][3][0].body, indent=1, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
