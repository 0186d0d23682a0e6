"""Capacity: the highest open-loop arrival rate the service sustains with the accepted requests' p99
latency under a bound, no server errors and (almost) nothing turned away with 429.

The search is short: it starts from an estimate (half the rate one request alone would allow), grows
the rate by `growth` while trials pass, then bisects (geometrically) between the best passing and the
lowest failing rate until they are within `precision` of each other or the trials run out."""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from . import closedloop
from .payloads import Payload


@dataclass
class Criteria:
    p99_bound_s: float
    max_rejected: float = 0.01  # share of 429s a passing rate may have

    def verdict(self, summary: dict) -> tuple[bool, str]:
        n, ok = summary["requests"], summary["ok"]
        bad = summary["errors_5xx"] + summary["transport_errors"] + summary["unfinished"]
        if not n:
            return False, "no request arrived (trial too short for the rate)"
        if not ok:
            return False, "no request succeeded"
        if bad:
            return False, f"{bad} server/transport errors"
        if summary["rejected_429"] > self.max_rejected * n:
            return False, f"{summary['rejected_429']}/{n} rejected with 429"
        p99 = summary["latency_s"]["p99"]
        if p99 > self.p99_bound_s:
            return False, f"p99 {p99:.3f}s over {self.p99_bound_s:.3f}s"
        return True, f"p99 {p99:.3f}s"


@dataclass
class Trial:
    rate: float
    passed: bool
    reason: str
    summary: dict


def service_time(url: str, payloads: Sequence[Payload], *, api_key: str | None = None, timeout: float = 600) -> dict:
    """Latency of requests sent one at a time (after one warm-up request): the unloaded baseline."""
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    requests = [("/v1/compress", p.body) for p in [payloads[0], *payloads]]
    replies, _ = closedloop.run(url, requests, 1, timeout=timeout, headers=headers, raise_for_status=True)
    times = [r.latency_s for r in replies[1:]]
    return {"n": len(times), "median_s": statistics.median(times), "max_s": max(times), "min_s": min(times)}


def find_capacity(
    trial: Callable[[float], dict],
    criteria: Criteria,
    first_rate: float,
    *,
    max_trials: int = 6,
    growth: float = 1.5,
    precision: float = 0.1,
    log: Callable[[str], None] = print,
) -> tuple[float | None, list[Trial]]:
    """`trial(rate)` runs one open-loop phase and returns its summary (loadgen.summarize). Returns the
    highest passing rate (None when none passed) and every trial."""
    lo: float | None = None
    hi: float | None = None
    rate = first_rate
    trials: list[Trial] = []
    for _ in range(max_trials):
        summary = trial(rate)
        passed, reason = criteria.verdict(summary)
        trials.append(Trial(rate, passed, reason, summary))
        log(f"capacity search: {rate:.4g} req/s -> {'pass' if passed else 'fail'} ({reason})")
        if passed:
            lo = rate
        else:
            hi = rate
        if hi is None:
            rate = rate * growth
        elif lo is None:
            rate = rate / growth
        elif hi / lo - 1 <= precision:
            break
        else:
            rate = (lo * hi) ** 0.5
    return lo, trials


def overload(
    url: str,
    pick: Callable,
    baseline_payloads: Sequence[Payload],
    *,
    search_s: float,
    phase_s: float,
    bound_factor: float = 4.0,
    search_trials: int = 5,
    search_min_requests: int = 10,
    timeout_s: float = 300.0,
    log: Callable[[str], None] = print,
) -> dict:
    """Capacity, then open loop at 1x and at 2x capacity for `phase_s` each. A search trial lasts
    `search_s`, or long enough for `search_min_requests` arrivals. Returns the baseline, the search
    trials and the two phases as loadgen.phase_record dicts ("capacity" None: none passed)."""
    from .loadgen import run_phase

    base = service_time(url, baseline_payloads, timeout=timeout_s)
    criteria = Criteria(p99_bound_s=bound_factor * base["median_s"])
    phases: list[dict] = []

    def phase(name: str, rate: float, duration: float) -> dict:
        phases.append(run_phase(name, url, rate, duration, pick, seed=len(phases), timeout_s=timeout_s))
        return phases[-1]

    capacity, trials = find_capacity(
        lambda r: phase(f"search {r:.3g}/s", r, max(search_s, search_min_requests / r))["summary"],
        criteria,
        0.5 / base["median_s"],
        max_trials=search_trials,
        log=log,
    )
    out = {"baseline": base, "p99_bound_s": criteria.p99_bound_s, "capacity_rps": capacity, "phases": phases}
    if capacity is None:
        return out
    out["at_capacity"] = phase("1x capacity", capacity, phase_s)
    out["at_2x"] = phase("2x capacity", 2 * capacity, phase_s)
    return out
