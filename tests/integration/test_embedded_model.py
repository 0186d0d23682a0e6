"""The embedded SmolLM2: conversion, tied head, sane perplexities, the nf4 path on CPU."""

from __future__ import annotations

import random

import pytest

from compressors.scorer import converted_dir

pytestmark = pytest.mark.model

FLUENT = (
    "The Eiffel Tower is a wrought-iron lattice tower on the Champ de Mars in Paris, France. It is named after "
    "the engineer Gustave Eiffel, whose company designed and built the tower. Locally nicknamed the Iron Lady, "
    "it was constructed from 1887 to 1889 as the centerpiece of the 1889 World's Fair. Although initially "
    "criticised by some of France's leading artists and intellectuals for its design, it has since become a "
    "global cultural icon of France and one of the most recognisable structures in the world."
)


def _ppl(scorer, text: str) -> float:
    return float(scorer.nll([scorer.encode(text)])[0].mean().exp())


def test_converted_once_into_safetensors():
    folder = converted_dir()
    assert (folder / "done.json").exists()
    assert list(folder.glob("*.safetensors")), "the cached model is safetensors"


def test_output_head_is_tied_to_the_embeddings(smollm):
    model = smollm.model
    assert model.get_output_embeddings().weight.data_ptr() == model.get_input_embeddings().weight.data_ptr()


def test_fluent_text_is_likely_and_shuffled_text_is_not(smollm):
    words = FLUENT.split()
    random.Random(0).shuffle(words)
    assert _ppl(smollm, FLUENT) < 20
    assert _ppl(smollm, " ".join(words)) > 200


def test_nf4_runs_on_cpu():
    from compressors import load_scorer

    nf4 = load_scorer("embedded", quantization="nf4", device="cpu")
    assert nf4.info.quantization == "nf4"
    assert _ppl(nf4, FLUENT) < 30
