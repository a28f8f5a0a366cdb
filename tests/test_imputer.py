"""VAEImputer: scikit-learn's imputer API, filled by importance sampling."""

import re

import numpy as np
import pandas as pd
import pytest
import torch
from numpy.testing import assert_array_equal
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline

from skvae import VAEImputer

FAST = dict(max_epochs=40, n_impute_samples=200, random_state=0)


@pytest.fixture(scope="module")
def correlated():
    """Rank-2 data with 20 % of the entries missing at random."""
    rng = np.random.RandomState(0)
    X = rng.randn(300, 2) @ rng.randn(2, 6) * 3 + 10 + 0.1 * rng.randn(300, 6)
    gaps = rng.rand(*X.shape) < 0.2
    return X, np.where(gaps, np.nan, X), gaps


@pytest.fixture(scope="module")
def imputer(correlated):
    return VAEImputer(**FAST).fit(correlated[1])


def test_observed_entries_come_back_unchanged(imputer, correlated):
    _, X_gaps, gaps = correlated
    filled = imputer.transform(X_gaps)
    assert filled.dtype == np.float64 and not np.isnan(filled).any()
    assert np.array_equal(filled[~gaps], X_gaps[~gaps])


def test_gaps_are_filled_better_than_by_the_mean(imputer, correlated):
    X, X_gaps, gaps = correlated
    error = np.abs(imputer.transform(X_gaps) - X)[gaps].mean()
    baseline = np.abs(SimpleImputer().fit_transform(X_gaps) - X)[gaps].mean()
    assert error < 0.5 * baseline


def test_a_row_with_nothing_observed_gets_the_unconditional_mean(imputer, correlated):
    X, X_gaps, _ = correlated
    filled = imputer.transform(np.full((1, 6), np.nan))[0]
    spread = np.nanstd(X_gaps, axis=0)
    assert np.all(np.abs(filled - np.nanmean(X_gaps, axis=0)) < 0.5 * spread)


def test_transform_is_deterministic_and_row_by_row(imputer, correlated):
    _, X_gaps, _ = correlated
    filled = imputer.transform(X_gaps)
    assert_array_equal(imputer.transform(X_gaps), filled)
    np.testing.assert_allclose(
        imputer.transform(X_gaps[50:60]), filled[50:60], rtol=1e-5
    )


def test_float32_and_a_missing_values_marker(correlated):
    _, X_gaps, gaps = correlated
    marked = np.where(gaps, -1.0, X_gaps).astype(np.float32)
    filled = VAEImputer(missing_values=-1, **FAST).fit_transform(marked)
    assert filled.dtype == np.float32
    assert np.array_equal(filled[~gaps], marked[~gaps])
    assert not np.any(filled[gaps] == -1)


def test_a_marker_in_an_integer_column_of_a_dataframe():
    rng = np.random.RandomState(0)
    count = rng.randint(0, 4, size=60)
    gaps = rng.rand(60) < 0.2
    x = rng.normal(size=60)
    marked = pd.DataFrame({"count": np.where(gaps, -1, count), "x": x})
    params = dict(max_epochs=3, n_impute_samples=20, random_state=0)
    filled = VAEImputer(missing_values=-1, **params).fit_transform(marked)
    assert filled["count"].dtype == np.int64
    assert_array_equal(filled[~gaps], marked[~gaps])
    assert filled["count"][gaps].between(0, 3).all()
    # Exactly as with pd.NA in the marker's place.
    holes = marked.astype({"count": "Int64"})
    holes.loc[gaps, "count"] = pd.NA
    expected = VAEImputer(**params).fit_transform(holes).astype({"count": np.int64})
    pd.testing.assert_frame_equal(filled, expected)


def test_sample_posterior_draws_plausible_completions(correlated):
    X, X_gaps, gaps = correlated
    draws = [
        VAEImputer(sample_posterior=True, **{**FAST, "random_state": 0})
        .fit(X_gaps)
        .transform(X_gaps)
        for _ in range(2)
    ]
    assert_array_equal(draws[0], draws[1])  # the same random_state
    imputer = VAEImputer(sample_posterior=True, **FAST).fit(X_gaps)
    first, second = imputer.transform(X_gaps), imputer.transform(X_gaps)
    assert not np.array_equal(first[gaps], second[gaps])  # fresh draws
    assert np.array_equal(first[~gaps], X_gaps[~gaps])
    mean_fill = VAEImputer(**FAST).fit(X_gaps).transform(X_gaps)
    # Draws scatter around the mean fill, with the data's own spread.
    assert np.abs(first - mean_fill)[gaps].mean() > 0.05 * np.nanstd(X_gaps)
    assert np.abs(first - X)[gaps].mean() < np.nanstd(X_gaps, axis=0).mean()


def test_add_indicator_and_empty_features(correlated):
    _, X_gaps, gaps = correlated
    X = np.column_stack([X_gaps, np.full(len(X_gaps), np.nan)])
    dropped = VAEImputer(add_indicator=True, **FAST).fit(X)
    with pytest.warns(UserWarning, match=re.escape("observed values: [6]. At")):
        out = dropped.transform(X)
    assert out.shape == (len(X), 6 + 7)  # the empty column goes; 7 indicators
    assert_array_equal(out[:, 6:], np.isnan(X).astype(float))
    assert dropped.get_feature_names_out()[-1] == "missingindicator_x6"
    kept = VAEImputer(keep_empty_features=True, **FAST).fit(X)
    out = kept.transform(X)
    assert out.shape == X.shape and np.all(out[:, 6] == 0)
    assert kept.likelihoods_[6] == "empty"


def test_empty_columns_of_a_dataframe_keep_their_dtypes_or_warn():
    n = 30
    table = pd.DataFrame(
        {
            "x": np.linspace(0, 1, n),
            "float": np.nan,
            "Int64": pd.array([None] * n, dtype="Int64"),
            "object": pd.Series([np.nan] * n, dtype=object),
            "str": pd.Series([np.nan] * n, dtype="str"),
            "category": pd.Categorical([None] * n, categories=["a"]),
        }
    )
    params = dict(max_epochs=2, n_impute_samples=10, random_state=0)
    kept = VAEImputer(keep_empty_features=True, **params).fit_transform(table)
    pd.testing.assert_series_equal(kept.dtypes, table.dtypes)
    # 0 where SimpleImputer puts it; the column as it is where 0 cannot go.
    # (pandas 2 reads dtype="str" as object; pandas 3 as its string dtype.)
    as_object = ["float", "object"] + (["str"] if table["str"].dtype == object else [])
    as_is = [name for name in ("str", "category") if name not in as_object]
    simple = SimpleImputer(strategy="most_frequent", keep_empty_features=True)
    zeros = simple.fit_transform(table[as_object])
    assert_array_equal(kept[as_object].to_numpy(), zeros)
    assert (kept["Int64"] == 0).all()
    pd.testing.assert_frame_equal(kept[as_is], table[as_is])
    imputer = VAEImputer(**params).fit(table)
    skipped = "['float', 'Int64', 'object', 'str', 'category']"
    with pytest.warns(UserWarning, match=re.escape(skipped)) as record:
        assert list(imputer.transform(table).columns) == ["x"]
    assert str(record[0].message).startswith(
        f"Skipping features without any observed values: {skipped}."
    )


def test_a_mixed_table_keeps_its_columns_and_dtypes():
    rng = np.random.RandomState(0)
    n = 300
    kind = rng.randint(2, size=n)
    table = pd.DataFrame(
        {
            "kind": pd.Categorical(np.array(["small", "large"])[kind]),
            "size": kind * 10 + rng.normal(size=n),
            "count": (kind * 5 + rng.poisson(1, size=n)).astype(np.int64),
            "flag": kind == 1,
        }
    )
    gappy = table.astype({"count": "Int64", "flag": "boolean"})
    holes = rng.rand(n, 4) < 0.15
    for j, name in enumerate(gappy.columns):
        gappy.loc[holes[:, j], name] = None
    imputer = VAEImputer(**FAST).fit(gappy)
    filled = imputer.transform(gappy)
    assert list(filled.columns) == list(table.columns)
    assert_array_equal(filled.dtypes, gappy.dtypes)
    assert filled.notna().all().all()
    observed = ~holes
    for j, name in enumerate(table.columns):
        assert (filled[name][observed[:, j]] == gappy[name][observed[:, j]]).all()
    # Categorical gaps get the category that the other columns point to.
    agree = (filled["kind"] == table["kind"])[holes[:, 0]].mean()
    assert agree > 0.9
    # An integer column's gaps come back in its units, near its true values.
    gap = holes[:, 2]
    error = np.abs(filled["count"] - table["count"])[gap].mean()
    baseline = np.abs(table["count"].mean() - table["count"])[gap].mean()
    assert error < 0.6 * baseline
    assert imputer.get_feature_names_out().tolist() == list(table.columns)


def _coded_array():
    """Category codes in column 0 and two numbers, with gaps in both kinds."""
    rng = np.random.RandomState(0)
    X = np.c_[rng.randint(3, size=40).astype(float), rng.normal(size=(40, 2))]
    X[[3, 9], 1] = np.nan
    X[[5, 7], 0] = np.nan
    return X


def test_an_array_with_a_categorical_column_comes_back_as_an_array():
    X = _coded_array()
    params = dict(likelihood={0: "categorical"}, max_epochs=2, n_impute_samples=20)
    filled = VAEImputer(**params, random_state=0).fit(X).transform(X)
    assert isinstance(filled, np.ndarray) and filled.dtype == np.float64
    # The same fills as the same table as a DataFrame (trained alike).
    table = pd.DataFrame(X)
    as_table = VAEImputer(**params, random_state=0).fit(table).transform(table)
    assert_array_equal(filled, as_table.to_numpy())
    gaps = np.isnan(X)
    assert_array_equal(filled[~gaps], X[~gaps])
    assert set(filled[[5, 7], 0]) <= {0.0, 1.0, 2.0}
    indicated = VAEImputer(**params, add_indicator=True).fit(X).transform(X)
    assert indicated.shape == (40, 5)
    assert_array_equal(indicated[:, 3:], gaps[:, :2])


def test_a_category_unseen_in_fit_is_kept_and_read_as_a_gap():
    rng = np.random.RandomState(0)
    n = 60
    kind = rng.randint(2, size=n)
    table = pd.DataFrame(
        {
            "kind": np.array(["small", "large"], dtype=object)[kind],
            "size": kind * 10 + rng.normal(size=n),
            "weight": kind * 5 + rng.normal(size=n),
        }
    )
    imputer = VAEImputer(**FAST).fit(table)
    rows = table.head(3).assign(size=np.nan)
    rows.loc[1, "kind"] = "medium"
    gaps = rows.assign(kind=[rows.kind[0], None, rows.kind[2]])
    filled = imputer.transform(rows)
    assert filled.loc[1, "kind"] == "medium"  # observed: kept as it is
    # The other gaps are filled as if the category were missing.
    assert_array_equal(filled["size"], imputer.transform(gaps)["size"])


def test_in_a_pipeline_and_a_grid_search(correlated):
    X, X_gaps, _ = correlated
    y = (X[:, 0] > np.median(X[:, 0])).astype(int)
    pipe = make_pipeline(VAEImputer(**FAST), LogisticRegression(max_iter=500))
    assert pipe.fit(X_gaps, y).score(X_gaps, y) > 0.8
    search = GridSearchCV(pipe, {"vaeimputer__n_components": [2, 4]}, cv=2)
    assert search.fit(X_gaps, y).best_score_ > 0.8


def test_set_output_pandas(imputer, correlated):
    _, X_gaps, _ = correlated
    imputer.set_output(transform="pandas")
    try:
        out = imputer.transform(X_gaps)
    finally:
        imputer.set_output(transform="default")
    assert list(out.columns) == [f"x{i}" for i in range(6)]


def test_save_and_load(imputer, correlated, tmp_path):
    _, X_gaps, _ = correlated
    imputer.save(tmp_path / "i.safetensors")
    loaded = VAEImputer.load(tmp_path / "i.safetensors")
    assert_array_equal(loaded.transform(X_gaps), imputer.transform(X_gaps))


def test_the_noise_scale_stops_at_a_tenth_of_a_standard_deviation(imputer):
    from skvae._likelihoods import StandardizedHeteroscedasticLikelihood

    likelihood = imputer.net_.module_.likelihood
    assert isinstance(likelihood, StandardizedHeteroscedasticLikelihood)
    raw = torch.full((1, 12), -50.0)  # 6 means, then 6 raw scales
    _, scale = likelihood._split(raw)
    np.testing.assert_allclose(scale, 0.1, rtol=1e-6)
    assert set(imputer.likelihoods_.values()) == {"gaussian_heteroscedastic"}


def test_a_schema_saved_without_the_floor_keeps_the_floor_it_was_trained_with(
    imputer,
):
    from skvae._schema import ColumnSchema

    document = imputer._schema.to_json()
    assert all(c["unit_floor"] for c in document["columns"])
    assert ColumnSchema.from_json(document).blocks == (
        ("gaussian_heteroscedastic_on_standardized", 6),
    )
    for column in document["columns"]:
        del column["unit_floor"]
    assert ColumnSchema.from_json(document).blocks == (("gaussian_heteroscedastic", 6),)


@pytest.mark.parametrize(
    "device",
    [
        "cpu",
        pytest.param(
            "cuda",
            marks=pytest.mark.skipif(
                not torch.cuda.is_available(), reason="needs a CUDA device"
            ),
        ),
    ],
)
def test_the_generator_of_posterior_draws_is_on_the_given_device(device):
    from skvae._utils import seeded_generator

    generator = seeded_generator(3, device)
    assert generator.device == torch.device(device, 0 if device == "cuda" else None)
    reference = torch.Generator(device=device).manual_seed(3)
    draws = torch.rand(5, generator=generator, device=device)
    assert torch.equal(draws, torch.rand(5, generator=reference, device=device))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_sample_posterior_draws_on_the_gpu(correlated):
    _, X_gaps, gaps = correlated
    params = dict(sample_posterior=True, max_epochs=3, n_impute_samples=20)
    fills = [
        VAEImputer(device="cuda", random_state=0, **params)
        .fit(X_gaps)
        .transform(X_gaps)
        for _ in range(2)
    ]
    assert not np.isnan(fills[0]).any()
    assert_array_equal(fills[0], fills[1])
    assert_array_equal(fills[0][~gaps], X_gaps[~gaps])
