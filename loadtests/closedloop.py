"""The one closed-loop HTTP driver of bench/ and loadtests/: `concurrency` clients share one queue of
requests, each sending its next as soon as its previous one is answered (bench/throughput.py,
bench/memory.py, soak traffic). A closed loop measures what the service sustains, not its tail under a
fixed arrival rate: that is loadgen.py's open loop. Loopback targets only."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

import httpx

from .loadgen import check_target


@dataclass
class Reply:
    index: int  # position in the request list
    path: str
    status: int | None  # None: a transport error
    error: str | None  # the transport exception's name
    latency_s: float
    json: dict | None = None  # the body of a 200, when asked for


def client(url: str, concurrency: int, timeout: float, headers: dict | None = None) -> httpx.AsyncClient:
    """An async client for `concurrency` workers on a loopback URL (proxy variables ignored)."""
    limits = httpx.Limits(max_connections=concurrency + 4, max_keepalive_connections=concurrency + 4)
    return httpx.AsyncClient(
        base_url=check_target(url), timeout=timeout, limits=limits, headers=headers, trust_env=False
    )


async def drive(
    http: httpx.AsyncClient,
    requests: Sequence[tuple[str, dict]],
    concurrency: int,
    *,
    deadline: float | None = None,
    raise_for_status: bool = False,
    keep_json: bool = False,
) -> list[Reply]:
    """POST each (path, body) in order from `concurrency` workers; no request starts after `deadline`
    (time.monotonic()). With raise_for_status the first error ends the run with its exception."""
    queue = deque(enumerate(requests))
    replies: list[Reply] = []

    async def worker() -> None:
        while queue and (deadline is None or time.monotonic() < deadline):
            i, (path, body) = queue.popleft()
            t0 = time.perf_counter()
            try:
                r = await http.post(path, json=body)
            except httpx.HTTPError as exc:
                if raise_for_status:
                    raise
                replies.append(Reply(i, path, None, type(exc).__name__, time.perf_counter() - t0))
                continue
            latency = time.perf_counter() - t0
            if raise_for_status:
                r.raise_for_status()
            data = r.json() if keep_json and r.status_code == 200 else None
            replies.append(Reply(i, path, r.status_code, None, latency, data))

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return replies


def run(
    url: str,
    requests: Sequence[tuple[str, dict]],
    concurrency: int,
    *,
    timeout: float = 120.0,
    headers: dict | None = None,
    **kw,
) -> tuple[list[Reply], float]:
    """One closed-loop run on a fresh client: the replies and the wall time (s) of the whole run."""

    async def main() -> tuple[list[Reply], float]:
        async with client(url, concurrency, timeout, headers) as http:
            t0 = time.perf_counter()
            replies = await drive(http, requests, concurrency, **kw)
            return replies, time.perf_counter() - t0

    return asyncio.run(main())


def statuses(replies: Sequence[Reply]) -> dict[str, int]:
    """{status code or transport error name: count}."""
    out: dict[str, int] = {}
    for r in replies:
        key = str(r.status) if r.status is not None else (r.error or "unknown")
        out[key] = out.get(key, 0) + 1
    return out
