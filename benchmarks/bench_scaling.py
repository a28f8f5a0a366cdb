"""How skvae's training time grows with the data and the model.

``VAETransformer`` (Bernoulli likelihood, 2-d latent space, batches of 128,
2 PyTorch threads) is fitted on synthetic data uniform in [0, 1], three ways:

1. n_samples from 1,000 to 200,000 at 784 features, one hidden layer of 256;
2. n_features from 64 to 4,096 at 10,000 samples, hidden layer of 256;
3. hidden layer width from 64 to 1,024 at 10,000 samples, 784 features.

Each fit runs ``--epochs`` epochs (the convergence check is disabled with
``n_iter_no_change=epochs + 1``); the time per epoch is the fastest epoch in
the fit's history (skorch's ``dur``), which leaves out the one-off costs of
the first epoch and is less sensitive to other programs sharing the cores.
The tables show seconds per epoch, samples per second and microseconds per
sample: training is linear in n_samples when the last column is flat.

Usage::

    python benchmarks/bench_scaling.py            # full grids, 3 epochs per fit
    python benchmarks/bench_scaling.py --quick    # small grids, 2 epochs
    python benchmarks/bench_scaling.py --device cuda
"""

import sys

import _common as C

FULL = {
    "n_samples": [1_000, 2_000, 5_000, 10_000, 20_000, 50_000, 100_000, 200_000],
    "n_features": [64, 256, 784, 1_024, 4_096],
    "hidden": [64, 128, 256, 512, 1_024],
}
QUICK = {
    "n_samples": [1_000, 4_000, 16_000],
    "n_features": [64, 784, 2_048],
    "hidden": [64, 256, 1_024],
}
GRID_SAMPLES = 10_000
GRID_SAMPLES_QUICK = 4_000


def epoch_seconds(n_samples, n_features, hidden, epochs, device):
    """Fastest epoch, in seconds, of a fit on synthetic data."""
    X = C.synthetic(n_samples, n_features)
    vae = C.fit_skvae(X, epochs, device, hidden_layer_sizes=(hidden,))
    return min(vae.history_[:, "dur"])


def sweep(title, param, values, fixed, epochs, device):
    """Print one table: ``param`` takes ``values``, the others are ``fixed``."""
    rows = []
    for value in values:
        config = dict(fixed, **{param: value})
        seconds = epoch_seconds(**config, epochs=epochs, device=device)
        n = config["n_samples"]
        rows.append(
            [
                f"{value:,}",
                C.fmt(seconds, ".3f"),
                C.fmt(n / seconds),
                C.fmt(1e6 * seconds / n, ".1f"),
            ]
        )
    headers = [param, "s/epoch", "samples/s", "us/sample"]
    print(f"{title}\n{C.format_table(headers, rows)}\n", flush=True)


def main():
    parser = C.base_parser(__doc__)
    parser.add_argument("--epochs", type=int, help="epochs per fit (default 3; 2)")
    args = parser.parse_args()
    C.check_device(args.device)
    C.set_threads()
    grids = QUICK if args.quick else FULL
    epochs = args.epochs or (2 if args.quick else 3)
    n_grid = GRID_SAMPLES_QUICK if args.quick else GRID_SAMPLES
    device = args.device

    print(C.machine_summary(device))
    print(
        f"synthetic data in [0, 1], batch {C.BATCH_SIZE}, {epochs} epochs per fit, "
        f"fastest epoch reported, device {device}\n",
        flush=True,
    )
    epoch_seconds(1_000, 784, 256, 1, device)  # warm-up, not reported
    sweep(
        "1. n_samples (784 features, hidden 256)",
        "n_samples",
        grids["n_samples"],
        {"n_features": 784, "hidden": 256},
        epochs,
        device,
    )
    sweep(
        f"2. n_features ({n_grid:,} samples, hidden 256)",
        "n_features",
        grids["n_features"],
        {"n_samples": n_grid, "hidden": 256},
        epochs,
        device,
    )
    sweep(
        f"3. hidden layer width ({n_grid:,} samples, 784 features)",
        "hidden",
        grids["hidden"],
        {"n_samples": n_grid, "n_features": 784},
        epochs,
        device,
    )
    print(C.load_summary("at end"))


if __name__ == "__main__":
    sys.exit(main())
