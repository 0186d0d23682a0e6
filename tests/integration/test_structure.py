"""Protection and structure on the embedded SmolLM2, on real documents: a README with a table and a
code block at rate 0.3 (the code byte-identical or gone, the table well-formed), a JSON tool output
(valid JSON, every key), a Chinese news paragraph (no U+FFFD, "人工智能" never split, no spaces
added), a Japanese paragraph, mixed script, and force tokens / digits / markers that survive."""

from __future__ import annotations

import json

import pytest

from compressors import CompressionSpec, compress

pytestmark = pytest.mark.model

README = """# terse-cli

terse-cli is a small command line wrapper around the terse compression service. It reads a prompt
from standard input, sends it to the service, and prints the compressed prompt so that it can be piped
into any other tool that talks to a large language model.

## Options

| Option | Default | Description |
|--------|---------|-------------|
| `--rate` | 0.5 | The fraction of the prompt's tokens that should be kept after compression |
| `--url` | http://127.0.0.1:8000 | The address of the running terse service to send requests to |
| `--question` | none | A question that makes the compression keep the passages relevant to it |

## Example

```python
from terse_client import Terse

client = Terse("http://127.0.0.1:8000")
result = client.compress(context=open("notes.txt").read(), rate=0.3)
print(result.compressed_prompt)
```

The client retries when the service answers 429, waiting as long as its Retry-After header says. Questions
and bug reports go to maintainers@terse.example.org or to the issue tracker of the project on its forge.
"""

TOOL_OUTPUT = {
    "tool": "search_flights",
    "query": {"from": "LHR", "to": "JFK", "date": "2025-03-14"},
    "results": [
        {
            "flight": "BA 117",
            "departs": "08:20",
            "price_gbp": 512.4,
            "notes": "Direct flight operated by British Airways with a Boeing 777, meals and drinks included, "
            "one checked bag of 23 kilograms allowed, seat selection charged separately at booking time.",
        },
        {
            "flight": "VS 3",
            "departs": "11:05",
            "price_gbp": 468.0,
            "notes": "Direct flight operated by Virgin Atlantic with an Airbus A350, complimentary meals, free "
            "Wi-Fi messaging for all passengers, and a flexible ticket that can be changed once for free.",
        },
    ],
    "disclaimer": "Prices are indicative, change frequently, and do not include optional extras or card fees.",
}

ZH_NEWS = (
    "新华社北京3月14日电 国务院新闻办公室今天举行发布会，介绍人工智能产业发展情况。发布会上，有关负责人表示，"
    "近年来我国人工智能核心产业规模持续扩大，企业数量超过四千家，在智能制造、智慧医疗和自动驾驶等领域形成了一批"
    "应用场景。下一步，将加大对基础研究的支持力度，推动人工智能与实体经济深度融合，同时完善相关法律法规，"
    "保障数据安全和个人隐私。"
)
JA_PARA = (
    "東京大学の研究チームは、人工知能を使って医療画像から早期のがんを見つける新しい手法を開発したと発表した。"
    "この手法は、従来の方法に比べて診断にかかる時間を大幅に短縮できるという。研究チームは今後、全国の病院と協力して"
    "臨床試験を進め、数年以内の実用化を目指している。"
)


def table_rows(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.lstrip().startswith("|")]


@pytest.mark.parametrize("structure", ["atomic", "keep"])
def test_readme_keeps_code_whole_and_the_table_well_formed(smollm, structure):
    spec = CompressionSpec(context=[README], rate=0.3, structure=structure)
    out = compress(smollm, spec)
    text = out.compressed_prompt
    code = README[README.index("```python") : README.rindex("```") + 3]
    assert code in text or "terse_client" not in text, text  # byte-identical or dropped whole
    if structure == "keep":
        assert code in text
    rows = table_rows(text)
    assert len(rows) == 5, text
    assert {r.count("|") for r in rows} == {4}, rows
    assert rows[1] == "|--------|---------|-------------|"
    for url in ("http://127.0.0.1:8000", "maintainers@terse.example.org"):
        for word in text.split():
            assert url in word or url[:12] not in word, (word, text)  # whole or absent
    assert out.compressed_tokens < 0.6 * out.original_tokens


def test_json_tool_output_stays_valid_with_every_key(smollm):
    doc = json.dumps(TOOL_OUTPUT, indent=2)
    out = compress(smollm, CompressionSpec(context=[doc], rate=0.5, format="json"))
    got = json.loads(out.compressed_prompt)

    def shape(x):
        if isinstance(x, dict):
            return {k: shape(v) for k, v in x.items()}
        if isinstance(x, list):
            return [shape(v) for v in x]
        return type(x).__name__ if isinstance(x, str) else x  # numbers, literals: identical

    assert shape(got) == shape(TOOL_OUTPUT)
    assert len(got["results"][0]["notes"]) < len(TOOL_OUTPUT["results"][0]["notes"])
    assert out.compressed_tokens < out.original_tokens


def test_chinese_news_keeps_whole_words_and_adds_no_spaces(smollm):
    out = compress(smollm, CompressionSpec(context=[ZH_NEWS], rate=0.4))
    text = out.compressed_prompt
    assert "\ufffd" not in text
    assert text.count(" ") <= ZH_NEWS.count(" ")  # the dateline's one space at most: none added
    assert text.count("人工") == text.count("人工智能")  # never "人工" alone
    assert 0.25 * len(ZH_NEWS) < len(text) < 0.7 * len(ZH_NEWS)
    protected = compress(smollm, CompressionSpec(context=[ZH_NEWS], rate=0.3, force_tokens=["人工智能"]))
    assert protected.compressed_prompt.count("人工智能") == ZH_NEWS.count("人工智能")


def test_japanese_paragraph_keeps_whole_words(smollm):
    out = compress(smollm, CompressionSpec(context=[JA_PARA], rate=0.4))
    text = out.compressed_prompt
    assert "\ufffd" not in text and " " not in text
    assert text.count("人工") == text.count("人工知能") and text.count("東京") == text.count("東京大学")
    assert len(text) < 0.7 * len(JA_PARA)


def test_mixed_script_question_aware(smollm):
    docs = [
        "我们使用PyTorch训练了一个小型语言模型，在中文和English混合的数据上效果很好。模型的参数量是1.35亿。",
        "The model was released in 2024 under the Apache-2.0 license; see https://example.org/model for details.",
    ]
    spec = CompressionSpec(context=docs, question="模型的参数量是多少？", rate=0.5, keep_digits=True)
    out = compress(smollm, spec)
    text = out.compressed_prompt
    assert "\ufffd" not in text and "1.35" in text and " " not in out.contexts[0].text
    if out.contexts[1].kept:  # numbers survive in the documents that are kept
        assert "2024" in text and "Apache-2.0" in text
    assert "https://example.org/model" in text or "example.org" not in text


def test_markers_and_force_tokens_survive_a_low_rate(smollm):
    doc = (
        "The quarterly meeting covered many routine topics, including the budget, the hiring plan and the "
        "office move. <terse:keep>The launch date is 14 March.</terse:keep> Everyone agreed that the "
        "catering was excellent and that the next meeting should again be held in the large room. Ticket "
        "ZX-4471 tracks the remaining work."
    )
    out = compress(smollm, CompressionSpec(context=[doc], rate=0.2, force_tokens=["ZX-4471"]))
    text = out.compressed_prompt
    assert "The launch date is 14 March." in text and "ZX-4471" in text and "terse:keep" not in text
    assert out.compressed_tokens < 0.5 * out.original_tokens
