"""VAEImputer's donors: a look-up step among the training rows."""

import numpy as np
import pytest
import torch
from numpy.testing import assert_array_equal

from skvae import VAEImputer
from skvae._donors import blend, make_pool, nearest
from skvae._importance import posterior_mean

FAST = dict(max_epochs=20, n_impute_samples=50, random_state=0)


def test_nearest_puts_exact_agreement_first():
    # Row 0 agrees exactly on two entries and is far on the third; row 1 is
    # 0.1 away on every entry: the look-up distance takes row 0 first.
    pool = torch.tensor([[1.0, 2.0, 9.0], [1.1, 2.1, 3.1], [5.0, 5.0, 5.0]])
    index = nearest(torch.tensor([[1.0, 2.0, 3.0]]), pool, 3)
    assert index.tolist() == [[0, 1, 2]]
    # A row may be kept from taking itself.
    assert nearest(pool[:1], pool, 1, torch.tensor([0])).tolist() == [[1]]


def test_blend_by_hand():
    # Two columns; the donors of column 0 are the 2 nearest rows that
    # observed it, blended in with weight 0.5; column 1 keeps its fill.
    keys = np.array([[0.0, 0.0], [0.0, 1.0], [0.0, 2.0], [0.0, 3.0]])
    values = np.array([[np.nan, 0.0], [4.0, 1.0], [6.0, 2.0], [100.0, 3.0]])
    _, _, _, pool = make_pool([[2, 0], [0.5, 0.0]], keys, values, None, [1, 1])
    assert pool.coef is None  # no read-out: no coefficients held or applied
    fills = torch.tensor([[1.0, 7.0]])
    query = torch.tensor([[0.0, 0.0]])
    out = blend(fills, query, pool, 4)
    # Row 0 did not observe column 0: the donors are rows 1 and 2, mean 5.
    assert out.tolist() == [[1.0 + 0.5 * (5.0 - 1.0), 7.0]]


def grouped_table(n_groups=30, repeats=6, seed=0):
    """A table of groups whose 3 columns repeat exactly over ``repeats`` rows
    at different values of a fourth column, with gaps in the first one."""
    rng = np.random.default_rng(seed)
    groups = rng.normal(size=(n_groups, 3)).round(2)
    X = np.repeat(groups, repeats, axis=0)
    X = np.column_stack([X, rng.normal(size=len(X)).round(2)])
    gaps = np.zeros(X.shape, dtype=bool)
    gaps[:, 0] = rng.random(len(X)) < 0.2
    return X, np.where(gaps, np.nan, X), gaps


def test_donors_look_up_repeated_rows():
    X, X_gaps, gaps = grouped_table()
    imputer = VAEImputer(**FAST).fit(X_gaps)
    assert imputer.donor_weights_[0] == 1.0
    assert imputer.n_neighbors_[0] >= 1
    filled = imputer.transform(X_gaps)
    # Every gap of column 0 is filled with its group's value exactly.
    assert_array_equal(filled[gaps], X[gaps])
    alone = imputer.set_params(n_neighbors=0).fit(X_gaps).transform(X_gaps)
    assert not np.allclose(alone[gaps], X[gaps], atol=1e-3)


@pytest.mark.parametrize("off", [0, None])
def test_without_donors_the_fills_are_the_models(off):
    X, X_gaps, gaps = grouped_table()
    imputer = VAEImputer(n_neighbors=off, **FAST).fit(X_gaps)
    assert not imputer.donor_weights_.any()
    assert not imputer.n_neighbors_.any()
    _, dataset = imputer._inference_data(X_gaps)
    means = imputer._importance_sampled(posterior_mean, dataset, 50).numpy()
    means = imputer._schema.decode(means.astype(np.float64))
    filled = imputer.transform(X_gaps)
    assert_array_equal(filled[gaps], means[gaps])


def test_a_fixed_number_of_donors():
    _, X_gaps, _ = grouped_table()
    imputer = VAEImputer(n_neighbors=3, **FAST).fit(X_gaps)
    assert set(imputer.n_neighbors_.tolist()) <= {0, 3}
    with pytest.raises(ValueError, match="n_neighbors"):
        VAEImputer(n_neighbors=-1).fit(X_gaps)


def test_drawn_fills_take_a_donors_value():
    # With weight 1 and the group's rows as donors, each drawn fill is one
    # donor's value: the group's own.
    X, X_gaps, gaps = grouped_table()
    imputer = VAEImputer(sample_posterior=True, **FAST).fit(X_gaps)
    assert imputer.donor_weights_[0] == 1.0
    draws = [imputer.transform(X_gaps)[gaps] for _ in range(2)]
    support = set(X_gaps[:, 0][~np.isnan(X_gaps[:, 0])])
    for drawn in draws:
        assert set(drawn) <= support
        assert np.mean(drawn == X[gaps]) > 0.9


def test_save_and_load_keep_the_donors(tmp_path):
    X, X_gaps, _ = grouped_table()
    imputer = VAEImputer(**FAST).fit(X_gaps)
    imputer.save(tmp_path / "i.safetensors")
    loaded = VAEImputer.load(tmp_path / "i.safetensors")
    assert_array_equal(loaded.donor_weights_, imputer.donor_weights_)
    assert_array_equal(loaded.n_neighbors_, imputer.n_neighbors_)
    assert_array_equal(loaded.transform(X_gaps), imputer.transform(X_gaps))


def regression_slope(X):
    """Least-squares coefficient of column 0 in the regression of column 2
    on columns 0 and 1, and its variance."""
    design = np.column_stack([np.ones(len(X)), X[:, :2]])
    coef, *_ = np.linalg.lstsq(design, X[:, 2], rcond=None)
    residuals = X[:, 2] - design @ coef
    sigma2 = residuals @ residuals / (len(X) - 3)
    return coef[1], sigma2 * np.linalg.inv(design.T @ design)[1, 1]


def test_multiple_imputations_vary_as_the_gaps_are_uncertain():
    # Rubin's rules need the completions to differ between imputations as
    # much as the gaps are unknown: with a third of x missing, the variance
    # of the slope between 10 imputations is a sizeable share of the
    # variance within one (the fraction of missing information); the
    # expected values would make it 0.
    for seed in range(3):
        rng = np.random.default_rng(seed)
        x, w = rng.multivariate_normal([0, 0], [[1, 0.5], [0.5, 1]], 200).T
        X = np.column_stack([x, w, 1 + x + 0.5 * w + rng.normal(size=200)])
        X[rng.random(200) < 1 / 3, 0] = np.nan
        imputer = VAEImputer(
            sample_posterior=True,
            max_epochs=30,
            n_impute_samples=100,
            random_state=seed,
        )
        imputer.fit(X)
        slopes, variances = zip(
            *(regression_slope(imputer.transform(X)) for _ in range(10))
        )
        between, within = np.var(slopes, ddof=1), np.mean(variances)
        assert 0.05 < between / within < 1.0
