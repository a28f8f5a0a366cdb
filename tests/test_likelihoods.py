"""Each likelihood against torch.distributions, on generated inputs."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from numpy.testing import assert_allclose

from skvae._likelihoods import _LIKELIHOODS, BernoulliLikelihood, GaussianLikelihood

floats = st.floats(-5, 5)


@settings(deadline=None, max_examples=50)
@given(
    logits=arrays(np.float64, (3, 4), elements=floats),
    x=arrays(np.float64, (3, 4), elements=st.sampled_from([0.0, 1.0])),
)
def test_bernoulli_log_prob_matches_torch(logits, x):
    logits, x = torch.tensor(logits), torch.tensor(x)
    expected = torch.distributions.Bernoulli(logits=logits).log_prob(x).sum(-1)
    got = BernoulliLikelihood(4).log_prob(x, logits)
    assert got.shape == (3,)
    assert_allclose(got, expected, rtol=1e-6, atol=1e-6)


@settings(deadline=None, max_examples=50)
@given(
    mean=arrays(np.float64, (3, 4), elements=floats),
    x=arrays(np.float64, (3, 4), elements=floats),
    raw_scale=arrays(np.float64, (4,), elements=floats),
)
def test_gaussian_log_prob_matches_torch(mean, x, raw_scale):
    likelihood = GaussianLikelihood(4).double()
    with torch.no_grad():
        likelihood.raw_scale.copy_(torch.tensor(raw_scale))
    mean, x = torch.tensor(mean), torch.tensor(x)
    with torch.no_grad():
        got = likelihood.log_prob(x, mean)
        expected = (
            torch.distributions.Normal(mean, likelihood.scale).log_prob(x).sum(-1)
        )
    assert_allclose(got, expected, rtol=1e-6, atol=1e-6)
    assert torch.all(likelihood.scale >= GaussianLikelihood.min_scale)


def test_bernoulli_log_prob_is_finite_for_saturated_logits():
    logits = torch.tensor([[-200.0, 200.0]])
    out = BernoulliLikelihood(2).log_prob(torch.tensor([[1.0, 0.0]]), logits)
    assert torch.isfinite(out).all()
    assert out.item() == pytest.approx(-400.0)


@pytest.mark.parametrize("name", sorted(_LIKELIHOODS))
def test_mean_and_sample(name):
    likelihood = _LIKELIHOODS[name](6)
    params = torch.randn(1000, 6 * likelihood.n_params_per_feature)
    mean = likelihood.mean(params)
    assert mean.shape == (1000, 6)
    draws = [
        likelihood.sample(params, torch.Generator().manual_seed(0)) for _ in range(2)
    ]
    assert torch.equal(*draws)  # a seeded generator gives the same draws
    # The average of many draws of one distribution approaches its mean.
    row = params[:1].expand(20000, -1)
    with torch.no_grad():
        avg = likelihood.sample(row, torch.Generator().manual_seed(1)).mean(0)
    assert_allclose(avg, likelihood.mean(row)[0].detach(), atol=0.05)


def test_bernoulli_samples_are_binary():
    draws = BernoulliLikelihood(3).sample(torch.randn(50, 3))
    assert set(draws.unique().tolist()) <= {0.0, 1.0}


@pytest.mark.parametrize("X", [np.array([[-0.1, 0.5]]), np.array([[0.0, 1.5]])])
def test_bernoulli_support_check(X):
    with pytest.raises(ValueError, match="needs X in \\[0, 1\\]"):
        BernoulliLikelihood.check_support(X)


def test_gaussian_accepts_any_real_data():
    GaussianLikelihood.check_support(np.array([[-1e3, 1e3]]))
