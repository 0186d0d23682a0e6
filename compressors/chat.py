"""Chat messages as compression jobs, and back. The per-role policy decides, for each OpenAI-format
message, whether it is kept verbatim, compressed (and how hard), or left alone (too short, no text);
the final question of the last user message is kept verbatim and conditions the compression of the
rest (LongLLMLingua's question-aware compression). Older turns are compressed harder than recent
ones: keep rates spread by age like LongLLMLingua's dynamic compression ratio spreads them by rank.

Each compressed message becomes one CompressionSpec (its text parts are the spec's contexts) run
through the ordinary pipeline, so chats get the same budget landing and guarantees as prompts.
Only text is rewritten: every other key and every non-text content part passes through untouched."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from .labels import uniform
from .pipelines import compress
from .spec import CompressionSpec, WordLabel
from .tokenizing import SEPARATOR, assemble, memoised, request_counter

Action = Literal["keep", "compress"]


@dataclass(frozen=True)
class RolePolicy:
    action: Action = "compress"
    rate: float | None = None  # None: the chat's rate, spread by age


# The documented defaults: instructions are the caller's contract with the model, kept verbatim;
# conversation turns and tool outputs are what grows, so they are compressed.
DEFAULT_ROLES: dict[str, RolePolicy] = {
    "system": RolePolicy("keep"),
    "developer": RolePolicy("keep"),
    "user": RolePolicy("compress"),
    "assistant": RolePolicy("compress"),
    "tool": RolePolicy("compress"),
    "function": RolePolicy("compress"),
}
UNKNOWN_ROLE = RolePolicy("keep")  # a role we do not know is not ours to rewrite
# A paragraph break: the final question is the last user message's last paragraph.
_PARAGRAPH = re.compile(r"\n[ \t]*\n\s*")


@dataclass
class ChatOptions:
    rate: float = 0.5  # fraction of the compressible text to keep
    target_tokens: int | None = None  # for the whole chat's text; wins over rate
    question: str = ""  # given: conditions compression (and is kept if found in the last user message)
    roles: Mapping[str, RolePolicy] = field(default_factory=dict)  # over DEFAULT_ROLES
    min_tokens: int = 0  # messages with fewer compressible tokens stay untouched
    recency_ratio: float = 0.25  # the oldest compressed turn keeps (1-r)x the chat rate, the newest (1+r)x
    keep_question: bool = True  # keep the last user message's last paragraph verbatim

    def policy(self, role: str) -> RolePolicy:
        return self.roles.get(role) or DEFAULT_ROLES.get(role, UNKNOWN_ROLE)


@dataclass
class Piece:
    """One text slot of a message: `part` is the content-list index (None: string content). Only
    `head` is compressed; `tail` (the question, with its paragraph break) is kept after it."""

    part: int | None
    head: str
    tail: str = ""


@dataclass
class MessageStat:
    index: int
    role: str
    action: Literal["kept", "compressed", "skipped"]
    reason: str  # kept: role | question; skipped: no_text | min_tokens | rate; compressed: policy
    tokens_before: int
    tokens_after: int
    rate: float | None = None  # the keep rate asked of a compressed message
    labels: list[WordLabel] | None = None  # with return_labels: the message's text parts as word spans


@dataclass
class ChatPlan:
    pieces: list[list[Piece]]  # per message
    stats: list[MessageStat]
    rates: dict[int, float]  # message index -> keep rate, for the messages to compress
    question: str  # what the compression is conditioned on ('' when none)


@dataclass
class ChatCompression:
    messages: list[dict[str, Any]]
    stats: list[MessageStat]
    tokens_before: int
    tokens_after: int
    scored_tokens: int
    timings_ms: dict[str, float]
    question: str

    @property
    def rate(self) -> float:
        """tokens_after / tokens_before: the fraction kept (Compression.rate)."""
        return self.tokens_after / self.tokens_before if self.tokens_before else 1.0

    @property
    def ratio(self) -> float:
        """tokens_before / tokens_after (Compression.ratio)."""
        return self.tokens_before / self.tokens_after if self.tokens_after else 1.0

    @property
    def compression_ratio(self) -> float:
        """Deprecated name of `rate` (the service's response keeps it for one release)."""
        return self.rate


def text_slots(message: Mapping[str, Any]) -> list[tuple[int | None, str]]:
    """The message's text: the string content, or the `text` of each `{"type": "text"}` part."""
    content = message.get("content")
    if isinstance(content, str):
        return [(None, content)] if content else []
    if isinstance(content, list):
        return [
            (i, p["text"])
            for i, p in enumerate(content)
            if isinstance(p, Mapping) and p.get("type") == "text" and isinstance(p.get("text"), str) and p["text"]
        ]
    return []


def split_question(text: str, question: str = "") -> tuple[str, str]:
    """(head, tail): tail is kept verbatim. With `question` found in the text, the tail runs from its
    last occurrence to the end; else the tail is the last paragraph. The paragraph break stays with
    the tail so the rebuilt text keeps its layout."""
    if question and (at := _rfind(text, question)) >= 0:
        return text[:at], text[at:]
    breaks = list(_PARAGRAPH.finditer(text.rstrip()))
    if not breaks:
        return "", text
    at = breaks[-1].start()
    return text[:at], text[at:]


def _rfind(text: str, needle: str) -> int:
    """text.rfind(needle) in linear time: str.rfind compares the needle at every position from the end
    (a 1 MB message and a question of "a" * 500 + "b" + "a" * 500 took 0.2 s; longer ones, minutes),
    where str.find, searching the reversed strings, is linear (two-way)."""
    at = text[::-1].find(needle[::-1])
    return -1 if at < 0 else len(text) - at - len(needle)


def _last_user(messages: Sequence[Mapping[str, Any]]) -> int | None:
    for i in range(len(messages) - 1, -1, -1):
        if messages[i].get("role") == "user" and text_slots(messages[i]):
            return i
    return None


def by_age(tokens: list[int], rate: float, spread: float) -> list[float]:
    """Keep rates for messages in chat order: linear in age from rate*(1-spread) (oldest) to
    rate*(1+spread) (newest), scaled so the token-weighted mean is `rate`; none above 1."""
    n = len(tokens)
    if rate >= 1.0:
        return [1.0] * n  # nothing to take away, from old turns either
    weights = [1.0 + spread * (2 * k / (n - 1) - 1) if n > 1 else 1.0 for k in range(n)]
    total, weighted = sum(tokens), sum(w * t for w, t in zip(weights, tokens, strict=True))
    scale = rate * total / weighted if weighted else rate
    return [min(1.0, w * scale) for w in weights]


def plan(messages: Sequence[Mapping[str, Any]], options: ChatOptions, count: Callable[[str], int]) -> ChatPlan:
    """Decide, message by message, what is kept, compressed (at which rate) or skipped, and why."""
    last_user = _last_user(messages) if options.keep_question else None
    question = options.question
    pieces: list[list[Piece]] = []
    stats: list[MessageStat] = []
    for i, msg in enumerate(messages):
        role = str(msg.get("role", ""))
        slots = text_slots(msg)
        ps = [Piece(part, text) for part, text in slots]
        if i == last_user and ps:
            head, tail = split_question(ps[-1].head, options.question)
            ps[-1] = Piece(ps[-1].part, head, tail)
            question = question or tail.strip()
        pieces.append(ps)
        before = sum(count(p.head) + (count(p.tail) if p.tail else 0) for p in ps)
        stat = MessageStat(i, role, "compressed", "policy", before, before)
        compressible = sum(count(p.head) for p in ps if p.head)
        if not slots:
            stat.action, stat.reason = "skipped", "no_text"
        elif options.policy(role).action == "keep":
            stat.action, stat.reason = "kept", "role"
        elif compressible == 0:
            stat.action, stat.reason = "kept", "question"
        elif compressible < options.min_tokens:
            stat.action, stat.reason = "skipped", "min_tokens"
        stats.append(stat)

    todo = [s.index for s in stats if s.action == "compressed"]
    size = {i: sum(count(p.head) for p in pieces[i] if p.head) for i in todo}
    fixed_rate = {i: r for i in todo if (r := options.policy(stats[i].role).rate) is not None}
    spread = [i for i in todo if i not in fixed_rate]
    rate = options.rate
    if options.target_tokens is not None:
        total = sum(s.tokens_before for s in stats)
        # What the chat may still spend on the messages the chat rate applies to.
        rest = options.target_tokens - (total - sum(size.values()))
        rest -= sum(round(fixed_rate[i] * size[i]) for i in fixed_rate)
        want = sum(size[i] for i in spread)
        rate = min(1.0, max(rest / want, 0.0)) if want else 1.0
    rates = dict(fixed_rate)
    rates.update(zip(spread, by_age([size[i] for i in spread], rate, options.recency_ratio), strict=True))
    for i in todo:
        if rates[i] >= 1.0:
            stats[i].action, stats[i].reason = "skipped", "rate"
            del rates[i]
        else:
            stats[i].rate = round(rates[i], 4)
    return ChatPlan(pieces, stats, rates, question)


def message_spec(heads: list[str], question: str, rate: float, template: CompressionSpec, count) -> CompressionSpec:
    """One message's text parts as the contexts of a spec whose budget keeps `rate` of them. Every
    part is forced through the coarse stage: a part is shortened, never dropped whole."""
    original = count(assemble("", heads, question))
    fixed = count(question) + len(SEPARATOR) if question else 0
    target = max(1, fixed + round(rate * max(original - fixed, 0)))
    spec = replace(
        template,
        context=list(heads),
        instruction="",
        question=question,
        rate=rate,
        target_tokens=target,
        force_context_ids=list(range(len(heads))),
        min_tokens=0,
    )
    spec.share_clock(template.match_clock)  # one match budget for the whole chat
    return spec


def rebuild(
    messages: Sequence[Mapping[str, Any]], pieces: list[list[Piece]], heads: dict[int, list[str]]
) -> list[dict[str, Any]]:
    """The messages with the compressed heads (message index -> one text per piece) put back: the same
    keys, the same non-text parts; the caller's objects are never mutated."""
    out: list[dict[str, Any]] = []
    for i, msg in enumerate(messages):
        new = dict(msg)
        if i in heads:
            texts = [h + p.tail for h, p in zip(heads[i], pieces[i], strict=True)]
            if isinstance(msg.get("content"), str):
                new["content"] = texts[0]
            else:
                content = copy.copy(msg["content"])
                for p, t in zip(pieces[i], texts, strict=True):
                    content[p.part] = {**content[p.part], "text": t}
                new["content"] = content
        out.append(new)
    return out


def compress_chat(
    scorer,
    messages: Sequence[Mapping[str, Any]],
    options: ChatOptions,
    template: CompressionSpec | None = None,
    *,
    count: Callable[[str], int] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> ChatCompression:
    """Compress a chat: plan it, run one spec per compressed message (in chat order), rebuild it.
    `template` carries the method knobs (method, ranker, window, count_with...); `count` the token
    counter of budgets and reported counts (default: template.count_with's)."""
    template = template or CompressionSpec(context=[])
    count = request_counter(template.count_with, scorer) if count is None else memoised(count)
    chat = plan(messages, options, count)
    heads: dict[int, list[str]] = {}
    scored, timings = 0, {"total": 0.0}
    for i, rate in chat.rates.items():
        texts = [p.head for p in chat.pieces[i]]
        # A piece that is all question (a part after the split) has an empty head: nothing to compress.
        live = [k for k, t in enumerate(texts) if t.strip()]
        if not live:  # whitespace only: nothing a model could keep or drop
            chat.stats[i].action, chat.stats[i].reason, chat.stats[i].rate = "skipped", "no_text", None
            continue
        spec = message_spec([texts[k] for k in live], chat.question, rate, template, count)
        result = compress(scorer, spec, should_stop=should_stop)
        scored += result.scored_tokens
        for stage, ms in result.timings_ms.items():
            timings[stage] = round(timings.get(stage, 0.0) + ms, 3)
        out = list(texts)
        for k, c in zip(live, result.contexts, strict=True):
            out[k] = _rejoin(texts[k], c.text)
        heads[i] = out
        if template.return_labels:
            decided = dict(zip(live, (c.labels or [] for c in result.contexts), strict=True))
            chat.stats[i].labels = _message_labels(chat.pieces[i], decided)
        chat.stats[i].tokens_after = sum(
            count(h) + (count(p.tail) if p.tail else 0) for h, p in zip(out, chat.pieces[i], strict=True)
        )
    if template.return_labels:  # messages kept, skipped or left whole: every word kept
        for i, st in enumerate(chat.stats):
            if st.labels is None:
                st.labels = _message_labels(chat.pieces[i], {})
    return ChatCompression(
        rebuild(messages, chat.pieces, heads),
        chat.stats,
        sum(s.tokens_before for s in chat.stats),
        sum(s.tokens_after for s in chat.stats),
        scored,
        timings,
        chat.question,
    )


def unchanged_chat(
    messages: Sequence[Mapping[str, Any]], count: Callable[[str], int], reason: str, labels: bool = False
) -> ChatCompression:
    """The chat back as it came, every message marked skipped for `reason` (e.g. `deadline`): the chat
    form of pipelines.stages.unchanged. `count`: the caller's counter (count_with), as in compress_chat."""
    stats = []
    for i, m in enumerate(messages):
        slots = text_slots(m)
        n = sum(count(t) for _, t in slots)
        words = [w for _, t in slots for w in uniform(t, True)] if labels else None
        stats.append(MessageStat(i, str(m.get("role", "")), "skipped", reason, n, n, labels=words))
    total = sum(s.tokens_before for s in stats)
    return ChatCompression([dict(m) for m in messages], stats, total, total, 0, {}, "")


def _rejoin(original: str, compressed: str) -> str:
    """Compression strips the ends; keep the head's trailing whitespace so a kept question tail
    still starts its own paragraph."""
    trail = original[len(original.rstrip()) :]
    return compressed + trail if compressed else ""


def _message_labels(pieces: list[Piece], decided: dict[int, list[WordLabel]]) -> list[WordLabel]:
    """A message's text parts, in order, as word spans: a compressed head's labels from the pipeline
    (`decided`, by piece), anything else (a kept tail, an uncompressed head) kept whole, word by word."""
    out: list[WordLabel] = []
    for k, p in enumerate(pieces):
        out += decided[k] if k in decided else uniform(p.head, True)
        if p.tail:
            out += uniform(p.tail, True)
    return out
