"""How many CPU threads PyTorch uses during one call, chosen from the work.

PyTorch runs each operation on all physical cores by default. For the small
matrix products of a VAE on tabular data, the threads spend more time waiting
for each other than computing, and when another process keeps a core busy,
every operation waits for the thread that shares that core: fits become many
times slower than on one thread (``benchmarks/README.md``, "Threads").

So each fit, transform, score or imputation runs with a thread count chosen
for it, and puts the caller's count back afterwards:

- a user's own choice wins: ``OMP_NUM_THREADS`` or ``MKL_NUM_THREADS`` set in
  the environment (as joblib's process workers, and so ``GridSearchCV(n_jobs=k)``,
  set them), or a count that differs from the one PyTorch had when skvae was
  imported (``torch.set_num_threads`` or ``threadpoolctl.threadpool_limits``);
- on a GPU, the CPU threads are left as they are;
- otherwise one thread, unless the largest matrix product of a step is large
  enough to pay for more; then at most as many threads as this process may
  use (affinity, cgroup quota) and, for training, as there are idle CPUs.
"""

import os
import time
from contextlib import contextmanager

import torch
from joblib import cpu_count

# PyTorch's intra-op thread count before anyone in this process asked for one:
# a different count later is the user's choice.
_DEFAULT_THREADS = torch.get_num_threads()
_THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")

# Multiply-adds of one matrix product from which a second thread pays off, and
# each further thread; measured with benchmarks/bench_threads.py (README
# there): below ~4M the fork-join cost of a parallel region exceeds the gain.
_MACS_PER_THREAD = 2**22

# A CPU whose share of idle time over the probe is below this is taken as busy.
_IDLE_SHARE = 0.5
_PROBE_SECONDS = 0.05


def user_chose_threads():
    """Whether the user set PyTorch's thread count (then skvae leaves it)."""
    if any(os.environ.get(name) for name in _THREAD_VARIABLES):
        return True
    return torch.get_num_threads() != _DEFAULT_THREADS


def threads_for_work(macs):
    """Threads worth using for matrix products of ``macs`` multiply-adds."""
    return max(1, min(cpu_count(), int(macs // _MACS_PER_THREAD)))


def _cpu_times(cpus):
    """``(idle, total)`` clock ticks of each CPU in ``cpus``, from /proc/stat."""
    times = {}
    with open("/proc/stat") as stat:
        for line in stat:
            name, *fields = line.split()
            if name.startswith("cpu") and name[3:].isdigit() and int(name[3:]) in cpus:
                ticks = [int(f) for f in fields[:8]]
                # idle + iowait count as idle; the first eight fields as total
                # (guest time is already inside user time).
                times[int(name[3:])] = (ticks[3] + ticks[4], sum(ticks))
    return times


def idle_cpus():
    """How many of the CPUs this process may run on are idle right now.

    Samples the kernel's per-CPU counters over a short interval (Linux);
    elsewhere, or when they cannot be read, all CPUs count as idle.
    """
    n_cpus = cpu_count()
    try:
        cpus = os.sched_getaffinity(0)
        before = _cpu_times(cpus)
        time.sleep(_PROBE_SECONDS)
        after = _cpu_times(cpus)
    except (AttributeError, OSError, ValueError):
        return n_cpus
    idle = 0
    for cpu, (idle_after, total_after) in after.items():
        idle_before, total_before = before.get(cpu, (idle_after, total_after))
        elapsed = total_after - total_before
        if elapsed <= 0 or (idle_after - idle_before) / elapsed >= _IDLE_SHARE:
            idle += 1
    return max(1, min(n_cpus, idle))


def choose_threads(macs, device, training):
    """The intra-op thread count for a call, or None to leave it as it is.

    Parameters
    ----------
    macs : int
        Multiply-adds of the largest matrix product of one step (rows per
        batch times the largest weight matrix).
    device : str or torch.device
    training : bool
        Whether the call trains (many small steps, each waiting for the
        slowest thread: idle CPUs are probed) or infers (few large ones).
    """
    if torch.device(device).type != "cpu" or user_chose_threads():
        return None
    n_threads = threads_for_work(macs)
    if n_threads > 1 and training:
        n_threads = min(n_threads, idle_cpus())
    return n_threads


@contextmanager
def thread_count(n_threads):
    """Run a block with ``n_threads`` intra-op threads, then restore the count.

    ``None`` leaves the count as it is.
    """
    before = torch.get_num_threads()
    if n_threads is None or n_threads == before:
        yield
        return
    torch.set_num_threads(n_threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)
