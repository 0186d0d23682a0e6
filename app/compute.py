"""The prompt form of /v1/compress as an adapter of request_flow: the request becomes a job (the spec,
tokenising once, the token limit, the forward cap, the pipeline; all in the pool) and its Compression
the response. A prompt under `min_tokens` or past `deadline_ms` comes back unchanged (skipped)."""

from __future__ import annotations

from dataclasses import asdict

from fastapi import Request
from fastapi.responses import Response

from compressors import Cancelled, Compression, TooManyTokens, compress
from compressors.pipelines import Prepared, prepare
from compressors.pipelines.stages import unchanged

from . import request_flow as flow
from .errors import Kind
from .lifecycle import Lifecycle
from .schemas import CompressRequest, CompressResponse


def forward_estimate(prompt: Prepared, ranker: str | None, question_tokens: int) -> int:
    """What the model reads at least, known before it runs: `ranker: question` reads every document
    with the question after it (the rest of the pipeline reads about the prompt again)."""
    docs = prompt.context_tokens
    if ranker == "question" and len(docs) > 1:
        return sum(docs) + len(docs) * (question_tokens + 2) + prompt.scorer_tokens
    return prompt.scorer_tokens


def job(req: CompressRequest, life: Lifecycle):
    """The request's work, run in the pool."""

    def work(w: flow.Work) -> tuple[Compression, str]:
        w.limit_text([req.instruction, *req.contexts(), req.question])  # a huge prompt: 413 before any work
        # InvalidInput (a bad pattern or range, an unknown count_with): 422
        spec = req.to_spec(life.settings.min_tokens, life.settings.tokenizers)
        # prepare stops at the count when it is over the limit (TooManyTokens), before protection work
        try:
            prompt = prepare(w.scorer, spec, life.settings.max_input_tokens)
        except TooManyTokens as e:  # prepare stopped counting at the service's limit
            raise w.too_many_tokens(e.tokens) from None
        w.limit_tokens(prompt.scorer_tokens)
        w.forward_option = flow.forward_option(spec)
        question = w.scorer.count(spec.question) if spec.ranker == "question" else 0
        w.check_forward(forward_estimate(prompt, spec.ranker, question))
        method = spec.resolved_method()
        if w.deadline_passed:
            return unchanged(prompt, spec, method, "deadline", {"model": 0.0, "total": prompt.ms}), prompt.text
        try:
            return compress(w.scorer, spec, should_stop=w.should_stop, prepared=prompt), prompt.text
        except Cancelled:
            if not w.deadline_passed:
                raise
            return unchanged(prompt, spec, method, "deadline", {"model": 0.0, "total": prompt.ms}), prompt.text

    return work


async def handle(request: Request, req: CompressRequest, life: Lifecycle) -> Response:
    if (bad := req.input_error(life.settings.tokenizers)) is not None:
        raise Kind.VALIDATION(f"{bad[0]}: {bad[1]}", field=bad[0])
    try:
        (result, prompt), ticket = await flow.run(request, life, job(req, life), deadline_ms=req.deadline_ms)
    except flow.Gone:
        return flow.gone(request)
    body = CompressResponse(
        compressed_prompt=result.compressed_prompt,
        original_tokens=result.original_tokens,
        compressed_tokens=result.compressed_tokens,
        rate=result.rate,
        ratio=result.ratio,
        method=result.method,
        skipped=result.skipped,
        skipped_reason=result.skipped_reason,
        contexts=[asdict(c) for c in result.contexts],
        scored_tokens=result.scored_tokens,
        scorer_original_tokens=(result.scorer_tokens or (result.original_tokens,))[0],
        scorer_compressed_tokens=(result.scorer_tokens or (0, result.compressed_tokens))[1],
        model=life.scorer.info.model,
        timings_ms=result.timings_ms,
        warnings=result.warnings,
    )
    usage = flow.Usage(
        result.method,
        result.original_tokens,
        result.compressed_tokens,
        result.scored_tokens,
        result.timings_ms,
        result.skipped,
        result.skipped_reason,
        result.model_calls,
        result.model_ms,
        {"prompt": prompt, "compressed_prompt": result.compressed_prompt},
    )
    return flow.respond(request, life, body, usage, ticket)
