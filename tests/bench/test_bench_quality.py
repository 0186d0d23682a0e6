"""The quality study's terse path against a tiny fake service, resumability, the baselines and the report."""

import pytest

from bench import quality, runner
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
                "set": "nq20",
                "qid": "nq0001",
                "query": "q?",
                "question": "Question: q?\nAnswer:",
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
    out = quality.results_path(tmp_path, "dev", "nq20", "terse")
    jobs = _jobs()
    runner.run_terse(jobs[:2], out, fake_url, {"reorder": "sort", "method": "longllmlingua"}, 10)
    assert len(FakeTerse.requests) == 2
    sent = FakeTerse.requests[0]
    assert sent["method"] == "longllmlingua" and sent["reorder"] == "sort" and len(sent["context"]) == 20
    runner.run_terse(jobs, out, fake_url, {"method": "longllmlingua"}, 10)
    assert len(FakeTerse.requests) == 4  # only the two missing jobs
    recs = reports.read_jsonl(out)
    assert [r["id"] for r in recs] == [j["id"] for j in jobs]
    assert recs[0]["forward_tokens"] == 180 and recs[0]["kept_context_ids"] == [0, 19]

    evs = [quality.evaluate(r) for r in recs]
    by_pos = {(e["position"], e["rate"]): e for e in evs}
    assert by_pos[(1, 0.5)]["gold_kept"] is True and by_pos[(1, 0.5)]["score"] == 1.0
    assert by_pos[(10, 0.5)]["gold_kept"] is False and by_pos[(10, 0.5)]["score"] == 0.0
    assert by_pos[(1, 0.25)]["within"] is True and by_pos[(1, 0.5)]["within"] is False
    table = quality.aggregate({"terse": evs})
    assert {(r["rate"], r["score"], r["gold_recall"]) for r in table} == {(0.5, 0.5, 0.5), (0.25, 0.5, 0.5)}
    assert table[0]["by_position"] == {1: 1.0, 10: 0.0}
    md = quality.markdown(table, {"command": "c", "machine": "m"})
    assert "### nq20: answer retention" in md and "| 0.5 | 2x | 2 | 0.50 | 0% | 1.80 |" in md  # 180 / 100 scored


def test_baselines_on_the_same_jobs_and_the_plots(tmp_path):
    from tests.bench.bench_fakes import WhitespaceTokenizer

    jobs = _jobs()
    rows = {}
    for system in ("bm25", "random", "random-passages", "first-passages"):
        out = quality.results_path(tmp_path, "dev", "nq20", system)
        quality.run_baseline(jobs, out, system, WhitespaceTokenizer())
        quality.run_baseline(jobs, out, system, WhitespaceTokenizer())  # resumes: nothing to do
        recs = reports.read_jsonl(out)
        assert len(recs) == len(jobs)
        rows[system] = [quality.evaluate(r) for r in recs]
    table = quality.aggregate(rows)
    assert {r["system"] for r in table} == {"bm25", "random", "random-passages", "first-passages"}
    quality.plot_retention(table, tmp_path / "r.png")
    quality.plot_positions(table, tmp_path / "p.png")
    assert (tmp_path / "r.png").stat().st_size > 1000 and (tmp_path / "p.png").stat().st_size > 1000


def test_run_terse_service_down(tmp_path):
    with pytest.raises(runner.ServiceDown):
        runner.run_terse(_jobs()[:1], tmp_path / "x.jsonl", "http://127.0.0.1:9", {}, 2)
    assert not (tmp_path / "x.jsonl").exists()
