"""Numeric columns from the internal scale back to their units, in torch.

``ColumnSchema.decode`` and the ONNX imputer graph both decode numeric columns
with ``decode_numeric``, on the ``NumericDecoding`` of the columns: the
inverse of each column's ``ColumnTransform``, the levels of integer columns
with levels, and the rounding of integer columns and of float columns recorded
to few decimals into the range seen in ``fit``.
"""

from typing import NamedTuple

import numpy as np
import pandas as pd
import torch

from ._transforms import SplineTable, invert_splines, is_linear, spline_table


class NumericDecoding(NamedTuple):
    """What ``decode_numeric`` needs of ``k`` numeric columns, as tensors.

    Built by ``numeric_decoding``. Positions count among the ``k`` columns.
    """

    splines: SplineTable | None  # of the transformed columns without levels
    transformed: torch.Tensor  # (n_transformed,) their positions
    clip: torch.Tensor  # (n_transformed,) bool: ``ColumnTransform.clip``
    linear: bool  # whether they are all linear (``is_linear``)
    leveled: torch.Tensor  # (n_leveled,) positions of columns with levels
    levels: torch.Tensor  # (n_leveled, width) float64, padded with the last
    cuts: torch.Tensor  # (n_leveled, width - 1) float64, padded with +inf
    integer: torch.Tensor  # (k,) bool: rounded to whole numbers
    powers: torch.Tensor  # (k,) float64: 10 ** decimals (1 without)
    decimals: torch.Tensor  # (k,) bool: rounded to ``decimals`` decimals
    low: torch.Tensor  # (k,) float64: the range of ``fit``
    high: torch.Tensor  # (k,) float64
    single: torch.Tensor  # (k,) bool: given back as float32


def restored_dtype(column, float_dtype):
    """The dtype a numeric ``column`` is given back in: its own for integer and
    NumPy float columns, ``float_dtype`` for other NumPy dtypes."""
    dtype = pd.api.types.pandas_dtype(column.dtype)
    if isinstance(dtype, np.dtype) and not pd.api.types.is_float_dtype(dtype):
        if not pd.api.types.is_integer_dtype(dtype):
            return np.dtype(float_dtype)
    return dtype


def numeric_decoding(columns, float_dtype, dataframe=True):
    """The ``NumericDecoding`` of numeric ``columns`` (``_column.Column``),
    given back in ``float_dtype`` where their dtype is not a float or an
    integer one, and always without ``dataframe`` (an array's columns)."""
    k = len(columns)
    leveled = [j for j, c in enumerate(columns) if c.levels is not None]
    transformed = [
        j for j, c in enumerate(columns) if c.levels is None and c.transform is not None
    ]
    integer, powers, decimals = np.zeros(k, bool), np.ones(k), np.zeros(k, bool)
    single = np.zeros(k, bool)
    for j, column in enumerate(columns):
        dtype = restored_dtype(column, float_dtype)
        integer[j] = pd.api.types.is_integer_dtype(dtype)
        if column.decimals is not None and not integer[j]:
            decimals[j], powers[j] = True, 10.0**column.decimals
        if not dataframe:
            dtype = np.dtype(float_dtype)
        single[j] = getattr(dtype, "numpy_dtype", dtype) == np.float32
    transforms = [columns[j].transform for j in transformed]
    width = max([len(columns[j].levels) for j in leveled], default=1)
    levels = np.array(
        [_padded(columns[j].levels, width, columns[j].levels[-1]) for j in leveled],
        dtype=np.float64,
    ).reshape(len(leveled), width)
    cuts = np.array(
        [_padded(columns[j].cuts, width - 1, np.inf) for j in leveled],
        dtype=np.float64,
    ).reshape(len(leveled), width - 1)
    return NumericDecoding(
        spline_table(transforms) if transforms else None,
        torch.tensor(transformed, dtype=torch.int64),
        torch.tensor([t.clip for t in transforms], dtype=torch.bool),
        is_linear(transforms),
        torch.tensor(leveled, dtype=torch.int64),
        torch.from_numpy(levels),
        torch.from_numpy(cuts),
        torch.from_numpy(integer),
        torch.from_numpy(powers),
        torch.from_numpy(decimals),
        torch.tensor([_bound(c.low, -np.inf) for c in columns], dtype=torch.float64),
        torch.tensor([_bound(c.high, np.inf) for c in columns], dtype=torch.float64),
        torch.from_numpy(single),
    )


def _padded(values, width, fill):
    return list(values) + [fill] * (width - len(values))


def _bound(value, default):
    return default if value is None else float(value)


def decode_numeric(s, decoding):
    """Values in the columns' units of internal values ``s``.

    Parameters
    ----------
    s : float64 tensor of shape (n_rows, k)
        Decoded means or draws of the ``k`` columns of ``decoding``.
    decoding : NumericDecoding

    Returns
    -------
    float64 tensor of the shape of ``s``: a column with levels gives the
    level whose interval holds its value (as ``np.searchsorted`` of the
    cuts), a transformed one its inverse; integer columns are then rounded
    to whole numbers and float columns with decimals to that many (as NumPy's
    ``rint`` and ``round``), both clipped to the range of ``fit``, and float32
    columns rounded to float32.
    """
    x = s
    if len(decoding.transformed):
        columns = s.index_select(1, decoding.transformed)
        values = invert_splines(
            columns, decoding.splines, decoding.clip, decoding.linear
        )
        x = x.index_copy(1, decoding.transformed, values)
    if len(decoding.leveled):
        columns = s.index_select(1, decoding.leveled)
        which = (columns.unsqueeze(-1) > decoding.cuts).sum(dim=-1)
        values = torch.gather(decoding.levels, 1, which.t()).t()
        x = x.index_copy(1, decoding.leveled, values)
    whole = _clipped(torch.round(x), decoding)
    tenths = _clipped(torch.round(x * decoding.powers) / decoding.powers, decoding)
    x = torch.where(decoding.integer, whole, torch.where(decoding.decimals, tenths, x))
    return torch.where(decoding.single, x.to(torch.float32).to(torch.float64), x)


def _clipped(x, decoding):
    return torch.minimum(torch.maximum(x, decoding.low), decoding.high)


def restore_numeric(x, column, float_dtype):
    """Values ``x`` of a numeric column, decoded by ``decode_numeric``, in the
    column's dtype (``restored_dtype``)."""
    dtype = restored_dtype(column, float_dtype)
    if pd.api.types.is_integer_dtype(dtype):
        return pd.array(x.astype(np.int64), dtype=dtype)
    if isinstance(dtype, np.dtype):
        return x.astype(dtype)
    return pd.array(x, dtype=dtype)
