"""Multiple imputation with VAEImputer: do Rubin's rules cover?

Each simulated data set has n = 200 rows of (x, w, y): x and w standard
normal with correlation 0.5, y = 1 + x + w / 2 + noise (standard deviation
1). A third of the x entries are removed, completely at random (MCAR) or
with a probability that grows with y (MAR: logistic in y, a third on
average). ``VAEImputer(sample_posterior=True, n_impute_samples=200)`` is
fitted once per data set and draws 20 completions (20 calls of
``transform``); the least-squares coefficient of x in each, with its
variance, gives Rubin's estimate and 95 % interval (Barnard-Rubin degrees of
freedom). The table gives how often the interval covers the true coefficient
(1), its mean width and the bias, against the same regression on a single
imputation (``sample_posterior=False``, its naive 95 % interval) and on the
complete data before the gaps.

Run: ``python benchmarks/bench_multiple_imputation.py [--datasets 200]
[--imputations 20] [--max-epochs 100] [--quick]``.
"""

import numpy as np
from _common import base_parser, format_table, machine_summary, set_threads
from scipy import stats

from skvae import VAEImputer

TRUE_SLOPE = 1.0
MECHANISMS = ("MCAR", "MAR")
# Codes drawn per row for each imputation.
N_DRAWS = 200


def simulate(n, mechanism, rng):
    """A data set (columns x, w, y) with gaps in x, and the complete one."""
    x, w = rng.multivariate_normal([0, 0], [[1, 0.5], [0.5, 1]], size=n).T
    y = 1 + TRUE_SLOPE * x + 0.5 * w + rng.normal(size=n)
    complete = np.column_stack([x, w, y])
    if mechanism == "MCAR":
        gaps = rng.random(n) < 1 / 3
    else:  # MAR: the chance of a gap grows with the observed y
        z = (y - y.mean()) / y.std()
        gaps = rng.random(n) < 1 / (1 + np.exp(-(1.5 * z - 0.85)))
    X = complete.copy()
    X[gaps, 0] = np.nan
    return X, complete


def ols_slope(X):
    """The coefficient of x in the regression of y on (1, x, w), and its
    variance."""
    design = np.column_stack([np.ones(len(X)), X[:, 0], X[:, 1]])
    y = X[:, 2]
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    residuals = y - design @ coef
    sigma2 = residuals @ residuals / (len(X) - design.shape[1])
    cov = sigma2 * np.linalg.inv(design.T @ design)
    return coef[1], cov[1, 1]


def rubin(estimates, variances, n_complete_df):
    """Rubin's pooled estimate and 95 % interval (Barnard-Rubin df)."""
    m = len(estimates)
    q, u = np.mean(estimates), np.mean(variances)
    b = np.var(estimates, ddof=1)
    t = u + (1 + 1 / m) * b
    lam = (1 + 1 / m) * b / t
    df_old = (m - 1) / max(lam, 1e-12) ** 2
    df_obs = (n_complete_df + 1) / (n_complete_df + 3) * n_complete_df * (1 - lam)
    df = 1 / (1 / df_old + 1 / df_obs)
    half = stats.t.ppf(0.975, df) * np.sqrt(t)
    return q, q - half, q + half


def naive(estimate, variance, df):
    half = stats.t.ppf(0.975, df) * np.sqrt(variance)
    return estimate, estimate - half, estimate + half


def one_data_set(seed, mechanism, n, m, max_epochs):
    """``{method: (estimate, low, high)}`` for one simulated data set."""
    rng = np.random.default_rng(seed)
    X, complete = simulate(n, mechanism, rng)
    df = n - 3
    imputer = VAEImputer(
        sample_posterior=True, max_epochs=max_epochs, random_state=seed
    )
    imputer.fit(X)
    draws = [ols_slope(imputer.transform(X)) for _ in range(m)]
    single = imputer.set_params(sample_posterior=False).transform(X)
    return {
        "complete data": naive(*ols_slope(complete), df),
        "single imputation": naive(*ols_slope(single), df),
        f"Rubin, {m} imputations": rubin(*zip(*draws), df),
    }


def run(n_sets, m, max_epochs, mechanisms=MECHANISMS, n=200):
    """``{(mechanism, method): [(estimate, low, high), ...]}``."""
    results = {}
    for mechanism in mechanisms:
        for seed in range(n_sets):
            for method, interval in one_data_set(
                seed, mechanism, n, m, max_epochs
            ).items():
                results.setdefault((mechanism, method), []).append(interval)
            if (seed + 1) % 10 == 0:
                print(f"done: {mechanism}, {seed + 1} data sets", flush=True)
    return results


def report(results):
    rows = []
    for (mechanism, method), intervals in results.items():
        q, low, high = np.asarray(intervals).T
        covered = np.mean((low <= TRUE_SLOPE) & (TRUE_SLOPE <= high))
        rows.append(
            [
                mechanism,
                method,
                f"{covered:.1%}",
                f"{np.mean(high - low):.3f}",
                f"{np.mean(q) - TRUE_SLOPE:+.3f}",
                str(len(q)),
            ]
        )
    headers = ["missing", "method", "coverage", "mean width", "bias", "data sets"]
    print("\n95 % intervals of the coefficient of x (true value 1)")
    print(format_table(headers, rows))


def main():
    parser = base_parser(__doc__)
    parser.add_argument("--datasets", type=int, default=200)
    parser.add_argument("--imputations", type=int, default=20)
    parser.add_argument("--max-epochs", type=int, default=100)
    parser.add_argument(
        "--mechanisms",
        nargs="+",
        choices=MECHANISMS,
        default=list(MECHANISMS),
        help="one per process runs them side by side",
    )
    args = parser.parse_args()
    set_threads(1)
    print(machine_summary("cpu", 1))
    n_sets = 5 if args.quick else args.datasets
    report(run(n_sets, args.imputations, args.max_epochs, args.mechanisms))


if __name__ == "__main__":
    main()
