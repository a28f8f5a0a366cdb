"""Column schema: what ``fit`` learns about each column of X.

The network sees one float matrix ("encoded" data): a numeric column is one
feature, as given or through a monotone transform to normal scores; a
categorical column is a block of one-hot features, one per category; a gap is
NaN (across the whole block for a categorical column). The schema maps a
table to that matrix and back (``encode``, ``decode``), resolves
``likelihood="auto"`` per column, and tells the model which likelihood covers
which features (``blocks``).
"""

from dataclasses import dataclass, field
from functools import cached_property
from numbers import Integral

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.interpolate import CubicHermiteSpline
from scipy.special import ndtr, ndtri

from ._data import release_pages
from ._likelihoods import _LIKELIHOODS, NORMAL_SCORES, STANDARDIZED_HETEROSCEDASTIC
from ._utils import plain

# Beyond this many categories a column is more likely an identifier than a
# category, and its one-hot block would dominate the network's width.
MAX_CATEGORIES = 1000
# Knots of the normal-score transform of a numeric column: about 2 sqrt(n)
# quantiles of its n values, at most N_QUANTILES. Knots at every value would
# reproduce the sample exactly but give a density that jumps from one gap
# between neighbouring values to the next (log-densities off by about one nat
# either way); with ~sqrt(n) / 2 values between knots the density is smooth,
# and the marginal still within ~1 / (2 sqrt(n)) of the sample's.
N_QUANTILES = 1000
# Largest magnitude accepted in a column modelled as given: divided by the
# smallest Gaussian scale (1e-3) and squared, it still fits in float32.
LARGEST_VALUE = 1e15
# Integers beyond this magnitude are not all exactly representable in float64.
LARGEST_INTEGER = 2**53
# A float column whose observed values all have at most this many decimals
# (such as measurements recorded to 0.1 mm) is given back at that precision.
MAX_DECIMALS = 6
# Integer columns with at most this many distinct values are modelled as
# discretised normal scores (see ``Column.levels``).
MAX_LEVELS = N_QUANTILES
CATEGORICAL = "categorical"
AUTO = "auto"
# An input column with no observed value in fit: not modelled, no features.
EMPTY = "empty"


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
        self._slope = self._spline.derivative()
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

    def _pieces(self, t, knots):
        """Masks of ``t`` below, inside and above the knots (NaN in none)."""
        below, above = t < knots[0], t > knots[-1]
        return below, ~(below | above | np.isnan(t)), above

    def transform(self, x):
        """Internal values of ``x`` (NaN stays NaN)."""
        x = np.asarray(x, dtype=np.float64)
        (x0, xn), (s0, sn) = self.x_knots[[0, -1]], self.s_knots[[0, -1]]
        below, inside, above = self._pieces(x, self.x_knots)
        s = np.full(x.shape, np.nan)
        s[below] = s0 + (x[below] - x0) * self._ends[0]
        s[above] = sn + (x[above] - xn) * self._ends[1]
        s[inside] = x[inside] - x0 if self._spline is None else self._spline(x[inside])
        return s

    def log_slope(self, x):
        """log ds/dx at ``x``: the log-Jacobian of the transform."""
        x = np.asarray(x, dtype=np.float64)
        below, inside, above = self._pieces(x, self.x_knots)
        slope = np.where(below, self._ends[0], self._ends[1])
        if self._spline is not None:
            slope[inside] = self._slope(x[inside])
        return np.log(slope)

    @property
    def clip(self):
        """Whether ``inverse`` keeps values within the knots' range."""
        return self.kind == "normal_scores"

    def inverse(self, s):
        """Values in the column's units (clipped to the knots' range if
        ``clip``)."""
        s = np.asarray(s, dtype=np.float64)
        (x0, xn), (s0, sn) = self.x_knots[[0, -1]], self.s_knots[[0, -1]]
        if self.clip:
            s = np.clip(s, s0, sn)
        below, inside, above = self._pieces(s, self.s_knots)
        x = np.full(s.shape, np.nan)
        x[below] = x0 + (s[below] - s0) / self._ends[0]
        x[above] = xn + (s[above] - sn) / self._ends[1]
        if self._spline is None:
            x[inside] = x0 + s[inside]
        else:
            x[inside] = self._solve(s[inside])
        return x

    def _solve(self, s):
        """x with spline(x) = s, by bisection within each one's segment."""
        last = len(self.x_knots) - 2
        segment = np.clip(np.searchsorted(self.s_knots, s, side="right") - 1, 0, last)
        low, high = self.x_knots[segment], self.x_knots[segment + 1]
        for _ in range(60):  # halves the bracket down to float64 resolution
            middle = 0.5 * (low + high)
            short = self._spline(middle) < s
            low, high = np.where(short, middle, low), np.where(short, high, middle)
        return 0.5 * (low + high)

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


@dataclass
class Column:
    """One input column: how it is modelled and how to give it back.

    Parameters
    ----------
    name : str or int
        Column label (its position for arrays).
    likelihood : str
        Resolved likelihood name; ``"categorical"`` for categorical columns.
    dtype : str
        The input dtype, restored on output (``"category"`` for pandas
        categoricals, with ``categories`` and ``ordered``).
    categories : list or None
        The categories, in the order of the one-hot block.
    ordered : bool
        Whether a pandas categorical dtype was ordered.
    transform : ColumnTransform or None
        The internal transform of a numeric column, if any.
    low, high : float or None
        Range of a numeric column's observed values in ``fit``.
    decimals : int or None
        The fewest decimals that hold all of a transformed float column's
        observed values, if at most ``MAX_DECIMALS``: its outputs are rounded
        to them.
    levels, cuts : list or None
        For an integer column with a normal-score transform, its distinct
        observed values and the bounds between their intervals on the
        internal scale (``ndtri`` of the empirical CDF at each level but the
        last). Training spreads each value uniformly over its interval in
        probability (dequantisation, the randomised probability integral
        transform of discrete margins), so that the column's internal values
        are N(0, 1) like those of a continuous column rather than a few point
        masses that a Gaussian cannot fit; outputs are the level whose
        interval holds the internal value.
    n_observed : int or None
        For a categorical column, its number of observed (non-missing)
        entries in ``fit``, which sets the probability of a category that
        ``fit`` did not see (``unseen_log_prob``). None in files written
        before it was stored: such a model refuses unseen categories.
    unit_floor : bool
        Whether a standardised column with a heteroscedastic Gaussian
        likelihood (``VAEImputer``'s) has the floor on its noise scale of a
        unit-variance column, ``StandardizedHeteroscedasticLikelihood``.
        False in files written before that likelihood existed, whose columns
        keep the floor they were trained with.
    """

    name: object
    likelihood: str
    dtype: str
    categories: list = None
    ordered: bool = False
    transform: ColumnTransform = None
    low: float = None
    high: float = None
    decimals: int = None
    levels: list = None
    cuts: list = None
    unit_floor: bool = False
    n_observed: int = None
    start: int = field(default=0, repr=False)

    @property
    def categorical(self):
        return self.likelihood == CATEGORICAL

    @property
    def unseen_log_prob(self):
        """Log-probability of a category that ``fit`` did not see.

        The additive-smoothing (Laplace) estimate of a level never observed:
        one pseudo-count for each of the ``width`` known categories and one
        for all unseen ones, over ``n_observed`` observed entries, so
        ``1 / (n_observed + width + 1)``. It depends on the training data
        only, so models fitted on the same rows give it the same value.
        """
        return -float(np.log(self.n_observed + self.width + 1))

    @property
    def width(self):
        if self.likelihood == EMPTY:
            return 0
        return len(self.categories) if self.categorical else 1

    def to_json(self):
        document = {"name": self.name, "likelihood": self.likelihood}
        document["dtype"] = self.dtype
        if self.low is not None:
            document["low"], document["high"] = float(self.low), float(self.high)
        if self.categorical:
            document["categories"] = self.categories
            document["ordered"] = self.ordered
        if self.transform is not None:
            document["transform"] = self.transform.to_json()
        if self.decimals is not None:
            document["decimals"] = self.decimals
        if self.levels is not None:
            document["levels"] = [float(v) for v in self.levels]
            document["cuts"] = [float(c) for c in self.cuts]
        if self.unit_floor:
            document["unit_floor"] = True
        if self.n_observed is not None:
            document["n_observed"] = int(self.n_observed)
        return document

    @classmethod
    def from_json(cls, document):
        document = dict(document)
        if "transform" in document:
            document["transform"] = ColumnTransform.from_json(document["transform"])
        return cls(**document)


class ColumnSchema:
    """The columns of the training data and the encoded layout.

    Parameters
    ----------
    columns : list of Column
    dataframe : bool
        Whether ``fit`` saw a DataFrame: outputs in data space are then
        DataFrames with the same columns and dtypes.
    dtype : numpy dtype
        Float dtype of the encoded data and of float outputs.
    """

    def __init__(self, columns, dataframe, dtype):
        self.columns = columns
        self.dataframe = dataframe
        self.dtype = np.dtype(dtype)
        start = 0
        for column in columns:
            column.start = start
            start += column.width
        self.n_features = start

    @cached_property
    def identity(self):
        """Whether the encoded data is the numeric input as it is (asked on
        every call, and fixed once the columns are)."""
        return not any(
            c.categorical or c.transform or not c.width for c in self.columns
        )

    @property
    def blocks(self):
        """``((likelihood name, n_features), ...)``: runs of features that one
        likelihood covers, in encoded order; a categorical column is one run,
        and transformed Gaussian columns are ``NORMAL_SCORES`` or, with a
        ``unit_floor``, ``STANDARDIZED_HETEROSCEDASTIC``.
        """
        blocks = []
        for column in self.columns:
            if not column.width:
                continue
            name = column.likelihood
            transform = column.transform
            if name == "gaussian" and transform and transform.kind == "normal_scores":
                name = NORMAL_SCORES  # its floor on the scale suits unit variance
            elif name == "gaussian_heteroscedastic" and column.unit_floor:
                name = STANDARDIZED_HETEROSCEDASTIC  # as NORMAL_SCORES
            if blocks and blocks[-1][0] == name and not column.categorical:
                blocks[-1][1] += column.width
            else:
                blocks.append([name, column.width])
        return tuple((name, width) for name, width in blocks)

    @property
    def likelihoods_by_name(self):
        """``{column name: resolved likelihood}``."""
        return {column.name: column.likelihood for column in self.columns}

    def to_json(self):
        return {
            "columns": [column.to_json() for column in self.columns],
            "dataframe": self.dataframe,
            "dtype": self.dtype.name,
        }

    @classmethod
    def from_json(cls, document):
        columns = [Column.from_json(c) for c in document["columns"]]
        return cls(columns, document["dataframe"], document["dtype"])

    # ------------------------------------------------------------- encode
    def encode(self, X, allow_missing=True, rng=None, unseen="missing"):
        """The encoded float matrix of validated ``X`` (a DataFrame, or a
        numeric array, sparse matrix or memmap returned as is when the
        schema is the identity). Gaps become NaN; with ``allow_missing=False``
        a gap in a categorical column is an error (numeric columns are
        checked by ``check``). A category that ``fit`` did not see becomes
        NaN too (the encoder sees it as a gap; ``unseen_terms`` scores it),
        or is an error with ``unseen="raise"`` (for training data). With
        ``rng`` (a NumPy Generator; for training data), integer columns with
        ``levels`` are spread over their intervals."""
        if self.identity and not isinstance(X, pd.DataFrame):
            return X
        out = np.empty((X.shape[0], self.n_features), dtype=self.dtype)
        for i, column in enumerate(self.columns):
            if not column.width:
                continue
            values = _column(X, i)
            block = out[:, column.start : column.start + column.width]
            if column.categorical:
                block[:] = _one_hot(values, column, allow_missing, unseen)
            elif rng is not None and column.levels is not None:
                block[:, 0] = _spread(_numeric(values), column, rng)
            elif column.transform is not None:
                block[:, 0] = column.transform.transform(_numeric(values))
            else:
                block[:, 0] = _numeric(values)
        return out

    def per_column(self, terms, X):
        """Per-feature log-likelihood terms of encoded data, per input column.

        A categorical block's terms are summed, and a transformed column gets
        its log-slope at observed entries, so that the columns sum to a
        log-density in the columns' own units.

        Parameters
        ----------
        terms : ndarray of shape (n_samples, n_features of the encoding)
        X : the validated data the terms are of

        Returns
        -------
        terms : ndarray of shape (n_samples, n_columns)
        """
        if self.identity:
            return terms
        starts = [column.start for column in self.columns]
        out = np.add.reduceat(terms, starts, axis=1)
        return out + self._log_slopes(X) + self.unseen_terms(X)

    def _log_slopes(self, X):
        """Per entry, log ds/dx of observed transformed entries (else 0)."""
        out = np.zeros((X.shape[0], len(self.columns)))
        for i, column in enumerate(self.columns):
            if column.transform is not None:
                x = _numeric(_column(X, i))
                observed = ~np.isnan(x)
                out[observed, i] = column.transform.log_slope(x[observed])
        return out

    def log_jacobian(self, X):
        """Per row, the sum over observed transformed entries of log ds/dx."""
        return self._log_slopes(X).sum(axis=1)

    def unseen_terms(self, X):
        """Per entry, the log-probability of a category that ``fit`` did not
        see (``Column.unseen_log_prob``), else 0.

        ``encode`` makes such an entry a gap, which the encoded likelihood
        leaves out: this is its term in the row's log-likelihood.
        """
        out = np.zeros((X.shape[0], len(self.columns)))
        for i, column in enumerate(self.columns):
            if column.categorical:
                unseen = _unseen(_column(X, i), column)
                if unseen.any():
                    out[unseen, i] = column.unseen_log_prob
        return out

    def check(self, X, allow_nan=True, support=True):
        """Check the numeric columns of ``X`` for infinity, NaN (unless
        ``allow_nan``) and, with ``support``, values outside the support of
        the likelihood of those modelled as given."""
        names = [c.name for c in self.columns]
        positions = [
            i for i, c in enumerate(self.columns) if c.width and not c.categorical
        ]
        if isinstance(X, pd.DataFrame):
            for i in positions:
                dtype = X.dtypes.iloc[i]
                if not pd.api.types.is_numeric_dtype(dtype):
                    raise ValueError(
                        f"Column {names[i]!r} was numeric in fit but has dtype "
                        f"{dtype} now; pass the columns with the dtypes of fit."
                    )
                if pd.api.types.is_complex_dtype(dtype):
                    raise _complex_error(names[i], dtype)
        likelihoods = None
        if support:
            likelihoods = {
                i: self.columns[i].likelihood
                for i in positions
                if self.columns[i].transform is None
            }
        scan(X, positions, names, likelihoods, allow_nan=allow_nan)

    # ------------------------------------------------------------- decode
    def decode(self, encoded):
        """Data-space values from encoded means or draws.

        A categorical block becomes its most probable (or drawn, one-hot)
        category, a transformed numeric column goes back to its units (an
        integer column with ``levels`` to the level whose interval holds the
        value), integer columns are rounded into the range seen in ``fit``
        and float columns with ``decimals`` to that many decimals. Returns a
        DataFrame with the training columns and dtypes when ``fit`` saw one,
        else an array.
        """
        if self.identity and not self.dataframe:
            return encoded.astype(self.dtype, copy=False)
        values = [self._decode_column(c, encoded) for c in self.columns]
        if self.dataframe:
            names = [c.name for c in self.columns]
            return pd.DataFrame(dict(zip(range(len(names)), values))).set_axis(
                names, axis=1
            )
        if any(c.categorical for c in self.columns):
            return np.column_stack([np.asarray(v, dtype=object) for v in values])
        return np.column_stack(values).astype(self.dtype, copy=False)

    def _decode_column(self, column, encoded):
        if not column.width:
            return np.zeros(len(encoded))
        block = encoded[:, column.start : column.start + column.width]
        if column.categorical:
            codes = np.asarray(block).argmax(axis=1)
            return _restore_categories(codes, column)
        x = np.asarray(block[:, 0], dtype=np.float64)
        if column.levels is not None:
            x = np.asarray(column.levels)[np.searchsorted(column.cuts, x)]
        elif column.transform is not None:
            x = column.transform.inverse(x)
        return _restore_numeric(x, column, self.dtype)


def _is_empty(X, i, ranges):
    """Whether column ``i`` has no observed value."""
    if i in ranges:
        return bool(np.isnan(ranges[i][0]))
    return bool(pd.Series(_column(X, i)).isna().all())


def _spread(x, column, rng):
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


def identity_schema(n_features, likelihood, dtype):
    """The schema of numeric columns modelled as given by one likelihood."""
    columns = [Column(i, likelihood, "float64") for i in range(n_features)]
    return ColumnSchema(columns, False, dtype)


# --------------------------------------------------------------------------
# Building a schema at fit
# --------------------------------------------------------------------------
def fit_schema(
    X,
    likelihood,
    numeric_transform="normal_scores",
    allow_nan=True,
    dataframe=None,
    allow_empty=False,
    numeric_likelihood="gaussian",
    dtypes=None,
):
    """Resolve the columns of validated training data ``X``.

    Parameters
    ----------
    X : DataFrame, ndarray, sparse matrix or memmap
        Validated data: a DataFrame as given, others numeric.
    likelihood : str or dict
        The estimator's ``likelihood`` parameter.
    numeric_transform : {"normal_scores", "standardize"} or None
        The transform of ``"auto"`` numeric columns outside [0, 1], modelled
        with a Gaussian likelihood on that scale (as given for None).
    allow_nan : bool, default=True
        Whether gaps are accepted.
    dataframe : bool or None, default=None
        Whether outputs in data space are DataFrames; None: whether X is one.
    allow_empty : bool, default=False
        Whether a column with no observed value is kept out of the model
        (likelihood ``"empty"``, no features) rather than an error.
    numeric_likelihood : str, default="gaussian"
        The likelihood of ``"auto"`` numeric columns outside [0, 1].
    dtypes : Series or None, default=None
        The dtypes to give columns back in: those of the DataFrame before its
        gaps were marked (an ``int64`` column with a ``missing_values``
        marker is ``Int64`` once marked); None: X's own.

    Returns
    -------
    schema : ColumnSchema
    """
    if dataframe is None:
        dataframe = isinstance(X, pd.DataFrame)
    names = list(X.columns) if isinstance(X, pd.DataFrame) else list(range(X.shape[1]))
    if dtypes is None:
        dtypes = X.dtypes if isinstance(X, pd.DataFrame) else ["float64"] * len(names)
    dtypes = [str(dtype) for dtype in dtypes]
    requested = _requested(likelihood, names)
    kinds = [_kind(X, i, names[i], requested[i]) for i in range(len(names))]
    numeric = [
        i
        for i, kind in enumerate(kinds)
        if kind == "numeric" and requested[i] != CATEGORICAL
    ]
    explicit = {i: requested[i] for i in numeric if requested[i] != AUTO}
    ranges = scan(X, numeric, names, explicit, allow_nan=allow_nan)
    empty = {i for i in range(len(names)) if _is_empty(X, i, ranges)}
    if empty and not allow_empty:
        raise ValueError(
            f"Column {names[min(empty)]!r} has no observed value: every entry is "
            "missing. Drop the column; the model cannot learn it."
        )
    classic = len(numeric) == len(names) and all(
        0 <= low and high <= 1 for low, high in ranges.values()
    )
    columns = []
    for i, name in enumerate(names):
        chosen = requested[i]
        dtype = dtypes[i]
        if i in empty:
            columns.append(Column(name, EMPTY, dtype))
            continue
        if kinds[i] == CATEGORICAL or chosen == CATEGORICAL:
            column = _categorical_column(X, i, name)
            _one_hot(_column(X, i), column, allow_nan)  # gaps where none may be
            columns.append(column)
            continue
        _check_integers(name, dtype, ranges[i])
        if chosen == AUTO and classic:
            chosen = "bernoulli"
        elif chosen == AUTO:
            if sp.issparse(X):
                _require_explicit(name, ranges[i])
            chosen = numeric_likelihood
            if numeric_transform is not None:
                values = _observed(X, i)
                transform = ColumnTransform.fit(values, numeric_transform)
                column = Column(name, chosen, dtype, None, False, transform, *ranges[i])
                column.decimals = _decimals(values, dtype)
                if transform.kind == "normal_scores":  # cuts are normal scores
                    column.levels, column.cuts = _levels(values, column, dataframe)
                elif chosen == "gaussian_heteroscedastic":
                    column.unit_floor = True
                columns.append(column)
                continue
        _check_magnitude(name, ranges[i])
        column = Column(name, chosen, dtype, low=ranges[i][0], high=ranges[i][1])
        if dataframe and _decimals(_observed(X, i), dtype) == 0:
            # As _levels: a float column of whole numbers is an integer column,
            # and its outputs are whole numbers as an int64 column's are.
            column.decimals = 0
        columns.append(column)
    return ColumnSchema(columns, dataframe, _float_dtype(X))


def _observed(X, i):
    """The observed values of numeric column ``i`` of ``X``, as floats."""
    values = _numeric(_column(X, i))
    return values[~np.isnan(values)]


def _decimals(values, dtype):
    """The fewest decimals (at most ``MAX_DECIMALS``) that hold all ``values``
    of a float column, or None."""
    if not pd.api.types.is_float_dtype(dtype):
        return None
    for decimals in range(MAX_DECIMALS + 1):
        rounded = np.round(values, decimals)
        if np.all(np.abs(rounded - values) <= 1e-9 * np.maximum(1.0, np.abs(values))):
            return decimals
    return None


def _levels(values, column, dataframe):
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


def _check_magnitude(name, value_range):
    largest = max(abs(value_range[0]), abs(value_range[1]))
    if largest > LARGEST_VALUE:
        raise ValueError(
            f"Column {name!r} holds values as large as {largest:.3g}; the model "
            "computes in float32, where squares of such values overflow. Scale "
            "it first (for example with sklearn.preprocessing.StandardScaler), "
            "or leave likelihood='auto' to transform it."
        )


def _check_integers(name, dtype, value_range):
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


def _complex_error(name, dtype):
    return ValueError(
        f"Column {name!r} has dtype {dtype}: complex numbers are not supported. "
        "Split it into two float columns (its real and imaginary parts), or drop "
        "it."
    )


def _requested(likelihood, names):
    """The likelihood asked for each column (``"auto"`` where none is)."""
    if isinstance(likelihood, str):
        return [likelihood] * len(names)
    requested = [AUTO] * len(names)
    positions = {name: i for i, name in enumerate(names)}
    for key, name in likelihood.items():
        key = plain(key)
        if name != AUTO and name != CATEGORICAL and name not in _LIKELIHOODS:
            raise ValueError(
                f"likelihood[{key!r}]={name!r} is not a likelihood; use one of "
                f"{sorted({AUTO, CATEGORICAL, *_LIKELIHOODS})}."
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


def _kind(X, i, name, requested):
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
    if pd.api.types.is_bool_dtype(dtype) or not pd.api.types.is_numeric_dtype(dtype):
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
        raise _complex_error(name, dtype)
    return "numeric"


def _column(X, i):
    """Column ``i`` of a DataFrame (a Series) or of an array (an ndarray)."""
    if isinstance(X, pd.DataFrame):
        return X.iloc[:, i]
    if sp.issparse(X):
        return X[:, [i]].toarray()[:, 0]
    return X[:, i]


def _numeric(values):
    """Float64 values of a numeric column; pandas gaps become NaN."""
    if isinstance(values, pd.Series):
        return values.to_numpy(dtype=np.float64, na_value=np.nan)
    return np.asarray(values, dtype=np.float64)


def _row_chunks(X, positions, max_entries=2**24):
    """Read-only float blocks of consecutive rows of the numeric columns
    ``positions``: float64, or the array's own float dtype.

    Memory-mapped files are read one block at a time (and their pages
    released), sparse matrices densified one block at a time. The float
    columns of an array in memory are scanned in place, without copies.
    """
    if isinstance(X, pd.DataFrame):
        yield np.column_stack([_numeric(X.iloc[:, i]) for i in positions])
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
            bad = np.isinf(block) if allow_nan else ~np.isfinite(block)
            if bad.any():
                j = int(np.argmax(bad.any(axis=0)))
                raise _bad_value_error(names[j], block[bad[:, j], j][0])
            # fmin/fmax skip NaN (gaps) without warnings; NaN only if all are.
            lows = np.fmin(lows, np.fmin.reduce(block, axis=0))
            highs = np.fmax(highs, np.fmax.reduce(block, axis=0))
            for likelihood, columns in groups.items():
                _check_support(block, columns, likelihood, names)
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
    likelihood = _LIKELIHOODS[likelihood]

    def check(values):
        observed = values[~np.isnan(values)]
        if observed.size:  # rows with gaps alone are in any support
            likelihood.check_support(observed)

    try:
        check(block[:, columns])
    except ValueError:
        for j in columns:  # find the column to name it
            try:
                check(block[:, j])
            except ValueError as exc:
                raise ValueError(f"Column {names[j]!r}: {exc}") from None
        raise


def _require_explicit(name, value_range):
    raise ValueError(
        "A sparse matrix with values outside [0, 1] (column "
        f"{name!r} spans [{value_range[0]:.4g}, {value_range[1]:.4g}]) needs an "
        "explicit likelihood: likelihood='auto' would transform such columns, "
        "which would make the matrix dense. Pass likelihood='gaussian' (or "
        "'poisson' for counts), or a dense array."
    )


def _float_dtype(X):
    if isinstance(X, pd.DataFrame):
        numeric = [
            d
            for d in X.dtypes
            if pd.api.types.is_numeric_dtype(d) and not pd.api.types.is_bool_dtype(d)
        ]
        if numeric and all(d == np.float32 for d in numeric):
            return np.float32
        return np.float64
    return X.dtype


# --------------------------------------------------------------------------
# Categorical columns
# --------------------------------------------------------------------------
def _categorical_column(X, i, name):
    values = _column(X, i)
    series = values if isinstance(values, pd.Series) else pd.Series(values)
    dtype = series.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        categories, ordered = list(dtype.categories), bool(dtype.ordered)
    else:
        observed = pd.unique(series.dropna())
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
    column = Column(name, CATEGORICAL, dtype_name, categories, ordered)
    column.n_observed = int(series.notna().sum())
    return column


def _codes(values, column):
    """Positions of a categorical column's values among its categories: -1
    for a gap or a category that ``fit`` did not see; and the gaps."""
    series = values if isinstance(values, pd.Series) else pd.Series(values)
    missing = series.isna().to_numpy()
    codes = pd.Index(column.categories).get_indexer(series.to_numpy(dtype=object))
    return codes, missing


def _unseen(values, column):
    """Which values of a categorical column are categories ``fit`` did not see."""
    codes, missing = _codes(values, column)
    return (codes < 0) & ~missing


def _one_hot(values, column, allow_missing=True, unseen="missing"):
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


def _restore_categories(codes, column):
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


def _restore_numeric(x, column, float_dtype):
    dtype = pd.api.types.pandas_dtype(column.dtype)
    if pd.api.types.is_integer_dtype(dtype):
        x = np.clip(np.rint(x), column.low, column.high)
        return pd.array(x.astype(np.int64), dtype=dtype)
    if column.decimals is not None:
        x = np.clip(np.round(x, column.decimals), column.low, column.high)
    if pd.api.types.is_float_dtype(dtype) and isinstance(dtype, np.dtype):
        return x.astype(dtype)
    if isinstance(dtype, np.dtype):
        return x.astype(float_dtype)
    return pd.array(x, dtype=dtype)
