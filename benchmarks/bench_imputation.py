"""Imputation accuracy: VAETransformer with missing values vs scikit-learn's imputers.

For each of scikit-learn's bundled tables (breast cancer, wine, diabetes) and
each share of entries removed completely at random (10, 20, 40 %), every
method sees the same table with the same gaps and fills them; the score is
the root mean squared error on the removed entries, in units of each
feature's standard deviation (the table is standardised with the statistics
of its observed entries, the same for all methods).

Run: ``python benchmarks/bench_imputation.py [--quick] [--device cuda]``
"""

import argparse
import time

import numpy as np
from sklearn.datasets import load_breast_cancer, load_diabetes, load_wine
from sklearn.experimental import enable_iterative_imputer  # noqa: F401
from sklearn.impute import IterativeImputer, KNNImputer, SimpleImputer

from skvae import VAETransformer

DATASETS = {
    "breast_cancer": load_breast_cancer,
    "wine": load_wine,
    "diabetes": load_diabetes,
}
RATES = (0.1, 0.2, 0.4)


class VAEImputer:
    """Fill gaps with the decoder mean of the posterior mean code."""

    def __init__(self, device="cpu", max_epochs=400, seed=0):
        self.vae = VAETransformer(
            n_components=8,
            hidden_layer_sizes=(128,),
            likelihood="gaussian",
            missing_values=np.nan,
            max_epochs=max_epochs,
            batch_size=32,
            n_iter_no_change=30,
            device=device,
            random_state=seed,
        )

    def fit_transform(self, X):
        filled = self.vae.fit(X).inverse_transform(self.vae.transform(X))
        return np.where(np.isnan(X), filled, X)


def _methods(device, max_epochs):
    return {
        "mean (SimpleImputer)": lambda: SimpleImputer(),
        "KNNImputer(5)": lambda: KNNImputer(n_neighbors=5),
        "IterativeImputer": lambda: IterativeImputer(max_iter=20, random_state=0),
        "VAETransformer": lambda: VAEImputer(device, max_epochs),
    }


def _with_gaps(X, rate, seed):
    rng = np.random.RandomState(seed)
    gaps = rng.rand(*X.shape) < rate
    # Keep at least one observed entry per row and per column.
    gaps[np.arange(len(X)), rng.randint(X.shape[1], size=len(X))] = False
    gaps[rng.randint(len(X), size=X.shape[1]), np.arange(X.shape[1])] = False
    X_gaps = np.where(gaps, np.nan, X)
    mean, std = np.nanmean(X_gaps, axis=0), np.nanstd(X_gaps, axis=0)
    return (X - mean) / std, (X_gaps - mean) / std, gaps


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--quick", action="store_true", help="one seed, fewer epochs")
    args = parser.parse_args()
    seeds = (0,) if args.quick else (0, 1, 2)
    methods = _methods(args.device, 150 if args.quick else 400)
    names = list(methods)
    header = f"{'dataset':<14}{'missing':>8}  " + "".join(f"{n:>22}" for n in names)
    print(
        f"Imputation RMSE on removed entries (standardised units), mean of "
        f"{len(seeds)} seed(s); lower is better. * marks the best per row."
    )
    print(header)
    print("-" * len(header))
    wins, start = dict.fromkeys(names, 0), time.perf_counter()
    for dataset, load in DATASETS.items():
        X = load().data.astype(np.float64)
        for rate in RATES:
            errors = {name: [] for name in names}
            for seed in seeds:
                X_true, X_gaps, gaps = _with_gaps(X, rate, seed)
                for name, make in methods.items():
                    X_filled = make().fit_transform(X_gaps)
                    rmse = np.sqrt(np.mean((X_filled[gaps] - X_true[gaps]) ** 2))
                    errors[name].append(rmse)
            means = {name: float(np.mean(e)) for name, e in errors.items()}
            best = min(means, key=means.get)
            wins[best] += 1
            cells = "".join(
                f"{means[n]:>21.3f}{'*' if n == best else ' '}" for n in names
            )
            print(f"{dataset:<14}{rate:>8.0%}  {cells}")
    print("\nrows won: " + ", ".join(f"{n} {w}" for n, w in wins.items()))
    print(f"total time {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
