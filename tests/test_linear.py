"""VAEImputer's linear read-out of the rows the model completes."""

import copy

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.linear_model import Ridge

from skvae import VAEImputer
from skvae._donors import blend, choose, make_pool
from skvae._linear import (
    ALPHAS,
    MAX_ENTRIES,
    crossfit,
    fit_readout,
    linear_entries,
    predict,
    ridge,
)

FAST = dict(max_epochs=20, n_impute_samples=50, random_state=0)


def correlated_rows(n=200, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 4)) @ rng.normal(size=(4, 4))


@pytest.mark.parametrize("alpha", [1e-3, 1.0])
def test_ridge_gives_each_entry_the_regression_on_the_others(alpha):
    rows = correlated_rows()
    targets = np.array([0, 2])
    center, coef = ridge(rows, alpha, targets)
    assert_allclose(center, rows.mean(axis=0))
    for j in range(4):
        others = np.delete(np.arange(4), j)
        if j not in targets:
            assert not coef[:, j].any()
            continue
        # scikit-learn's Ridge (intercept not penalised), alpha per row.
        reference = Ridge(alpha=alpha * len(rows)).fit(rows[:, others], rows[:, j])
        assert coef[j, j] == 0.0
        assert_allclose(coef[others, j], reference.coef_, rtol=1e-8, atol=1e-10)
        assert_allclose(
            predict(rows, center, coef)[:, j],
            reference.predict(rows[:, others]),
            rtol=1e-8,
        )


def test_crossfit_predicts_a_row_without_its_own_value():
    rows = correlated_rows()
    positions = np.array([3, 3, 50])
    keys = rows[positions] + 0.1
    targets = np.array([1])
    first = crossfit(rows, positions, keys, targets, np.random.default_rng(0))
    # Row 3 of the pool changed beyond recognition: its own predictions stay.
    changed = rows.copy()
    changed[3] = 100.0
    again = crossfit(changed, positions, keys, targets, np.random.default_rng(0))
    assert set(first) == set(ALPHAS)
    for alpha in ALPHAS:
        assert_allclose(again[alpha][:2, 1], first[alpha][:2, 1], rtol=1e-10)
        assert not np.allclose(again[alpha][2, 1], first[alpha][2, 1])


def test_fit_readout_takes_each_entrys_penalty():
    rows = correlated_rows()
    targets = np.array([0, 3])
    center, coef = fit_readout(rows, np.array([1e-3, 1.0]), targets)
    assert_allclose(coef[:, 0], ridge(rows, 1e-3, targets)[1][:, 0], rtol=1e-6)
    assert_allclose(coef[:, 3], ridge(rows, 1.0, targets)[1][:, 3], rtol=1e-6)
    assert not coef[:, [1, 2]].any()
    assert_allclose(center, rows.mean(axis=0), rtol=1e-6)


def test_linear_entries_are_the_numeric_columns_of_narrow_tables():
    columns = np.array([0, 1, 1, 1, 2])  # column 1: three one-hot entries
    assert linear_entries(columns, [0, 2]).tolist() == [0, 4]
    wide = np.arange(MAX_ENTRIES + 1)
    assert linear_entries(wide, list(wide)).size == 0


def test_choose_takes_the_readout_where_a_column_is_linear():
    # Column 2 is column 0 plus column 1; the model fills every hidden entry
    # with 0. The read-out of column 2 is exact, that of column 0 is noise:
    # v is high on column 2 and 0 on column 0.
    rng = np.random.default_rng(0)
    rows = rng.normal(size=(300, 3))
    rows[:, 2] = rows[:, 0] + rows[:, 1]
    truth = np.full_like(rows, np.nan)
    truth[:200, 2] = rows[:200, 2]
    truth[200:, 0] = rows[200:, 0]
    fills = np.where(np.isnan(truth), rows, 0.0)
    readout = np.full_like(rows, np.nan)
    readout[:, 2] = fills[:, 0] + fills[:, 1]  # the exact regression
    readout[:, 0] = rng.normal(size=300)  # a read-out of noise
    values = rows.copy()
    choice = choose(
        truth,
        fills,
        rows,
        values,
        np.arange(300),
        np.arange(3),
        3,
        (5,),
        {0.1: readout},
    )
    assert choice.linear[2] > 0.5 and choice.alpha[2] == 0.1
    assert choice.linear[0] == 0.0 and choice.alpha[0] == 0.0
    assert choice.weight[2] + choice.linear[2] <= 1.0


def test_blend_adds_the_readout_by_hand():
    # No donors (weight 0); column 1 = 2 * column 0 read out with v = 0.5.
    keys = np.array([[0.0, 0.0], [1.0, 2.0], [2.0, 4.0]])
    coef = np.array([[0.0, 2.0], [0.0, 0.0]])
    _, _, linear, pool = make_pool(
        [[0, 0], [0.0, 0.0], [0.0, 0.5]], keys, keys, (np.zeros(2), coef), [1, 1]
    )
    assert linear.tolist() == [0.0, 0.5]
    fills = torch.tensor([[3.0, 1.0]])
    out = blend(fills, torch.tensor([[3.0, 1.0]]), pool, 1)
    assert out.tolist() == [[3.0, 1.0 + 0.5 * (6.0 - 1.0)]]


def linear_table(n=300, seed=0):
    """Column 3 is the sum of columns 0 to 2 (no rows repeat), with gaps."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    X = np.column_stack([X, X.sum(axis=1)])
    gaps = np.zeros(X.shape, dtype=bool)
    gaps[:, 3] = rng.random(n) < 0.2
    return X, np.where(gaps, np.nan, X), gaps


def test_the_readout_fills_a_linear_column():
    X, X_gaps, gaps = linear_table()
    imputer = VAEImputer(**FAST).fit(X_gaps)
    assert imputer.linear_weights_[3] >= 0.75
    filled = imputer.transform(X_gaps)
    error = np.sqrt(np.mean((filled[gaps] - X[gaps]) ** 2))
    # Without the read-out (donors off) the short fit is far from exact.
    alone = VAEImputer(n_neighbors=0, **FAST).fit(X_gaps).transform(X_gaps)
    error_alone = np.sqrt(np.mean((alone[gaps] - X[gaps]) ** 2))
    assert error < 0.5 * error_alone
    assert not VAEImputer(n_neighbors=0, **FAST).fit(X_gaps).linear_weights_.any()


def test_draws_do_not_take_the_readout():
    X, X_gaps, gaps = linear_table()
    imputer = VAEImputer(sample_posterior=True, **FAST).fit(X_gaps)
    assert imputer.linear_weights_[3] > 0
    without = copy.deepcopy(imputer)
    pool = without._donor_pool
    without._donor_pool = pool._replace(linear=torch.zeros_like(pool.linear))
    assert_array_equal(without.transform(X_gaps), imputer.transform(X_gaps))


def test_save_and_load_keep_the_readout(tmp_path):
    _, X_gaps, _ = linear_table()
    imputer = VAEImputer(**FAST).fit(X_gaps)
    assert imputer.linear_weights_.any()
    imputer.save(tmp_path / "i.safetensors")
    loaded = VAEImputer.load(tmp_path / "i.safetensors")
    assert_array_equal(loaded.linear_weights_, imputer.linear_weights_)
    assert_array_equal(loaded.transform(X_gaps), imputer.transform(X_gaps))
