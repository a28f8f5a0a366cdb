"""decode_numeric: numeric columns from the internal scale back to their units."""

import numpy as np
import pandas as pd
import pytest
import torch
from numpy.testing import assert_array_equal

from skvae._decode import decode_numeric, numeric_decoding, restore_numeric
from skvae._schema import Column, fit_schema
from skvae._transforms import ColumnTransform, evaluate_splines, spline_table


def _column(dtype="float64", **kw):
    column = Column("x", "gaussian", dtype)
    for name, value in kw.items():
        setattr(column, name, value)
    return column


def _decode(s, columns, float_dtype=np.float64, dataframe=True):
    s = torch.tensor(np.asarray(s, dtype=np.float64).reshape(len(s), -1))
    return decode_numeric(s, numeric_decoding(columns, float_dtype, dataframe)).numpy()


def test_rounding_keeps_the_exact_float64_bounds_of_fit():
    # 13.1 is not a float32: a bound kept in float32 would give 13.100000381.
    column = _column(decimals=1, low=13.1, high=21.5)
    out = _decode([12.0, 13.14, 13.16, 25.0], [column])[:, 0]
    assert out.tolist() == [13.1, 13.1, 13.2, 21.5]


def test_integer_columns_round_half_to_even_into_the_range():
    column = _column("int64", low=0.0, high=4.0)
    out = _decode([-3.0, 0.5, 1.5, 2.5, 2.6, 9.0], [column])[:, 0]
    assert_array_equal(out, np.clip(np.rint([-3.0, 0.5, 1.5, 2.5, 2.6, 9.0]), 0, 4))
    assert out.tolist() == [0.0, 0.0, 2.0, 2.0, 3.0, 4.0]


def test_levels_are_those_whose_interval_holds_the_value():
    # Cuts -1 and 0.5 between levels 3, 7 and 9; a value on a cut belongs to
    # the level below (np.searchsorted's side "left").
    wide = _column("int64", levels=[3, 7, 9], cuts=[-1.0, 0.5], low=3.0, high=9.0)
    narrow = _column("int64", levels=[0, 1], cuts=[0.0], low=0.0, high=1.0)
    s = np.array([[-2.0, -1.0], [-1.0, 0.0], [0.0, 0.1], [0.5, 3.0], [0.6, -3.0]])
    out = _decode(s, [wide, narrow])
    assert out.tolist() == [[3, 0], [3, 0], [7, 1], [7, 1], [9, 0]]


def test_float32_columns_and_arrays_of_float32_come_back_as_float32_values():
    value = 1 / 3
    single = _decode([value], [_column("float32")])[0, 0]
    assert single == float(np.float32(value)) and single != value
    assert _decode([value], [_column("float64")])[0, 0] == value
    array = _decode([value], [_column("float64")], np.float32, dataframe=False)
    assert array[0, 0] == float(np.float32(value))


@pytest.mark.parametrize("kind", ["normal_scores", "standardize"])
def test_the_inverse_of_a_transform_maps_internal_values_back(kind):
    values = np.random.default_rng(0).gamma(2.0, size=400)
    transform = ColumnTransform.fit(values, kind)
    x = np.linspace(values.min(), values.max(), 101)
    s = transform.transform(x)
    back = _decode(s, [_column(transform=transform)])[:, 0]
    np.testing.assert_allclose(back, x, rtol=1e-12, atol=1e-12)
    if kind == "standardize":  # the closed form: x = mean + std * s
        s = np.array([-40.0, -1.0, 0.3, 1.0, 40.0])
        expected = values.mean() + values.std() * s
        back = _decode(s, [_column(transform=transform)])[:, 0]
        np.testing.assert_allclose(back, expected, rtol=1e-12)
    else:  # normal scores stay within the knots' range
        back = _decode(np.array([-40.0, 40.0]), [_column(transform=transform)])
        ends = transform.x_knots[[0, -1]]
        np.testing.assert_allclose(back[:, 0], ends, rtol=1e-14)


def test_the_inverse_solves_the_spline_to_float64_resolution():
    values = np.random.default_rng(1).standard_t(3, size=300)
    transform = ColumnTransform.fit(values)
    s = np.random.default_rng(2).uniform(-2, 2, size=(50, 1))
    x = transform.inverse(s)
    (again,) = evaluate_splines(torch.from_numpy(x), spline_table([transform]), (0,))
    np.testing.assert_allclose(again.numpy(), s, rtol=0, atol=1e-13)
    assert np.isnan(transform.inverse(np.array([np.nan]))[0])


def test_a_schema_decodes_numeric_and_categorical_columns_as_fit_saw_them():
    frame = pd.DataFrame(
        {
            "count": pd.array([0, 6, 2, 3], dtype="Int64"),
            "mass": [3.25, 4.5, 3.75, 5.0],
            "kind": ["a", "b", "a", "b"],
        }
    )
    schema = fit_schema(frame, "auto", numeric_transform="normal_scores")
    decoded = schema.decode(schema.encode(frame))
    pd.testing.assert_frame_equal(decoded, frame)
    assert [schema.columns[i].name for i in schema.numeric_columns()] == [
        "count",
        "mass",
    ]


def test_restore_numeric_gives_the_column_dtype():
    x = np.array([1.0, 2.0])
    assert restore_numeric(x, _column("Int16"), np.float64).dtype == "Int16"
    assert restore_numeric(x, _column("float32"), np.float64).dtype == np.float32
    assert restore_numeric(x, _column("bool"), np.float32).dtype == np.float32
