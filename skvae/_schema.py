"""Column schema: what ``fit`` learns about each column of X.

The network sees one float matrix ("encoded" data): a numeric column is one
feature, as given or through a monotone transform to normal scores; a
categorical column is a block of one-hot features, one per category; a gap is
NaN (across the whole block for a categorical column). The schema maps a
table to that matrix and back (``encode``, ``decode``), resolves
``likelihood="auto"`` per column, and tells the model which likelihood covers
which features (``blocks``).
"""

from functools import cached_property

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

from ._column import EMPTY, Column
from ._decode import decode_numeric, numeric_decoding, restore_numeric
from ._likelihoods import (
    FAST_SCALE_NORMAL_SCORES,
    NORMAL_SCORES,
    STANDARDIZED_HETEROSCEDASTIC,
)
from ._scan import (
    AUTO,
    CATEGORICAL,
    categories_of,
    check_columns,
    check_integers,
    check_magnitude,
    column_kind,
    column_values,
    count_decimals,
    float_dtype,
    is_empty,
    numeric_values,
    observed_values,
    requested_likelihoods,
    require_explicit,
    scan,
)
from ._transforms import (
    ColumnTransform,
    fit_levels,
    one_hot,
    restore_categories,
    spread_levels,
    unseen_categories,
)


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
        and transformed Gaussian columns are ``NORMAL_SCORES`` (with
        ``fast_scale``, ``FAST_SCALE_NORMAL_SCORES``) or, with a
        ``unit_floor``, ``STANDARDIZED_HETEROSCEDASTIC``.
        """
        blocks = []
        for column in self.columns:
            if not column.width:
                continue
            name = column.likelihood
            transform = column.transform
            if name == "gaussian" and transform and transform.kind == "normal_scores":
                # Its floor on the scale suits unit variance.
                name = FAST_SCALE_NORMAL_SCORES if column.fast_scale else NORMAL_SCORES
            elif name == "gaussian_heteroscedastic" and column.unit_floor:
                name = STANDARDIZED_HETEROSCEDASTIC  # as NORMAL_SCORES
            if blocks and blocks[-1][0] == name and not column.categorical:
                blocks[-1][1] += column.width
            else:
                blocks.append([name, column.width])
        return tuple((name, width) for name, width in blocks)

    def kept(self, keep_empty=False):
        """Per column, whether it has features in the model (every column
        with ``keep_empty``): the columns that outputs keep."""
        return np.array([bool(c.width) or keep_empty for c in self.columns])

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
    def encode(self, X, allow_missing=True, rng=None, unseen="missing", only=None):
        """The encoded float matrix of validated ``X`` (a DataFrame, or a
        numeric array, sparse matrix or memmap returned as is when the
        schema is the identity). Gaps become NaN; with ``allow_missing=False``
        a gap in a categorical column is an error (numeric columns are
        checked by ``check``). A category that ``fit`` did not see becomes
        NaN too (the encoder sees it as a gap; ``unseen_terms`` scores it),
        or is an error with ``unseen="raise"`` (for training data). With
        ``rng`` (a NumPy Generator; for training data), integer columns with
        ``levels`` are spread over their intervals. With ``only`` (positions
        of columns), the other columns' features are left NaN, unread."""
        if self.identity and not isinstance(X, pd.DataFrame):
            return X
        out = np.empty((X.shape[0], self.n_features), dtype=self.dtype)
        if only is not None:
            out[:] = np.nan
        for i, column in enumerate(self.columns):
            if not column.width or (only is not None and i not in only):
                continue
            values = column_values(X, i)
            block = out[:, column.start : column.start + column.width]
            if column.categorical:
                block[:] = one_hot(values, column, allow_missing, unseen)
            elif rng is not None and column.levels is not None:
                block[:, 0] = spread_levels(numeric_values(values), column, rng)
            elif column.transform is not None:
                block[:, 0] = column.transform.transform(numeric_values(values))
            else:
                block[:, 0] = numeric_values(values)
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
                x = numeric_values(column_values(X, i))
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
                unseen = unseen_categories(column_values(X, i), column)
                if unseen.any():
                    out[unseen, i] = column.unseen_log_prob
        return out

    def check(self, X, allow_nan=True, support=True):
        """Check the numeric columns of ``X`` for infinity, NaN (unless
        ``allow_nan``) and, with ``support``, values outside the support of
        the likelihood of those modelled as given."""
        check_columns(X, self.columns, allow_nan, support)

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
        numeric = self._decode_numeric(encoded)
        values = [
            numeric[i] if i in numeric else self._decode_column(c, encoded)
            for i, c in enumerate(self.columns)
        ]
        if self.dataframe:
            names = [c.name for c in self.columns]
            return pd.DataFrame(dict(zip(range(len(names)), values))).set_axis(
                names, axis=1
            )
        if any(c.categorical for c in self.columns):
            return np.column_stack([np.asarray(v, dtype=object) for v in values])
        return np.column_stack(values).astype(self.dtype, copy=False)

    def feature_columns(self):
        """The position of the input column of each encoded feature."""
        widths = [column.width for column in self.columns]
        return np.repeat(np.arange(len(widths)), widths)

    def numeric_columns(self):
        """Positions of the modelled numeric columns: those that
        ``decode_numeric`` gives back, in order."""
        return [i for i, c in enumerate(self.columns) if c.width and not c.categorical]

    def numeric_decoding(self):
        """The ``NumericDecoding`` of the ``numeric_columns``."""
        columns = [self.columns[i] for i in self.numeric_columns()]
        return numeric_decoding(columns, self.dtype, self.dataframe)

    def _decode_numeric(self, encoded):
        """``{position: values}`` of the numeric columns of ``encoded``."""
        positions = self.numeric_columns()
        if not positions:
            return {}
        starts = [self.columns[i].start for i in positions]
        s = torch.from_numpy(np.asarray(encoded[:, starts], dtype=np.float64))
        x = decode_numeric(s, self.numeric_decoding()).numpy()
        return {
            i: restore_numeric(x[:, j], self.columns[i], self.dtype)
            for j, i in enumerate(positions)
        }

    def _decode_column(self, column, encoded):
        """A categorical column of ``encoded``, or zeros for an empty one."""
        if not column.width:
            return np.zeros(len(encoded))
        block = encoded[:, column.start : column.start + column.width]
        codes = np.asarray(block).argmax(axis=1)
        return restore_categories(codes, column)


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
    requested = requested_likelihoods(likelihood, names)
    kinds = [column_kind(X, i, names[i], requested[i]) for i in range(len(names))]
    numeric = [
        i
        for i, kind in enumerate(kinds)
        if kind == "numeric" and requested[i] != CATEGORICAL
    ]
    explicit = {i: requested[i] for i in numeric if requested[i] != AUTO}
    ranges = scan(X, numeric, names, explicit, allow_nan=allow_nan)
    empty = {i for i in range(len(names)) if is_empty(X, i, ranges)}
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
        if i in empty:
            columns.append(Column(name, EMPTY, dtypes[i]))
        elif kinds[i] == CATEGORICAL or requested[i] == CATEGORICAL:
            column = _categorical_column(X, i, name)
            one_hot(column_values(X, i), column, allow_nan)  # gaps where none may be
            columns.append(column)
        else:
            chosen = "bernoulli" if requested[i] == AUTO and classic else requested[i]
            low, high = ranges[i]
            column = Column(name, chosen, dtypes[i], low=low, high=high)
            options = (numeric_likelihood, numeric_transform, dataframe)
            columns.append(_numeric_column(X, i, column, *options))
    return ColumnSchema(columns, dataframe, float_dtype(X))


def _numeric_column(X, i, column, numeric_likelihood, numeric_transform, dataframe):
    """Complete ``column``, numeric column ``i`` of ``X`` with its range: an
    ``"auto"`` likelihood (outside the classic model) becomes
    ``numeric_likelihood`` on the scale of ``numeric_transform``."""
    value_range = (column.low, column.high)
    check_integers(column.name, column.dtype, value_range)
    if column.likelihood == AUTO:
        if sp.issparse(X):
            require_explicit(column.name, value_range)
        column.likelihood = numeric_likelihood
        if numeric_transform is not None:
            return _transformed_column(X, i, column, numeric_transform, dataframe)
    check_magnitude(column.name, value_range)
    if dataframe and count_decimals(observed_values(X, i), column.dtype) == 0:
        # As fit_levels: a float column of whole numbers is an integer column,
        # and its outputs are whole numbers as an int64 column's are.
        column.decimals = 0
    return column


def _transformed_column(X, i, column, numeric_transform, dataframe):
    """``column`` modelled on the internal scale of ``numeric_transform``."""
    values = observed_values(X, i)
    column.transform = ColumnTransform.fit(values, numeric_transform)
    column.decimals = count_decimals(values, column.dtype)
    if column.transform.kind == "normal_scores":  # cuts are normal scores
        column.levels, column.cuts = fit_levels(values, column, dataframe)
        column.fast_scale = column.likelihood == "gaussian"
    elif column.likelihood == "gaussian_heteroscedastic":
        column.unit_floor = True
    return column


# --------------------------------------------------------------------------
# Categorical columns
# --------------------------------------------------------------------------
def _categorical_column(X, i, name):
    """The categorical column ``i`` of ``X``: its categories as ``fit`` saw them."""
    categories, ordered, dtype, n_observed = categories_of(column_values(X, i), name)
    column = Column(name, CATEGORICAL, dtype, categories, ordered)
    column.n_observed = n_observed
    return column
