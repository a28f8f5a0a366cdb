"""Conditional samples: ``sample(given=...)``."""

import numpy as np
import pandas as pd
import pytest
import torch
from numpy.testing import assert_array_equal
from pandas.testing import assert_frame_equal

from skvae._conditional import _distinct_rows, read_conditions
from skvae._importance import importance_draws


@pytest.fixture(scope="module")
def table():
    """y = 2 x + small noise; the category c sets the level of w; n an integer."""
    rng = np.random.default_rng(0)
    n = 300
    x = rng.normal(size=n)
    c = np.where(rng.random(n) < 0.5, "a", "b").astype(object)
    return pd.DataFrame(
        {
            "x": x,
            "y": 2 * x + 0.1 * rng.normal(size=n),
            "c": c,
            "w": np.where(c == "a", 3.0, -3.0) + 0.3 * rng.normal(size=n),
            "n": rng.integers(0, 10, size=n),
        }
    )


@pytest.fixture(scope="module")
def fitted(table, small_vae):
    return small_vae().fit(table)


def test_given_columns_come_back_exactly_as_given(fitted, table):
    out = fitted.sample(50, random_state=0, given={"x": 0.123456789, "c": "b", "n": 7})
    assert (out["x"] == 0.123456789).all()
    assert (out["c"] == "b").all()
    assert (out["n"] == 7).all()
    assert_frame_equal(out.dtypes.to_frame(), table.dtypes.to_frame())
    assert out["y"].nunique() == 50  # the rest is drawn, row by row


def test_a_dataframe_gives_one_row_per_sample_and_gaps_mean_not_given(fitted):
    given = pd.DataFrame({"c": ["a", None, "b"], "x": [0.5, -0.5, np.nan]})
    out = fitted.sample(given=given, random_state=0)
    assert len(out) == 3
    assert out["c"].tolist()[::2] == ["a", "b"]
    assert out["x"].tolist()[:2] == [0.5, -0.5]
    assert out["c"][1] in ("a", "b")
    assert np.isfinite(out["x"][2]) and out["x"][2] not in (0.5, -0.5)
    # n_samples may repeat the number of rows.
    assert len(fitted.sample(3, given=given, random_state=0)) == 3


@pytest.mark.parametrize("x, tol", [(1.0, 0.4), (-1.0, 0.4), (2.0, 0.5)])
def test_draws_follow_a_numeric_condition(fitted, x, tol):
    # y = 2 x + small noise. Draws that ignore the condition (from the prior)
    # average 0; codes proposed by the encoder alone (gaps seen as zeros)
    # stay short of 2 x, most in the tail (3.2 at x = 2).
    y = fitted.sample(1000, random_state=0, given={"x": x})["y"]
    assert abs(y.mean() - 2 * x) < tol


def test_draws_follow_a_categorical_condition(fitted):
    # w is +3 in category a and -3 in category b.
    a = fitted.sample(1000, random_state=0, given={"c": "a"})["w"]
    b = fitted.sample(1000, random_state=0, given={"c": "b"})["w"]
    assert a.mean() > 1.0
    assert b.mean() < -1.0


def test_conditional_draws_are_reproducible(fitted):
    one = fitted.sample(20, random_state=3, given={"x": 0.5})
    assert_frame_equal(one, fitted.sample(20, random_state=3, given={"x": 0.5}))
    other = fitted.sample(20, random_state=4, given={"x": 0.5})
    assert not one["y"].equals(other["y"])


def test_equal_conditions_get_draws_of_their_own(fitted):
    # Rows with the same condition are not copies of a few shared draws (the
    # 100 codes of one row); only values clipped to the range seen in fit
    # repeat.
    out = fitted.sample(500, random_state=0, given={"c": "a"})
    assert out["w"].nunique() > 450


def test_arrays_are_conditioned_on_column_positions(small_vae):
    rng = np.random.default_rng(0)
    x = rng.normal(size=300)
    X = np.column_stack([x, 2 * x + 0.1 * rng.normal(size=300)])
    vae = small_vae().fit(X)
    out = vae.sample(500, random_state=0, given={0: 1.0})
    assert_array_equal(out[:, 0], 1.0)
    assert out[:, 1].mean() > 1.2
    rows = np.array([[np.nan, 0.5], [-1.0, np.nan]])
    out = vae.sample(given=rows, random_state=0)
    assert out[0, 1] == 0.5 and out[1, 0] == -1.0


def test_the_proposal_mixes_the_encoder_and_the_prior(small_vae):
    # With prior_share, the last draws are the prior draws themselves and the
    # weights are p(x, z) over the mixture's density, in closed form here.
    torch.manual_seed(0)
    vae = small_vae(max_epochs=2, n_components=2).fit(np.random.rand(40, 3))
    module = vae.net_.module_
    x, eps = torch.rand(5, 3), torch.randn(4, 5, 2)
    with torch.no_grad():
        draws = importance_draws(module, x, eps, prior_share=0.5)
        z_mean, z_logvar = module.encode(x)
    z_q = z_mean + torch.exp(0.5 * z_logvar) * eps[:2]
    assert torch.equal(draws.z, torch.cat([z_q, eps[2:]]))
    q = torch.distributions.Normal(z_mean, torch.exp(0.5 * z_logvar))
    p = torch.distributions.Normal(0.0, 1.0)
    log_q = q.log_prob(draws.z).sum(-1)
    log_p = p.log_prob(draws.z).sum(-1)
    mixture = torch.logaddexp(log_q, log_p) - np.log(2)
    expected = draws.log_px_z + log_p - mixture
    torch.testing.assert_close(draws.log_w, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"given": {"z": 1.0}}, "given names the column 'z', which fit did not see"),
        ({"given": {"c": "d"}}, r"given\['c'\]='d' is a category that fit did not"),
        ({"given": {"x": 99.0}}, r"given\['x'\]=99.0 is outside the range seen in"),
        ({"given": {"x": "big"}}, r"given\['x'\]='big' is not a number"),
        ({"given": {"n": 2.5}}, r"given\['n'\]=2.5 is not a whole number"),
        ({"given": {"x": [1.0, 2.0]}}, r"given\['x'\] must be one value"),
        ({"given": np.zeros((2, 3))}, r"one column per column of fit \(5"),
        ({"given": pd.DataFrame({"x": [0.0, 1.0]}), "n_samples": 5}, "has 2 rows"),
        ({"given": pd.DataFrame({"x": []})}, "given has no rows"),
        ({"given": {"x": 1.0}, "n_samples": 0}, "n_samples must be a positive"),
        ({"given": "x"}, "given must be a dict"),
    ],
)
def test_bad_conditions_are_clear_errors(fitted, kwargs, match):
    with pytest.raises(ValueError, match=match):
        fitted.sample(**kwargs)


def test_the_range_error_names_the_column_and_the_range(fitted, table):
    low, high = table["x"].min(), table["x"].max()
    with pytest.raises(ValueError, match=rf"\[{low:.6g}, {high:.6g}\]"):
        fitted.sample(given={"x": high + 1})


def _decoded_outputs(vae, **kwargs):
    """The number of outputs (rows x parameters) the decoder computes while
    ``vae.sample(**kwargs)`` runs."""
    sizes = []
    decoder = vae.net_.module_.decoder
    hook = decoder.register_forward_hook(lambda m, args, out: sizes.append(out.numel()))
    try:
        vae.sample(**kwargs)
    finally:
        hook.remove()
    return sum(sizes)


def test_a_condition_costs_its_draws_and_one_fill(fitted):
    # The 10 rounds of fills run once for the one condition that a dict gives
    # every row (one row, padded to a block of 32 rows), with all P outputs;
    # the 20 codes of each row (1,000 rows padded to 1,024 by batches of 192
    # rows) are weighted from the 2 logits of the given column c alone, and
    # only the picked code of each row is decoded in full.
    n_params = fitted.net_.module_.likelihood.n_params
    decoded = _decoded_outputs(fitted, n_samples=1000, given={"c": "a"}, random_state=0)
    assert decoded == 10 * 32 * n_params + 20 * 1024 * 2 + 1024 * n_params
    # Two distinct conditions (c, and c with x): two fills, in one block; the
    # weights need c's 2 logits and the 2 outputs of the block of x and y.
    given = pd.DataFrame({"c": ["a", "b"] * 32, "x": [0.5, np.nan] * 32})
    decoded = _decoded_outputs(fitted, given=given, random_state=0)
    assert decoded == 10 * 32 * n_params + 20 * 64 * 4 + 64 * n_params


def test_distinct_rows_treat_gaps_as_equal():
    encoded = np.array([[1.0, np.nan], [2.0, 0.0], [1.0, np.nan], [np.nan, 0.0]])
    distinct, inverse = _distinct_rows(encoded)
    assert_array_equal(distinct[inverse], encoded)  # NaN placed alike
    assert len(distinct) == 3
    assert_array_equal(inverse[[0, 2]], inverse[0])


def test_weights_from_the_given_blocks_alone_are_the_full_weights(fitted):
    # Given c (features 2 and 3, a block of its own): its likelihood and its
    # two logits are all that the log-weights need.
    module = fitted.net_.module_
    x, eps = torch.rand(5, 6), torch.randn(4, 5, fitted.n_components)
    mask = torch.zeros(5, 6, dtype=torch.bool)
    mask[:, 2:4] = True
    restriction = module.likelihood.restricted(mask.any(dim=0))
    assert restriction.features.tolist() == [2, 3]
    assert restriction.outputs.tolist() == [2, 3]
    with torch.no_grad():
        full = importance_draws(module, x, eps, mask, True, 0.5)
        some = importance_draws(module, x, eps, mask, True, 0.5, restriction)
    torch.testing.assert_close(some.log_w, full.log_w, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(some.params, full.params[..., [2, 3]])


def test_a_dict_is_checked_and_encoded_as_one_row(fitted, monkeypatch):
    schema = fitted._schema
    encode, lengths = schema.encode, []
    read = []

    def counted(table, **kwargs):
        lengths.append(len(table))
        read.append(kwargs.get("only"))
        return encode(table, **kwargs)

    monkeypatch.setattr(schema, "encode", counted)
    conditions = read_conditions({"c": "b", "x": 0.5}, 500, schema)
    assert lengths == [1]
    assert read == [{0, 2}]  # the given columns alone are encoded
    assert_array_equal(conditions.encoded, np.repeat(conditions.encoded[:1], 500, 0))
    assert conditions.table[2].tolist() == ["b"] * 500
    assert conditions.given.sum(axis=0).tolist() == [500, 0, 500, 0, 0]
