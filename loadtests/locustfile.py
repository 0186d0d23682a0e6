"""The load-test payload mix for locust (the optional extra `load`: `pip install -e '.[load]'`).

    locust -f loadtests/locustfile.py --host http://127.0.0.1:8000 --headless -u 8 -r 2 -t 5m

Locust users are a closed loop: each waits for its answer before the next request, so a slow server
slows the offered load and its tail latency hides (coordinated omission). Every user here paces itself
with constant_throughput(LOADTEST_USER_RPS, default 0.1 req/s), which keeps the rate fixed only while
answers come back faster than the pace. For capacity and tail-latency figures use the open-loop
generator (`python -m loadtests.loadgen`, `make loadtest`).

Environment: LOADTEST_MIX (kind@size[:weight],..., default loadtests.payloads.DEFAULT_MIX),
LOADTEST_KEEP_RATE (the requests' compression `rate`, default 0.5), LOADTEST_API_KEY,
LOADTEST_USER_RPS. The server's timing headers (x-terse-queue-time, -inference-time, -total-time) are
reported as their own locust entries ("server" type), so locust's tables show them beside the latency.
Only 127.0.0.1, localhost and [::1] are accepted as hosts.
"""

from __future__ import annotations

import os
import random

from locust import HttpUser, constant_throughput, events, task

from loadtests.loadgen import TIMING_HEADERS, check_target
from loadtests.payloads import DEFAULT_MIX, Builder, Mix

_MIX: Mix | None = None


@events.init.add_listener
def _build(environment, **_kwargs) -> None:
    global _MIX
    if environment.host:
        check_target(environment.host)
    rate = float(os.environ.get("LOADTEST_KEEP_RATE", "0.5"))
    _MIX = Mix(Builder(rate=rate), os.environ.get("LOADTEST_MIX", DEFAULT_MIX))


class TerseUser(HttpUser):
    wait_time = constant_throughput(float(os.environ.get("LOADTEST_USER_RPS", "0.1")))

    def on_start(self) -> None:
        check_target(self.host)
        self.rng = random.Random()
        key = os.environ.get("LOADTEST_API_KEY")
        if key:
            self.client.headers["Authorization"] = f"Bearer {key}"

    @task
    def compress(self) -> None:
        payload = _MIX.pick(self.rng)
        with self.client.post("/v1/compress", json=payload.body, name=payload.label, catch_response=True) as r:
            if r.status_code != 200:
                try:
                    kind = r.json()["error"]["type"]
                except (ValueError, KeyError, TypeError):
                    kind = "no_error_body"
                r.failure(f"{r.status_code} {kind}")
                return
            r.success()
            for name, header in TIMING_HEADERS.items():
                if header in r.headers:
                    self.environment.events.request.fire(
                        request_type="server",
                        name=f"{payload.label} {name}",
                        response_time=float(r.headers[header]),
                        response_length=0,
                        exception=None,
                        context={},
                    )
