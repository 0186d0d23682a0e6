"""Tiny random-initialised causal LMs for fast tests: the embedded SmolLM2 tokenizer (offline) with
a 2-layer Llama or GPT-2 body. Seeded, so every run sees the same weights. The unit tests, the API
tests and the client/deployment servers each take their own width and context from here."""

from __future__ import annotations

from pathlib import Path


def make_tiny_model(
    kind: str,
    path: Path,
    *,
    max_positions: int = 512,
    seed: int = 0,
    hidden: int = 32,
    heads: int = 4,
    initializer_range: float = 0.5,
    pad_token: bool = False,
) -> Path:
    """A wide init (0.5) spreads the token losses, so compression decisions are not coin flips.
    `pad_token`: the config names the tokenizer's pad token (its embedding row starts at zero)."""
    import torch
    from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

    from compressors.scorer import converted_dir

    if (path / "config.json").exists():
        return path
    tok = AutoTokenizer.from_pretrained(converted_dir(), local_files_only=True)
    torch.manual_seed(seed)
    if kind == "llama":
        cfg = LlamaConfig(
            vocab_size=len(tok),
            hidden_size=hidden,
            intermediate_size=2 * hidden,
            num_hidden_layers=2,
            num_attention_heads=heads,
            num_key_value_heads=2,
            max_position_embeddings=max_positions,
            tie_word_embeddings=True,
            initializer_range=initializer_range,
            bos_token_id=tok.bos_token_id,
            eos_token_id=tok.eos_token_id,
            pad_token_id=(tok.eos_token_id if tok.pad_token_id is None else tok.pad_token_id) if pad_token else None,
        )
        model = LlamaForCausalLM(cfg)
    elif kind == "gpt2":
        cfg = GPT2Config(
            vocab_size=len(tok),
            n_embd=hidden,
            n_layer=2,
            n_head=heads,
            n_positions=max_positions,
            initializer_range=initializer_range,
        )
        model = GPT2LMHeadModel(cfg)
    else:
        raise ValueError(kind)
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path
