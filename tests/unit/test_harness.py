"""The benchmark harness shared by bench/ and loadtests/: the results writer (JSON + markdown, JSONL resume,
the machine) and the closed-loop HTTP driver, against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import json
import threading
import time

import pytest

from loadtests import closedloop, reports
from tests.local_http import JSONHandler, serve


# -- results files -------------------------------------------------------------------------------------
def test_json_and_markdown_side_by_side_and_resume_only_the_same_config(tmp_path):
    result = {"config": {"n": 2}, "cells": {"a": 1}}
    js, md = reports.write(tmp_path / "out", "x-quick", result, "| a |\n")
    assert json.loads(js.read_text()) == result and md.read_text() == "| a |\n"
    assert reports.load_matching(js, {"n": 2}) == result
    assert reports.load_matching(js, {"n": 3}) is None
    assert reports.load_matching(tmp_path / "missing.json", {"n": 2}) is None


def test_jsonl_survives_a_cut_line_and_retries_errors(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text('{"id": "a"}\n{"id": "b", "trunc')
    reports.append_jsonl(path, {"id": "c", "text": "é"})
    assert reports.read_jsonl(path) == [{"id": "a"}, {"id": "c", "text": "é"}]
    path.write_text('{"id": "a"}\n{"id": "b", "error": "boom"}\n')
    assert reports.done_ids(path) == {"a"}


def test_cpu_model_and_bf16_flags_are_read_from_cpuinfo():
    text = "processor\t: 0\nmodel name\t: Intel(R) Xeon(R) Platinum\nflags\t\t: fpu avx512f avx512_bf16\n"
    text += "processor\t: 1\nmodel name\t: other\nflags\t\t: fpu\n"
    assert reports.cpu_model_and_flags(text) == ("Intel(R) Xeon(R) Platinum", {"fpu", "avx512f", "avx512_bf16"})
    box = {"cpus": 2, "cpu": "Xeon", "avx512_bf16": True, "amx_bf16": False, "loadavg_start": 0.5}
    assert reports.describe(box) == "2 CPUs (Xeon, avx512_bf16), load average 0.5 at start"
    assert reports.describe({"cpus": 1, "loadavg_start": 1.0}) == "1 CPUs, load average 1.0 at start"


def test_machine_names_this_cpu():
    model, flags = reports.cpu_model_and_flags()
    box = reports.machine()
    assert box["cpu"] == model
    assert box["avx512_bf16"] == ("avx512_bf16" in flags) and box["amx_bf16"] == ("amx_bf16" in flags)


# -- the closed-loop driver ----------------------------------------------------------------------------
class Echo(JSONHandler):
    """POST -> {"n": body["n"]} after body["sleep"] s; n < 0 -> 422. Records the peak of requests in flight."""

    lock = threading.Lock()
    in_flight = 0
    peak = 0
    seen: list[int] = []

    def answer(self, path, body):
        with Echo.lock:
            Echo.in_flight += 1
            Echo.peak = max(Echo.peak, Echo.in_flight)
            Echo.seen.append(body["n"])
        time.sleep(body.get("sleep", 0))
        with Echo.lock:
            Echo.in_flight -= 1
        return (200 if body["n"] >= 0 else 422), {"n": body["n"]}


@pytest.fixture
def echo_url():
    Echo.peak, Echo.in_flight, Echo.seen = 0, 0, []
    with serve(Echo) as url:
        yield url


def test_closed_loop_sends_each_request_once_in_order_with_c_clients(echo_url):
    requests = [("/echo", {"n": i, "sleep": 0.05}) for i in range(12)]
    replies, wall = closedloop.run(echo_url, requests, 3, keep_json=True)
    assert sorted(r.index for r in replies) == list(range(12))
    assert Echo.seen[:3] and sorted(Echo.seen[:3]) == [0, 1, 2]  # the queue's head goes first
    assert Echo.peak == 3  # never more than c in flight, and c reached
    assert all(r.json == {"n": r.index} and r.status == 200 for r in replies)
    assert wall >= max(r.latency_s for r in replies)
    assert closedloop.statuses(replies) == {"200": 12}


def test_closed_loop_counts_errors_or_raises_on_them(echo_url):
    requests = [("/echo", {"n": n}) for n in (1, -1, 2)]
    replies, _ = closedloop.run(echo_url, requests, 1, keep_json=True)
    assert closedloop.statuses(replies) == {"200": 2, "422": 1}
    assert [r.json for r in replies] == [{"n": 1}, None, {"n": 2}]
    with pytest.raises(Exception, match="422"):
        closedloop.run(echo_url, requests, 1, raise_for_status=True)
    dead, _ = closedloop.run("http://127.0.0.1:9", requests[:1], 1, timeout=5)
    assert dead[0].status is None and dead[0].error == "ConnectError"


def test_closed_loop_starts_nothing_after_its_deadline(echo_url):
    requests = [("/echo", {"n": i}) for i in range(5)]
    replies, _ = closedloop.run(echo_url, requests, 2, deadline=time.monotonic() - 1)
    assert replies == [] and Echo.seen == []


def test_closed_loop_refuses_other_hosts():
    with pytest.raises(ValueError, match="refusing"):
        closedloop.run("http://10.0.0.1:8000", [("/x", {})], 1)


def test_a_study_refuses_a_service_setting_the_service_does_not_have():
    import argparse

    from bench.runner import parser

    ap = parser("a study")
    assert ap.parse_args(["--settings", '{"quantization": "fp32"}']).settings == {"quantization": "fp32"}
    with pytest.raises(SystemExit):
        ap.parse_args(["--settings", '{"TERSE_QUANTIZATION": "fp32"}'])  # the env name, not the setting's
    with pytest.raises(argparse.ArgumentTypeError):
        from bench.runner import service_settings

        service_settings("[1]")
