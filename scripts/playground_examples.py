"""Write the playground's two bundled examples (app/static/playground/examples.json) from ../shared/data:
a RAG prompt (synthetic NQ-20's layout, cut to 5 documents: the gold passage third among its 4
closest BM25 distractors; bench/datasets.py) and a few-shot math prompt (the 3 shortest demonstrations
of the GSM8K chain-of-thought prompt and a GSM8K test question; bench/datasets.py). Small on purpose:
the page is for looking, and the tiny test model compresses them in a second.

    .venv/bin/python scripts/playground_examples.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "app" / "static" / "playground" / "examples.json"
NQ_INDEX = 0  # "who got the first nobel prize in physics", as in the README's curl example
GSM8K_INDEX = 0


def rag() -> dict:
    from bench import datasets

    c = datasets.corpus()
    row, gold = c.rows[NQ_INDEX], c.passages[NQ_INDEX]
    passages = c.distractors(NQ_INDEX, k=4)
    passages.insert(2, gold)
    return {
        "name": "RAG: a question over 5 retrieved passages (NQ)",
        "instruction": datasets.INSTRUCTION,
        "documents": [datasets.format_document(i, p.title, p.text) for i, p in enumerate(passages, 1)],
        "question": datasets.question_text(row["question"]),
        "settings": {"method": "longllmlingua", "rate": 0.3, "ranker": "", "reorder": "original"},
        "source": "NaturalQuestions-open oracle passages (CC BY-SA 3.0), question 0 with 4 BM25 distractors",
    }


def math() -> dict:
    from bench import datasets

    demos = sorted(datasets.load_demonstrations(), key=len)[:3]
    test = json.loads(datasets.GSM8K_TEST.read_text(encoding="utf-8").splitlines()[GSM8K_INDEX])
    return {
        "name": "Few-shot math: 3 chain-of-thought demonstrations (GSM8K)",
        "instruction": "",
        "documents": demos,
        "question": f"Question: {test['question']}\nLet's think step by step",
        "settings": {"method": "llmlingua", "rate": 0.5, "ranker": "", "reorder": "original"},
        "source": "GSM8K chain-of-thought prompt (chain-of-thought-hub, MIT) and test question 0 (MIT)",
    }


def main() -> int:
    sys.path.insert(0, str(ROOT))
    OUT.write_text(json.dumps([rag(), math()], indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
