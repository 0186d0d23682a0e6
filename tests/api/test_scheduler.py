"""The scheduler behind the API, on a fake scorer (no model, milliseconds): nll jobs of concurrent
requests merge into one scorer call under the budgets and split back exactly; cancelled requests'
queued jobs never reach the model; a failing merged batch fails only the request that caused it;
stream steps run on the worker thread."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from app.scheduler import Scheduler
from compressors import Cancelled, Meter

from .conftest import poll


class FakeStream:
    def __init__(self, log: list) -> None:
        self.log, self.prefix_nll, self.hidden = log, [0.0], []

    def extend(self, ids):
        self.log.append(("extend", threading.current_thread().name, list(ids)))
        return [float(i) for i in ids]

    def hide(self, positions):
        self.hidden.extend(positions)

    def __len__(self) -> int:
        return 0


class FakeScorer:
    """nll of a sequence = its token ids as floats; a sequence containing -1 makes the call fail."""

    info = tokenizer = None
    start_id, max_positions = 0, 1024

    def __init__(self) -> None:
        self.calls: list[list[list[int]]] = []

    def nll(self, sequences, *, score_from=None, meter=None):
        self.calls.append([list(s) for s in sequences])
        if any(-1 in s for s in sequences):
            raise RuntimeError("poisoned")
        if meter is not None:
            meter.add(sum(len(s) + 1 for s in sequences))
        starts = score_from or [0] * len(sequences)
        return [[float(t) for t in s[k:]] for s, k in zip(sequences, starts, strict=True)]

    def stream(self, prefix, meter=None):
        return FakeStream(self.calls)


class Gate:
    """before_job hook: the worker blocks while the gate is closed."""

    def __init__(self) -> None:
        self.open = threading.Event()
        self.waiting = threading.Event()

    def __call__(self) -> None:
        self.waiting.set()
        self.open.wait(5)


@pytest.fixture()
def make():
    made = []

    def factory(**kw):
        gate = Gate()
        kw.setdefault("max_batch_tokens", 1000)
        kw.setdefault("max_batch_requests", 8)
        kw.setdefault("batch_wait_ms", 0)
        kw.setdefault("batching", True)  # what these tests pin; the default is off on CPU
        sched = Scheduler(FakeScorer(), before_job=gate, **kw)
        sched.start()
        made.append((sched, gate))
        return sched, gate

    yield factory
    for sched, gate in made:
        gate.open.set()
        sched.stop()


def submit_all(sched, jobs, pool):
    """jobs: [(sequences, score_from, meter)] each as its own request, started in order."""
    futures = []
    for seqs, starts, meter in jobs:
        ticket = sched.open()
        futures.append((ticket, pool.submit(sched.bind(ticket).nll, seqs, score_from=starts, meter=meter)))
        poll(lambda: sched.depth() >= len(futures) - 1, every=0.001)  # keeps the queue order deterministic
    return futures


def test_concurrent_nll_jobs_merge_and_split_back(make):
    sched, gate = make()
    sizes = []
    sched._on_batch = lambda n, tokens: sizes.append((n, tokens))
    meters = [Meter() for _ in range(4)]
    jobs = [
        ([[1, 2]], None, meters[0]),
        ([[3, 4, 5], [6]], [1, 0], meters[1]),
        ([[7]], None, meters[2]),
        ([[8, 9]], None, meters[3]),
    ]
    with ThreadPoolExecutor(4) as pool:
        futures = submit_all(sched, jobs[:1], pool)
        gate.waiting.wait(5)  # the first job is on the worker; the rest queue behind it
        futures += submit_all(sched, jobs[1:], pool)
        gate.open.set()
        results = [f.result(5) for _, f in futures]
    assert results == [[[1.0, 2.0]], [[4.0, 5.0], [6.0]], [[7.0]], [[8.0, 9.0]]]
    assert sched.scorer.calls == [[[1, 2]], [[3, 4, 5], [6], [7], [8, 9]]]
    assert sizes == [(1, 3), (3, 4 + 2 + 2 + 3)]
    assert [m.forwarded_tokens for m in meters] == [3, 6, 2, 3]


def test_budgets_limit_a_merge(make):
    sched, gate = make(max_batch_tokens=8, max_batch_requests=2)
    jobs = [([[1]], None, None), ([[2, 2]], None, None), ([[3, 3]], None, None), ([[4, 4, 4, 4, 4]], None, None)]
    with ThreadPoolExecutor(4) as pool:
        futures = submit_all(sched, jobs[:1], pool)
        gate.waiting.wait(5)
        futures += submit_all(sched, jobs[1:], pool)
        gate.open.set()
        [f.result(5) for _, f in futures]
    # two requests at most; the 6-token job does not fit next to 6 tokens under a budget of 8
    assert sched.scorer.calls == [[[1]], [[2, 2], [3, 3]], [[4, 4, 4, 4, 4]]]


def test_batching_is_off_on_cpu_and_on_with_cuda():
    cpu, cuda = FakeScorer(), FakeScorer()
    cpu.info = type("Info", (), {"device": "cpu"})()
    cuda.info = type("Info", (), {"device": "cuda:0"})()
    assert not Scheduler(cpu, max_batch_tokens=100, max_batch_requests=8).batching
    assert Scheduler(cuda, max_batch_tokens=100, max_batch_requests=8).batching


def test_batching_off_runs_each_job_alone(make):
    sched, gate = make(batching=False)
    jobs = [([[1]], None, None), ([[2]], None, None), ([[3]], None, None)]
    with ThreadPoolExecutor(3) as pool:
        futures = submit_all(sched, jobs[:1], pool)
        gate.waiting.wait(5)
        futures += submit_all(sched, jobs[1:], pool)
        gate.open.set()
        [f.result(5) for _, f in futures]
    assert sched.scorer.calls == [[[1]], [[2]], [[3]]]


def test_a_cancelled_request_wakes_at_once_and_its_queued_job_never_runs(make):
    sched, gate = make()
    with ThreadPoolExecutor(2) as pool:
        # the second job is queued only once the worker holds the first, so they cannot share a batch
        ((_, first),) = submit_all(sched, [([[1]], None, None)], pool)
        gate.waiting.wait(5)
        ((ticket, second),) = submit_all(sched, [([[2]], None, None)], pool)
        poll(lambda: sched.depth() >= 1, every=0.001)  # queued behind the stuck first job
        ticket.cancel("disconnected")
        with pytest.raises(Cancelled):
            second.result(1)  # while the worker is still stuck on the first job
        gate.open.set()
        first.result(5)
    sched.stop()
    assert sched.scorer.calls == [[[1]]]
    assert ticket.should_stop()
    with pytest.raises(Cancelled):
        sched.bind(ticket).nll([[5]])


def test_a_failing_merged_batch_fails_only_its_culprit(make):
    sched, gate = make()
    jobs = [([[1]], None, None), ([[2]], None, None), ([[-1]], None, None), ([[3]], None, None)]
    with ThreadPoolExecutor(4) as pool:
        futures = submit_all(sched, jobs[:1], pool)
        gate.waiting.wait(5)
        futures += submit_all(sched, jobs[1:], pool)
        gate.open.set()
        outcomes = []
        for _, f in futures:
            try:
                outcomes.append(f.result(5))
            except RuntimeError as e:
                outcomes.append(str(e))
    assert outcomes == [[[1.0]], [[2.0]], "poisoned", [[3.0]]]
    # the merged call failed, then each job ran alone
    assert sched.scorer.calls[1:] == [[[2], [-1], [3]], [[2]], [[-1]], [[3]]]


def test_stream_steps_run_on_the_worker(make):
    sched, gate = make()
    gate.open.set()
    view = sched.bind(sched.open())
    stream = view.stream([1, 2])
    assert stream.extend([5, 6]) == [5.0, 6.0]
    stream.hide([0])
    assert stream.prefix_nll == [0.0] and stream._stream.hidden == [0]
    ((kind, thread, ids),) = sched.scorer.calls
    assert (kind, thread, ids) == ("extend", "terse-model-worker", [5, 6])


def test_on_idle_runs_once_on_the_worker_after_each_busy_spell(make):
    idles: list[str] = []
    sched, gate = make(on_idle=lambda: idles.append(threading.current_thread().name), idle_after_s=0.05)
    gate.open.set()
    time.sleep(0.2)  # a negative check cannot poll: it can only miss a bug, never fail a good run
    assert idles == []  # nothing ran yet: nothing to tidy up
    view = sched.bind(sched.open())
    for spell in (1, 2):
        assert view.nll([[1, 2]]) == [[1.0, 2.0]]
        assert view.nll([[3]]) == [[3.0]]  # back to back: still one busy spell
        poll(lambda n=spell: len(idles) >= n, timeout=5)
        time.sleep(0.2)  # idle for a while longer: no second call (a negative check cannot poll)
        assert idles == ["terse-model-worker"] * spell


def test_a_failing_on_idle_does_not_stop_the_worker(make):
    failures = []

    def boom():
        failures.append(1)
        raise RuntimeError("housekeeping failed")

    sched, gate = make(on_idle=boom, idle_after_s=0.01)
    gate.open.set()
    view = sched.bind(sched.open())
    assert view.nll([[1]]) == [[1.0]]
    poll(lambda: failures != [], timeout=5)
    assert sched.alive and view.nll([[2]]) == [[2.0]]


def test_a_cancelled_request_has_stopped_only_when_the_worker_lets_go_of_its_job(make):
    sched, gate = make()
    with ThreadPoolExecutor(2) as pool:
        ((ticket, job),) = submit_all(sched, [([[1]], None, None)], pool)
        gate.waiting.wait(5)  # the worker holds the job (a stuck model)
        assert sched.busy_for() > 0
        ticket.cancel("timeout")
        with pytest.raises(Cancelled):
            job.result(1)  # the request's thread is woken at once...
        stopped = pool.submit(ticket.wait_stopped)
        time.sleep(0.2)
        assert not stopped.done()  # ...but its work has not stopped while the model is on it
        gate.open.set()
        stopped.result(5)
    poll(lambda: sched.busy_for() == 0)


def test_a_job_over_the_forward_cap_is_refused_before_it_is_queued(make):
    from app.scheduler import OverBudget

    sched, gate = make()
    gate.open.set()
    ticket = sched.open(forward_limit=10)
    scorer = sched.bind(ticket)
    assert len(scorer.nll([[1, 2, 3]])) == 1  # 4 tokens with the start token
    with pytest.raises(OverBudget) as e:
        scorer.nll([[1, 2, 3], [4, 5, 6]])  # 8 more: 12 > 10
    assert (e.value.tokens, e.value.limit) == (12, 10)
    assert sched.scorer.calls == [[[1, 2, 3]]]
