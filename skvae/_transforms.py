"""Per-column maps between a column's values and its encoded features.

A numeric column goes to the internal scale through a ``ColumnTransform``
(normal scores or standardisation), an integer column with levels is spread
over its levels' intervals in training, and a categorical column becomes a
one-hot block; each comes back to the column's own values and dtype. The
functions take a column of the schema (``_column.Column``) and its values.
"""

from functools import cached_property
from typing import NamedTuple

import numpy as np
import pandas as pd
import torch
from scipy.interpolate import CubicHermiteSpline
from scipy.special import ndtr, ndtri

# Knots of the normal-score transform of a numeric column: about 2 sqrt(n)
# quantiles of its n values, at most N_QUANTILES. Knots at every value would
# reproduce the sample exactly but give a density that jumps from one gap
# between neighbouring values to the next (log-densities off by about one nat
# either way); with ~sqrt(n) / 2 values between knots the density is smooth,
# and the marginal still within ~1 / (2 sqrt(n)) of the sample's.
N_QUANTILES = 1000
# Integer columns with at most this many distinct values are modelled as
# discretised normal scores (see ``Column.levels``).
MAX_LEVELS = N_QUANTILES
# Values per call of ``evaluate_splines`` in ``ColumnTransform.transform``.
CHUNK = 2**16


class ColumnTransform:
    """Smooth monotone map of a numeric column to an internal scale.

    A monotone cubic (Fritsch-Carlson) interpolation through increasing
    knots, continued linearly beyond the end knots: strictly increasing, with
    a continuous positive slope everywhere. So a density of the transformed
    column becomes a density in the column's own units by adding
    ``log_slope`` (the log-Jacobian), and that density does not jump at the
    knots, where the training values lie.

    Two kinds are built from data (see ``fit``): normal scores, whose knots are
    the column's quantiles, mapped to the standard normal quantiles of their
    probabilities, so that the column becomes close to N(0, 1) whatever its
    shape (skewed, heavy-tailed, multi-modal); and standardisation, the affine
    map to zero mean and unit variance (two knots).

    Parameters
    ----------
    x_knots, s_knots : array-like of shape (n_knots,)
        Increasing knots in the column's units and on the internal scale.
    kind : {"normal_scores", "standardize"}, default="normal_scores"
        Which map this is. Normal scores keep ``inverse`` within the range of
        the knots (the range seen in ``fit``); standardisation extrapolates.
    """

    def __init__(self, x_knots, s_knots, kind="normal_scores"):
        self.x_knots = np.asarray(x_knots, dtype=np.float64)
        self.s_knots = np.asarray(s_knots, dtype=np.float64)
        self.kind = kind
        if len(self.x_knots) == 1:  # a constant column: a shift
            self._spline = None
            self._ends = (1.0, 1.0)
            return
        slopes = _monotone_slopes(np.diff(self.x_knots), np.diff(self.s_knots))
        self._spline = CubicHermiteSpline(
            self.x_knots, self.s_knots, slopes, extrapolate=False
        )
        self._ends = (slopes[0], slopes[-1])

    @classmethod
    def fit(cls, values, kind="normal_scores", n_quantiles=None):
        """The transform of ``kind`` of the observed (non-NaN) ``values``.

        ``n_quantiles`` sets the number of knots of normal scores (default:
        about ``2 sqrt(n)``, at most ``N_QUANTILES``).
        """
        if kind == "standardize":
            mean, std = values.mean(), values.std()
            if not std > 0:
                return cls([mean], [0.0], kind)
            return cls([mean - std, mean + std], [-1.0, 1.0], kind)
        n = len(values)
        if n_quantiles is None:
            n_quantiles = min(N_QUANTILES, max(2, round(2 * np.sqrt(n))))
        probs = np.linspace(0.0, 1.0, min(n_quantiles, n))
        # Tied quantiles (a discrete column) collapse into one knot at their
        # mean probability, and so do quantiles closer than ~1e-12 relative
        # or 1e-100 absolute, whose cubic pieces would overflow.
        quantiles = np.quantile(values, probs)
        tol = 1e-12 * np.max(np.abs(quantiles)) + 1e-100
        which = np.concatenate([[0], np.cumsum(np.diff(quantiles) > tol)])
        counts = np.bincount(which)
        knots = np.bincount(which, quantiles) / counts
        probs = np.bincount(which, probs) / counts
        # Keep the end knots half a row inside (0, 1), where ndtri is finite.
        probs = (probs * (n - 1) + 0.5) / n
        return cls(knots, ndtri(probs))

    @cached_property
    def _linear(self):
        """Whether every piece is linear (``is_linear``), found on first use."""
        return is_linear([self])

    @cached_property
    def _table(self):
        """This column's ``SplineTable``, built on first use."""
        return spline_table([self])

    def _evaluate(self, x, order):
        """``evaluate_splines`` of this one column at the values ``x``, in
        chunks that stay in the CPU's cache (twice as fast as in one go)."""
        x = np.require(x, np.float64, ["C", "W"])
        out = np.empty_like(x)
        column, into = torch.from_numpy(x.reshape(-1, 1)), torch.from_numpy(out)
        for i in range(0, x.size, CHUNK):
            chunk = column[i : i + CHUNK]
            (values,) = evaluate_splines(chunk, self._table, orders=(order,))
            into.view(-1, 1)[i : i + CHUNK] = values
        return out

    def transform(self, x):
        """Internal values of ``x`` (NaN stays NaN)."""
        return self._evaluate(x, 0)

    def log_slope(self, x):
        """log ds/dx at ``x``: the log-Jacobian of the transform."""
        return np.log(self._evaluate(x, 1))

    @property
    def pieces(self):
        """The map as plain float64 arrays: ``(breaks, coefficients, end_slopes)``.

        Between ``breaks[k]`` and ``breaks[k + 1]`` the internal value is
        ``sum(coefficients[m, k] * (x - breaks[k]) ** (3 - m) for m in
        range(4))`` (SciPy's ``PPoly`` layout); beyond the end knots it goes
        on linearly, with the slopes ``end_slopes`` (below, above). A
        constant column is one piece of slope 1 through its knot.
        """
        if self._spline is None:
            x0, s0 = float(self.x_knots[0]), float(self.s_knots[0])
            breaks = np.array([x0, x0])
            coefficients = np.array([[0.0], [0.0], [1.0], [s0]])
        else:
            breaks = np.array(self._spline.x, dtype=np.float64)
            coefficients = np.array(self._spline.c, dtype=np.float64)
        return breaks, coefficients, np.array(self._ends, dtype=np.float64)

    @property
    def clip(self):
        """Whether ``inverse`` keeps values within the knots' range."""
        return self.kind == "normal_scores"

    def inverse(self, s):
        """Values in the column's units (clipped to the knots' range if
        ``clip``)."""
        s = np.array(s, dtype=np.float64)
        column = torch.from_numpy(s.reshape(-1, 1))
        clip = torch.tensor([self.clip])
        x = invert_splines(column, self._table, clip, self._linear)
        return x.numpy().reshape(s.shape)

    def to_json(self):
        return {
            "x_knots": self.x_knots.tolist(),
            "s_knots": self.s_knots.tolist(),
            "kind": self.kind,
        }

    @classmethod
    def from_json(cls, document):
        document = dict(document)
        if "clip" in document:  # as files written before "kind" named the map
            clip = document.pop("clip")
            document["kind"] = "normal_scores" if clip else "standardize"
        return cls(**document)


class SplineTable(NamedTuple):
    """The ``ColumnTransform`` of several columns as float64 tensors.

    Built by ``spline_table``, read by ``evaluate_splines``. Each column's
    cubic pieces are padded with pieces that start at +inf to ``width``, a
    power of two, so that a binary search of fixed steps never leaves them.
    """

    starts: torch.Tensor  # (n_columns * width,): where each piece starts
    coefficients: torch.Tensor  # (n_columns * width, 4), as ``pieces``
    ends: torch.Tensor  # (6, n_columns): x0, xn, s0, sn and the end slopes
    offsets: torch.Tensor  # (n_columns,): each column's first piece
    stops: torch.Tensor  # (n_columns * width,): where each piece ends
    values: torch.Tensor  # (n_columns * width,): internal value at each start


def spline_table(transforms):
    """The ``SplineTable`` of a sequence of ``ColumnTransform``."""
    pieces = [t.pieces for t in transforms]
    n_segments = max(len(breaks) - 1 for breaks, _, _ in pieces)
    width = 2 ** int(n_segments - 1).bit_length()
    starts = np.full((len(pieces), width), np.inf)
    stops, values = np.full_like(starts, np.inf), np.full_like(starts, np.inf)
    coefficients = np.zeros((len(pieces), width, 4))
    ends = np.zeros((6, len(pieces)))
    for i, (t, (breaks, coef, slopes)) in enumerate(zip(transforms, pieces)):
        n = len(breaks) - 1
        starts[i, :n], stops[i, :n], values[i, :n] = breaks[:-1], breaks[1:], coef[3]
        coefficients[i, :n] = coef.T
        ends[:, i] = [breaks[0], breaks[-1], *t.s_knots[[0, -1]], *slopes]
    return SplineTable(
        torch.from_numpy(starts.ravel()),
        torch.from_numpy(coefficients.reshape(-1, 4)),
        torch.from_numpy(ends),
        torch.arange(len(pieces), dtype=torch.int64) * width,
        torch.from_numpy(stops.ravel()),
        torch.from_numpy(values.ravel()),
    )


def evaluate_splines(x, table, orders=(0, 1)):
    """Internal values (order 0) and slopes ds/dx (order 1) of ``x``.

    The one evaluation of ``ColumnTransform`` that ``transform``,
    ``log_slope`` and the ONNX export share: torch operators that
    ``torch.onnx.export`` can trace, in float64.

    Parameters
    ----------
    x : float64 tensor of shape (n_rows, n_columns)
        Values of the columns of ``table``; NaN gives NaN.
    table : SplineTable
    orders : tuple of {0, 1}, default=(0, 1)
        Which outputs, in this order.

    Returns
    -------
    tuple of float64 tensors of the shape of ``x``, one per order. Equal to
    SciPy's ``PPoly`` (and its ``derivative()``) inside the knots, bit for
    bit: the same operations in the same order.
    """
    segment = _segments(x, table.starts, table.offsets)
    start, coefficients = _piece(table, segment, x.shape)
    c0, c1, c2, c3 = coefficients
    dx = x - start
    power = dx * dx
    x0, xn, s0, sn, e0, e1 = table.ends
    below, above = x < x0, x > xn
    out = []
    for order in orders:
        if order == 0:
            inside = _cubic(coefficients, dx)
            low, high = s0 + (x - x0) * e0, sn + (x - xn) * e1
        else:  # as PPoly.derivative(): coefficients 3 c0, 2 c1, c2
            inside = c2 + (2 * c1) * dx + (3 * c0) * power
            low, high = e0, e1
        out.append(torch.where(below, low, torch.where(above, high, inside)))
    return tuple(out)


def is_linear(transforms):
    """Whether every piece of ``transforms`` is linear (a standardisation, or
    a constant column's shift): then ``invert_splines`` solves in closed form."""
    return all(not np.any(t.pieces[1][:2]) for t in transforms)


def _piece(table, segment, shape):
    """Start and coefficients ``(c0, c1, c2, c3)`` of the pieces at the flat
    indices ``segment``, each of ``shape``."""
    start = table.starts.index_select(0, segment).reshape(shape)
    coefficients = table.coefficients.index_select(0, segment).unbind(-1)
    return start, tuple(c.reshape(shape) for c in coefficients)


def _cubic(coefficients, dx):
    """A cubic piece at ``dx`` from its start, as SciPy's ``PPoly``: the sum
    of ``c[m] dx^(3 - m)``, from the constant up."""
    c0, c1, c2, c3 = coefficients
    power = dx * dx
    return c3 + c2 * dx + c1 * power + c0 * (power * dx)


def _segments(x, starts, offsets):
    """Flat index of the piece of each of ``x``: the last one of its column
    whose start (in ``starts``, laid out as ``SplineTable.starts``) is at or
    below it (SciPy's search), by a binary search of fixed steps (the first
    piece for NaN and the lower tail)."""
    width = starts.shape[0] // offsets.shape[0]
    segment = offsets.expand(x.shape)
    step = width // 2
    while step:
        candidate = (segment + step).reshape(-1)
        found = starts.index_select(0, candidate).reshape(x.shape)
        segment = torch.add(segment, found <= x, alpha=step)
        step //= 2
    return segment.reshape(-1)


def invert_splines(s, table, clip, linear=False):
    """Values ``x`` whose internal values are ``s``: the inverse of
    ``evaluate_splines`` (order 0), shared by ``ColumnTransform.inverse``,
    ``ColumnSchema.decode`` and the ONNX imputer graph.

    Parameters
    ----------
    s : float64 tensor of shape (n_rows, n_columns)
        Internal values of the columns of ``table``; NaN gives NaN.
    table : SplineTable
    clip : bool tensor of shape (n_columns,)
        Columns whose ``s`` is first clipped to the knots' range.
    linear : bool, default=False
        Whether every piece is linear (``is_linear``), solved in closed form.

    Returns
    -------
    float64 tensor of the shape of ``s``: linear beyond the end knots, and
    inside them the root of the cubic piece that holds ``s``: by 60
    bisections (down to float64 resolution) of that piece, or in closed form
    if ``linear``.
    """
    x0, xn, s0, sn, e0, e1 = table.ends
    s = torch.where(clip, torch.minimum(torch.maximum(s, s0), sn), s)
    segment = _segments(s, table.values, table.offsets)
    start, coefficients = _piece(table, segment, s.shape)
    if linear:
        _, _, c2, c3 = coefficients
        inside = start + (s - c3) / c2
    else:
        low, high = start, table.stops.index_select(0, segment).reshape(s.shape)
        for _ in range(60):
            middle = 0.5 * (low + high)
            short = _cubic(coefficients, middle - start) < s
            low = torch.where(short, middle, low)
            high = torch.where(short, high, middle)
        inside = 0.5 * (low + high)
    x = torch.where(s < s0, x0 + (s - s0) / e0, inside)
    x = torch.where(s > sn, xn + (s - sn) / e1, x)
    return torch.where(torch.isnan(s), s, x)


def _monotone_slopes(dx, ds):
    """Slopes at the knots that keep a cubic Hermite interpolant increasing.

    The weighted harmonic mean of the neighbouring secants inside (as in
    PCHIP: Fritsch and Butland, 1984) and the end secants at the ends: both
    positive and at most three times the secants, which keeps each cubic
    piece increasing (Fritsch and Carlson, 1980).
    """
    secants = ds / dx
    slopes = np.empty(len(dx) + 1)
    slopes[0], slopes[-1] = secants[0], secants[-1]
    w1, w2 = 2 * dx[1:] + dx[:-1], dx[1:] + 2 * dx[:-1]
    slopes[1:-1] = (w1 + w2) / (w1 / secants[:-1] + w2 / secants[1:])
    return slopes


def fit_levels(values, column, dataframe):
    """Distinct values of an integer column and the internal bounds between
    them (``ndtri`` of the empirical CDF), or ``(None, None)``.

    A DataFrame's float column whose observed values are all whole numbers
    (``decimals`` 0) is an integer column too: ``read_csv`` gives float64 to
    an integer column with a gap. Arrays stay float matrices, modelled alike
    in memory and memory-mapped (whose batches are not spread in training).
    """
    whole = dataframe and column.decimals == 0
    if not (pd.api.types.is_integer_dtype(column.dtype) or whole):
        return None, None
    levels, counts = np.unique(values, return_counts=True)
    if len(levels) > MAX_LEVELS:
        return None, None
    cdf = np.cumsum(counts)[:-1] / len(values)
    return levels.tolist(), ndtri(cdf).tolist()


def spread_levels(x, column, rng):
    """Internal values of an integer column's values ``x``, each drawn
    uniformly in probability over its level's interval; NaN stays NaN.

    Values between or beyond the levels seen in fit (possible with
    ``partial_fit``) take the interval of the nearest level at or above.
    """
    levels = np.asarray(column.levels)
    bounds = np.concatenate([[0.0], ndtr(column.cuts), [1.0]])
    observed = ~np.isnan(x)
    which = np.minimum(np.searchsorted(levels, x[observed]), len(levels) - 1)
    low, high = bounds[which], bounds[which + 1]
    p = low + rng.uniform(size=len(which)) * (high - low)
    # Half a row inside (0, 1), as the normal-score knots, so ndtri is finite.
    tail = 0.5 / max(1, len(x))
    s = np.full(x.shape, np.nan)
    s[observed] = ndtri(np.clip(p, tail, 1 - tail))
    return s


def _codes(values, column):
    """Positions of a categorical column's values among its categories: -1
    for a gap or a category that ``fit`` did not see; and the gaps."""
    series = values if isinstance(values, pd.Series) else pd.Series(values)
    missing = series.isna().to_numpy()
    codes = pd.Index(column.categories).get_indexer(series.to_numpy(dtype=object))
    return codes, missing


def unseen_categories(values, column):
    """Which values of a categorical column are categories ``fit`` did not see."""
    codes, missing = _codes(values, column)
    return (codes < 0) & ~missing


def one_hot(values, column, allow_missing=True, unseen="missing"):
    """One-hot block of a categorical column; NaN rows for missing entries,
    and for categories that ``fit`` did not see unless ``unseen="raise"``."""
    codes, missing = _codes(values, column)
    if missing.any() and not allow_missing:
        raise ValueError(
            f"Column {column.name!r} has missing values; set "
            "missing_values=np.nan to model them as gaps."
        )
    unknown = (codes < 0) & ~missing
    if unknown.any() and (unseen == "raise" or column.n_observed is None):
        raise _unseen_error(values, unknown, column, unseen == "raise")
    block = np.eye(column.width)[np.where(codes < 0, 0, codes)]
    block[codes < 0] = np.nan
    return block


def _unseen_error(values, unknown, column, training):
    value = np.asarray(values, dtype=object)[unknown][0]
    shown = ", ".join(repr(c) for c in column.categories[:10])
    more = ", ..." if len(column.categories) > 10 else ""
    fix = (
        "partial_fit keeps the categories of the first fit: declare them all "
        "with a pandas CategoricalDtype before it, or refit"
        if training
        else "this model was saved before unseen categories were scored: refit "
        "it, or replace the value with NaN to treat it as missing"
    )
    return ValueError(
        f"Column {column.name!r} has the value {value!r}, a category that fit "
        f"did not see (it saw {shown}{more}); {fix}."
    )


def restore_categories(codes, column):
    categories = column.categories
    if column.dtype == "category":
        dtype = pd.CategoricalDtype(categories, ordered=column.ordered)
        return pd.Categorical.from_codes(codes, dtype=dtype)
    values = np.empty(len(codes), dtype=object)
    values[:] = [categories[c] for c in codes]
    if column.dtype == "object":
        # A Series: pandas would infer its string dtype for an array of str.
        return pd.Series(values, dtype=object)
    return pd.array(values, dtype=pd.api.types.pandas_dtype(column.dtype))


def empty_column(series, dtype):
    """A column with no observed value in fit, as ``keep_empty_features``
    gives it back in its ``dtype``: 0 where the dtype holds numbers (numeric
    and boolean dtypes, and ``object`` as in ``SimpleImputer``), else as it
    is."""
    if pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_object_dtype(dtype):
        return pd.Series(0, index=series.index).astype(dtype)
    return series.astype(dtype)


def fill_series(series, decoded, gaps):
    """``series`` with the entries at ``gaps`` taken from ``decoded``."""
    out = series.copy()
    values = pd.Series(decoded.to_numpy(), index=series.index, dtype=series.dtype)
    out[gaps] = values[gaps]
    return out
