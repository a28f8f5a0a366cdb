"""Peak memory of ``fit`` on a memory-mapped file as the file grows.

Float32 files of random data with 784 columns are written to a temporary
folder; a child process opens each with ``np.load(path, mmap_mode="r")`` and
fits ``VAETransformer`` for one epoch, then reports its peak resident memory.
skvae reads one batch at a time and unmaps the pages it has read, so the peak
stays flat while the file grows.

Run: ``python benchmarks/bench_memmap.py [--quick]``
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import (
    base_parser,
    fmt,
    format_table,
    machine_summary,
    peak_rss_mb,
    report,
    run_child,
    set_threads,
)

N_FEATURES = 784
FULL_GB = (0.5, 1.0, 2.0, 4.0)
QUICK_GB = (0.25, 0.5)


def _write(path, gigabytes, seed=0):
    n_rows = int(gigabytes * 2**30 / (4 * N_FEATURES))
    X = np.lib.format.open_memmap(
        path, mode="w+", dtype=np.float32, shape=(n_rows, N_FEATURES)
    )
    rng = np.random.default_rng(seed)
    for start in range(0, n_rows, 50_000):
        stop = min(n_rows, start + 50_000)
        X[start:stop] = rng.random((stop - start, N_FEATURES), dtype=np.float32)
    X.flush()
    return n_rows


def child(path):
    from skvae import VAETransformer

    set_threads()
    X = np.load(path, mmap_mode="r")
    opened = peak_rss_mb()
    start = time.perf_counter()
    VAETransformer(max_epochs=1, batch_size=256, random_state=0).fit(X)
    report(
        {
            "seconds": time.perf_counter() - start,
            "rss_opened": opened,
            "rss_peak": peak_rss_mb(),
        }
    )


def main():
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.child)
    print(machine_summary("cpu"))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for gigabytes in QUICK_GB if args.quick else FULL_GB:
            path = Path(tmp) / f"X_{gigabytes}.npy"
            n_rows = _write(path, gigabytes)
            result = run_child(__file__, ["--child", path])
            path.unlink()
            rows.append(
                [
                    f"{gigabytes:g} GiB",
                    f"{n_rows:,}",
                    fmt(result["rss_opened"]),
                    fmt(result["rss_peak"]),
                    fmt(n_rows / result["seconds"]),
                ]
            )
    headers = ["file", "rows x 784", "RSS opened MiB", "peak RSS MiB", "samples/s"]
    print("One epoch of fit on np.load(path, mmap_mode='r'), default model")
    print(format_table(headers, rows))


if __name__ == "__main__":
    sys.exit(main())
