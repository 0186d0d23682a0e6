"""Tiny random-initialised causal LMs for fast tests: the embedded SmolLM2 tokenizer (offline) with
a 2-layer Llama or GPT-2 body. Seeded, so every run sees the same weights."""

from __future__ import annotations

from pathlib import Path


def make_tiny_model(kind: str, path: Path, *, max_positions: int = 512, seed: int = 0) -> Path:
    import torch
    from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

    from compressors.scorer import converted_dir

    if (path / "config.json").exists():
        return path
    tok = AutoTokenizer.from_pretrained(converted_dir())
    torch.manual_seed(seed)
    if kind == "llama":
        cfg = LlamaConfig(
            vocab_size=len(tok),
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=max_positions,
            tie_word_embeddings=True,
            initializer_range=0.5,
        )
        model = LlamaForCausalLM(cfg)
    elif kind == "gpt2":
        cfg = GPT2Config(
            vocab_size=len(tok), n_embd=32, n_layer=2, n_head=4, n_positions=max_positions, initializer_range=0.5
        )
        model = GPT2LMHeadModel(cfg)
    else:
        raise ValueError(kind)
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path
