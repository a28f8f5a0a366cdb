"""Property tests: generated DataFrames through every estimator.

Tables mix the column kinds pandas gives (float, whole-number float, int,
nullable Int64/Float64/boolean, bool, object strings, category), with and
without gaps, all-numeric and all-categorical ones included, and categories
seen one to three times each. Every estimator must fit them as they come and
give tables back with the same columns and dtypes; the imputer keeps the
observed entries exactly and fills every gap with a value of the column's
support.
"""

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pandas.testing import assert_index_equal, assert_series_equal

from skvae import VAEImputer, VAEOutlierDetector, VAETransformer

TINY = dict(max_epochs=2, hidden_layer_sizes=(8,), n_components=2, random_state=0)
NUMERIC = ("float", "whole_float", "int", "Int64", "Float64")
CATEGORICAL = ("object", "category", "bool", "boolean")
# Kinds whose dtype cannot hold a gap.
NO_GAPS = ("int", "bool")
# Kinds whose values are whole numbers, and whose fills must be too.
INTEGER = ("whole_float", "int", "Int64")
# Few rows keep the fits fast; categories seen once to three times each.
N_ROWS = (4, 12)
SLOW = [HealthCheck.too_slow, HealthCheck.data_too_large]
KINDS = {
    "mixed": NUMERIC + CATEGORICAL,
    "numeric": NUMERIC,
    "categorical": CATEGORICAL,
}


@st.composite
def _gap_mask(draw, kind, n_rows):
    """Where a column of ``kind`` has gaps: none, or 1 to n_rows - 2 rows."""
    gaps = np.zeros(n_rows, dtype=bool)
    if kind in NO_GAPS or not draw(st.booleans()):
        return gaps
    n_gaps = draw(st.integers(1, n_rows - 2))
    gaps[draw(st.permutations(range(n_rows)))[:n_gaps]] = True
    return gaps


@st.composite
def _labels(draw, n_values):
    """Category codes for ``n_values`` entries, each code used 1 to 3 times."""
    sizes = []
    while sum(sizes) < n_values:
        sizes.append(draw(st.integers(1, min(3, n_values - sum(sizes)))))
    codes = np.repeat(np.arange(len(sizes)), sizes)
    return codes[draw(st.permutations(range(n_values)))]


def _observed_values(draw, kind, n_values):
    """``n_values`` observed entries of a column of ``kind``, as a list."""
    if kind in ("float", "Float64"):
        # [0, 1] too: an all-numeric table there is modelled by Bernoulli.
        high = draw(st.sampled_from([1.0, 1e3, 1e9]))
        low = 0.0 if high == 1.0 else -high
        elements = st.floats(low, high, allow_subnormal=False)
    elif kind in INTEGER:
        high = draw(st.sampled_from([1, 50, 2**40]))
        elements = st.integers(0 if high == 1 else -high, high)
    elif kind in ("bool", "boolean"):
        elements = st.booleans()
    else:
        return draw(_levels(n_values))
    return draw(st.lists(elements, min_size=n_values, max_size=n_values))


@st.composite
def _levels(draw, n_values):
    """``n_values`` strings, each distinct one used 1 to 3 times."""
    codes = draw(_labels(n_values))
    n_levels = int(codes.max()) + 1
    names = draw(
        st.lists(
            st.text(max_size=4),
            min_size=n_levels,
            max_size=n_levels,
            unique=True,
        )
    )
    return [names[code] for code in codes]


@st.composite
def _column(draw, kind, n_rows):
    """A pandas Series of ``kind`` with ``n_rows`` rows, and its gap mask."""
    gaps = draw(_gap_mask(kind, n_rows))
    values = np.empty(n_rows, dtype=object)
    values[~gaps] = _observed_values(draw, kind, int((~gaps).sum()))
    values[gaps] = None
    if kind in ("float", "whole_float"):
        column = pd.Series(values, dtype=np.float64)
    elif kind == "int":
        column = pd.Series(values.astype(np.int64))
    elif kind == "bool":
        column = pd.Series(values.astype(bool))
    elif kind == "object":
        column = pd.Series(values, dtype=object)
    elif kind == "category":
        column = pd.Series(pd.Categorical(values))
    else:  # the nullable dtypes, whose gaps are pd.NA
        column = pd.Series(pd.array(list(values), dtype=kind))
    return column, gaps


@st.composite
def tables(draw, mixes=KINDS, first=None):
    """A DataFrame of 4 to 12 rows and 1 to 5 columns, with its gap masks
    and column kinds: those of one of ``mixes``, the first one of ``first``
    if given."""
    n_rows = draw(st.integers(*N_ROWS))
    pool = mixes[draw(st.sampled_from(sorted(mixes)))]
    kinds = draw(st.lists(st.sampled_from(pool), min_size=1, max_size=5))
    if first is not None:
        kinds[0] = draw(st.sampled_from(first))
    columns, gaps = {}, {}
    for i, kind in enumerate(kinds):
        name = f"{kind}_{i}"
        columns[name], gaps[name] = draw(_column(kind, n_rows))
    table = pd.DataFrame(columns)
    # Rows keep their labels through the imputer, whatever the index.
    table.index = draw(st.sampled_from([table.index, table.index[::-1] * 10 + 7]))
    return table, gaps, dict(zip(columns, kinds))


def _assert_same_layout(out, table):
    """``out`` has ``table``'s columns, in order, with the same dtypes."""
    assert isinstance(out, pd.DataFrame)
    assert_index_equal(out.columns, table.columns)
    assert_series_equal(out.dtypes, table.dtypes)


def _assert_filled_in_support(filled, observed, kind):
    """Every fill of a column is a value its observed entries support."""
    assert not filled.isna().any()
    if kind in CATEGORICAL:
        assert set(filled) <= set(observed)
    elif kind in INTEGER:
        values = filled.to_numpy(dtype=np.float64)
        assert np.all(values == np.round(values))
        assert np.all((values >= observed.min()) & (values <= observed.max()))
    else:
        assert np.all(np.isfinite(filled.to_numpy(dtype=np.float64)))


def _check_imputer(table, gaps, kinds):
    out = VAEImputer(**TINY).fit(table).transform(table)
    _assert_same_layout(out, table)
    for name, kind in kinds.items():
        observed = table[name][~gaps[name]]
        assert_series_equal(out[name][~gaps[name]], observed)
        _assert_filled_in_support(out[name][gaps[name]], observed, kind)


def _check_estimators(table, gaps, kinds):
    vae = VAETransformer(**TINY).fit(table)
    _assert_same_layout(vae.sample(3, random_state=0), table)
    _assert_same_layout(vae.inverse_transform(vae.transform(table)), table)
    _check_imputer(table, gaps, kinds)
    labels = VAEOutlierDetector(**TINY).fit(table).predict(table)
    assert set(np.unique(labels)) <= {-1, 1} and labels.shape == (len(table),)


@pytest.mark.xfail(
    strict=False,
    reason="known table bugs, fixed apart (#22): tables without numeric "
    "columns, float columns of whole numbers, object columns returned as str",
)
@settings(max_examples=100, deadline=None, suppress_health_check=SLOW)
@given(generated=tables())
def test_every_estimator_keeps_the_table_layout(generated):
    _check_estimators(*generated)


# Tables clear of the known bugs above (at least one numeric column, no
# whole-number float or object column), held to the same checks meanwhile.
TODAY = tuple(k for k in NUMERIC + CATEGORICAL if k not in ("whole_float", "object"))


@settings(max_examples=30, deadline=None, suppress_health_check=SLOW)
@given(generated=tables({"mixed": TODAY}, first=("float", "int", "Int64", "Float64")))
def test_every_estimator_keeps_the_layout_of_mixed_tables(generated):
    _check_estimators(*generated)
