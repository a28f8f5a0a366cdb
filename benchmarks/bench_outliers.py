"""One-class outlier detection: VAEOutlierDetector against scikit-learn and PyOD.

Protocol: each task of a table names its normal classes (for most tables,
each class in turn). A seeded 70/30 split of their rows gives the training
rows (70 %) and, with every row of the other classes, the test rows; outliers
(rows of other classes) are the positive class, ranked by minus each method's
normality score. Reported per table, as means over tasks and seeds: ROC-AUC,
average precision and fit time.

- digits (scikit-learn's 8x8 images, as X / 16): each digit in turn;
- wine: each cultivar in turn;
- breast cancer: benign as normal, malignant as outliers.

Two tables of local anomalies, which lie among or next to normal rows:

- near digits: the digits 3, 5, 8 and 9, whose strokes are alike; each in
  turn is the outlier class and the other three the normal ones;
- planted: 600 normal rows in six dimensions from three Gaussian clusters of
  standard deviations 0.3, 1 and 2 (centres drawn with a standard deviation
  of 6), and 30 outliers planted 4 to 5 of their cluster's standard
  deviations from its centre, in a random direction (ten per cluster); drawn
  anew for each seed.

Methods: ``IsolationForest()``, ``LocalOutlierFactor(novelty=True)``,
``OneClassSVM()`` and PyOD's ``KNN()`` on ``StandardScaler``-scaled input;
PyOD's ``ECOD()`` (per-feature tails, scale-free; test rows scored one at
a time, see ``PyOD``) and ``VAE`` with their defaults (PyOD's VAE
standardises internally; it fails on fewer training rows than its batch
size, which is reported); ``VAEOutlierDetector()`` with its
defaults but ``novelty=False``, on the data as given, and the same with
``n_neighbors=0`` (the likelihood alone, without the local views).

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
from sklearn.base import BaseEstimator
from sklearn.datasets import load_breast_cancer, load_digits, load_wine
from sklearn.ensemble import IsolationForest
from sklearn.metrics import average_precision_score, roc_auc_score
from sklearn.neighbors import LocalOutlierFactor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import OneClassSVM

from skvae import VAEOutlierDetector

TRAIN_SHARE = 0.7


NEAR_DIGITS = [3, 5, 8, 9]


def load(name, seed):
    """X, y and the tasks of a table: ``(key, normal classes)`` pairs."""
    if name == "digits":
        X, y = load_digits(return_X_y=True)
        return X / 16.0, y, [(c, [c]) for c in range(10)]
    if name == "near_digits":
        X, y = load_digits(return_X_y=True)
        keep = np.isin(y, NEAR_DIGITS)
        others = [(c, [d for d in NEAR_DIGITS if d != c]) for c in NEAR_DIGITS]
        return X[keep] / 16.0, y[keep], others
    if name == "planted":
        X, y = planted(seed)
        return X, y, [(0, [0])]
    if name == "wine":
        X, y = load_wine(return_X_y=True)
        return X, y, [(c, [c]) for c in range(3)]
    X, y = load_breast_cancer(return_X_y=True)
    return X, y, [(1, [1])]  # benign


def planted(seed, n_features=6, n_per_cluster=200, n_outliers=10):
    """Normal rows (y = 0) from clusters of three spreads, and outliers
    (y = 1) planted 4 to 5 of their cluster's spreads from its centre."""
    rng = np.random.RandomState(seed)
    rows, labels = [], []
    for spread in (0.3, 1.0, 2.0):
        centre = rng.normal(scale=6.0, size=n_features)
        rows.append(centre + spread * rng.normal(size=(n_per_cluster, n_features)))
        direction = rng.normal(size=(n_outliers, n_features))
        direction /= np.linalg.norm(direction, axis=1, keepdims=True)
        radius = spread * rng.uniform(4.0, 5.0, size=(n_outliers, 1))
        rows.append(centre + radius * direction)
        labels += [0] * n_per_cluster + [1] * n_outliers
    return np.vstack(rows), np.array(labels)


def tasks(name, seed):
    """``(X_train, X_test, is_outlier)`` for each task of a table."""
    X, y, normals = load(name, seed)
    for key, normal in normals:
        is_normal = np.isin(y, normal)
        rows = np.flatnonzero(is_normal)
        np.random.RandomState(1000 * seed + key).shuffle(rows)
        n_train = int(round(TRAIN_SHARE * len(rows)))
        test = np.r_[rows[n_train:], np.flatnonzero(~is_normal)]
        yield X[rows[:n_train]], X[test], (~is_normal[test]).astype(int)


class PyOD(BaseEstimator):
    """A PyOD detector with the outlier API's sign: higher scores for
    inliers. With ``one_row``, rows are scored one at a time: ECOD scores a
    batch on the tails of the training and batch rows together, so that a
    batch of mostly outliers would shift every row's score (wine: ROC-AUC
    0.51 for the test rows at once)."""

    def __init__(self, model, one_row=False):
        self.model = model
        self.one_row = one_row

    def fit(self, X, y=None):
        self.model_ = self.model.fit(X)
        return self

    def score_samples(self, X):
        if self.one_row:
            rows = [X[i : i + 1] for i in range(len(X))]
            return -np.concatenate([self.model_.decision_function(r) for r in rows])
        return -self.model_.decision_function(X)


def methods(seed, device):
    from pyod.models.ecod import ECOD
    from pyod.models.knn import KNN
    from pyod.models.vae import VAE

    return {
        "IsolationForest": lambda: make_pipeline(
            StandardScaler(), IsolationForest(random_state=seed)
        ),
        "LocalOutlierFactor": lambda: make_pipeline(
            StandardScaler(), LocalOutlierFactor(novelty=True)
        ),
        "OneClassSVM": lambda: make_pipeline(StandardScaler(), OneClassSVM()),
        "PyOD KNN": lambda: make_pipeline(StandardScaler(), PyOD(KNN())),
        "PyOD ECOD": lambda: PyOD(ECOD(), one_row=True),
        "PyOD VAE": lambda: PyOD(VAE(verbose=0, random_state=seed)),
        # The threshold plays no part in ROC-AUC or average precision: no
        # cross-fitted threshold, whose fits would only add time. The weight
        # of the local view is then set on the training rows' own scores.
        "VAEOutlierDetector": lambda: VAEOutlierDetector(
            novelty=False, random_state=seed, device=device
        ),
        "VAEOutlierDetector, n_neighbors=0": lambda: VAEOutlierDetector(
            novelty=False, n_neighbors=0, random_state=seed, device=device
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
    names = ["digits", "wine", "breast_cancer", "near_digits", "planted"]
    if args.quick:
        names = ["wine", "breast_cancer", "planted"]
    print(machine_summary(args.device, args.threads))
    for name in names:
        print(f"\n{name}: mean over tasks and seeds {list(seeds)}")
        print(table(run(name, seeds, args.device)))


if __name__ == "__main__":
    main()
