"""API fuzzing with schemathesis against /openapi.json on a real server (the tiny model): requests
generated from the schema, valid ones and invalid ones, sent with a valid key. No 5xx; every response
matches the schema (status declared, content type, body, headers); invalid data is rejected with a
4xx. About 100 requests in `make test`, over 1,000 (fresh random ones each run) in `make fuzz`."""

from __future__ import annotations

import collections
import os

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable

from .conftest import AUTH, KEYS

schemathesis = pytest.importorskip("schemathesis")


def fuzz(url: str, per_operation: int, *, derandomize: bool) -> tuple[collections.Counter, list[tuple]]:
    """`per_operation` generated requests per operation and mode (positive: valid by the schema;
    negative: invalid). Returns the request counts by (mode, operation, status) and the failures."""
    from schemathesis import GenerationMode
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi import checks as oc

    # Any 4xx rejects invalid data cleanly (schemathesis' default list lacks 413 for a body too big). The
    # key goes through the security scheme, so no case counts as "negative" for an Authorization header
    # that `headers=AUTH` then replaces with a valid one.
    config = schemathesis.Config.from_dict(
        {
            "checks": {"negative_data_rejection": {"expected-statuses": ["4XX"]}},
            "auth": {"openapi": {"HTTPBearer": {"bearer": KEYS["alice"]}}},
        }
    )
    schema = schemathesis.openapi.from_url(url + "/openapi.json", config=config)
    checks = [
        not_a_server_error,
        oc.status_code_conformance,
        oc.content_type_conformance,
        oc.response_schema_conformance,
        oc.response_headers_conformance,
        oc.negative_data_rejection,
    ]
    counts: collections.Counter = collections.Counter()
    failures: list[tuple] = []

    def runner(op, mode):
        label = f"{op.method.upper()} {op.path}"

        @settings(
            max_examples=per_operation,
            deadline=None,
            database=None,
            derandomize=derandomize,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=op.as_strategy(generation_mode=mode))
        def send(case):
            try:
                response = case.call(base_url=url, headers=AUTH, timeout=60)
            except Exception as e:  # a transport error: the server hung up or died
                failures.append((mode.value, label, None, f"{type(e).__name__}: {e}"[:500]))
                return
            counts[(mode.value, label, response.status_code)] += 1
            try:
                case.validate_response(response, checks=checks, headers=AUTH)
            except Exception as e:
                failures.append((mode.value, label, response.status_code, str(e)[:1500]))

        return send

    for result in schema.get_all_operations():
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                runner(result.ok(), mode)()
            except Unsatisfiable:  # nothing to make invalid (GET without parameters)
                pass
    return counts, failures


def report(counts: collections.Counter, failures: list[tuple]) -> str:
    lines = [f"{sum(counts.values())} requests"]
    lines += [f"  {mode:8} {label:20} {status}: {n}" for (mode, label, status), n in sorted(counts.items())]
    lines += [f"FAILURE {f[0]} {f[1]} -> {f[2]}\n{f[3]}" for f in failures[:10]]
    return "\n".join(lines)


def check(server, per_operation: int, minimum: int, *, derandomize: bool) -> None:
    counts, failures = fuzz(server.url, per_operation, derandomize=derandomize)
    print(report(counts, failures))
    assert not failures, report(counts, failures)
    assert not [k for k in counts if k[2] >= 500], report(counts, failures)
    assert sum(counts.values()) >= minimum, report(counts, failures)
    assert server.proc.poll() is None and server.value("terse_requests_in_flight") == 0


def test_fuzz_about_100_requests(server):
    check(server, per_operation=12, minimum=90, derandomize=True)


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_fuzz_over_1000_requests(server):
    check(server, per_operation=int(os.environ.get("TERSE_FUZZ_EXAMPLES", "130")), minimum=1000, derandomize=False)
