"""The driver's terse path against a tiny fake service, resumability, and the report on its output."""

import pytest

from bench import quality, report
from loadtests import reports
from tests.local_http import JSONHandler, serve


class FakeTerse(JSONHandler):
    requests: list[dict] = []

    def answer(self, path, body):
        FakeTerse.requests.append(body)
        if path != "/v1/compress":
            return 404, {}
        docs = body["context"]
        keep = [0, len(docs) - 1]  # keeps the first and the last document
        contexts = [
            {
                "index": i,
                "kept": i in keep,
                "text": d if i in keep else "",
                "rank": 0 if i in keep else None,
                "original_tokens": 10,
                "compressed_tokens": 10 if i in keep else 0,
            }
            for i, d in enumerate(docs)
        ]
        prompt = "\n\n".join([body["instruction"], *[docs[i] for i in keep], body["question"]])
        data = {
            "compressed_prompt": prompt,
            "original_tokens": 100,
            "compressed_tokens": 25,
            "rate": 0.25,
            "ratio": 4.0,
            "method": body["method"],
            "contexts": contexts,
            "scored_tokens": 180,
            "model": "fake",
            "timings_ms": {"total": 1.0},
        }
        return 200, data


@pytest.fixture
def fake_url():
    with serve(FakeTerse) as url:
        yield url


def _jobs(n_docs=20):
    jobs = []
    for pos in (1, 10):
        docs = [
            f"Document [{i}](Title: T{i}) text" + (" Gold Answer" if i == pos else "") for i in range(1, n_docs + 1)
        ]
        for rate in (0.5, 0.25):
            meta = {
                "qid": "nq0001",
                "question": "q?",
                "gold_position": pos,
                "gold_index": pos - 1,
                "gold_title": f"T{pos}",
                "answers": ["gold  answer"],
                "rate": rate,
                "original_tokens": 100,
            }
            jobs.append(
                {
                    "id": f"nq0001-p{pos:02d}-r{rate:g}",
                    "instruction": "I",
                    "documents": docs,
                    "question": "Question: q?\nAnswer:",
                    "rate": rate,
                    "meta": meta,
                }
            )
    return jobs


def test_run_terse_records_and_resumes(tmp_path, fake_url):
    FakeTerse.requests.clear()
    out = tmp_path / "dev-terse-longllmlingua.jsonl"
    jobs = _jobs()
    quality.run_terse(jobs[:2], out, "longllmlingua", fake_url, {"reorder": "sort"}, 10, lambda m: None)
    assert len(FakeTerse.requests) == 2
    sent = FakeTerse.requests[0]
    assert sent["method"] == "longllmlingua" and sent["reorder"] == "sort" and len(sent["context"]) == 20
    quality.run_terse(jobs, out, "longllmlingua", fake_url, {}, 10, lambda m: None)
    assert len(FakeTerse.requests) == 4  # only the two missing jobs
    recs = reports.read_jsonl(out)
    assert [r["id"] for r in recs] == [j["id"] for j in jobs]
    assert recs[0]["forward_tokens"] == 180 and recs[0]["kept_context_ids"] == [0, 19]

    found, errors = report.load_results(tmp_path, "dev")
    evs = [report.evaluate(r) for r in found["terse-longllmlingua"].values()]
    by_pos = {(e["position"], e["rate"]): e for e in evs}
    assert by_pos[(1, 0.5)]["gold_kept"] is True and by_pos[(1, 0.5)]["retained"] is True
    assert by_pos[(10, 0.5)]["gold_kept"] is False and by_pos[(10, 0.5)]["retained"] is False
    assert by_pos[(1, 0.25)]["within"] is True and by_pos[(1, 0.5)]["within"] is False
    table = report.aggregate({"terse-longllmlingua": evs})
    md = report.markdown(table, "dev")
    assert "`terse-longllmlingua`" in md and "1.80" in md  # 180 scored tokens / 100 input tokens


def test_run_terse_service_down(tmp_path):
    with pytest.raises(quality.ServiceDown):
        quality.run_terse(_jobs()[:1], tmp_path / "x.jsonl", "llmlingua", "http://127.0.0.1:9", {}, 2, print)
    assert not (tmp_path / "x.jsonl").exists()
