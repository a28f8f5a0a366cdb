"""The column scan: each column's kind, values and ranges, and the type rules.

Which column is numeric or categorical (booleans and strings are
categories), which likelihood each one asks for, and the checks of its
values (infinity, gaps, magnitudes, integers that float64 cannot hold, the
support of a likelihood), all raised as ``ValueError`` naming the column.
"""

from numbers import Integral

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ._data import release_pages
from ._likelihoods import LIKELIHOODS
from ._utils import plain

# Largest magnitude accepted in a column modelled as given: divided by the
# smallest Gaussian scale (1e-3) and squared, it still fits in float32.
LARGEST_VALUE = 1e15
# Integers beyond this magnitude are not all exactly representable in float64.
LARGEST_INTEGER = 2**53
# A float column whose observed values all have at most this many decimals
# (such as measurements recorded to 0.1 mm) is given back at that precision.
MAX_DECIMALS = 6
# Beyond this many categories a column is more likely an identifier than a
# category, and its one-hot block would dominate the network's width.
MAX_CATEGORIES = 1000
CATEGORICAL = "categorical"
AUTO = "auto"


def is_numeric(dtype):
    """Whether a DataFrame column of ``dtype`` is numeric: numbers but not
    booleans, which are categories."""
    return pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(
        dtype
    )


def column_values(X, i):
    """Column ``i`` of a DataFrame (a Series) or of an array (an ndarray)."""
    if isinstance(X, pd.DataFrame):
        return X.iloc[:, i]
    if sp.issparse(X):
        return X[:, [i]].toarray()[:, 0]
    return X[:, i]


def numeric_values(values):
    """Float64 values of a numeric column; pandas gaps become NaN."""
    if isinstance(values, pd.Series):
        return values.to_numpy(dtype=np.float64, na_value=np.nan)
    return np.asarray(values, dtype=np.float64)


def observed_values(X, i):
    """The observed values of numeric column ``i`` of ``X``, as floats."""
    values = numeric_values(column_values(X, i))
    return values[~np.isnan(values)]


def count_decimals(values, dtype):
    """The fewest decimals (at most ``MAX_DECIMALS``) that hold all ``values``
    of a float column, or None."""
    if not pd.api.types.is_float_dtype(dtype):
        return None
    for decimals in range(MAX_DECIMALS + 1):
        rounded = np.round(values, decimals)
        if np.all(np.abs(rounded - values) <= 1e-9 * np.maximum(1.0, np.abs(values))):
            return decimals
    return None


def is_empty(X, i, ranges):
    """Whether column ``i`` has no observed value."""
    if i in ranges:
        return bool(np.isnan(ranges[i][0]))
    return bool(pd.Series(column_values(X, i)).isna().all())


def check_magnitude(name, value_range):
    largest = max(abs(value_range[0]), abs(value_range[1]))
    if largest > LARGEST_VALUE:
        raise ValueError(
            f"Column {name!r} holds values as large as {largest:.3g}; the model "
            "computes in float32, where squares of such values overflow. Scale "
            "it first (for example with sklearn.preprocessing.StandardScaler), "
            "or leave likelihood='auto' to transform it."
        )


def check_integers(name, dtype, value_range):
    """Refuse integers that float64, in which columns are read, cannot hold."""
    if not pd.api.types.is_integer_dtype(dtype):
        return
    largest = max(abs(value_range[0]), abs(value_range[1]))
    if largest >= LARGEST_INTEGER:
        raise ValueError(
            f"Column {name!r} holds integers as large as {largest:.4g}, beyond "
            "2**53: float64, in which the model reads columns, does not hold "
            "every such integer, so they would come back changed. Drop the "
            "column if it identifies rows; otherwise convert it to float64."
        )


def complex_error(name, dtype):
    return ValueError(
        f"Column {name!r} has dtype {dtype}: complex numbers are not supported. "
        "Split it into two float columns (its real and imaginary parts), or drop "
        "it."
    )


def requested_likelihoods(likelihood, names):
    """The likelihood asked for each column (``"auto"`` where none is)."""
    if isinstance(likelihood, str):
        return [likelihood] * len(names)
    requested = [AUTO] * len(names)
    positions = {name: i for i, name in enumerate(names)}
    for key, name in likelihood.items():
        key = plain(key)
        if name != AUTO and name != CATEGORICAL and name not in LIKELIHOODS:
            raise ValueError(
                f"likelihood[{key!r}]={name!r} is not a likelihood; use one of "
                f"{sorted({AUTO, CATEGORICAL, *LIKELIHOODS})}."
            )
        if key in positions:
            requested[positions[key]] = name
        elif isinstance(key, Integral) and 0 <= key < len(names):
            requested[int(key)] = name
        else:
            raise ValueError(
                f"likelihood names the column {key!r}, which X does not have; "
                "use the names of X's columns or their positions (0 to "
                f"{len(names) - 1})."
            )
    return requested


def column_kind(X, i, name, requested):
    """``"numeric"`` or ``"categorical"``, from the dtype of a DataFrame column."""
    if not isinstance(X, pd.DataFrame):
        if requested == CATEGORICAL and (sp.issparse(X) or isinstance(X, np.memmap)):
            raise ValueError(
                f"likelihood makes column {name!r} categorical, which needs a dense "
                "array or a DataFrame; sparse matrices and memory-mapped files "
                "hold numeric columns only."
            )
        return CATEGORICAL if requested == CATEGORICAL else "numeric"
    dtype = X.dtypes.iloc[i]
    if not is_numeric(dtype):
        if (
            pd.api.types.is_datetime64_any_dtype(dtype)
            or isinstance(dtype, pd.PeriodDtype)
            or pd.api.types.is_timedelta64_dtype(dtype)
        ):
            raise ValueError(
                f"Column {name!r} has dtype {dtype}, which is neither numeric nor "
                "categorical. Convert it to numbers (for example days since a "
                "date) or drop it."
            )
        if requested not in (AUTO, CATEGORICAL):
            raise ValueError(
                f"likelihood={requested!r} does not fit column {name!r}: it is "
                f"categorical (dtype {dtype}). Use likelihood='auto', or a dict "
                "that names likelihoods for the numeric columns only."
            )
        return CATEGORICAL
    if pd.api.types.is_complex_dtype(dtype):
        raise complex_error(name, dtype)
    return "numeric"


def _row_chunks(X, positions, max_entries=2**24):
    """Read-only float blocks of consecutive rows of the numeric columns
    ``positions``: float64, or the array's own float dtype.

    Memory-mapped files are read one block at a time (and their pages
    released), sparse matrices densified one block at a time. The float
    columns of an array in memory are scanned in place, without copies.
    """
    if isinstance(X, pd.DataFrame):
        yield np.column_stack([numeric_values(X.iloc[:, i]) for i in positions])
        return
    rows = max(1, max_entries // max(1, X.shape[1]))
    every = len(positions) == X.shape[1]
    in_place = (
        every
        and isinstance(X, np.ndarray)
        and not isinstance(X, np.memmap)
        and X.dtype.kind == "f"
    )
    for start in range(0, X.shape[0], rows):
        block = X[start : start + rows]
        if in_place:
            yield block
            continue
        block = block.toarray() if sp.issparse(block) else block
        block = np.array(block if every else block[:, positions], dtype=np.float64)
        if isinstance(X, np.memmap):
            release_pages(X)  # the rows are copied: unmap the pages read
        yield block


def scan(X, positions, names, likelihoods=None, allow_nan=True):
    """Check numeric columns and return their observed ranges.

    Raises a ``ValueError`` naming the column when one holds infinity, NaN
    (unless ``allow_nan``), or values outside the support of its likelihood.

    Parameters
    ----------
    X : DataFrame, ndarray, sparse matrix or memmap
    positions : list of int
        The numeric columns to scan.
    names : list
        Names of all columns, for messages.
    likelihoods : dict or None
        ``{position: likelihood name}`` of columns to check the support of.
    allow_nan : bool, default=True
        Whether NaN (a missing value) is accepted.

    Returns
    -------
    ranges : dict
        ``{position: (min, max)}`` of observed values (NaN when none is).
    """
    if not positions:  # a table of categorical columns only
        return {}
    groups = {}
    for j, i in enumerate(positions):
        if likelihoods and i in likelihoods:
            groups.setdefault(likelihoods[i], []).append(j)
    names = [names[i] for i in positions]
    if sp.issparse(X):
        lows, highs = _scan_sparse(X, positions, names, groups, allow_nan)
    else:
        lows = np.full(len(positions), np.nan)
        highs = np.full(len(positions), np.nan)
        for block in _row_chunks(X, positions):
            # fmin/fmax skip NaN (gaps) without warnings; NaN only if all are.
            block_lows = np.fmin.reduce(block, axis=0)
            block_highs = np.fmax.reduce(block, axis=0)
            _check_finite(block, block_lows, block_highs, names, allow_nan)
            lows = np.fmin(lows, block_lows)
            highs = np.fmax(highs, block_highs)
            ranges = np.stack([block_lows, block_highs])
            for likelihood, columns in groups.items():
                # A support that is an interval needs each column's range only.
                interval = LIKELIHOODS[likelihood].interval_support
                _check_support(
                    ranges if interval else block, columns, likelihood, names
                )
    return {i: (lows[j], highs[j]) for j, i in enumerate(positions)}


def _scan_sparse(X, positions, names, groups, allow_nan):
    """``scan`` of a sparse matrix, on its stored values and implicit zeros."""
    X = sp.csc_matrix(X)[:, positions]
    data, starts = X.data, X.indptr
    bad = np.isinf(data) if allow_nan else ~np.isfinite(data)
    if bad.any():
        at = int(np.argmax(bad))
        raise _bad_value_error(
            names[np.searchsorted(starts, at, "right") - 1], data[at]
        )
    stored = np.diff(starts)
    lows = np.full(len(positions), np.nan)
    highs = np.full(len(positions), np.nan)
    some = stored > 0
    lows[some] = np.fmin.reduceat(data, starts[:-1][some])
    highs[some] = np.fmax.reduceat(data, starts[:-1][some])
    zeros = stored < X.shape[0]
    lows[zeros], highs[zeros] = np.fmin(lows[zeros], 0), np.fmax(highs[zeros], 0)
    for likelihood, columns in groups.items():
        for j in columns:
            values = data[starts[j] : starts[j + 1]]
            if zeros[j]:
                values = np.append(values, 0.0)
            _check_support(values[:, None], [0], likelihood, [names[j]])
    return lows, highs


def _check_finite(block, lows, highs, names, allow_nan):
    """Raise naming the first column of ``block`` that holds infinity (seen in
    its range ``lows``, ``highs``) or, unless ``allow_nan``, NaN."""
    infinite = np.isinf(lows) | np.isinf(highs)
    missing = np.zeros_like(infinite) if allow_nan else np.isnan(block).any(axis=0)
    bad = infinite | missing
    if bad.any():
        j = int(np.argmax(bad))
        raise _bad_value_error(names[j], np.nan if missing[j] else np.inf)


def _bad_value_error(name, value):
    if np.isnan(value):
        return ValueError(
            f"Column {name!r} contains NaN. Set missing_values=np.nan to treat NaN "
            "as missing."
        )
    return ValueError(
        f"Column {name!r} contains infinity. Replace it with a finite value, or "
        "with NaN to treat it as missing."
    )


def _check_support(block, columns, likelihood, names):
    """Check the values of ``block[:, columns]`` against a likelihood's
    support, naming the first offending column (``names`` by column)."""
    likelihood = LIKELIHOODS[likelihood]

    def check(values):
        gaps = np.isnan(values)
        observed = values[~gaps] if gaps.any() else values
        if observed.size:  # rows with gaps alone are in any support
            likelihood.check_support(observed)

    every = len(columns) == block.shape[1]  # then columns is 0, 1, ...: no copy
    try:
        check(block if every else block[:, columns])
    except ValueError:
        for j in columns:  # find the column to name it
            try:
                check(block[:, j])
            except ValueError as exc:
                raise ValueError(f"Column {names[j]!r}: {exc}") from None
        raise


def require_explicit(name, value_range):
    raise ValueError(
        "A sparse matrix with values outside [0, 1] (column "
        f"{name!r} spans [{value_range[0]:.4g}, {value_range[1]:.4g}]) needs an "
        "explicit likelihood: likelihood='auto' would transform such columns, "
        "which would make the matrix dense. Pass likelihood='gaussian' (or "
        "'poisson' for counts), or a dense array."
    )


def float_dtype(X):
    if isinstance(X, pd.DataFrame):
        numeric = [d for d in X.dtypes if is_numeric(d)]
        if numeric and all(d == np.float32 for d in numeric):
            return np.float32
        return np.float64
    return X.dtype


def check_columns(X, columns, allow_nan=True, support=True):
    """Check the numeric ``columns`` (of a schema) of ``X`` for infinity, NaN
    (unless ``allow_nan``) and, with ``support``, values outside the support
    of the likelihood of those modelled as given."""
    names = [c.name for c in columns]
    positions = [i for i, c in enumerate(columns) if c.width and not c.categorical]
    if isinstance(X, pd.DataFrame):
        for i in positions:
            dtype = X.dtypes.iloc[i]
            if not pd.api.types.is_numeric_dtype(dtype):
                raise ValueError(
                    f"Column {names[i]!r} was numeric in fit but has dtype "
                    f"{dtype} now; pass the columns with the dtypes of fit."
                )
            if pd.api.types.is_complex_dtype(dtype):
                raise complex_error(names[i], dtype)
    likelihoods = None
    if support:
        likelihoods = {
            i: columns[i].likelihood for i in positions if columns[i].transform is None
        }
    scan(X, positions, names, likelihoods, allow_nan=allow_nan)


def categories_of(values, name):
    """``(categories, ordered, dtype name, n_observed)`` of a categorical
    column's ``values``: a pandas categorical's own categories, else the
    observed values, sorted where they can be."""
    series = values if isinstance(values, pd.Series) else pd.Series(values)
    dtype = series.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        categories, ordered = list(dtype.categories), bool(dtype.ordered)
    else:
        # Not pd.unique: its hash table of strings ends each one at a NUL
        # character, so that "a" and "a\x00b" would be one category.
        observed = list(dict.fromkeys(series.dropna().tolist()))
        try:
            categories = sorted(observed)
        except TypeError:  # values of mixed types: keep their order of appearance
            categories = list(observed)
        ordered = False
    if not categories:
        raise ValueError(
            f"Column {name!r} has no observed value: every entry is missing. Drop "
            "the column; the model cannot learn it."
        )
    if len(categories) > MAX_CATEGORIES:
        raise ValueError(
            f"Column {name!r} has {len(categories):,} categories, more than the "
            f"{MAX_CATEGORIES:,} that a categorical likelihood models well (one "
            "decoder output each). If it identifies rows, drop it; otherwise "
            "group rare values into one category, or encode it as numbers."
        )
    categories = [plain(v) for v in categories]
    dtype_name = "category" if isinstance(dtype, pd.CategoricalDtype) else str(dtype)
    return categories, ordered, dtype_name, int(series.notna().sum())
