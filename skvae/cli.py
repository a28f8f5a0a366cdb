"""Command line: ``skvae demo`` and ``skvae embed`` (also ``python -m skvae``)."""

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from ._likelihoods import _LIKELIHOODS as _LIKELIHOOD_NAMES


def _demo_data(seed):
    """scikit-learn's digits scaled to [0, 1], split 75/25."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    return train_test_split(X / 16.0, y, test_size=0.25, random_state=seed, stratify=y)


def _knn_accuracy(reducer, X_train, X_test, y_train, y_test):
    from sklearn.neighbors import KNeighborsClassifier

    knn = KNeighborsClassifier(n_neighbors=5).fit(reducer.transform(X_train), y_train)
    return knn.score(reducer.transform(X_test), y_test)


def run_demo(args):
    """Fit the default model on the digits, print scores, write pictures."""
    from sklearn.decomposition import PCA

    from skvae import VAETransformer

    X_train, X_test, y_train, y_test = _demo_data(args.seed)
    vae = VAETransformer(
        n_components=args.n_components,
        max_epochs=args.epochs,
        device=args.device,
        random_state=args.seed,
        verbose=args.verbose,
    )
    start = time.perf_counter()
    vae.fit(X_train)
    fit_seconds = time.perf_counter() - start
    pca = PCA(n_components=args.n_components, random_state=args.seed).fit(X_train)

    split = (X_train, X_test, y_train, y_test)
    rows = [
        ("epochs run", f"{vae.n_iter_}"),
        ("fit time (s)", f"{fit_seconds:.1f}"),
        ("held-out log-likelihood (nats/digit)", f"{vae.score(X_test):.2f}"),
        (
            f"5-NN accuracy, VAE {args.n_components}-d codes",
            f"{_knn_accuracy(vae, *split):.3f}",
        ),
        (
            f"5-NN accuracy, PCA({args.n_components})",
            f"{_knn_accuracy(pca, *split):.3f}",
        ),
    ]
    width = max(len(name) for name, _ in rows)
    print(
        f"skvae demo: VAETransformer on scikit-learn's digits ({len(X_train)} train, "
        f"{len(X_test)} test)"
    )
    for name, value in rows:
        print(f"  {name:<{width}}  {value:>8}")
    written = _write_figures(vae, X_test, y_test, Path(args.out))
    for path in written:
        print(f"  wrote {path}")
    return 0


def _write_figures(vae, X, y, out):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from skvae import (
        LatentSpaceDisplay,
        LatentTraversalDisplay,
        LossCurveDisplay,
        ReconstructionDisplay,
        SamplesDisplay,
    )

    shape = (8, 8)
    displays = {
        "latent_space.png": lambda: LatentSpaceDisplay.from_estimator(vae, X, y),
        "reconstructions.png": lambda: ReconstructionDisplay.from_estimator(
            vae, X, image_shape=shape
        ),
        "samples.png": lambda: SamplesDisplay.from_estimator(
            vae, image_shape=shape, random_state=0
        ),
        "loss_curve.png": lambda: LossCurveDisplay.from_estimator(vae),
    }
    if vae.n_components == 2:
        displays["latent_grid.png"] = lambda: LatentTraversalDisplay.from_estimator(
            vae, image_shape=shape
        )
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, draw in displays.items():
        figure = draw().figure_
        figure.savefig(out / name, dpi=100, bbox_inches="tight")
        plt.close(figure)
        written.append(out / name)
    return written


def _read_table(path):
    """A 2-d array from a .npy file, or a DataFrame from a CSV file (header
    optional; text columns are categories, empty fields gaps)."""
    import pandas as pd

    path = Path(path)
    if path.suffix == ".npy":
        return np.load(path, allow_pickle=False)
    with open(path) as f:
        first = f.readline().strip().split(",")
    header = not all(_is_number(field) for field in first)
    return pd.read_csv(path, header=0 if header else None)


def _is_number(text):
    try:
        float(text)
    except ValueError:
        return False
    return True


def run_embed(args):
    """Fit a VAE on a table and write its latent codes (posterior means)."""
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import MinMaxScaler, StandardScaler

    from skvae import VAETransformer

    X = _read_table(args.input)
    scalers = {"standard": StandardScaler(), "minmax": MinMaxScaler(clip=True)}
    steps = [scalers[args.scale]] if args.scale in scalers else []
    vae = VAETransformer(
        n_components=args.n_components,
        likelihood=args.likelihood,
        max_epochs=args.epochs,
        device=args.device,
        random_state=args.seed,
        verbose=args.verbose,
    )
    codes = make_pipeline(*steps, vae).fit_transform(X)
    codes = np.asarray(codes)
    out = Path(args.out)
    if out.suffix == ".npy":
        np.save(out, codes)
    else:
        header = ",".join(vae.get_feature_names_out())
        np.savetxt(out, codes, delimiter=",", header=header, comments="")
    print(
        f"skvae embed: {X.shape[0]} rows x {X.shape[1]} columns -> "
        f"{codes.shape[1]} latent dimensions after {vae.n_iter_} epochs "
        f"(final training loss {vae.loss_curve_[-1]:.2f} nats per row); wrote {out}"
    )
    return 0


def _parser():
    parser = argparse.ArgumentParser(prog="skvae", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser(
        "demo",
        help="fit the default VAE on scikit-learn's digits, print scores, write PNGs",
        description="Fit VAETransformer on scikit-learn's digits (scaled to [0, 1]), "
        "compare the k-NN accuracy of its codes with PCA's, and write figures.",
    )
    demo.add_argument(
        "--epochs", type=int, default=200, help="max_epochs (default 200)"
    )
    demo.add_argument(
        "--n-components", type=int, default=2, help="latent size (default 2)"
    )
    demo.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto")
    demo.add_argument("--seed", type=int, default=0, help="random_state (default 0)")
    demo.add_argument("--out", default="skvae-demo", help="folder for the PNGs")
    demo.add_argument(
        "--verbose", type=int, default=1, help="0 silent, 1 per-epoch log"
    )
    demo.set_defaults(func=run_demo)

    embed = commands.add_parser(
        "embed",
        help="fit a VAE on your own table (CSV or .npy) and write its latent codes",
        description="Fit VAETransformer on a table and write the posterior mean of "
        "each row (its latent code) to --out, as CSV or .npy by extension. A CSV "
        "may have text columns (categories) and empty fields (gaps). By default "
        "each column gets the likelihood 'auto' picks (Bernoulli for data in "
        "[0, 1], otherwise a Gaussian on normal scores for numbers and a "
        "categorical likelihood for text).",
    )
    embed.add_argument("input", help="a .npy file or a CSV file (header optional)")
    embed.add_argument("--out", default="embedding.csv", help="output .csv or .npy")
    embed.add_argument("--n-components", type=int, default=2, help="latent size")
    embed.add_argument(
        "--likelihood",
        default="auto",
        choices=["auto", *sorted(_LIKELIHOOD_NAMES)],
        help="observation model of every column (default auto: per column)",
    )
    embed.add_argument(
        "--scale",
        default="none",
        choices=["standard", "minmax", "none"],
        help="scaling of numeric tables before the VAE (default none)",
    )
    embed.add_argument("--epochs", type=int, default=200, help="max_epochs")
    embed.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto")
    embed.add_argument("--seed", type=int, default=0, help="random_state")
    embed.add_argument("--verbose", type=int, default=0, help="1 prints progress")
    embed.set_defaults(func=run_embed)
    return parser


def main(argv=None):
    """Entry point of the ``skvae`` console script."""
    args = _parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
