"""Each stage of compressors/pipelines/stages.py called alone on the tiny model, from the frozen
result of the stage before it (built here, not by the pipeline): prepare -> coarse -> sentence
filter -> rates -> token scores -> select (and the scorer-side count of a cut)."""

from __future__ import annotations

import pytest

from compressors.pipelines import stages as S
from compressors.pipelines.llmlingua import LLMLINGUA
from compressors.pipelines.longllmlingua import LONGLLMLINGUA
from compressors.scorer import Meter
from compressors.spec import CompressionSpec
from compressors.tokenizing import assemble, counter
from tests.unit.test_pipelines import DOCS, INSTRUCTION, QUESTION


def never() -> None:
    return None


def spec(**kw) -> CompressionSpec:
    return CompressionSpec(context=list(DOCS), instruction=INSTRUCTION, question=QUESTION, **{"rate": 0.4, **kw})


def test_prepare_tokenises_once_and_plans_the_budget(tiny_llama):
    prep = S.prepare(tiny_llama, spec())
    assert prep.text == assemble(INSTRUCTION, DOCS, QUESTION)
    assert prep.original_tokens == prep.scorer_tokens == tiny_llama.count(prep.text)
    assert [t.token_ids for t in prep.tokens] == [tiny_llama.encode(d) for d in DOCS]
    assert prep.budget.target_tokens == round(0.4 * prep.original_tokens)
    assert prep.budget.fixed_tokens == tiny_llama.count(assemble(INSTRUCTION, [], QUESTION)) + 2
    cl = S.prepare(tiny_llama, spec(count_with="cl100k_base"))  # budgets in the caller's tokens
    assert cl.original_tokens == counter("cl100k_base", None)(cl.text) and cl.scorer_tokens == prep.scorer_tokens


def test_coarse_ranks_and_cuts_documents(tiny_llama):
    prep = S.prepare(tiny_llama, spec(rate=0.2))
    kept = S.coarse(tiny_llama, prep, spec(rate=0.2, ranker="bm25"), LONGLLMLINGUA, Meter(), never)
    assert 0 < len(kept.chosen) < len(DOCS)
    assert sorted(kept.ranks) == list(range(len(DOCS))) and sorted(kept.ranks.values()) == list(range(len(DOCS)))
    assert [kept.ranks[i] for i in kept.chosen] == sorted(kept.ranks[i] for i in kept.chosen)  # best first
    assert set(kept.segs) == set(kept.chosen) and len(kept.scores) == len(DOCS)
    single = S.prepare(tiny_llama, CompressionSpec(context=DOCS[:1], rate=0.5))
    alone = S.coarse(tiny_llama, single, CompressionSpec(context=DOCS[:1]), LLMLINGUA, Meter(), never)
    assert (alone.chosen, alone.ranks) == ((0,), None)  # nothing to rank


def test_filter_sentences_keeps_the_documents_and_drops_their_nll(tiny_llama):
    prep = S.prepare(tiny_llama, spec(rate=0.3))
    kept = S.coarse(tiny_llama, prep, spec(rate=0.3, ranker="question"), LONGLLMLINGUA, Meter(), never)
    assert kept.local_nll  # the question ranker scored the documents
    out = S.filter_sentences(tiny_llama, prep, kept, Meter())
    assert out.chosen == kept.chosen and out.ranks == kept.ranks and dict(out.local_nll) == {}
    assert all(len(out.segs[i].text) <= len(kept.segs[i].text) for i in out.chosen)


@pytest.mark.parametrize("reorder", ["original", "sort", "two_stage"])
def test_rates_spread_the_budget_by_rank(tiny_llama, reorder):
    s = spec(rate=0.5, reorder=reorder, ranker="bm25")
    prep = S.prepare(tiny_llama, s)
    kept = S.coarse(tiny_llama, prep, s, LONGLLMLINGUA, Meter(), never)
    plan = S.rates(prep, kept, s, LONGLLMLINGUA)
    kept_len = sum(len(kept.segs[i].token_ids) for i in kept.chosen)
    assert plan.tau == pytest.approx(min(1.0, prep.budget.context_tokens / kept_len))
    assert sorted(plan.order) == sorted(kept.chosen)
    if reorder == "sort":
        assert plan.order == kept.chosen
    by_doc = dict(zip(plan.order, plan.rates, strict=True))
    best, worst = kept.chosen[0], kept.chosen[-1]
    assert len(kept.chosen) < 2 or by_doc[best] > by_doc[worst]  # the dynamic ratio favours the best
    flat = S.rates(prep, kept, s, LLMLINGUA)  # no dynamic ratio: one rate
    assert len(set(flat.rates)) == 1


def test_token_scores_give_every_unit_a_score(tiny_llama):
    s = spec(rate=0.3, ranker="bm25")
    prep = S.prepare(tiny_llama, s)
    kept = S.coarse(tiny_llama, prep, s, LONGLLMLINGUA, Meter(), never)
    plan = S.rates(prep, kept, s, LONGLLMLINGUA)
    meter = Meter()
    scored = S.token_scores(tiny_llama, prep, kept, plan, s, LONGLLMLINGUA, meter, never)
    assert [len(x) for x in scored.scores] == [len(seg) for seg in plan.segs]
    assert meter.forwarded_tokens > 0 and len(set(scored.scores[0])) > 1
    lasts = spec(rate=0.3, keep_last_sentences=1)
    last = S.token_scores(tiny_llama, prep, kept, plan, lasts, LONGLLMLINGUA, Meter(), never)
    assert all(float("inf") in x for x in last.scores)  # the last sentence outranks every other unit
    whole = S.Rates(plan.order, plan.segs, tuple(1.0 for _ in plan.rates), 1.0)  # nothing to drop: no model work
    meter = Meter()
    free = S.token_scores(tiny_llama, prep, kept, whole, s, LLMLINGUA, meter, never)
    assert all(set(x) <= {0.0} for x in free.scores) and meter.forwarded_tokens == 0


def test_select_lands_on_the_budget_and_counts_exactly(tiny_llama):
    s = spec(rate=0.3, ranker="bm25")
    prep = S.prepare(tiny_llama, s)
    kept = S.coarse(tiny_llama, prep, s, LONGLLMLINGUA, Meter(), never)
    plan = S.rates(prep, kept, s, LONGLLMLINGUA)
    scored = S.token_scores(tiny_llama, prep, kept, plan, s, LONGLLMLINGUA, Meter(), never)
    cut = S.select(tiny_llama, prep, plan, scored)
    assert cut.tokens == tiny_llama.count(cut.prompt)
    assert cut.prompt == assemble(INSTRUCTION, [cut.kept_texts[i] for i in plan.order if i in cut.kept_texts], QUESTION)
    assert prep.budget.within(cut.tokens)
    assert [len(k) for k in cut.keeps] == [len(seg) for seg in plan.segs]
    assert S.scorer_count(tiny_llama, prep, plan, cut) == cut.tokens  # the scorer's own tokens


def test_scorer_count_of_a_cut_in_the_callers_tokens(tiny_llama):
    s = spec(rate=0.3, ranker="bm25", count_with="cl100k_base")
    prep = S.prepare(tiny_llama, s)
    kept = S.coarse(tiny_llama, prep, s, LONGLLMLINGUA, Meter(), never)
    plan = S.rates(prep, kept, s, LONGLLMLINGUA)
    scored = S.token_scores(tiny_llama, prep, kept, plan, s, LONGLLMLINGUA, Meter(), never)
    cut = S.select(tiny_llama, prep, plan, scored)
    assert cut.tokens == counter("cl100k_base", None)(cut.prompt)
    assert S.scorer_count(tiny_llama, prep, plan, cut) == tiny_llama.count(cut.prompt)


def test_keep_last_first_puts_the_last_sentences_first():
    assert S.keep_last_first([0, 0, 1, 1, 2], [1.0, 2.0, 3.0, 4.0, 5.0], 1) == [1.0, 2.0, 3.0, 4.0, float("inf")]
    assert S.keep_last_first([0, 1, 1], [1.0, 2.0, 3.0], 2) == [float("inf")] * 3
