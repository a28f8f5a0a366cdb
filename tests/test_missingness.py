"""Gaps in samples: ``sample`` puts gaps where the training data had them."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_array_equal
from pandas.testing import assert_frame_equal

from skvae import VAETransformer
from skvae._missingness import _calibrate, draw_gaps


@pytest.fixture(scope="module")
def gappy():
    """30 % gaps at random in c, 10 % in the category d, and b missing
    exactly where a > 0."""
    rng = np.random.default_rng(0)
    n = 400
    a = rng.normal(size=n)
    df = pd.DataFrame(
        {
            "a": a,
            "b": a + 0.5 * rng.normal(size=n),
            "c": rng.normal(size=n),
            "d": np.where(rng.random(n) < 0.5, "u", "v").astype(object),
            "e": pd.array(rng.integers(0, 5, size=n), dtype="Int64"),
        }
    )
    df.loc[a > 0, "b"] = np.nan
    df.loc[rng.random(n) < 0.3, "c"] = np.nan
    df.loc[rng.random(n) < 0.1, "d"] = None
    df.loc[rng.random(n) < 0.2, "e"] = pd.NA
    return df


@pytest.fixture(scope="module")
def fitted(gappy, small_vae):
    return small_vae().fit(gappy)


def test_the_fitted_model_knows_each_columns_missing_rate(fitted, gappy):
    assert fitted.missing_rates_ == gappy.isna().mean().to_dict()


def test_samples_have_each_columns_missing_rate(fitted, gappy):
    samples = fitted.sample(20_000, random_state=0)
    rates = samples.isna().mean()
    assert (np.abs(rates - gappy.isna().mean()) < 0.01).all(), rates
    assert_frame_equal(samples.dtypes.to_frame(), gappy.dtypes.to_frame())


def test_gaps_keep_their_dependence_on_other_columns(fitted):
    # b is missing exactly where a > 0. Gaps drawn independently of the code
    # would miss b at its rate (0.5) on both sides, within about 0.016 (one
    # standard deviation of the difference); this short fit gives 0.58 and
    # 0.34 (0.23 to 0.28 apart over seeds 0 to 3).
    samples = fitted.sample(4000, random_state=0)
    positive = samples["a"] > 0
    above = samples["b"][positive].isna().mean()
    below = samples["b"][~positive].isna().mean()
    assert above > 0.5 > below and above - below > 0.15


def test_missing_false_draws_the_same_rows_without_gaps(fitted):
    with_gaps = fitted.sample(200, random_state=0)
    without = fitted.sample(200, random_state=0, missing=False)
    assert not without.isna().any().any()
    assert with_gaps.isna().any().any()
    observed = with_gaps.notna()
    assert_frame_equal(without.where(observed), with_gaps.where(observed))


def test_means_have_no_gaps(fitted):
    assert not fitted.sample(200, random_state=0, return_mean=True).isna().any().any()


def test_conditional_samples_have_gaps_in_the_other_columns_only(fitted, gappy):
    samples = fitted.sample(4000, random_state=0, given={"d": "u", "e": 2})
    assert not samples[["d", "e"]].isna().any().any()
    # c is missing at random: its rate does not depend on the condition.
    assert abs(samples["c"].isna().mean() - gappy["c"].isna().mean()) < 0.03


def test_a_model_fitted_without_gaps_samples_none(gappy, small_vae):
    vae = small_vae(max_epochs=2).fit(gappy.dropna())
    assert not vae.sample(500, random_state=0).isna().any().any()
    assert set(vae.missing_rates_.values()) == {0.0}


def test_arrays_get_nan_or_their_missing_values_marker(small_vae):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 3))
    X[rng.random(300) < 0.3, 1] = np.nan
    samples = small_vae(max_epochs=5).fit(X).sample(20_000, random_state=0)
    assert abs(np.isnan(samples[:, 1]).mean() - np.isnan(X[:, 1]).mean()) < 0.01
    assert not np.isnan(samples[:, [0, 2]]).any()
    # With a number as the marker of gaps, gaps come back as that number.
    marked = np.where(np.isnan(X), -999.0, X)
    vae = small_vae(max_epochs=5, missing_values=-999.0).fit(marked)
    samples = vae.sample(1000, random_state=0)
    assert not np.isnan(samples).any()
    assert 0.2 < (samples[:, 1] == -999.0).mean() < 0.4


def test_an_integer_column_with_a_marker_keeps_its_dtype(small_vae):
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"a": rng.normal(size=200), "k": rng.integers(1, 5, size=200)})
    df.loc[rng.random(200) < 0.3, "k"] = -1
    samples = (
        small_vae(max_epochs=2, missing_values=-1).fit(df).sample(500, random_state=0)
    )
    assert samples["k"].dtype == np.int64
    assert 0.15 < (samples["k"] == -1).mean() < 0.45


def test_the_intercepts_set_the_mean_rate_over_the_prior():
    rng = np.random.default_rng(0)
    prior = rng.standard_normal((5000, 2))
    coef = np.array([[3.0, 0.0], [0.0, -1.0]])
    intercept = _calibrate(prior, coef, np.zeros(2), np.array([0.1, 0.7]))
    rates = 1 / (1 + np.exp(-(prior @ coef.T + intercept)))
    np.testing.assert_allclose(rates.mean(axis=0), [0.1, 0.7], atol=1e-9)


def test_save_and_load_keep_the_model_of_gaps(fitted, tmp_path):
    path = tmp_path / "model.safetensors"
    fitted.save(path)
    loaded = VAETransformer.load(path)
    assert loaded.missing_rates_ == fitted.missing_rates_
    assert_frame_equal(
        loaded.sample(300, random_state=1), fitted.sample(300, random_state=1)
    )


def test_partial_fit_learns_the_gaps_of_the_latest_chunk(gappy, small_vae):
    vae = small_vae(max_epochs=2)
    vae.partial_fit(gappy)
    assert vae.missing_rates_["c"] > 0.2
    vae.partial_fit(gappy.fillna({"c": 0.0}))
    assert vae.missing_rates_["c"] == 0.0
    assert_array_equal(vae.sample(100, random_state=0)["c"].isna(), False)


def test_a_model_saved_before_gaps_were_modelled_samples_none(tmp_path):
    data = Path(__file__).parent / "data"
    loaded = VAETransformer.load(data / "model_v1.safetensors")
    assert not np.isnan(loaded.sample(50, random_state=0)).any()
    loaded.save(tmp_path / "again.safetensors")  # and saves again


def test_gaps_of_equally_likely_rows_come_at_the_exact_rate():
    # Stratified draws: with the same probability in every row, a column of
    # 1,000 rows gets exactly 1,000 p gaps (independent draws: 300 +- 14.5).
    logit = np.log([0.3 / 0.7, 0.05 / 0.95])
    model = {"columns": [0, 2], "coef": [[0.0, 0.0]] * 2, "intercept": logit}
    for seed in range(5):
        gaps = draw_gaps(model, np.zeros((1000, 2)), 3, seed)
        assert gaps.sum(axis=0).tolist() == [300, 0, 50]
    # Each row still has its own probability: over seeds, row 0 is missing
    # as often as any other.
    share = np.mean(
        [draw_gaps(model, np.zeros((10, 2)), 3, s)[0, 0] for s in range(2000)]
    )
    assert abs(share - 0.3) < 0.035
