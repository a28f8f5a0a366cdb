"""One-class outlier detection: VAEOutlierDetector against scikit-learn and PyOD.

Protocol: each class of a table in turn is the normal class. A seeded 70/30
split of its rows gives the training rows (70 %) and, with every row of the
other classes, the test rows; outliers (rows of other classes) are the
positive class, ranked by minus each method's normality score. Reported per
table, as means over normal classes and seeds: ROC-AUC, average precision and
fit time.

- digits (scikit-learn's 8x8 images, as X / 16): each digit in turn;
- wine: each cultivar in turn;
- breast cancer: benign as normal, malignant as outliers.

Methods: ``IsolationForest()``, ``LocalOutlierFactor(novelty=True)`` and
``OneClassSVM()`` on ``StandardScaler``-scaled input; PyOD's ``VAE`` with its
defaults (it standardises internally; it fails on fewer training rows than
its batch size, which is reported); ``VAEOutlierDetector()`` with its
defaults, on the data as given.

Run: ``python benchmarks/bench_outliers.py [--seeds 5] [--quick] [--device cuda]``
(``pip install -e ".[bench]"`` for PyOD).
"""

import time
import warnings

import numpy as np
from _common import (
    add_threads_option,
    base_parser,
    format_table,
    machine_summary,
    set_threads,
)
from sklearn.datasets import load_breast_cancer, load_digits, load_wine
from sklearn.ensemble import IsolationForest
from sklearn.metrics import average_precision_score, roc_auc_score
from sklearn.neighbors import LocalOutlierFactor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import OneClassSVM

from skvae import VAEOutlierDetector

TRAIN_SHARE = 0.7


def load(name):
    """X, y and the normal classes of a table."""
    if name == "digits":
        X, y = load_digits(return_X_y=True)
        return X / 16.0, y, list(range(10))
    if name == "wine":
        X, y = load_wine(return_X_y=True)
        return X, y, [0, 1, 2]
    X, y = load_breast_cancer(return_X_y=True)
    return X, y, [1]  # benign


def tasks(name, seed):
    """``(X_train, X_test, is_outlier)`` for each normal class of a table."""
    X, y, normals = load(name)
    for normal in normals:
        rows = np.flatnonzero(y == normal)
        np.random.RandomState(1000 * seed + normal).shuffle(rows)
        n_train = int(round(TRAIN_SHARE * len(rows)))
        test = np.r_[rows[n_train:], np.flatnonzero(y != normal)]
        yield X[rows[:n_train]], X[test], (y[test] != normal).astype(int)


class PyODVAE:
    """PyOD's VAE with the outlier API's sign: higher scores for inliers."""

    def __init__(self, seed):
        from pyod.models.vae import VAE

        self.model = VAE(verbose=0, random_state=seed)

    def fit(self, X):
        self.model.fit(X)
        return self

    def score_samples(self, X):
        return -self.model.decision_function(X)


def methods(seed, device):
    return {
        "IsolationForest": lambda: make_pipeline(
            StandardScaler(), IsolationForest(random_state=seed)
        ),
        "LocalOutlierFactor": lambda: make_pipeline(
            StandardScaler(), LocalOutlierFactor(novelty=True)
        ),
        "OneClassSVM": lambda: make_pipeline(StandardScaler(), OneClassSVM()),
        "PyOD VAE": lambda: PyODVAE(seed),
        # The threshold plays no part in ROC-AUC or average precision: no
        # cross-fitted threshold, whose fits would only add time.
        "VAEOutlierDetector": lambda: VAEOutlierDetector(
            novelty=False, random_state=seed, device=device
        ),
    }


def run(name, seeds, device):
    results = {}
    for seed in seeds:
        for X_train, X_test, is_outlier in tasks(name, seed):
            for method, make in methods(seed, device).items():
                record = results.setdefault(method, [])
                start = time.perf_counter()
                try:
                    detector = make().fit(X_train)
                except Exception as exc:  # PyOD's VAE on very small classes
                    record.append((np.nan, np.nan, np.nan, type(exc).__name__))
                    continue
                fit_time = time.perf_counter() - start
                outlying = -detector.score_samples(X_test)
                record.append(
                    (
                        roc_auc_score(is_outlier, outlying),
                        average_precision_score(is_outlier, outlying),
                        fit_time,
                        None,
                    )
                )
    return results


def table(results):
    rows = []
    for method, records in results.items():
        values = np.array([r[:3] for r in records], dtype=float)
        failed = sum(r[3] is not None for r in records)
        auc, ap, fit = np.nanmean(values, axis=0)
        note = f"{failed} of {len(records)} failed" if failed else ""
        rows.append([method, f"{auc:.4f}", f"{ap:.4f}", f"{fit:.2f}", note])
    rows.sort(key=lambda row: -float(row[1]))
    return format_table(["method", "ROC-AUC", "AP", "fit (s)", ""], rows)


def main():
    parser = base_parser(__doc__)
    parser.add_argument("--seeds", type=int, default=5, help="seeds 0 to N-1")
    add_threads_option(parser)
    args = parser.parse_args()
    set_threads(args.threads)
    warnings.filterwarnings("ignore")  # PyOD's and torch's chatter
    seeds = range(1 if args.quick else args.seeds)
    names = (
        ["wine", "breast_cancer"] if args.quick else ["digits", "wine", "breast_cancer"]
    )
    print(machine_summary(args.device, args.threads))
    for name in names:
        print(f"\n{name}: mean over normal classes and seeds {list(seeds)}")
        print(table(run(name, seeds, args.device)))


if __name__ == "__main__":
    main()
