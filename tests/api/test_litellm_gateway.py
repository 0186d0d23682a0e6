"""terse behind a real LiteLLM proxy (litellm[proxy] 1.106.12, in .venv-litellm from
scripts/setup-test-tools.sh), with no code on the caller's side: terse is a `pre_call` guardrail,
both as LiteLLM's Generic Guardrail API and as the backend of its `headroom` guardrail, in front of
a fake OpenAI-compatible upstream (here) that answers with the messages it received. A chat
completion through the proxy shows what the upstream model got: system message and question
identical, the long context shorter at the requested rate."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from loadtests.server import REPO, free_port
from tests.api.conftest import KEYS, text

LITELLM = REPO / ".venv-litellm" / "bin" / "litellm"
MASTER_KEY = "sk-terse-test-master"
START_TIMEOUT_S = 120
SYSTEM = "You are a careful assistant. Answer only from the documents."
INSTRUCTION = "Read the documents below, then answer the question."
QUESTION = "Question: which bridge did the engineer measure, and when?"
DOCS = [f"Document [{i + 1}] " + text(40 + i, 45) for i in range(5)]


class Echo(BaseHTTPRequestHandler):
    """/v1/chat/completions answering with the JSON of the messages it received."""

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        answer = {
            "id": "chatcmpl-echo",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", "echo"),
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": json.dumps(body["messages"])},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        }
        raw = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def upstream() -> Iterator[str]:
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}/v1"
    finally:
        srv.shutdown()
        srv.server_close()


def config(upstream: str, terse: str) -> str:
    key = KEYS["alice"]
    return f"""
model_list:
  - model_name: echo
    litellm_params:
      model: openai/echo
      api_base: {upstream}
      api_key: upstream-key
guardrails:
  - guardrail_name: terse
    litellm_params:
      guardrail: generic_guardrail_api
      mode: pre_call
      api_base: {terse}
      api_key: {key}
      additional_provider_specific_params:
        rate: 0.4
  - guardrail_name: terse-headroom
    litellm_params:
      guardrail: headroom
      mode: pre_call
      api_base: {terse}/headroom
      api_key: {key}
      ccr_retrieval: false
"""


@pytest.fixture(scope="module")
def proxy(server, upstream, tmp_path_factory) -> Iterator[str]:
    if not LITELLM.exists():
        pytest.fail(f"{LITELLM} missing: run scripts/setup-test-tools.sh (make test does)")
    work: Path = tmp_path_factory.mktemp("litellm")
    (work / "config.yaml").write_text(config(upstream, server.url))
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LITELLM", "OPENAI"))}
    env.update(LITELLM_MASTER_KEY=MASTER_KEY, LITELLM_LOCAL_MODEL_COST_MAP="True", NO_PROXY="127.0.0.1,localhost")
    log = open(work / "litellm.log", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [str(LITELLM), "--config", str(work / "config.yaml"), "--host", "127.0.0.1", "--port", str(port)],
        cwd=work,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        until = time.monotonic() + START_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                raise RuntimeError((work / "litellm.log").read_text()[-4000:])
            try:
                if httpx.get(url + "/health/liveliness", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > until:
                raise TimeoutError((work / "litellm.log").read_text()[-4000:])
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@pytest.fixture(scope="module")
def tokens(tiny_model):
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(tiny_model / "tokenizer.json"))
    return lambda s: len(tok.encode(s, add_special_tokens=False).ids)


def upstream_saw(proxy: str, messages: list[dict], guardrail: str) -> list[dict]:
    r = httpx.post(
        proxy + "/v1/chat/completions",
        json={"model": "echo", "messages": messages, "guardrails": [guardrail]},
        headers={"Authorization": f"Bearer {MASTER_KEY}"},
        timeout=120,
    )
    assert r.status_code == 200, r.text
    return json.loads(r.json()["choices"][0]["message"]["content"])


def test_generic_guardrail_delivers_a_compressed_rag_prompt(proxy, tokens):
    context = "\n\n".join([INSTRUCTION, *DOCS])
    sent = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": context + "\n\n" + QUESTION}]
    got = upstream_saw(proxy, sent, "terse")
    assert len(got) == 2
    assert got[0] == sent[0]
    assert got[1]["role"] == "user"
    assert got[1]["content"].endswith("\n\n" + QUESTION)
    kept = got[1]["content"][: -len("\n\n" + QUESTION)]
    assert tokens(kept) / tokens(context) == pytest.approx(0.4, abs=0.06)


def test_headroom_guardrail_compresses_the_history(proxy, tokens):
    history = "\n\n".join(DOCS)
    sent = [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": history},
        {"role": "assistant", "content": "I have read the documents."},
        {"role": "user", "content": QUESTION},
    ]
    got = upstream_saw(proxy, sent, "terse-headroom")
    assert len(got) == 4
    assert got[0] == sent[0] and got[2] == sent[2] and got[3] == sent[3]
    assert tokens(got[1]["content"]) / tokens(history) == pytest.approx(0.5, abs=0.06)  # the default rate
