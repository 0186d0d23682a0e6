"""Pieces of bench/reference_runner.py that need neither llmlingua nor a model."""

import importlib.util
import json
from pathlib import Path

import pytest

RUNNER = Path(__file__).resolve().parents[2] / "bench" / "reference_runner.py"


@pytest.fixture(scope="module")
def runner():
    spec = importlib.util.spec_from_file_location("reference_runner", RUNNER)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_runner_imports_nothing_of_terse():
    text = RUNNER.read_text()
    for name in ("compressors", "app", "bench."):
        assert f"import {name}" not in text and f"from {name}" not in text


def test_compat_model_dir_moves_rope_theta(runner, tmp_path):
    src = tmp_path / "SmolLM2-x"
    src.mkdir()
    (src / "config.json").write_text(
        json.dumps(
            {
                "model_type": "llama",
                "dtype": "float32",
                "rope_parameters": {"rope_theta": 100000.0, "rope_type": "default"},
            }
        )
    )
    (src / "tokenizer_config.json").write_text(
        json.dumps({"tokenizer_class": "TokenizersBackend", "backend": "tokenizers"})
    )
    (src / "model.safetensors").write_bytes(b"w")
    (src / "tokenizer.json").write_text("{}")
    dest = runner.compat_model_dir(src, tmp_path / "compat")
    assert dest == runner.compat_model_dir(src, tmp_path / "compat")  # idempotent
    config = json.loads((dest / "config.json").read_text())
    assert config["rope_theta"] == 100000.0 and "rope_parameters" not in config
    assert config["torch_dtype"] == "float32" and "rope_scaling" not in config
    tok = json.loads((dest / "tokenizer_config.json").read_text())
    assert tok["tokenizer_class"] == "PreTrainedTokenizerFast" and "backend" not in tok
    assert (dest / "model.safetensors").resolve() == (src / "model.safetensors").resolve()


def test_forward_counter_counts_new_unpadded_tokens(runner):
    torch = pytest.importorskip("torch")
    c = runner.ForwardCounter()
    ids = torch.ones(1, 5, dtype=torch.long)
    c.hook(None, (ids,), {"attention_mask": torch.ones(1, 5)})
    # 3 new tokens after a cached past of 4: the mask spans 7, only the last 3 count
    c.hook(None, (ids[:, :3],), {"attention_mask": torch.ones(1, 7), "past_key_values": object()})
    c.hook(
        None,
        (),
        {"input_ids": torch.ones(2, 4, dtype=torch.long), "attention_mask": torch.tensor([[0, 1, 1, 1], [1, 1, 1, 1]])},
    )
    assert (c.tokens, c.calls) == (5 + 3 + 7, 3)


def test_scorer_encoding_and_resume_helpers(runner, tmp_path):
    class Tok:
        def __call__(self, text, add_special_tokens=True):
            assert add_special_tokens is False

            class R:
                input_ids = [ord(ch) for ch in text]

            return R()

        def decode(self, ids):
            return "".join(chr(i) for i in ids)

    enc = runner.ScorerEncoding(Tok())
    assert enc.decode(enc.encode("héllo")) == "héllo" and len(enc.encode("abc")) == 3
    out = tmp_path / "o.jsonl"
    runner.reports.append_jsonl(out, {"id": "a"})
    runner.reports.append_jsonl(out, {"id": "b", "error": "x"})
    assert runner.reports.done_ids(out) == {"a"}
