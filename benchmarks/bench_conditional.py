"""Conditional samples: VAETransformer's ``sample(given=...)`` against SDV's.

The tables of ``bench_tables.py`` (penguins, Wage, a 5,000-row sample of
diamonds, births14, acs12). Per table, three conditions on its categorical
columns, picked from the table alone (``pick_conditions``): a common one (the
most frequent category of any column), one met by about 5 % of the rows (the
category, or pair of categories, whose share is nearest 5 %) and a rare one,
met by under 1 % of the rows (the most frequent pair, or else triple or
quadruple, of categories under 1 % that some row has: on the smaller tables,
1 to 3 rows; penguins has none, every combination of its categories is met
by at least 1 % of its rows). A column of a single value (Wage's region)
gives no condition.

For each table and seed every method fits the whole table once, then draws
1,000 rows for each condition, and 1,000 rows without one:

- skvae: ``VAETransformer(n_components=8, random_state=seed)``, then
  ``sample(1000, random_state=seed, given=condition)``: inference, not
  rejection (see the user guide's conditional sampling section).
- SDV's ``GaussianCopulaSynthesizer``, ``CTGANSynthesizer`` and
  ``TVAESynthesizer`` with their defaults, on SDV's detected metadata, then
  ``sample_from_conditions([Condition(column_values=condition,
  num_rows=1000)])`` with its defaults (rejection sampling, at most 100 tries
  per batch). A call that raises, or returns fewer rows than asked, is a
  failure, printed as such with the rows it did return.

Reported per method and condition (means over seeds): the wall seconds per
1,000 rows (``s / 1k``), that time over the method's own unconditional
1,000 rows (``x uncond``), the share of rows whose given columns equal the
condition (``exact``), and SDMetrics' ``QualityReport`` overall score of the
conditional rows against the real rows that meet the condition (``quality``).
The goal lines check, per table, that skvae's given columns are exact, that
its quality is at least the best peer's for every condition, and that the
rare condition costs it at most 5 x its unconditional sample.

Run: ``python benchmarks/bench_conditional.py [--quick] [--threads 1]``
(``--quick``: one seed, 20 epochs for every neural method, and the copula and
TVAE as the peers: a smoke test whose scores mean little).
"""

import itertools
import os
import time
import warnings

# Before SDV imports tqdm, which reads it then: no progress bars.
os.environ.setdefault("TQDM_DISABLE", "1")

import numpy as np  # noqa: E402
from _common import (  # noqa: E402
    add_threads_option,
    base_parser,
    check_device,
    fmt,
    format_table,
    load_summary,
    machine_summary,
    set_threads,
)
from bench_tables import (  # noqa: E402
    DISCRETE_SDTYPES,
    QUICK_EPOCHS,
    SEEDS,
    TABLES,
    detect_metadata,
    mean_range,
    quality,
    sdv_synthesizer,
    seed_globals,
)

N_ROWS = 1000
METHODS = ("skvae", "GaussianCopula", "CTGAN", "TVAE")
QUICK_METHODS = ("skvae", "GaussianCopula", "TVAE")
# Targets of the conditions' shares of rows, and the rare one's ceiling.
COMMON, SOME, RARE = "common", "~5 %", "<1 %"
RARE_CEILING = 0.01
RATIO_GOAL = 5.0


# --------------------------------------------------------------------------
# Conditions
# --------------------------------------------------------------------------
def pick_conditions(table, metadata):
    """``{label: (condition dict, share of rows meeting it)}`` for the three
    conditions, from the categorical columns of ``table``."""
    columns = metadata.tables[next(iter(metadata.tables))].columns
    discrete = [c for c in table if columns[c]["sdtype"] in DISCRETE_SDTYPES]
    singles = _shares(table, discrete, 1)
    pairs = _shares(table, discrete, 2)
    # A column of one value is no condition: only shares under 1 count.
    common = max((k for k in singles if singles[k] < 1), key=singles.get)
    some = min({**singles, **pairs}.items(), key=lambda kv: abs(kv[1] - 0.05))[0]
    rare = _rare(pairs)
    for size in (3, 4):
        rare = rare or _rare(_shares(table, discrete, size))
    picked = {COMMON: common, SOME: some, RARE: rare}
    return {
        label: (dict(key), share_of(table, dict(key)))
        for label, key in picked.items()
        if key is not None
    }


def _shares(table, columns, size):
    """Share of rows of every combination of ``size`` categories (of
    different columns) that some row has: ``{((column, value), ...): share}``."""
    shares = {}
    for group in itertools.combinations(columns, size):
        counts = table[list(group)].dropna().value_counts(normalize=False)
        for values, count in counts.items():
            values = values if isinstance(values, tuple) else (values,)
            shares[tuple(zip(group, values))] = count / len(table)
    return shares


def _rare(shares):
    """The most frequent combination (of those some row has) met by under 1 %
    of the rows."""
    rare = {k: s for k, s in shares.items() if s < RARE_CEILING}
    return max(rare, key=rare.get) if rare else None


def share_of(table, condition):
    return float(meets(table, condition).mean())


def meets(table, condition):
    """Rows of ``table`` whose columns equal the condition's values."""
    hit = np.ones(len(table), dtype=bool)
    for column, value in condition.items():
        hit &= (table[column] == value).to_numpy()
    return hit


# --------------------------------------------------------------------------
# The methods: each fits the table and returns draw(n_rows, condition or None)
# --------------------------------------------------------------------------
def fit_skvae(table, metadata, seed, device, epochs):
    from skvae import VAETransformer

    settings = dict(n_components=8, random_state=seed, device=device)
    if epochs is not None:
        settings["max_epochs"] = epochs
    vae = VAETransformer(**settings).fit(table)

    def draw(n_rows, condition):
        return vae.sample(n_rows, random_state=seed, given=condition)

    return draw


def fit_sdv(kind):
    def fit(table, metadata, seed, device, epochs):
        from sdv.sampling import Condition

        synthesizer, name = sdv_synthesizer(kind, metadata, device, epochs)
        seed_globals(seed)
        synthesizer.fit({name: table})

        def draw(n_rows, condition):
            synthesizer._set_random_state(seed)
            if condition is None:
                return synthesizer.sample(n_rows)[name]
            wanted = Condition(column_values=condition, num_rows=n_rows)
            return synthesizer.sample_from_conditions([wanted])[name]

        return draw

    return fit


FITS = {
    "skvae": fit_skvae,
    "GaussianCopula": fit_sdv("GaussianCopula"),
    "CTGAN": fit_sdv("CTGAN"),
    "TVAE": fit_sdv("TVAE"),
}


def timed_draw(draw, condition):
    """``(rows or None, seconds, error message or None)`` of one draw; a draw
    of under a second is timed twice more, and the fastest time kept."""
    start = time.perf_counter()
    try:
        rows = draw(N_ROWS, condition)
    except Exception as error:  # a peer's failure is a result, not a crash
        return None, time.perf_counter() - start, f"{type(error).__name__}: {error}"
    seconds = time.perf_counter() - start
    if seconds < 1.0:
        for _ in range(2):
            start = time.perf_counter()
            draw(N_ROWS, condition)
            seconds = min(seconds, time.perf_counter() - start)
    if len(rows) < N_ROWS:
        return rows, seconds, f"returned {len(rows)} of {N_ROWS} rows"
    return rows, seconds, None


def score_condition(table, metadata_dict, condition, rows):
    """Exact share and quality of the conditional rows."""
    if rows is None or len(rows) == 0:
        return {"exact": np.nan, "quality": np.nan}
    real = table[meets(table, condition)].reset_index(drop=True)
    return {
        "exact": share_of(rows, condition),
        "quality": quality(real, rows.reset_index(drop=True), metadata_dict)["overall"],
    }


def run_method(method, table, metadata, metadata_dict, conditions, seed, args):
    """One fit of ``method`` and its draws: ``{label: result}``, where the
    label None is the unconditional draw."""
    seed_globals(seed)
    draw = FITS[method](table, metadata, seed, args.device, args.epochs)
    timed_draw(draw, None)  # untimed warm-up: first calls
    _, base_seconds, _ = timed_draw(draw, None)
    results = {}
    for label, (condition, _) in conditions.items():
        rows, seconds, error = timed_draw(draw, condition)
        if error is not None:
            print(f"  {method}, seed {seed}, {label} {condition}: FAILED ({error})")
        results[label] = {
            "seconds": seconds,
            "ratio": seconds / base_seconds,
            "failed": error is not None,
            **score_condition(table, metadata_dict, condition, rows),
        }
    return results


# --------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------
def results_table(results, conditions):
    headers = ["condition", "share", "method", "s / 1k", "x uncond", "exact"]
    headers += ["quality", "failed"]
    rows = []
    for label, (condition, share) in conditions.items():
        shown = ", ".join(f"{c}={v}" for c, v in condition.items())
        for method, runs in results.items():
            runs = [r[label] for r in runs]
            rows.append(
                [
                    f"{label}: {shown}",
                    fmt(100 * share, ".2f") + " %",
                    method,
                    mean_range([r["seconds"] for r in runs], ".3f"),
                    mean_range([r["ratio"] for r in runs], ".1f"),
                    _mean(runs, "exact", ".3f"),
                    _mean(runs, "quality", ".3f"),
                    f"{sum(r['failed'] for r in runs)}/{len(runs)}",
                ]
            )
    return format_table(headers, rows)


def _mean(runs, key, spec):
    values = [r[key] for r in runs if not np.isnan(r[key])]
    return mean_range(values, spec) if values else "-"


def goal(name, results, conditions):
    if "skvae" not in results:
        return f"{name}: goal not checked (needs skvae)"
    lines = [f"{name}:"]
    ours = results["skvae"]
    exact = min(r[label]["exact"] for r in ours for label in conditions)
    lines.append(f"  given columns exact in every row: {_verdict(exact == 1.0)}")
    for label in conditions:
        mine = np.mean([r[label]["quality"] for r in ours])
        peers = {
            m: np.nanmean([r[label]["quality"] for r in runs])
            for m, runs in results.items()
            if m != "skvae" and not all(np.isnan(r[label]["quality"]) for r in runs)
        }
        if peers:
            best = max(peers, key=peers.get)
            lines.append(
                f"  quality, {label}: skvae {mine:.3f} vs best peer {best} "
                f"{peers[best]:.3f}: {_verdict(mine >= peers[best])}"
            )
    if RARE in conditions:
        ratio = np.mean([r[RARE]["ratio"] for r in ours])
        lines.append(
            f"  rare condition's cost: {ratio:.1f} x an unconditional sample "
            f"(goal <= {RATIO_GOAL:.0f}): {_verdict(ratio <= RATIO_GOAL)}"
        )
    return "\n".join(lines)


def _verdict(ok):
    return "reached" if ok else "MISSED"


def main():
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument(
        "--tables", nargs="+", choices=list(TABLES), default=list(TABLES)
    )
    parser.add_argument("--methods", nargs="+", choices=METHODS)
    parser.add_argument("--seeds", nargs="+", type=int, help="default: 0 1 2")
    add_threads_option(parser)
    args = parser.parse_args()
    check_device(args.device)
    set_threads(args.threads)
    warnings.filterwarnings("ignore")
    seeds = args.seeds or ((0,) if args.quick else SEEDS)
    methods = args.methods or (QUICK_METHODS if args.quick else METHODS)
    args.epochs = QUICK_EPOCHS if args.quick else None
    print(machine_summary(args.device, args.threads))
    print(f"seeds {list(seeds)}; {N_ROWS:,} rows per draw")
    start = time.perf_counter()
    summaries = []
    for name in args.tables:
        table = TABLES[name]()
        metadata, metadata_dict = detect_metadata(name, table)
        conditions = pick_conditions(table, metadata)
        print(f"\n{name}: {table.shape[0]:,} rows x {table.shape[1]} columns")
        if RARE not in conditions:
            print("(no combination of categories that some row has is under 1 %)")
        results = {m: [] for m in methods}
        for seed in seeds:
            for method in methods:
                results[method].append(
                    run_method(
                        method, table, metadata, metadata_dict, conditions, seed, args
                    )
                )
        print(results_table(results, conditions), flush=True)
        summaries.append(goal(name, results, conditions))
    print("\nGoal: skvae's given columns exact; its quality >= the best peer's on")
    print("every condition; the rare condition <= 5 x an unconditional sample:")
    print("\n".join(summaries))
    print(f"\ntotal time {time.perf_counter() - start:.0f} s; {load_summary('at end')}")


if __name__ == "__main__":
    main()
