"""Wall time of a 6-point grid search with n_jobs=1 vs 2 (loky processes).

joblib's process workers get ``cpu_count // n_jobs`` threads each (it sets
``OMP_NUM_THREADS`` for them, which torch follows), so two workers on two
cores do not oversubscribe the machine. The table shows the wall time and the
torch threads each worker used.

Run: ``python benchmarks/bench_parallel.py [--quick]``
"""

import time

import joblib
import torch
from _common import base_parser, format_table, machine_summary
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV

from skvae import VAETransformer


def _threads(_):
    return torch.get_num_threads()


def main():
    args = base_parser(__doc__.splitlines()[0]).parse_args()
    X = load_digits().data / 16.0
    epochs = 10 if args.quick else 40
    grid = {"n_components": [2, 4, 8], "beta": [0.5, 1.0]}
    print(machine_summary("cpu"))
    rows = []
    for n_jobs in (1, 2):
        threads = joblib.Parallel(n_jobs=n_jobs)(
            joblib.delayed(_threads)(i) for i in range(n_jobs)
        )
        search = GridSearchCV(
            VAETransformer(max_epochs=epochs, n_iter_no_change=epochs, random_state=0),
            grid,
            cv=3,
            n_jobs=n_jobs,
        )
        start = time.perf_counter()
        search.fit(X)
        seconds = time.perf_counter() - start
        rows.append([n_jobs, max(threads), f"{seconds:.1f}", search.best_params_])
    base = float(rows[0][2])
    for row in rows:
        row.insert(3, f"{base / float(row[2]):.2f}x")
    headers = ["n_jobs", "torch threads/worker", "wall s", "speed-up", "best params"]
    print(f"6-point grid x 3 folds, {epochs} epochs per fit, digits (1797 x 64)")
    print(format_table(headers, rows))


if __name__ == "__main__":
    main()
