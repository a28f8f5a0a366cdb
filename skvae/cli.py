"""Command line: ``skvae demo`` and ``skvae embed`` (also ``python -m skvae``)."""

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from ._likelihoods import LIKELIHOODS as _LIKELIHOOD_NAMES


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


def _read_table(path, header=None):
    """A 2-d array from a .npy file, or a DataFrame from a CSV file (text
    columns are categories, empty fields gaps), and whether its first line
    was read as column names (``header``; None: decided by ``_has_header``)."""
    import pandas as pd

    path = Path(path)
    if path.suffix == ".npy":
        return np.load(path, allow_pickle=False), False
    if header is None:
        # The first thousand lines, as text, are enough to tell.
        head = pd.read_csv(path, header=None, dtype=str, nrows=1000)
        header = _has_header(head, path)
    return pd.read_csv(path, header=0 if header else None), header


def _has_header(fields, path):
    """Whether the first line of a CSV, read as strings, holds column names.

    A number in it makes it data. Otherwise a name sits over a column of
    numbers, and a value such as a category comes back in its column below:
    the first line is a header when it has names and no values, data when it
    has values and no names; anything else is ambiguous, and an error.
    """
    first, rest = fields.iloc[0], fields.iloc[1:]
    present = first.notna()
    if present.any() and any(_is_number(text) for text in first[present]):
        return False
    names = values = False
    for j in np.flatnonzero(present.to_numpy()):
        below = rest.iloc[:, j].dropna()
        values |= bool((below == first.iloc[j]).any())
        names |= len(below) > 0 and all(_is_number(text) for text in below)
    if names != values:
        return names
    if not present.any():  # a row of gaps names nothing
        return False
    raise ValueError(
        f"cannot tell whether the first line of {str(path)!r} holds column "
        "names or data: pass --header or --no-header."
    )


def _is_number(text):
    try:
        float(text)
    except ValueError:
        return False
    return True


def _scaler(name, X):
    """The ``--scale`` step for ``X``: numeric columns only for a table."""
    from sklearn.compose import make_column_selector, make_column_transformer
    from sklearn.preprocessing import MinMaxScaler, StandardScaler

    scalers = {"standard": StandardScaler(), "minmax": MinMaxScaler(clip=True)}
    if name not in scalers or not hasattr(X, "columns"):
        return scalers.get(name)
    # Text columns go through as they are, as categories for the VAE.
    return make_column_transformer(
        (scalers[name], make_column_selector(dtype_include="number")),
        remainder="passthrough",
        verbose_feature_names_out=False,
    ).set_output(transform="pandas")


def run_embed(args):
    """Fit a VAE on a table and write its latent codes (posterior means)."""
    from sklearn.pipeline import make_pipeline

    from skvae import VAETransformer

    X, header = _read_table(args.input, args.header)
    steps = [step for step in [_scaler(args.scale, X)] if step is not None]
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
        header_line = ",".join(vae.get_feature_names_out())
        np.savetxt(out, codes, delimiter=",", header=header_line, comments="")
    names = " (first line read as column names)" if header else ""
    print(
        f"skvae embed: {X.shape[0]} rows x {X.shape[1]} columns{names} -> "
        f"{codes.shape[1]} latent dimensions after {vae.n_iter_} epochs "
        f"(final training loss {vae.loss_curve_[-1]:.2f} nats per row); wrote {out}"
    )
    return 0


def _input_file(text):
    """The ``input`` argument: an existing file."""
    if not Path(text).is_file():
        raise argparse.ArgumentTypeError(f"no such file: {text!r}")
    return text


def _parser():
    parser = argparse.ArgumentParser(
        prog="skvae",
        description="Fit skvae's variational autoencoder from the command line "
        "(also python -m skvae): 'skvae demo' on scikit-learn's digits, "
        "'skvae embed' on your own table.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    _add_demo(commands)
    _add_embed(commands)
    return parser


def _add_demo(commands):
    """The ``demo`` command: the README's first command."""
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


def _add_embed(commands):
    """The ``embed`` command: a VAE on the user's own table."""
    embed = commands.add_parser(
        "embed",
        help="fit a VAE on your own table (CSV or .npy) and write its latent codes",
        description="Fit VAETransformer on a table and write the posterior mean of "
        "each row (its latent code) to --out, as CSV or .npy by extension. A CSV "
        "may have text columns (categories) and empty fields (gaps); its first "
        "line is read as column names when it has names (over columns of "
        "numbers) and no values, or as set by --header/--no-header. By default "
        "each column gets the likelihood 'auto' picks (Bernoulli for data in "
        "[0, 1], otherwise a Gaussian on normal scores for numbers and a "
        "categorical likelihood for text).",
    )
    embed.add_argument(
        "input", type=_input_file, help="a .npy file or a CSV file (header optional)"
    )
    embed.add_argument(
        "--header",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="whether the CSV's first line holds column names (default: "
        "decided from the file; an error when it cannot tell)",
    )
    embed.add_argument("--out", default="embedding.csv", help="output .csv or .npy")
    embed.add_argument("--n-components", type=int, default=2, help="latent size")
    embed.add_argument(
        "--likelihood",
        default="auto",
        choices=["auto", *sorted(_LIKELIHOOD_NAMES)],
        help="observation model of every column (default auto: per column); "
        "see the user guide's page on likelihoods",
    )
    embed.add_argument(
        "--scale",
        default="none",
        choices=["standard", "minmax", "none"],
        help="scaling of the numeric columns before the VAE (default none)",
    )
    embed.add_argument("--epochs", type=int, default=200, help="max_epochs")
    embed.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto")
    embed.add_argument("--seed", type=int, default=0, help="random_state")
    embed.add_argument("--verbose", type=int, default=0, help="1 prints progress")
    embed.set_defaults(func=run_embed)


def main(argv=None):
    """Entry point of the ``skvae`` console script.

    Bad command lines exit with status 2 (argparse's usage and error); data
    that ``embed`` cannot use give a one-line error and status 1.
    """
    args = _parser().parse_args(argv)
    if args.command != "embed":
        return args.func(args)
    try:
        return args.func(args)
    except (ValueError, OSError) as exc:  # pandas' parser errors are ValueErrors
        message = " ".join(str(exc).split())
        print(f"skvae embed: error: {message}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
