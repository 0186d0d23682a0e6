"""The one primitive every algorithm builds on: per-token negative log-likelihood (nats) of token
sequences under a causal LM, batched, with KV-cache continuation.

Logits are never materialised for a whole sequence: hidden states go through the output head a chunk
of positions at a time and only the target token's log-probability is kept."""

from __future__ import annotations

import inspect
import threading
import time
from bisect import bisect_left
from collections.abc import Callable, Sequence
from typing import TypeVar

import numpy as np
import torch
import torch.nn.functional as F

from ..cancellation import check_stop, stopping_when
from ..errors import Cancelled
from ..packing import length_batches
from ..tokenizing import encode_ids
from . import attention
from .loading import LoadedModel
from .protocol import Meter, Retriever, Scorer, ScorerInfo, TokenStream

T = TypeVar("T")
# The most tokens one stream step feeds: its mask is (step x cached positions), so an unbounded step
# (one caller "word" of 100k tokens) would ask for tens of GB; steps are at most 512 tokens otherwise.
MAX_FEED_TOKENS = 2048


_INSTALLED = object()  # the default retriever: the installed one for the scorer's device, if any


class CausalLMScorer(Scorer):
    """The Scorer protocol (protocol.py) on a loaded causal LM. `retriever`: the embedding retriever
    of the hybrid ranker (default: the installed all-MiniLM-L6-v2 when its wheel is there; None: none)."""

    def __init__(
        self,
        loaded: LoadedModel,
        *,
        head_chunk_tokens: int = 128,
        max_batch_tokens: int = 16384,
        max_positions: int | None = None,
        max_padding: float | None = None,
        retriever: Retriever | None | object = _INSTALLED,
    ) -> None:
        self._retriever = retriever
        self.model = loaded.model
        self.tokenizer = loaded.tokenizer
        self.info = ScorerInfo(
            loaded.name,
            loaded.quantization,
            loaded.device,
            loaded.dtype,
            max_positions or _model_window(loaded.model),
        )
        self.device = torch.device(loaded.device)
        self.head_chunk_tokens = head_chunk_tokens
        self.max_batch_tokens = max_batch_tokens
        # Share of a batch row that may be padding. On CPU padding costs as much as real tokens and
        # forces the masked (slower) attention path, while batching buys almost nothing: 4 documents of
        # 111-233 tokens took 1.13 s padded, 0.75 s packed without padding. A GPU has cycles to spare.
        self.max_padding = max_padding if max_padding is not None else (0.5 if self.device.type == "cuda" else 0.1)
        self._base = loaded.model.base_model
        self._head = loaded.model.get_output_embeddings()
        self._softcap = getattr(loaded.model.config, "final_logit_softcapping", None)
        tok = loaded.tokenizer
        start = _start_token(tok)
        if start is None:
            raise ValueError("the tokenizer has neither a BOS nor an EOS token to start sequences with")
        self.start_id: int = int(start)
        self._lock = threading.Lock()
        self.grouped_attention = attention.install(loaded.model, self.device)
        # The stream builds its 4-D mask itself where SDPA takes it (once per call, additive).
        self._own_masks = loaded.model.config._attn_implementation in ("sdpa", attention.NAME)
        self._mask_dtype = loaded.model.get_input_embeddings().weight.dtype
        head = self._head
        self._head_buffered = (
            self.device.type == "cpu" and type(head) is torch.nn.Linear and head.bias is None
        )  # a plain head: its logits go into buffers kept between calls (_target_nll)
        self._head_buffers: tuple[torch.Tensor, torch.Tensor | None] | None = None
        params = inspect.signature(self._base.forward).parameters
        self._cache_kw = "cache" if "cache" in params else "past_key_values"
        # A cancelled job stops between decoder layers (one layer of one pass), not after its batch.
        layers = getattr(self._base, "layers", None)
        if isinstance(layers, torch.nn.ModuleList):
            for layer in layers:
                layer.register_forward_pre_hook(lambda _module, _args: check_stop())

    # -- tokenizer helpers -------------------------------------------------------------------------
    def encode(self, text: str) -> list[int]:
        return encode_ids(self.tokenizer, text)

    def count(self, text: str) -> int:
        return len(self.encode(text))

    @property
    def max_positions(self) -> int:
        return self.info.max_positions

    @property
    def retriever(self) -> Retriever | None:
        if self._retriever is _INSTALLED:
            from ..ranking import embedding

            self._retriever = embedding.installed(str(self.device))
        return self._retriever

    def serial(self, fn: Callable[[], T], tokens: int) -> T:
        """Run another model's computation (the embedding ranker) where this scorer's model runs, so
        the two never compete for the cores. Here that is the caller's thread; the service's
        BatchingScorer sends it to its model worker. `tokens` sizes the job for the scheduler."""
        with self._lock:
            return fn()

    # -- the primitive -----------------------------------------------------------------------------
    @torch.inference_mode()
    def nll(
        self,
        sequences: Sequence[Sequence[int]],
        *,
        score_from: Sequence[int] | None = None,
        meter: Meter | None = None,
    ) -> list[torch.Tensor]:
        """NLL of every token of every sequence (a start token is put in front, so the first token is
        scored too). With `score_from`, row i returns only tokens score_from[i]:, which saves the
        output head for positions nobody needs. Results are float32 on the CPU."""
        with stopping_when(meter.should_stop if meter is not None else None):  # layers and head chunks poll it
            return self._nll(sequences, score_from, meter)

    def _nll(self, sequences, score_from, meter) -> list[torch.Tensor]:
        starts = list(score_from) if score_from is not None else [0] * len(sequences)
        out: list[torch.Tensor | None] = [None] * len(sequences)
        window = self.max_positions
        short = [i for i, s in enumerate(sequences) if len(s) + 1 <= window]
        for i in range(len(sequences)):
            if len(sequences[i]) + 1 > window:
                out[i] = self._nll_long(list(sequences[i]), starts[i], meter)
        # Longest first, packed into batches under the token budget and the padding share.
        rows = [len(sequences[i]) + 1 for i in short]  # + the start token
        for batch in length_batches(rows, self.max_padding, self.max_batch_tokens):
            self._run_batch(sequences, starts, [short[j] for j in batch], out, meter)
        return [o if o is not None else torch.empty(0) for o in out]

    def _run_batch(self, sequences, starts, rows, out, meter) -> None:
        t0 = time.perf_counter()
        seqs = [[self.start_id, *sequences[i]] for i in rows]
        width = max(len(s) for s in seqs)
        ids = torch.full((len(seqs), width), self.start_id, dtype=torch.long)
        mask = torch.zeros((len(seqs), width), dtype=torch.long)
        for r, s in enumerate(seqs):
            ids[r, : len(s)] = torch.tensor(s)
            mask[r, : len(s)] = 1
        hidden, _ = self._forward(ids, mask, meter, int(mask.sum()))
        picks, targets, spans = [], [], []
        for r, i in enumerate(rows):
            n = len(sequences[i])
            lo = min(max(starts[i], 0), n)
            # hidden at position p predicts token p of the original sequence (p+1 of seqs[r])
            picks.append(hidden[r, lo:n])
            targets.extend(seqs[r][lo + 1 : n + 1])
            spans.append(n - lo)
        flat = self._target_nll(torch.cat(picks), torch.tensor(targets, dtype=torch.long))
        for i, part in zip(rows, torch.split(flat, spans), strict=True):
            out[i] = part
        if meter is not None:
            meter.model_s += time.perf_counter() - t0

    def _nll_long(self, seq: list[int], start: int, meter: Meter | None) -> torch.Tensor:
        """Sequences past the model's window: overlapping windows, each keeping the last half-window
        of the previous one as context, so every token is scored with at least that much history."""
        window = self.max_positions - 1
        step = window // 2
        pieces, pos = [], 0
        first = self.nll([seq[:window]], score_from=[start], meter=meter)[0]
        pieces.append(first)
        pos = window
        while pos < len(seq):
            ctx_lo = pos - step
            chunk = seq[ctx_lo : pos + step]
            from_ = max(start - ctx_lo, step)
            part = self._nll_window_ctx(chunk, from_, meter)
            pieces.append(part)
            pos += step
        return torch.cat(pieces)[: max(len(seq) - start, 0)]

    def _nll_window_ctx(self, chunk: list[int], from_: int, meter: Meter | None) -> torch.Tensor:
        # The chunk's first token acts as context only; no start token is put in front mid-text.
        t0 = time.perf_counter()
        ids = torch.tensor([chunk])
        hidden, _ = self._forward(ids, torch.ones_like(ids), meter, len(chunk))
        lo = max(from_ - 1, 0)
        nll = self._target_nll(hidden[0, lo : len(chunk) - 1], ids[0, lo + 1 :])
        if meter is not None:
            meter.model_s += time.perf_counter() - t0
        return nll

    def _forward(self, ids, mask, meter, real_tokens, past=None) -> torch.Tensor:
        if meter is not None and meter.should_stop is not None and meter.should_stop():
            raise Cancelled()  # between batches: a long nll stops after the batch it is on
        stop = meter.should_stop if meter is not None else None
        with self._lock, stopping_when(stop):
            out = self._base(
                input_ids=ids.to(self.device),
                attention_mask=mask.to(self.device),
                use_cache=past is not None,
                **{self._cache_kw: past},
            )
        if meter is not None:
            meter.add(real_tokens)
        cache = getattr(out, "cache", None) or getattr(out, "past_key_values", None)
        return out.last_hidden_state, cache

    def _target_nll(self, hidden: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """The head a chunk at a time, NLL by the fused cross-entropy in fp32. Small chunks keep the
        logits (chunk x vocabulary) in cache: on 2 CPU cores 128-token chunks took a third of the time
        of 1024-token ones over the 49,152-word vocabulary, and the fused kernel beat logsumexp + gather."""
        if hidden.shape[0] == 0:
            return torch.empty(0)
        if self._head_buffered and hidden.dtype == self._head.weight.dtype:
            with self._lock:  # the buffers are the scorer's
                return self._target_nll_buffered(hidden, targets)
        res = []
        targets = targets.to(hidden.device)
        for lo in range(0, hidden.shape[0], self.head_chunk_tokens):
            check_stop()
            logits = self._head(hidden[lo : lo + self.head_chunk_tokens]).float()
            if self._softcap:
                logits = torch.tanh(logits / self._softcap) * self._softcap
            res.append(F.cross_entropy(logits, targets[lo : lo + self.head_chunk_tokens], reduction="none"))
        return torch.cat(res).cpu()

    @torch.inference_mode()
    def _target_nll_buffered(self, hidden: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """_target_nll's values (the same bits: the same matmul, fp32 cast and log-softmax, done in place)
        with the chunk's logits written into buffers kept between calls. On CPU a fresh chunk x vocabulary
        tensor is fresh pages from the OS each time: the tiny model's head took twice as long."""
        weight, chunk = self._head.weight, self.head_chunk_tokens
        if self._head_buffers is None:
            logits = torch.empty(chunk, weight.shape[0], dtype=weight.dtype)
            self._head_buffers = (logits, None if weight.dtype == torch.float32 else torch.empty(logits.shape))
        logits_buf, fp32_buf = self._head_buffers
        out = torch.empty(hidden.shape[0])
        for lo in range(0, hidden.shape[0], chunk):
            check_stop()
            h = hidden[lo : lo + chunk]
            n = h.shape[0]
            logits = torch.mm(h, weight.t(), out=logits_buf[:n])
            logp = logits if fp32_buf is None else fp32_buf[:n].copy_(logits)
            if self._softcap:
                logp.div_(self._softcap).tanh_().mul_(self._softcap)
            torch.log_softmax(logp, -1, out=logp)
            torch.neg(logp.gather(1, targets[lo : lo + n, None])[:, 0], out=out[lo : lo + n])
        return out

    # -- KV continuation ---------------------------------------------------------------------------
    def stream(self, prefix: Sequence[int] = (), meter: Meter | None = None) -> Stream:
        return Stream(self, list(prefix), meter)


class Stream(TokenStream):
    """A growing sequence scored incrementally with its KV cache. Positions can be hidden afterwards
    (tokens compression dropped): later tokens no longer attend to them, so they are scored as if
    conditioned on the compressed prefix, without forwarding the kept tokens a second time."""

    def __init__(self, scorer: CausalLMScorer, prefix: list[int], meter: Meter | None) -> None:
        self.s = scorer
        self.meter = meter
        self.ids: list[int] = []
        self.visible: list[bool] = []
        # Each token's index among all tokens fed after the start token (increasing). A rebase drops
        # tokens from ids/visible, so positions given to hide() are looked up here, never by offset.
        self.logical: list[int] = []
        self.fed = 0
        self.past = None
        self._last_hidden: torch.Tensor | None = None
        # The start token and prefix go in with the first extend: one model call where two were made.
        self._pending: list[int] | None = [scorer.start_id, *prefix]
        self._prefix_nll: torch.Tensor | None = None

    def __len__(self) -> int:  # tokens fed after the start token (the pending prefix too), rebases included
        return self.fed + (len(self._pending) - 1 if self._pending is not None else 0)

    @property
    def prefix_nll(self) -> torch.Tensor:
        if self._pending is not None:
            self._feed_pending()
        return self._prefix_nll

    @torch.inference_mode()
    def _feed_pending(self, ids: Sequence[int] = ()) -> torch.Tensor:
        pending, self._pending = self._pending, None
        nll = self._feed([*pending, *ids], first_is_start=True)
        self._prefix_nll = nll[: len(pending) - 1]
        return nll[len(pending) - 1 :]

    @torch.inference_mode()
    def extend(self, ids: Sequence[int]) -> torch.Tensor:
        """NLL of `ids` given every visible token before them."""
        ids = list(ids)
        if not ids:
            return torch.empty(0)
        piece = min(self.s.max_positions // 2, MAX_FEED_TOKENS)
        if len(ids) > piece:  # one long unit (a 100k-token "word") is fed in pieces: bounded masks, windows
            return torch.cat([self.extend(ids[i : i + piece]) for i in range(0, len(ids), piece)])
        if self._pending is not None:
            if len(self._pending) + len(ids) <= self.s.max_positions:
                return self._feed_pending(ids)
            self._feed_pending()
        if len(self.ids) + len(ids) > self.s.max_positions:
            self._rebase(len(ids))
        return self._feed(ids, first_is_start=False)

    @property
    def primed(self) -> bool:
        """Whether the prefix went through the model (hiding before that feeds it first)."""
        return self._pending is None

    def hide(self, positions: Sequence[int]) -> None:
        """Hide tokens by their index among the tokens fed after the start token (prefix included)."""
        if self._pending is not None:
            self._feed_pending()
        for p in positions:
            i = bisect_left(self.logical, p)
            if i < len(self.logical) and self.logical[i] == p:  # else a rebase already dropped it
                self.visible[i + 1] = False

    @torch.inference_mode()
    def _feed(self, ids: list[int], *, first_is_start: bool, logical: list[int] | None = None) -> torch.Tensor:
        with stopping_when(self.meter.should_stop if self.meter is not None else None):
            return self._feed_step(ids, first_is_start=first_is_start, logical=logical)

    def _feed_step(self, ids: list[int], *, first_is_start: bool, logical: list[int] | None) -> torch.Tensor:
        t0 = time.perf_counter()
        if self.visible and self.s._own_masks:
            mask = attention.additive_mask(_bools(self.visible), len(ids), self.s._mask_dtype)
        else:  # a 2-D mask: transformers builds the 4-D one (none at all for the first feed: is_causal)
            mask = torch.tensor([[*map(int, self.visible), *([1] * len(ids))]], dtype=torch.long)
        hidden, self.past = self.s._forward(_longs(ids)[None], mask, self.meter, len(ids), past=self._past_or_empty())
        self.ids.extend(ids)
        self.visible.extend([True] * len(ids))
        if logical is None:
            new = len(ids) - 1 if first_is_start else len(ids)
            logical = list(range(self.fed, self.fed + new))
            self.fed += new
        self.logical.extend(logical)
        hidden = hidden[0]
        if first_is_start:
            preds, targets = hidden[:-1], ids[1:]
        else:
            preds = torch.cat([self._last_hidden[None], hidden[:-1]])
            targets = ids
        self._last_hidden = hidden[-1]
        nll = self.s._target_nll(preds, _longs(targets))
        if self.meter is not None:
            self.meter.model_s += time.perf_counter() - t0
        return nll

    def _past_or_empty(self):
        if self.past is None:
            from transformers import DynamicCache

            return DynamicCache()
        return self.past

    def _rebase(self, incoming: int) -> None:
        """Past the model's window: restart from the last visible tokens (half a window), so the
        stream keeps going with as much recent history as fits."""
        keep = max(self.s.max_positions // 2 - incoming, 0)
        visible = zip(self.ids[1:], self.visible[1:], self.logical, strict=True)
        tail = [(t, n) for t, v, n in visible if v][-keep:] if keep else []
        self.ids, self.visible, self.logical, self.past, self._last_hidden = [], [], [], None, None
        self._feed([self.s.start_id, *(t for t, _ in tail)], first_is_start=True, logical=[n for _, n in tail])


def _bools(values: list[bool]) -> torch.Tensor:
    """torch.tensor(values) through numpy: torch reads a Python list element by element (2,700 flags:
    560 µs, through numpy 66)."""
    return torch.from_numpy(np.array(values, dtype=bool))


def _longs(values: Sequence[int]) -> torch.Tensor:
    """torch.tensor(values, dtype=torch.long) through numpy (512 ids: 40 µs, through numpy 11)."""
    return torch.from_numpy(np.array(values, dtype=np.int64))


def _model_window(model: torch.nn.Module) -> int:
    cfg = model.config
    for name in ("max_position_embeddings", "n_positions", "n_ctx", "seq_length"):
        v = getattr(cfg, name, None)
        if isinstance(v, int) and v > 0:
            return v
    return 2048


def _start_token(tok) -> int:
    """The token every scored sequence starts from. A document separator (<|endoftext|>) suits
    plain text best (SmolLM2: perplexity 5.9 vs 7.4 after <|im_start|>); else BOS, else EOS."""
    eot = tok.convert_tokens_to_ids("<|endoftext|>") if "<|endoftext|>" in tok.get_vocab() else None
    for cand in (eot, tok.bos_token_id, tok.eos_token_id):
        if cand is not None:
            return int(cand)
    raise ValueError("the tokenizer has no <|endoftext|>, BOS or EOS token to start sequences with")
