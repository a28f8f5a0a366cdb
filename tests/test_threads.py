"""The thread count of each call: chosen from the work, scoped, user choice wins."""

import os

import numpy as np
import pytest
import torch
from skorch.callbacks import Callback
from threadpoolctl import threadpool_limits

from skvae import VAEImputer, VAETransformer, _threads


class RecordThreads(Callback):
    """Records PyTorch's intra-op thread count at every training batch."""

    def initialize(self):
        self.counts = []
        return self

    def on_batch_begin(self, net, **kwargs):
        self.counts.append(torch.get_num_threads())


@pytest.fixture
def no_thread_variables(monkeypatch):
    for name in _threads._THREAD_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def two_cpus(monkeypatch, no_thread_variables):
    """As on a 2-core machine on which nobody has set the thread count."""
    monkeypatch.setattr(_threads, "cpu_count", lambda: 2)
    monkeypatch.setattr(_threads, "_DEFAULT_THREADS", torch.get_num_threads())


def _fit_recording(X, **params):
    record = RecordThreads()
    VAETransformer(max_epochs=2, random_state=0, callbacks=[record], **params).fit(X)
    return set(record.counts)


def test_small_network_trains_on_one_thread_and_restores_the_count(two_cpus, blobs):
    before = torch.get_num_threads()
    assert _fit_recording(blobs[0], hidden_layer_sizes=(8,)) == {1}
    assert torch.get_num_threads() == before


def test_large_products_use_the_idle_cpus(two_cpus, monkeypatch):
    monkeypatch.setattr(_threads, "idle_cpus", lambda: 2)
    X = np.random.RandomState(0).rand(64, 256)
    # 64 rows x (256 x 512) weights = 8M multiply-adds: two threads' worth.
    assert _fit_recording(X, hidden_layer_sizes=(512,), batch_size=64) == {2}
    # The same work with one CPU busy: one thread.
    monkeypatch.setattr(_threads, "idle_cpus", lambda: 1)
    assert _fit_recording(X, hidden_layer_sizes=(512,), batch_size=64) == {1}


@pytest.mark.parametrize("how", ["torch", "threadpoolctl", "environment"])
def test_a_users_choice_wins(two_cpus, monkeypatch, blobs, how):
    if how == "environment":
        monkeypatch.setenv("OMP_NUM_THREADS", "3")
        assert _fit_recording(blobs[0]) == {torch.get_num_threads()}
        return
    # A count other than the one PyTorch started with is the user's.
    monkeypatch.setattr(_threads, "_DEFAULT_THREADS", 7)
    if how == "torch":
        assert _fit_recording(blobs[0]) == {torch.get_num_threads()}
    else:
        with threadpool_limits(1):
            monkeypatch.setattr(_threads, "_DEFAULT_THREADS", 2)
            assert torch.get_num_threads() == 1
            assert _fit_recording(blobs[0]) == {1}


def test_inference_restores_the_count(two_cpus, blobs, monkeypatch):
    X = blobs[0].copy()
    X[0, 0] = np.nan
    imputer = VAEImputer(hidden_layer_sizes=(8,), max_epochs=2, random_state=0)
    imputer.fit(X)
    seen = []
    forward = imputer.net_.module_.decoder.forward

    def recording(z):
        seen.append(torch.get_num_threads())
        return forward(z)

    monkeypatch.setattr(imputer.net_.module_.decoder, "forward", recording)
    before = torch.get_num_threads()
    imputer.transform(X)
    assert seen and set(seen) == {1}
    assert torch.get_num_threads() == before


def test_threads_for_work(monkeypatch):
    monkeypatch.setattr(_threads, "cpu_count", lambda: 4)
    unit = _threads._MACS_PER_THREAD
    assert _threads.threads_for_work(0) == 1
    assert _threads.threads_for_work(unit - 1) == 1
    assert _threads.threads_for_work(2 * unit) == 2
    assert _threads.threads_for_work(100 * unit) == 4


def test_gpu_calls_leave_the_count(two_cpus):
    assert _threads.choose_threads(10**12, "cuda:0", training=True) is None
    assert _threads.choose_threads(10**12, "cpu", training=False) == 2


def test_idle_cpus_counts_cpus_mostly_idle_over_the_probe(monkeypatch):
    readings = iter(
        [
            {0: (100, 200), 1: (100, 200)},
            # CPU 0 idle for 4 ticks of 5, CPU 1 for 1 of 5 (busy).
            {0: (104, 205), 1: (101, 205)},
        ]
    )
    monkeypatch.setattr(_threads, "_cpu_times", lambda cpus: next(readings))
    monkeypatch.setattr(_threads.time, "sleep", lambda seconds: None)
    monkeypatch.setattr(_threads, "cpu_count", lambda: 2)
    if not hasattr(os, "sched_getaffinity"):
        pytest.skip("no CPU affinity on this platform")
    assert _threads.idle_cpus() == 1


@pytest.mark.skipif(not os.path.exists("/proc/stat"), reason="Linux only")
def test_cpu_times_reads_every_cpu_of_the_affinity():
    cpus = os.sched_getaffinity(0)
    times = _threads._cpu_times(cpus)
    assert set(times) == set(cpus)
    assert all(0 <= idle <= total for idle, total in times.values())
