"""Tables: the column schema, and mixed-type DataFrames through the estimator."""

import copy
import pickle

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from numpy.testing import assert_allclose, assert_array_equal
from pandas.testing import assert_frame_equal
from scipy.stats import kstest, norm
from sklearn.model_selection import GridSearchCV, KFold

from skvae import VAEImputer, VAEOutlierDetector, VAETransformer
from skvae._schema import Column, fit_schema
from skvae._transforms import (
    ColumnTransform,
    evaluate_splines,
    one_hot,
    spline_table,
)


@pytest.fixture(scope="module")
def table():
    """A small mixed table with every kind of column and a few gaps."""
    rng = np.random.RandomState(0)
    n = 120
    group = rng.randint(3, size=n)
    frame = pd.DataFrame(
        {
            "species": np.array(["adelie", "gentoo", "chinstrap"], dtype=object)[group],
            "size": group * 10.0 + rng.lognormal(size=n),  # skewed, multi-modal
            "count": rng.poisson(3 + group, size=n),
            "flag": rng.rand(n) < 0.3,
            "colour": pd.Categorical(
                np.array(["red", "blue"])[rng.randint(2, size=n)],
                categories=["red", "blue", "green"],
            ),
            "ratio": rng.rand(n).astype(np.float32),
            "label": pd.array(np.array(["a", "b"])[group % 2], dtype="string"),
            "score": pd.array(rng.randint(0, 5, size=n), dtype="Int64"),
        }
    )
    frame.loc[[3, 7], "size"] = np.nan
    frame.loc[[5], "species"] = None
    frame.loc[[9], "score"] = pd.NA
    return frame


@pytest.fixture(scope="module")
def fitted_table(table):
    return VAETransformer(n_components=3, max_epochs=30, random_state=0).fit(table)


# ---------------------------------------------------------------- transforms
@settings(deadline=None, max_examples=50)
@given(values=arrays(np.float64, st.integers(1, 60), elements=st.floats(-1e3, 1e3)))
@example(values=np.array([1e-169, 1e-169, 0.0, 0.0, 0.0]))  # knots 1e-169 apart
@example(values=np.array([0.0, 1e-99, 2e-99, 5e-99]))
def test_normal_scores_are_an_increasing_map_with_its_inverse(values):
    transform = ColumnTransform.fit(values)
    x = np.sort(np.concatenate([values, [values.min() - 5, values.max() + 5]]))
    s = transform.transform(x)
    assert np.all(np.diff(s) >= -1e-12) and np.all(np.isfinite(s))
    assert np.all(np.isfinite(transform.log_slope(x)))
    inside = (x >= values.min()) & (x <= values.max())
    assert_allclose(transform.inverse(s[inside]), x[inside], rtol=1e-9, atol=1e-9)
    # Back-transforms stay in the range seen in fit.
    assert_allclose(
        transform.inverse(np.array([-50.0, 50.0])),
        [values.min(), values.max()],
        rtol=1e-9,
        atol=1e-9,
    )


def test_transforms_saved_with_a_clip_flag_still_load():
    for clip, kind in ((True, "normal_scores"), (False, "standardize")):
        document = {"x_knots": [0.0, 1.0], "s_knots": [-1.0, 1.0], "clip": clip}
        transform = ColumnTransform.from_json(document)
        assert transform.kind == kind and transform.clip == clip
        assert ColumnTransform.from_json(transform.to_json()).kind == kind


def test_normal_scores_make_a_skewed_column_normal():
    values = np.random.RandomState(0).lognormal(sigma=1.5, size=5000)
    s = ColumnTransform.fit(values).transform(values)
    assert abs(s.mean()) < 0.01 and abs(s.std() - 1) < 0.02
    assert abs(pd.Series(s).skew()) < 0.05


def test_the_log_slope_turns_a_density_of_scores_into_one_of_values():
    # N(0, 1) on the internal scale, with the log-slope, is a density in the
    # column's units: it integrates to 1 (on a grid fine within every piece).
    transform = ColumnTransform.fit(np.random.RandomState(1).gamma(2.0, size=300))
    knots = transform.x_knots
    pieces = [np.linspace(a, b, 200) for a, b in zip(knots[:-1], knots[1:])]
    steps = np.geomspace(1e-9, 200, 20_000)  # fine next to the end knots
    tails = [knots[0] - steps, knots[-1] + steps]
    x = np.unique(np.concatenate(pieces + tails))
    density = norm.pdf(transform.transform(x)) * np.exp(transform.log_slope(x))
    assert np.trapezoid(density, x) == pytest.approx(1.0, abs=1e-4)
    # The log-slope is the derivative of the transform, and continuous.
    points = np.random.RandomState(2).uniform(knots[0], knots[-1], 200)
    h = 1e-7 * (knots[-1] - knots[0])
    numeric = (transform.transform(points + h) - transform.transform(points - h)) / (
        2 * h
    )
    assert_allclose(np.exp(transform.log_slope(points)), numeric, rtol=1e-3)


# --------------------------------------------------------- resolving "auto"
def test_auto_keeps_the_classic_model_for_data_in_the_unit_interval(digits):
    schema = fit_schema(digits[0], "auto")
    assert schema.identity and schema.blocks == (("bernoulli", 64),)


def test_auto_resolves_each_column_of_a_table(table):
    schema = fit_schema(table, "auto")
    assert schema.likelihoods_by_name == {
        "species": "categorical",
        "size": "gaussian",
        "count": "gaussian",
        "flag": "categorical",
        "colour": "categorical",
        "ratio": "gaussian",
        "label": "categorical",
        "score": "gaussian",
    }
    by_name = {c.name: c for c in schema.columns}
    assert by_name["colour"].categories == ["red", "blue", "green"]
    assert by_name["flag"].categories == [False, True]
    assert by_name["species"].categories == ["adelie", "chinstrap", "gentoo"]
    # One-hot blocks for categories; one feature for each numeric column.
    assert schema.n_features == 3 + 1 + 1 + 2 + 3 + 1 + 2 + 1


def test_a_dict_overrides_some_columns(table):
    schema = fit_schema(table, {"count": "poisson", 4: "categorical"})
    assert schema.likelihoods_by_name["count"] == "poisson"
    assert schema.likelihoods_by_name["size"] == "gaussian"


def test_a_numeric_column_can_be_made_categorical(table):
    schema = fit_schema(table, {"count": "categorical"})
    column = next(c for c in schema.columns if c.name == "count")
    assert column.categories == sorted(table["count"].unique().tolist())


@pytest.mark.parametrize(
    "likelihood, match",
    [
        ("gaussian", "column 'species': it is categorical"),
        ({"nope": "gaussian"}, "names the column 'nope'"),
        ({"size": "student"}, r"likelihood\['size'\]='student' is not a likelihood"),
        ({"count": "bernoulli"}, "Column 'count'.*needs X in \\[0, 1\\]"),
    ],
)
def test_likelihoods_that_do_not_fit_are_clear_errors(table, likelihood, match):
    with pytest.raises(ValueError, match=match):
        VAETransformer(likelihood=likelihood, max_epochs=1).fit(table)


# ------------------------------------------------------- unseen categories
def test_an_unseen_category_scores_as_a_gap_times_a_smoothed_probability(
    fitted_table, table
):
    new = table.head(3).copy()
    new.loc[1, "species"] = "emperor"
    gap = new.assign(species=[new.species[0], None, new.species[2]])
    # Additive smoothing over 119 observed entries and 3 categories seen in fit.
    expected = fitted_table.score_samples(gap)
    expected[1] -= np.log(119 + 3 + 1)
    assert_allclose(fitted_table.score_samples(new), expected, rtol=1e-12)
    # The encoder sees a gap.
    assert_array_equal(fitted_table.transform(new), fitted_table.transform(gap))


def test_grid_search_scores_folds_with_categories_their_training_did_not_see():
    rng = np.random.RandomState(0)
    n = 60
    kind = rng.randint(2, size=n)
    table = pd.DataFrame(
        {
            "kind": np.array(["a", "b"], dtype=object)[kind],
            "x": kind * 3.0 + rng.normal(size=n),
            "y": rng.normal(size=n),
        }
    )
    table.loc[7, "kind"] = "rare"  # in the first fold only
    search = GridSearchCV(
        VAETransformer(max_epochs=2, random_state=0),
        {"n_components": [2, 4, 8]},
        cv=KFold(3),
        error_score="raise",
    ).fit(table)
    for fold in range(3):
        assert np.all(np.isfinite(search.cv_results_[f"split{fold}_test_score"]))


def test_an_unseen_category_is_scored_without_missing_values(table):
    complete = table.dropna()
    vae = VAETransformer(max_epochs=2, missing_values=None, random_state=0)
    vae.fit(complete)
    new = complete.head(2).assign(species="emperor")
    assert np.all(np.isfinite(vae.score_samples(new)))
    assert np.all(np.isfinite(vae.transform(new)))


def test_partial_fit_names_a_category_the_first_chunk_did_not_have(table):
    vae = VAETransformer(max_epochs=1, random_state=0).fit(table)
    new = table.head(3).assign(species="emperor")
    with pytest.raises(ValueError, match="'species' has the value 'emperor'.*Categ"):
        vae.partial_fit(new)


def test_the_count_behind_unseen_categories_is_saved(fitted_table):
    column = fitted_table._schema.columns[0]
    assert Column.from_json(column.to_json()).n_observed == column.n_observed == 119
    # Files written before the count was stored refuse unseen categories.
    document = column.to_json()
    del document["n_observed"]
    with pytest.raises(ValueError, match="'species'.*saved before"):
        one_hot(pd.Series(["emperor"]), Column.from_json(document))


# ------------------------------------------------------------ clear errors


def test_an_all_missing_column_is_a_clear_error(table):
    for column in ("size", "species"):
        bad = table.assign(**{column: None})
        with pytest.raises(ValueError, match=f"'{column}' has no observed value"):
            VAETransformer(max_epochs=1).fit(bad)


def test_a_single_category_column_is_accepted(table):
    one = table.assign(kind="penguin")
    vae = VAETransformer(max_epochs=2, random_state=0).fit(one)
    assert vae.likelihoods_["kind"] == "categorical"
    assert (vae.sample(5, random_state=0)["kind"] == "penguin").all()


def test_thousands_of_categories_are_a_clear_error(table):
    ids = table.assign(id=[f"row{i}" for i in range(len(table))])
    many = pd.concat([ids] * 10, ignore_index=True)
    many["id"] = [f"row{i}" for i in range(len(many))]
    with pytest.raises(ValueError, match="'id' has 1,200 categories.*drop it"):
        VAETransformer(max_epochs=1).fit(many)


def test_dates_are_a_clear_error(table):
    dated = table.assign(when=pd.date_range("2020-01-01", periods=len(table)))
    with pytest.raises(ValueError, match="'when' has dtype datetime64"):
        VAETransformer(max_epochs=1).fit(dated)


def test_columns_that_differ_from_fit_are_clear_errors(fitted_table, table):
    with pytest.raises(ValueError, match="feature names"):
        fitted_table.transform(table.rename(columns={"size": "length"}))
    with pytest.raises(ValueError, match="yet now missing:\n- size"):
        fitted_table.transform(table.drop(columns="size"))
    with pytest.raises(
        ValueError, match="'size' was numeric in fit.*dtype (object|str)"
    ):
        fitted_table.transform(table.assign(size="big"))


def test_gaps_need_missing_values(table):
    with pytest.raises(ValueError, match="'size' contains NaN.*missing_values"):
        VAETransformer(missing_values=None, max_epochs=1).fit(table)
    no_numeric_gaps = table.assign(size=table["size"].fillna(0), score=1)
    with pytest.raises(ValueError, match="'species' has missing values"):
        VAETransformer(missing_values=None, max_epochs=1).fit(no_numeric_gaps)


def test_a_numeric_marker_makes_gaps_and_integer_columns_stay_integers():
    rng = np.random.RandomState(0)
    count = rng.randint(0, 4, size=60)
    gaps = rng.rand(60) < 0.2
    x = rng.normal(size=60)
    marked = pd.DataFrame({"count": np.where(gaps, -1, count), "x": x})
    # The same table with pd.NA in place of the marker: the same model.
    holes = marked.astype({"count": "Int64"})
    holes.loc[gaps, "count"] = pd.NA
    params = dict(n_components=2, max_epochs=3, random_state=0)
    vae = VAETransformer(missing_values=-1, **params).fit(marked)
    twin = VAETransformer(**params).fit(holes)
    assert [c.levels for c in vae._schema.columns] == [[0, 1, 2, 3], None]
    samples = vae.sample(50, random_state=0)
    assert samples["count"].dtype == np.int64
    # Gaps in the same places: the marker in one, pd.NA in the other.
    expected = twin.sample(50, random_state=0).fillna({"count": -1})
    assert_frame_equal(samples, expected.astype({"count": np.int64}))
    assert_array_equal(vae.score_samples(marked), twin.score_samples(holes))


# ------------------------------------------------------------ DataFrames out
def test_samples_come_back_with_the_columns_and_dtypes_of_fit(fitted_table, table):
    with_gaps = fitted_table.sample(200, random_state=0)
    assert_array_equal(with_gaps.dtypes, table.dtypes)
    samples = fitted_table.sample(200, random_state=0, missing=False)
    assert list(samples.columns) == list(table.columns)
    assert_array_equal(samples.dtypes, table.dtypes)
    assert samples["colour"].cat.categories.tolist() == ["red", "blue", "green"]
    assert set(samples["species"]) <= {"adelie", "chinstrap", "gentoo"}
    assert samples.notna().all().all()
    for column in ("count", "score"):
        assert samples[column].min() >= table[column].min()
        assert samples[column].max() <= table[column].max()
    # Draws, not only the most probable values.
    assert samples["species"].nunique() == 3 and samples["size"].nunique() > 100


def test_every_dtype_comes_back_as_it_went_in():
    r = np.arange(40)
    ab = np.array(["a", "b"])[r % 2]
    table = pd.DataFrame(
        {
            "object": pd.Series(ab, dtype=object),
            "mixed": pd.Series([1, "b"] * 20, dtype=object),
            "str": pd.Series(ab, dtype="str"),
            "string": pd.array(ab, dtype="string"),
            "category": pd.Categorical(ab),
            "bool": r % 3 == 0,
            "boolean": pd.array(r % 3 == 0, dtype="boolean"),
            "Int64": pd.array(r % 5, dtype="Int64"),
            "Float64": pd.array(r / 7, dtype="Float64"),
            "int32": (r % 5).astype(np.int32),
            "uint8": (r % 5).astype(np.uint8),
            "float32": (r / 3).astype(np.float32),
        }
    )
    vae = VAETransformer(max_epochs=2, random_state=0).fit(table)
    for out in (vae.sample(5, random_state=0), vae.inverse_transform(np.zeros((5, 2)))):
        pd.testing.assert_series_equal(out.dtypes, table.dtypes)
        assert set(out["object"]) <= {"a", "b"} and set(out["mixed"]) <= {1, "b"}
    gaps = table.copy()
    gaps.iloc[3, [0, 2, 3, 4, 6, 7, 8]] = None
    filled = VAEImputer(max_epochs=2, random_state=0).fit_transform(gaps)
    pd.testing.assert_series_equal(filled.dtypes, table.dtypes)
    assert filled.notna().all().all()


def test_integer_columns_keep_the_frequencies_of_their_values():
    # Integer levels are spread over their probability intervals in training,
    # so a smooth Gaussian on the internal scale gives back their frequencies
    # (as point masses, the middle level took far too much).
    rng = np.random.RandomState(0)
    n = 600
    frame = pd.DataFrame(
        {
            "year": rng.choice([2007, 2008, 2009], size=n, p=[0.3, 0.3, 0.4]),
            "x": rng.normal(size=n),
        }
    )
    vae = VAETransformer(n_components=2, random_state=0).fit(frame)
    column = next(c for c in vae._schema.columns if c.name == "year")
    assert column.levels == [2007, 2008, 2009] and len(column.cuts) == 2
    samples = vae.sample(4000, random_state=0)
    assert set(samples["year"]) == {2007, 2008, 2009}
    frequencies = samples["year"].value_counts(normalize=True).sort_index()
    assert_allclose(frequencies, [0.3, 0.3, 0.4], atol=0.05)


def test_training_spreads_each_integer_value_uniformly_over_its_interval():
    # The randomised probability integral transform: each level's internal
    # values, mapped back through the normal CDF, fill the level's interval
    # of the empirical CDF uniformly, so that together they are uniform on
    # (0, 1) (point masses at the middles of the intervals would not be).
    rng = np.random.RandomState(0)
    values = rng.choice([1, 2, 3], size=1000, p=[0.2, 0.3, 0.5])
    frame = pd.DataFrame({"n": values, "x": rng.normal(size=1000)})
    schema = fit_schema(frame, "auto")
    column = schema.columns[0]
    assert column.levels == [1, 2, 3]
    p = norm.cdf(schema.encode(frame, rng=np.random.default_rng(0))[:, 0])
    bounds = np.r_[0.0, np.cumsum(np.bincount(values)[1:]) / len(values)]
    assert_allclose(norm.cdf(column.cuts), bounds[1:-1], rtol=1e-12)
    for level in (1, 2, 3):
        low, high = bounds[level - 1], bounds[level]
        inside = p[values == level]
        assert np.all((inside >= low) & (inside <= high))
        # A uniform variable on [low, high] has variance (high - low)^2 / 12.
        assert np.var(inside) == pytest.approx((high - low) ** 2 / 12, rel=0.15)
    assert kstest(p, "uniform").statistic < 0.05


def test_a_float_column_of_whole_numbers_is_an_integer_column():
    # read_csv gives float64 to an integer column with a gap: it is modelled
    # exactly as the same column held as Int64, and comes back as float64.
    rng = np.random.RandomState(0)
    n = 200
    year = rng.choice([2007, 2008, 2009], size=n, p=[0.3, 0.3, 0.4])
    floats = pd.DataFrame({"year": year.astype(float), "x": rng.normal(size=n)})
    floats.loc[5, "year"] = np.nan
    params = dict(n_components=2, max_epochs=5, random_state=0)
    vae = VAETransformer(**params).fit(floats)
    twin = VAETransformer(**params).fit(floats.astype({"year": "Int64"}))
    levels = {c.name: c.levels for c in vae._schema.columns}
    assert levels == {"year": [2007, 2008, 2009], "x": None}
    samples = vae.sample(200, random_state=0)
    assert samples["year"].dtype == np.float64
    expected = twin.sample(200, random_state=0).astype({"year": np.float64})
    assert_frame_equal(samples, expected)


def test_standardised_integer_columns_are_encoded_alike_in_training():
    # Only normal scores spread integer levels; a standardised column (the
    # imputer's) is encoded the same way in training and at inference.
    frame = pd.DataFrame({"count": np.arange(40) % 7, "x": np.linspace(0, 1, 40)})
    schema = fit_schema(frame, "auto", numeric_transform="standardize")
    rng = np.random.default_rng(0)
    assert_array_equal(schema.encode(frame, rng=rng), schema.encode(frame))
    assert_frame_equal(schema.decode(schema.encode(frame)), frame, atol=1e-12)


def test_integer_outputs_stay_in_the_range_seen_in_fit():
    # A standardised integer column (the imputer's) can decode to any value:
    # outputs are rounded, then clipped to the smallest and largest of fit.
    frame = pd.DataFrame({"count": np.arange(40) % 7, "x": np.linspace(0, 1, 40)})
    schema = fit_schema(frame, "auto", numeric_transform="standardize")
    assert schema.columns[0].levels is None
    encoded = schema.encode(frame)[:4]
    encoded[:2, 0] = [-50.0, 50.0]
    assert schema.decode(encoded)["count"].tolist() == [0, 6, 2, 3]


def test_float_columns_come_back_at_the_precision_of_fit():
    rng = np.random.RandomState(0)
    frame = pd.DataFrame(
        {"mm": np.round(rng.normal(40, 5, size=200), 1), "x": rng.normal(size=200)}
    )
    vae = VAETransformer(n_components=2, max_epochs=5, random_state=0).fit(frame)
    decimals = {c.name: c.decimals for c in vae._schema.columns}
    assert decimals == {"mm": 1, "x": None}
    samples = vae.sample(100, random_state=0)
    assert_allclose(samples["mm"], np.round(samples["mm"], 1), atol=1e-9)
    assert samples["x"].nunique() == 100


def test_transformed_columns_have_a_floor_on_their_noise_scale(fitted_table):
    from skvae._likelihoods import FastScaleNormalScoresLikelihood

    parts = fitted_table.net_.module_.likelihood.parts
    floors = [p for p in parts if isinstance(p, FastScaleNormalScoresLikelihood)]
    assert floors and all(torch.all(p.scale >= 0.2) for p in floors)
    # Driven as low as it goes, the scale stops at the floor.
    part = copy.deepcopy(floors[0])
    with torch.no_grad():
        part.raw_scale.fill_(-50.0)
    assert_allclose(part.scale.detach(), 0.2, rtol=1e-6)
    # The name stays "gaussian" to users.
    assert fitted_table.likelihoods_["size"] == "gaussian"


def test_noise_scales_of_transformed_columns_learn_ten_times_faster(fitted_table):
    # Their own group of the optimizer, at ten times the learning rate; the
    # rest of the model at the learning rate.
    likelihood = fitted_table.net_.module_.likelihood
    scales = {
        id(p)
        for part in likelihood.parts
        if part.lr_scale == 10.0
        for p in part.parameters()
    }
    groups = fitted_table.net_.optimizer_.param_groups
    assert [g["lr"] for g in groups] == [1e-3, 1e-2]
    assert {id(p) for p in groups[1]["params"]} == scales and scales
    assert len(groups[0]["params"]) + len(scales) == len(
        list(fitted_table.net_.module_.parameters())
    )


def test_a_schema_saved_before_fast_scales_keeps_the_likelihood_it_trained(
    fitted_table,
):
    from skvae._schema import ColumnSchema

    document = fitted_table._schema.to_json()
    blocks = ColumnSchema.from_json(document).blocks
    assert ("gaussian_on_scores_fast_scale", 1) in blocks
    for column in document["columns"]:
        column.pop("fast_scale", None)
    old = ColumnSchema.from_json(document).blocks
    assert ("gaussian_on_scores", 1) in old
    assert not any(name == "gaussian_on_scores_fast_scale" for name, _ in old)


def test_only_gaussian_normal_score_columns_are_marked_fast_scale():
    from skvae._schema import fit_schema

    frame = pd.DataFrame({"a": np.random.RandomState(0).lognormal(size=50)})
    gaussian = fit_schema(frame, "auto", numeric_transform="normal_scores")
    assert gaussian.columns[0].fast_scale
    # A heteroscedastic likelihood on normal scores has no scale parameter.
    other = fit_schema(
        frame,
        "auto",
        numeric_transform="normal_scores",
        numeric_likelihood="gaussian_heteroscedastic",
    )
    assert other.columns[0].transform.kind == "normal_scores"
    assert not other.columns[0].fast_scale
    assert "fast_scale" not in other.to_json()["columns"][0]


def test_inverse_transform_fills_gaps_with_values_of_each_column(fitted_table, table):
    back = fitted_table.inverse_transform(fitted_table.transform(table))
    assert_array_equal(back.dtypes, table.dtypes)
    assert back.notna().all().all()
    # The posterior mean round trip recovers most categories.
    observed = table["species"].notna()
    agreement = (back["species"] == table["species"])[observed].mean()
    assert agreement > 0.8


def test_an_array_in_gives_an_array_out(blobs):
    X, _ = blobs
    vae = VAETransformer(max_epochs=2, random_state=0).fit(X)
    assert vae.likelihoods_ == {i: "gaussian" for i in range(5)}
    for out in (vae.sample(3, random_state=0), vae.inverse_transform(np.zeros((2, 2)))):
        assert isinstance(out, np.ndarray) and out.dtype == np.float64
        assert np.all(out >= X.min(0)) and np.all(out <= X.max(0))


def test_an_array_with_string_columns_can_name_them_categorical():
    X = np.array([["a", 1.0], ["b", 2.0], ["a", 3.5], [None, 0.5]], dtype=object)
    vae = VAETransformer(likelihood={0: "categorical"}, max_epochs=2).fit(X)
    out = vae.sample(4, random_state=0, missing=False)
    assert isinstance(out, np.ndarray) and set(out[:, 0]) <= {"a", "b"}
    assert vae.transform(X).shape == (4, 2)


def test_a_table_without_numeric_columns_fits_in_every_estimator():
    table = pd.DataFrame(
        {
            "kind": pd.Series(["x", "y", "x", None] * 10, dtype=object),
            "size": pd.Categorical(["small", "large"] * 20),
        }
    )
    vae = VAETransformer(max_epochs=2, random_state=0).fit(table)
    assert vae.likelihoods_ == {"kind": "categorical", "size": "categorical"}
    assert set(vae.sample(20, random_state=0, missing=False)["kind"]) <= {"x", "y"}
    filled = VAEImputer(max_epochs=2, random_state=0).fit_transform(table)
    assert filled.notna().all().all()
    assert_frame_equal(filled[table.notna().all(axis=1)], table.dropna())
    detector = VAEOutlierDetector(max_epochs=2, random_state=0).fit(table)
    assert set(detector.predict(table)) <= {-1, 1}
    codes = np.array([[0, 1], [1, 2], [2, 0]] * 5)
    vae = VAETransformer(likelihood="categorical", max_epochs=2).fit(codes)
    assert set(vae.sample(20, random_state=0).ravel()) <= {0, 1, 2}


def test_a_table_without_columns_is_a_clear_error(table):
    with pytest.raises(ValueError, match=r"0 feature\(s\) \(shape=\(120, 0\)\)"):
        VAETransformer(max_epochs=1).fit(table[[]])


# ---------------------------------------------------------------- scores
def test_scores_are_densities_in_the_units_of_each_column():
    # Normal scores do not depend on units: the same model fits x and 10 x,
    # and a density of 10 x is that of x divided by 10.
    x = pd.DataFrame({"v": np.random.RandomState(0).gamma(2.0, size=200)})
    params = dict(max_epochs=5, random_state=0)
    small = VAETransformer(**params).fit(x).score_samples(x)
    large = VAETransformer(**params).fit(10 * x).score_samples(10 * x)
    assert_allclose(large, small - np.log(10), rtol=1e-5, atol=1e-5)


def test_scores_leave_out_missing_entries(fitted_table, table):
    full = table.dropna().head(10)
    gappy = full.copy()
    gappy["species"] = None
    scores = fitted_table.score_samples(full)
    assert np.all(np.isfinite(fitted_table.score_samples(gappy)))
    # Leaving a categorical entry out removes its (negative) log-probability.
    assert np.all(fitted_table.score_samples(gappy) > scores - 1e-3)


def test_grid_search_picks_a_latent_size_on_a_table_without_labels(table):
    search = GridSearchCV(
        VAETransformer(max_epochs=10, random_state=0), {"n_components": [1, 4]}, cv=2
    ).fit(table)
    assert np.all(np.isfinite(search.cv_results_["mean_test_score"]))


# ----------------------------------------------------------- persistence
def test_a_table_model_saves_and_loads(fitted_table, table, tmp_path):
    fitted_table.save(tmp_path / "m.safetensors")
    loaded = VAETransformer.load(tmp_path / "m.safetensors")
    assert loaded.likelihoods_ == fitted_table.likelihoods_
    assert_frame_equal(
        loaded.sample(20, random_state=1), fitted_table.sample(20, random_state=1)
    )
    assert_array_equal(loaded.score_samples(table), fitted_table.score_samples(table))
    restored = pickle.loads(pickle.dumps(fitted_table))
    assert_array_equal(restored.transform(table), fitted_table.transform(table))


def test_set_output_and_feature_names_work_on_tables(fitted_table, table):
    names = fitted_table.get_feature_names_out()
    assert names.tolist() == ["vaetransformer0", "vaetransformer1", "vaetransformer2"]
    fitted_table.set_output(transform="pandas")
    try:
        codes = fitted_table.transform(table)
    finally:
        fitted_table.set_output(transform="default")
    assert list(codes.columns) == names.tolist()
    assert_array_equal(codes.index, table.index)


def test_rows_whose_column_is_all_gaps_are_scored():
    table = pd.DataFrame({"a": [np.nan] * 10 + [0.0, 1.0]})
    vae = VAETransformer(hidden_layer_sizes=(8,), max_epochs=2, random_state=0)
    assert vae.fit(table).likelihoods_ == {"a": "bernoulli"}
    assert np.all(np.isfinite(vae.score_samples(table.head(5))))


def test_whole_number_floats_in_unit_tables_come_back_whole():
    # All in [0, 1]: the classic Bernoulli model, whose means lie between.
    table = pd.DataFrame({"w": [np.nan, 0.0, 1.0, 1.0, 0.0, 1.0]})
    params = dict(hidden_layer_sizes=(8,), max_epochs=2, random_state=0)
    vae = VAETransformer(**params).fit(table)
    assert vae.likelihoods_ == {"w": "bernoulli"}
    means = vae.inverse_transform(vae.transform(table))["w"]
    assert means.dtype == np.float64 and set(means) <= {0.0, 1.0}
    filled = VAEImputer(**params).fit_transform(table)["w"]
    assert filled.dtype == np.float64 and filled[0] in (0.0, 1.0)


@pytest.mark.parametrize("values", [[0.5, 1.0, 2.0, 4.0, 4.0, 9.0], [3.0, 3.0]])
def test_a_transform_s_pieces_give_its_values(values):
    transform = ColumnTransform.fit(np.array(values))
    breaks, coefficients, (below, above) = transform.pieces
    x = np.array([breaks[0] - 2.0, *breaks, breaks[-1] + 3.0])
    k = np.clip(np.searchsorted(breaks, x, side="right") - 1, 0, len(breaks) - 2)
    inside = sum(coefficients[m, k] * (x - breaks[k]) ** (3 - m) for m in range(4))
    s0, sn = transform.s_knots[[0, -1]]
    expected = np.where(
        x < breaks[0],
        s0 + (x - breaks[0]) * below,
        np.where(x > breaks[-1], sn + (x - breaks[-1]) * above, inside),
    )
    assert_allclose(transform.transform(x), expected, rtol=1e-12, atol=1e-12)


def test_the_shared_spline_evaluation_is_scipy_s_ppoly_bit_for_bit():
    # Columns of 1, 2, 3, 6 and ~60 knots share one padded table; each is
    # evaluated at its knots, inside, in both tails and at NaN, against
    # SciPy's PPoly of its pieces (and its derivative) and the linear tails.
    from scipy.interpolate import PPoly

    rng = np.random.RandomState(0)
    samples = [[3.0, 3.0], [1.0, 2.0], [0.0, 1.0, 5.0], rng.gamma(2.0, size=30)]
    transforms = [ColumnTransform.fit(np.asarray(v, dtype=float)) for v in samples]
    transforms.append(ColumnTransform.fit(rng.lognormal(size=900)))
    transforms.append(ColumnTransform.fit(rng.normal(size=50), "standardize"))
    columns, expected_values, expected_slopes = [], [], []
    for t in transforms:
        breaks, coefficients, (below, above) = t.pieces
        x0, xn = breaks[0], breaks[-1]
        span = xn - x0 + 1.0
        x = np.concatenate(
            [
                np.resize(breaks, 70),  # every knot (at most 70)
                rng.uniform(x0, xn, 40),
                x0 - span * rng.exponential(size=20),
                xn + span * rng.exponential(size=20),
                [np.nan],
            ]
        )
        spline = PPoly(coefficients, breaks, extrapolate=False)
        s0, sn = t.s_knots[[0, -1]]
        values = np.where(x < x0, s0 + (x - x0) * below, spline(x))
        values = np.where(x > xn, sn + (x - xn) * above, values)
        slopes = np.where(x < x0, below, spline.derivative()(x))
        slopes = np.where(x > xn, above, slopes)
        columns.append(x)
        expected_values.append(values)
        expected_slopes.append(slopes)
    x = torch.from_numpy(np.stack(columns, axis=1))
    values, slopes = evaluate_splines(x, spline_table(transforms))
    assert_array_equal(values.numpy(), np.stack(expected_values, axis=1))
    assert_array_equal(slopes.numpy(), np.stack(expected_slopes, axis=1))
    assert np.isnan(values.numpy()[np.isnan(x.numpy())]).all()


def test_the_schema_says_which_columns_outputs_keep():
    table = pd.DataFrame({"a": [1.0, 2.0, 3.0], "gap": np.nan, "b": ["x", "y", "x"]})
    schema = fit_schema(table, "auto", allow_empty=True)
    assert_array_equal(schema.kept(), [True, False, True])
    assert_array_equal(schema.kept(keep_empty=True), [True, True, True])


def test_categories_that_differ_after_a_nul_character_stay_apart():
    # pandas' unique() of strings stops at a NUL character.
    values = ["", "\x00", "a\x00b", "a"] * 5
    frame = pd.DataFrame({"s": pd.Series(values, dtype=object)})
    schema = fit_schema(frame, "auto")
    assert schema.columns[0].categories == ["", "\x00", "a", "a\x00b"]
    decoded = schema.decode(schema.encode(frame))
    assert decoded["s"].tolist() == values
