"""The speed / quantisation / GPU benchmark scripts' own logic, without a model: the side-by-side aggregation,
the agreement measures, and bench/gpu.py's stand-ins (synthetic tokenizer and text) and its reuse of terse's nf4."""

import json

import pytest

from bench import gpu, quantization, speed


def _job(record_id: str, method: str, rate: float, repeat: int, size: str = "1k", tokens: int = 1000) -> dict:
    return {
        "id": speed.job_id(record_id, method, rate, repeat),
        "method": method,
        "rate": rate,
        "meta": {
            "method": method,
            "rate": rate,
            "size": size,
            "record_id": record_id,
            "repeat": repeat,
            "original_tokens": tokens,
        },
    }


def _write(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records))


def test_aggregate_medians_and_paired_ratio(tmp_path):
    p = speed.paths(tmp_path, "t")
    jobs = [_job(r, "longllmlingua", 0.25, k) for r in ("a", "b") for k in range(3)]
    terse, ref = [], []
    for j in jobs:
        rid, k = j["meta"]["record_id"], j["meta"]["repeat"]
        t = {"a": [1.0, 2.0, 9.0], "b": [3.0, 3.0, 3.0]}[rid][k]
        terse.append(
            {
                "id": j["id"],
                "latency_s": t,
                "timings_ms": {"total": 500 * t},
                "forward_tokens": 1500,
                "compressed_tokens": 250,
            }
        )
        if rid == "a":  # the reference finished only prompt a
            ref.append({"id": j["id"], "latency_s": 10 * t, "forward_tokens": 4000, "compressed_tokens": 260})
    ref.append({"id": jobs[0]["id"], "error": "boom"})  # errors never count
    _write(p["terse"], terse)
    _write(p["reference"], ref)
    out = speed.aggregate(jobs, p)
    (row,) = out["rows"]
    assert row["terse"]["runs"] == 6 and row["reference"]["runs"] == 3
    assert row["terse"]["latency_s"] == pytest.approx(2.5)  # median(2, 3): per-prompt medians, then over prompts
    assert row["reference"]["latency_s"] == pytest.approx(20.0)
    assert row["paired_prompts"] == 1
    assert row["ratio"] == pytest.approx(10.0)  # paired on prompt a only: 20 / 2
    assert row["ratio_server"] == pytest.approx(20.0)  # terse's server time is half its HTTP time here
    assert row["terse"]["fwd_per_input"] == pytest.approx(1.5)
    assert row["reference"]["fwd_per_input"] == pytest.approx(4.0)
    text = speed.markdown(
        {
            "config": {"split": "test", "quantization": "bf16", "n": 2, "repeats": 3},
            "machine": {"cpus": 2, "cpu": "Xeon", "avx512_bf16": True, "loadavg_start": 0.1},
            **out,
        }
    )
    assert "| longllmlingua | 0.25 | 1k | 1000 | 2.50 |" in text
    assert "(2 CPUs (Xeon, avx512_bf16), load average 0.1 at start)" in text


def test_quantization_agreement():
    assert quantization.multiset_jaccard("a a b".split(), "a b c".split()) == pytest.approx(2 / 4)
    assert quantization.multiset_jaccard([], []) == 1.0
    base = {"results": [{"id": "x", "compressed_prompt": "a b", "compressed_ids": [1, 2], "kept_contexts": [0]}]}
    same = quantization.compare(base, base)
    assert same["identical_share"] == 1.0 and same["word_jaccard_mean"] == 1.0
    other = {"results": [{"id": "x", "compressed_prompt": "a c", "compressed_ids": [1, 3], "kept_contexts": [0]}]}
    diff = quantization.compare(base, other)
    assert diff["identical_share"] == 0.0 and diff["same_documents_share"] == 1.0
    assert diff["word_jaccard_mean"] == pytest.approx(1 / 3)


def test_synthetic_tokenizer_covers_text_with_offsets():
    tok = gpu.SyntheticTokenizer(1000)
    text = "Document [1](Title: Kalo Renmi) Kalomiren 1931, tu_sa — ok.\n\nQuestion: what?"
    enc = tok(text, add_special_tokens=False, return_offsets_mapping=True)
    spans = enc["offset_mapping"]
    assert "".join(text[a:b] for a, b in spans) == text  # every character in exactly one piece
    assert all(0 < i < 1000 for i in enc["input_ids"])
    assert tok.encode(text) == enc["input_ids"]  # deterministic, memoised or not
    assert tok.convert_tokens_to_ids("<|endoftext|>") == 0 and "<|endoftext|>" in tok.get_vocab()


def test_synthetic_prompt_reaches_its_size_and_is_distinct():
    tok = gpu.SyntheticTokenizer(49152)
    a = gpu.synthetic_prompt("m:a", 3000, tok)
    b = gpu.synthetic_prompt("m:b", 3000, tok)
    assert 3000 <= gpu.prompt_tokens(a, tok) < 3400
    assert a["documents"] != b["documents"]
    assert a == gpu.synthetic_prompt("m:a", 3000, tok)


def test_gpu_nf4_is_terses_own_nf4():
    torch = pytest.importorskip("torch")
    pytest.importorskip("bitsandbytes")
    cfg = gpu.nf4_config("cuda")
    assert cfg.bnb_4bit_quant_type == "nf4"
    assert cfg.bnb_4bit_use_double_quant is True
    assert cfg.bnb_4bit_compute_dtype == torch.bfloat16
