"""Hostile callers against a real server (issue 22): `python -m app` on a tiny random Llama on
127.0.0.1 with a 3 s request timeout, and each payload of the issue's "What was observed" plus other
shapes, each under the body (2 MiB) and token (32,768) limits unless the case is about a limit. For
every request:

- `/healthz` is polled every 50 ms from a thread while it runs, and no poll takes over 250 ms (the
  event loop never waits on caller text);
- the answer is 200, 413, 422, 429 or 504, never a 500, within the timeout + 3 s;
- after the answer, the server process (all its threads, from /proc/<pid>/stat) falls below 20% of
  a core within 2 s: an answered request leaves no work behind.

Each case names the part of issue 22 that fixed it (LINEAR: linear-time input handling; LIFECYCLE:
the request lifecycle and cancellation). A server left busy by a failed case is replaced before the next one.
The `slow` variant repeats the heaviest shapes at larger sizes."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import pytest

from loadtests.server import Service
from tests.tiny_models import make_tiny_model

pytestmark = pytest.mark.timeout(900)
KEY = "hostile-test-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
TIMEOUT_S = 3.0
ANSWER_SLACK_S = 3.0
POLL_EVERY_S = 0.05
POLL_LIMIT_S = 0.25
IDLE_CORE_SHARE = 0.20
IDLE_WITHIN_S = 2.0
ALLOWED = {200, 413, 422, 429, 504}
START_TIMEOUT_S = 300
TICKS = os.sysconf("SC_CLK_TCK")
LINEAR = LIFECYCLE = None  # the shapes each branch of issue 22 fixed (their xfail marks went with the merge)


# -- the server and what is measured of it ----------------------------------------------------------
def cpu_seconds(pid: int) -> float:
    """utime + stime of the whole process, every thread included."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # fields 14 and 15 of proc(5)


def idle_within(pid: int, seconds: float, window: float = 0.25) -> float | None:
    """Seconds until one `window` used under IDLE_CORE_SHARE of a core, or None if not within `seconds`."""
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        before, t0 = cpu_seconds(pid), time.monotonic()
        time.sleep(window)
        if (cpu_seconds(pid) - before) / (time.monotonic() - t0) < IDLE_CORE_SHARE:
            return time.monotonic() - start
    return None


class Poller(threading.Thread):
    """GET /healthz every 50 ms until stopped; the slowest answer (a failed poll counts as slow)."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url, self.stop, self.slowest, self.polls = url, threading.Event(), 0.0, 0

    def run(self) -> None:
        with httpx.Client(timeout=10) as c:
            while not self.stop.is_set():
                t0 = time.monotonic()
                try:
                    ok = c.get(self.url + "/healthz").status_code == 200
                except httpx.HTTPError:
                    ok = False
                took = time.monotonic() - t0
                self.slowest, self.polls = max(self.slowest, took if ok else 10.0), self.polls + 1
                self.stop.wait(max(POLL_EVERY_S - took, 0))


@dataclass
class Outcome:
    status: int
    seconds: float
    slowest_poll: float
    idle_after: float | None
    body: dict = field(default_factory=dict)


class HostileServer:
    """One tiny-model server, replaced when a case leaves it busy (so one failure does not spill)."""

    def __init__(self, model, workdir) -> None:
        self.model, self.workdir, self.started = model, workdir, 0
        self.svc: Service | None = None

    def start(self) -> None:
        self.started += 1
        settings = {
            "model": self.model,
            "quantization": "fp32",
            "device": "cpu",
            "api_keys": f"hostile:{KEY}",
            "request_timeout_s": TIMEOUT_S,
            "max_concurrent_requests": 4,
            "min_tokens": 16,
            "log_level": "warning",
            "drain_seconds": 1,
            "tokenizers": json.dumps({"tiny": str(self.model / "tokenizer.json")}),
        }
        self.svc = Service(self.workdir / f"run-{self.started}", settings, env={"OMP_NUM_THREADS": "1"})
        self.svc.wait("/readyz", START_TIMEOUT_S)

    def stop(self) -> None:
        if self.svc is not None:
            self.svc.stop(timeout=5)
            self.svc = None

    def ready(self) -> Service:
        """The server, idle: a fresh one if the last case left it busy or dead."""
        if self.svc is not None and (self.svc.proc.poll() is not None or idle_within(self.svc.pid, 5.0) is None):
            self.stop()
        if self.svc is None:
            self.start()
        assert self.svc is not None
        return self.svc

    def send(self, path: str, body: dict | bytes, headers: dict[str, str] | None = None) -> Outcome:
        svc = self.ready()
        poller = Poller(svc.url)
        poller.start()
        t0 = time.monotonic()
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        headers = {**AUTH, "content-type": "application/json", **(headers or {})}
        try:
            r = httpx.post(svc.url + path, content=content, headers=headers, timeout=TIMEOUT_S + ANSWER_SLACK_S + 30)
            status, answer = r.status_code, (r.json() if r.content else {})
        except httpx.TimeoutException:
            status, answer = 0, {}
        seconds = time.monotonic() - t0
        poller.stop.set()
        poller.join()
        return Outcome(status, seconds, poller.slowest, idle_within(svc.pid, IDLE_WITHIN_S), answer)


@pytest.fixture(scope="module")
def hostile(tmp_path_factory) -> Iterator[HostileServer]:
    out = tmp_path_factory.mktemp("tiny-hostile")
    model = make_tiny_model("llama", out, max_positions=8192, heads=2, initializer_range=0.02, pad_token=True)
    server = HostileServer(model, tmp_path_factory.mktemp("hostile-server"))
    try:
        yield server
    finally:
        server.stop()


def check(outcome: Outcome, allowed: set[int] = ALLOWED) -> None:
    print(  # one line a request in `pytest -s` output: what the suite saw
        f"\nstatus {outcome.status} in {outcome.seconds:.2f} s, slowest /healthz {outcome.slowest_poll:.3f} s, "
        f"idle after {outcome.idle_after} s; {json.dumps(outcome.body)[:160]}"
    )
    assert outcome.status in allowed, (outcome.status, outcome.body)
    assert outcome.seconds <= TIMEOUT_S + ANSWER_SLACK_S, f"answered after {outcome.seconds:.1f} s"
    assert outcome.slowest_poll <= POLL_LIMIT_S, f"/healthz took {outcome.slowest_poll:.2f} s while it ran"
    assert outcome.idle_after is not None, f"the server stayed busy > {IDLE_WITHIN_S} s after answering"


# -- the payloads -----------------------------------------------------------------------------------
def words(n: int) -> str:
    return " ".join(["alpha", "beta", "gamma", "delta", "river", "hill"][i % 6] for i in range(n))


QUESTION_LONG = "Which of these documents mention the river and the hill? " + words(1500)
CASES = {
    # 1. backtracking shapes of compressors/structure.py on the default path
    "table_separator_spaces": (LINEAR, "/v1/compress", {"context": "|\n" + " " * 20_000 + "|x", "rate": 0.5}),
    "email_dashes": (LINEAR, "/v1/compress", {"context": "-" * 40_000 + " @", "rate": 0.5}),
    "inline_code_ticks": (LINEAR, "/v1/compress", {"context": "`" * 2_000 + "a" + "-" * 50_000, "rate": 0.5}),
    # 2. quadratic protection in pure Python
    "force_token_dashes": (LINEAR, "/v1/compress", {"context": "-" * 8_000, "force_tokens": ["-"], "rate": 0.5}),
    "pattern_a_on_as": (LINEAR, "/v1/compress", {"context": "a" * 8_000, "protected_spans": ["a"], "rate": 0.5}),
    "keep_digits_1x": (LINEAR, "/v1/compress", {"context": "1x" * 4_000, "keep_digits": True, "rate": 0.5}),
    "many_keep_markers": (  # passes on main at this size (the body limit bounds it): a guard
        None,
        "/v1/compress",
        {
            # to_spec maps every range through every marker, on the event loop (issue 22: 160k x 50, 2.4 s)
            "context": words(200) + "<terse:keep></terse:keep>" * 70_000,
            "protected_spans": [{"context": 0, "start": i, "end": i + 1} for i in range(0, 1000, 2)],
            "rate": 0.5,
        },
    ),
    "documents_times_ranges": (  # passes on main at this size (504 and idle): a guard
        None,
        "/v1/compress",
        {
            "context": ["a b c d"] * 4_000,
            "protected_spans": [{"context": i % 4_000, "start": 0, "end": 1} for i in range(1_000)],
            "rate": 0.5,
            "method": "llmlingua",
        },
    ),
    # 7. caller regexes: 0.25 s per pattern per document, no total
    "sixteen_patterns_many_documents": (  # passes on main at this size (regex finds it fast): a guard
        None,
        "/v1/compress",
        {"context": ["a" * 24 + "!"] * 500, "protected_spans": [f"(a+)+{i}$" for i in range(16)], "rate": 0.5},
    ),
    # 3. forwarded tokens: the question forwarded with every document / sentence
    "question_ranker_1000_docs": (
        LIFECYCLE,
        "/v1/compress",
        {"context": [words(12)] * 1_000, "question": QUESTION_LONG, "ranker": "question", "rate": 0.3},
    ),
    "sentence_filter_long_question": (
        LIFECYCLE,
        "/v1/compress",
        {
            "context": [". ".join([words(6)] * 60) + "."] * 20,
            "question": QUESTION_LONG,
            "sentence_filter": True,
            "rate": 0.3,
        },
    ),
    # 4. 500s from bad input
    "messages_bad_pattern": (
        LIFECYCLE,
        "/v1/compress",
        {"messages": [{"role": "user", "content": words(80)}], "protected_spans": ["("], "rate": 0.5},
    ),
    "headroom_bad_pattern": (
        LIFECYCLE,
        "/headroom/v1/compress",
        {"messages": [{"role": "user", "content": words(80)}], "protected_spans": ["("], "rate": 0.5},
    ),
    "json_deep_brackets": (LINEAR, "/v1/compress", {"context": "[" * 50_000, "format": "json", "rate": 0.5}),
    # 3. the guardrail's own deadline: NONE at once, and its work must stop too
    "guardrail_deadline_1ms": (  # passes on main with the tiny model (work ends fast): a guard
        None,
        "/beta/litellm_basic_guardrail_api",
        {
            "texts": [words(3_000)] * 8,  # enough work that it outlives the answer on the tiny model
            "structured_messages": [{"role": "user", "content": "x"}] * 8,
            "additional_provider_specific_params": {"deadline_ms": 1, "rate": 0.3},
        },
    ),
    # 6. count_with names, not paths
    "count_with_a_path": (None, "/v1/compress", {"context": words(100), "count_with": "/etc/passwd"}),
    "count_with_dot_dot": (None, "/v1/compress", {"context": words(100), "count_with": "../../tokenizer.json"}),
    # other shapes
    "url_of_a_thousand_parts": (None, "/v1/compress", {"context": "http://" + "a." * 20_000 + " x", "rate": 0.5}),
    "cjk_run": (None, "/v1/compress", {"context": "的" * 20_000, "rate": 0.5}),
    "one_long_word": (None, "/v1/compress", {"context": "a" * 400_000, "rate": 0.5}),
    "fences_without_end": (None, "/v1/compress", {"context": "```\n" * 20_000 + "x", "rate": 0.5}),
    "many_force_tokens": (
        None,
        "/v1/compress",
        {"context": words(4_000), "force_tokens": [f"w{i}" for i in range(1_000)], "rate": 0.5},
    ),
    "many_tiny_documents": (None, "/v1/compress", {"context": ["a"] * 20_000, "rate": 0.5}),
    "many_chat_messages": (
        None,
        "/v1/compress",
        {"messages": [{"role": "user", "content": words(4)}] * 5_000, "rate": 0.5},
    ),
    "deep_request_body": (None, "/v1/compress", b'{"context": ' + b"[" * 50_000 + b"]" * 50_000 + b"}"),
    "body_over_the_limit": (None, "/v1/compress", {"context": "a " * 1_100_000}),
}


def params(cases: dict) -> list:
    return [
        pytest.param(path, body, id=name, marks=[mark] if mark else []) for name, (mark, path, body) in cases.items()
    ]


@pytest.mark.parametrize(("path", "body"), params(CASES))
def test_a_hostile_request_is_answered_in_time_and_leaves_nothing_running(hostile, path, body):
    check(hostile.send(path, body))


def test_count_with_a_path_is_the_one_opaque_422(hostile):
    bodies = [{"context": words(100), "count_with": v} for v in ("/etc/passwd", "/nonexistent/tokenizer.json", "x")]
    answers = [hostile.send("/v1/compress", b) for b in bodies]
    for a in answers:
        check(a, {422})
    assert len({json.dumps(a.body, sort_keys=True) for a in answers}) == 1, [a.body for a in answers]
    named = hostile.send("/v1/compress", {"context": words(100), "count_with": "tiny", "rate": 0.5})
    check(named, {200})


def test_misaligned_guardrail_roles_never_compress_a_system_prompt(hostile):
    system = "You are a careful assistant. " + words(400)
    body = {
        "texts": [system, words(400)],
        "structured_messages": [{"role": "system", "content": system}],  # one message, two texts
        "additional_provider_specific_params": {"rate": 0.3},
    }
    outcome = hostile.send("/beta/litellm_basic_guardrail_api", body)
    check(outcome, {200})
    assert outcome.body.get("action") == "NONE" or outcome.body.get("texts", [None])[0] == system, outcome.body


SLOW_CASES = {
    "table_separator_spaces_x5": (LINEAR, "/v1/compress", {"context": "|\n" + " " * 100_000 + "|x", "rate": 0.5}),
    "email_dashes_x5": (LINEAR, "/v1/compress", {"context": "-" * 200_000 + " @", "rate": 0.5}),
    "force_token_dashes_x2": (LINEAR, "/v1/compress", {"context": "-" * 16_000, "force_tokens": ["-"], "rate": 0.5}),
    "question_ranker_2000_docs": (
        LIFECYCLE,
        "/v1/compress",
        {"context": [words(12)] * 2_000, "question": QUESTION_LONG, "ranker": "question", "rate": 0.3},
    ),
}


@pytest.mark.slow
@pytest.mark.parametrize(("path", "body"), params(SLOW_CASES))
def test_larger_hostile_requests(hostile, path, body):
    check(hostile.send(path, body))
