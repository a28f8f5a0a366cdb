"""Peak memory of ``fit`` on sparse count data, against the dense size.

A random sparse count matrix (CSR, float32) is written to disk; a child
process loads it and fits ``VAETransformer(likelihood="poisson")`` for one
epoch, and reports its peak resident memory. skvae keeps the matrix sparse
and densifies one batch at a time, so the peak tracks the sparse size plus
the model, not the dense size.

Run: ``python benchmarks/bench_sparse.py [--quick] [--device cuda]``
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from _common import (
    base_parser,
    check_device,
    fmt,
    format_table,
    machine_summary,
    peak_rss_mb,
    report,
    run_child,
    set_threads,
)

FULL = [(20_000, 20_000), (100_000, 20_000)]
QUICK = [(20_000, 5_000), (20_000, 20_000)]
DENSITY = 0.01


def _make(path, n_samples, n_features, seed=0):
    """Sparse counts: 1 % non-zero entries, each 1 + Poisson(2)."""
    rng = np.random.default_rng(seed)
    nnz = int(DENSITY * n_samples * n_features)
    rows = rng.integers(0, n_samples, nnz, dtype=np.int32)
    cols = rng.integers(0, n_features, nnz, dtype=np.int32)
    values = (1 + rng.poisson(2.0, nnz)).astype(np.float32)
    X = sp.csr_matrix((values, (rows, cols)), shape=(n_samples, n_features))
    X.sum_duplicates()
    sp.save_npz(path, X, compressed=False)
    return X.data.nbytes + X.indices.nbytes + X.indptr.nbytes


def child(path, device):
    from skvae import VAETransformer

    set_threads()
    X = sp.load_npz(path).astype(np.float32)
    loaded = peak_rss_mb()
    vae = VAETransformer(
        likelihood="poisson",
        hidden_layer_sizes=(64,),
        n_components=8,
        max_epochs=1,
        batch_size=256,
        device=device,
        random_state=0,
    )
    start = time.perf_counter()
    vae.fit(X)
    report(
        {
            "seconds": time.perf_counter() - start,
            "rss_loaded": loaded,
            "rss_peak": peak_rss_mb(),
        }
    )


def main():
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(*args.child)
    check_device(args.device)
    device = args.device
    print(machine_summary(device))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n_samples, n_features in QUICK if args.quick else FULL:
            path = Path(tmp) / f"X_{n_samples}_{n_features}.npz"
            sparse_mb = _make(path, n_samples, n_features) / 2**20
            result = run_child(__file__, ["--child", path, device])
            rows.append(
                [
                    f"{n_samples:,} x {n_features:,}",
                    fmt(sparse_mb),
                    fmt(n_samples * n_features * 4 / 2**20),
                    fmt(result["rss_loaded"]),
                    fmt(result["rss_peak"]),
                    fmt(result["seconds"], ".1f"),
                ]
            )
    headers = [
        "X (1 % non-zero)",
        "sparse MiB",
        "dense MiB",
        "RSS after load",
        "peak RSS in fit",
        "fit s (1 epoch)",
    ]
    print(format_table(headers, rows))


if __name__ == "__main__":
    sys.exit(main())
