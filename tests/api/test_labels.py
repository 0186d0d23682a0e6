"""`return_labels` over HTTP: off by default; when asked, every context carries its original text as
word spans that concatenate back to it exactly, with kept flags that match the compressed text, and
the coarse ranker's score; a request skipped before the pipeline runs labels everything kept."""

from __future__ import annotations

from .conftest import assert_error, docs


def rebuilt(ctx: dict) -> str:
    return "".join(span["text"] for span in ctx["labels"])


def test_labels_are_off_by_default(client):
    r = client.post("/v1/compress", json={"context": docs(5, n=2), "rate": 0.5})
    assert r.status_code == 200, r.text
    assert all(c["labels"] is None and c["score"] is None for c in r.json()["contexts"])


def test_labels_rebuild_every_context_and_mark_what_was_dropped(client):
    contexts = docs(6, n=4) + ["Tabs\tand\n\nblank lines  stay  exactly as sent.  "]
    req = {"context": contexts, "question": "Question: what did the students paint?", "rate": 0.3}
    r = client.post("/v1/compress", json={**req, "return_labels": True})
    assert r.status_code == 200, r.text
    body = r.json()
    plain = client.post("/v1/compress", json=req).json()
    assert body["compressed_prompt"] == plain["compressed_prompt"]  # labels change nothing else
    struck = 0
    for ctx, original in zip(body["contexts"], contexts, strict=True):
        assert rebuilt(ctx) == original
        assert set(ctx) >= {"labels", "score", "rank"} and isinstance(ctx["score"], float)
        kept = "".join(s["text"] for s in ctx["labels"] if s["kept"])
        assert kept.split() == ctx["text"].split()
        struck += sum(not s["kept"] for s in ctx["labels"])
        for span in ctx["labels"]:
            assert set(span) == {"text", "kept", "score"}
            assert span["score"] is None or isinstance(span["score"], float)
    assert struck > 0


def test_a_skipped_request_labels_everything_kept(client):
    r = client.post("/v1/compress", json={"context": ["A short note.", " Two  words"], "return_labels": True})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["skipped"] is True
    for ctx, original in zip(body["contexts"], ["A short note.", " Two  words"], strict=True):
        assert rebuilt(ctx) == original
        assert all(s["kept"] and s["score"] is None for s in ctx["labels"])


def test_return_labels_must_be_a_boolean(client):
    r = client.post("/v1/compress", json={"context": "x", "return_labels": "yes"})
    assert_error(r, 422, "validation_error", "return_labels")
