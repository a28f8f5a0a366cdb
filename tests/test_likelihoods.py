"""Each likelihood against torch.distributions, on generated inputs."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from numpy.testing import assert_allclose, assert_array_equal

from skvae._likelihoods import (
    LIKELIHOODS,
    BernoulliLikelihood,
    BlockLikelihood,
    CategoricalLikelihood,
    ContinuousBernoulliLikelihood,
    GaussianLikelihood,
    HeteroscedasticGaussianLikelihood,
    NegativeBinomialLikelihood,
    PoissonLikelihood,
    make_likelihood,
)

floats = st.floats(-5, 5)
counts = st.integers(0, 100).map(float)


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


@settings(deadline=None, max_examples=50)
@given(
    logits=arrays(np.float64, (3, 4), elements=floats),
    x=arrays(np.float64, (3, 4), elements=st.floats(0, 1)),
)
def test_continuous_bernoulli_log_prob_and_mean_match_torch(logits, x):
    logits, x = torch.tensor(logits), torch.tensor(x)
    expected = torch.distributions.ContinuousBernoulli(logits=logits)
    likelihood = ContinuousBernoulliLikelihood(4)
    got = likelihood.log_prob(x, logits)
    assert got.shape == (3,)
    assert_allclose(got, expected.log_prob(x).sum(-1), rtol=1e-6, atol=1e-6)
    assert_allclose(likelihood.mean(logits), expected.mean, rtol=1e-6, atol=1e-6)


@settings(deadline=None, max_examples=50)
@given(
    log_rate=arrays(np.float64, (3, 4), elements=floats),
    x=arrays(np.float64, (3, 4), elements=counts),
)
def test_poisson_log_prob_matches_torch(log_rate, x):
    log_rate, x = torch.tensor(log_rate), torch.tensor(x)
    expected = torch.distributions.Poisson(log_rate.exp()).log_prob(x).sum(-1)
    got = PoissonLikelihood(4).log_prob(x, log_rate)
    assert got.shape == (3,)
    assert_allclose(got, expected, rtol=1e-6, atol=1e-6)


@settings(deadline=None, max_examples=50)
@given(
    log_mean=arrays(np.float64, (3, 4), elements=floats),
    x=arrays(np.float64, (3, 4), elements=counts),
    raw_inverse_dispersion=arrays(np.float64, (4,), elements=floats),
)
def test_negative_binomial_log_prob_matches_torch(log_mean, x, raw_inverse_dispersion):
    likelihood = NegativeBinomialLikelihood(4).double()
    with torch.no_grad():
        likelihood.raw_inverse_dispersion.copy_(torch.tensor(raw_inverse_dispersion))
    log_mean, x = torch.tensor(log_mean), torch.tensor(x)
    with torch.no_grad():
        theta = likelihood.inverse_dispersion
        got = likelihood.log_prob(x, log_mean)
        # torch counts successes before total_count failures, with success
        # odds mean / theta: its mean total_count * odds is our mean.
        expected = torch.distributions.NegativeBinomial(
            total_count=theta, logits=log_mean - theta.log()
        )
    assert_allclose(got, expected.log_prob(x).sum(-1), rtol=1e-6, atol=1e-6)
    assert_allclose(likelihood.mean(log_mean), expected.mean, rtol=1e-6)
    min_theta = NegativeBinomialLikelihood.min_inverse_dispersion
    assert torch.all(theta >= min_theta)


# Logits at, inside and just outside the window of the Taylor series.
_LOGITS_NEAR_ZERO = [0.0, 1e-7, 1e-4, 0.01, 0.2499, 0.25, 0.2501, 0.5, 1.0]


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_continuous_bernoulli_is_stable_near_logit_zero(sign):
    logits64 = sign * torch.tensor(_LOGITS_NEAR_ZERO, dtype=torch.float64)
    reference = torch.distributions.ContinuousBernoulli(logits=logits64)
    x = torch.full_like(logits64, 0.3)
    expected = reference.log_prob(x)
    likelihood = ContinuousBernoulliLikelihood(1)
    for dtype, tol in [(torch.float64, 1e-9), (torch.float32, 1e-6)]:
        logits = logits64.to(dtype).clone().requires_grad_()
        got = likelihood.log_prob(x.to(dtype)[:, None], logits[:, None])
        assert_allclose(got.detach(), expected, rtol=0, atol=tol)
        mean = likelihood.mean(logits.detach())
        assert_allclose(mean, reference.mean, rtol=0, atol=tol)
        got.sum().backward()
        assert torch.isfinite(logits.grad).all()


def test_continuous_bernoulli_is_finite_for_saturated_logits():
    logits = torch.tensor([[-1e4, -100.0, 100.0, 1e4]])
    likelihood = ContinuousBernoulliLikelihood(4)
    x = torch.tensor([[0.0, 0.01, 0.99, 1.0]])
    assert torch.isfinite(likelihood.log_prob(x, logits)).all()
    assert_allclose(likelihood.mean(logits), [[1e-4, 0.01, 0.99, 1 - 1e-4]], rtol=1e-5)
    draws = likelihood.sample(logits.expand(100, -1), torch.Generator().manual_seed(0))
    assert torch.all((draws >= 0) & (draws <= 1))


@pytest.mark.parametrize("logit", [-20.0, -3.0, -0.1, 0.0, 0.1, 3.0, 20.0])
def test_continuous_bernoulli_samples_follow_its_cdf(logit):
    n = 20000
    params = torch.full((n, 1), logit, dtype=torch.float64)
    generator = torch.Generator().manual_seed(0)
    draws = ContinuousBernoulliLikelihood(1).sample(params, generator)[:, 0]
    cdf = torch.distributions.ContinuousBernoulli(logits=params[:, 0]).cdf
    ecdf = torch.arange(1, n + 1, dtype=torch.float64) / n
    # Kolmogorov-Smirnov statistic against the 1% critical value.
    assert (cdf(draws.sort().values) - ecdf).abs().max() < 1.63 / math.sqrt(n)


def test_negative_binomial_samples_are_overdispersed():
    likelihood = NegativeBinomialLikelihood(3)
    with torch.no_grad():
        likelihood.raw_inverse_dispersion.copy_(torch.tensor([-2.0, 0.5, 3.0]))
        theta = likelihood.inverse_dispersion
        params = torch.tensor([[0.5, 1.5, 3.0]]).expand(50000, -1)
        draws = likelihood.sample(params, torch.Generator().manual_seed(0))
    mean = likelihood.mean(params[0])
    assert torch.equal(draws, draws.round())
    assert_allclose(draws.var(0), mean + mean.square() / theta, rtol=0.1)


@pytest.mark.parametrize("likelihood", [PoissonLikelihood, NegativeBinomialLikelihood])
def test_count_likelihoods_are_finite_for_extreme_log_means(likelihood):
    params = torch.tensor([[-1e4, -50.0, 50.0, 1e4]])
    x = torch.tensor([[0.0, 3.0, 0.0, 1e6]])
    model = likelihood(4)
    assert torch.isfinite(model.log_prob(x, params)).all()
    assert torch.isfinite(model.mean(params)).all()
    with torch.no_grad():
        draws = model.sample(params, torch.Generator().manual_seed(0))
    assert torch.isfinite(draws).all()


def test_count_samples_are_non_negative_integers():
    params = torch.randn(200, 3)
    for likelihood in [PoissonLikelihood(3), NegativeBinomialLikelihood(3)]:
        with torch.no_grad():
            draws = likelihood.sample(params, torch.Generator().manual_seed(0))
        assert torch.all(draws >= 0)
        assert torch.equal(draws, draws.round())


def test_bernoulli_log_prob_is_finite_for_saturated_logits():
    logits = torch.tensor([[-200.0, 200.0]])
    out = BernoulliLikelihood(2).log_prob(torch.tensor([[1.0, 0.0]]), logits)
    assert torch.isfinite(out).all()
    assert out.item() == pytest.approx(-400.0)


@pytest.mark.parametrize("name", sorted(LIKELIHOODS))
def test_mean_and_sample(name):
    likelihood = LIKELIHOODS[name](6)
    params = torch.randn(1000, 6 * likelihood.n_params_per_feature)
    mean = likelihood.mean(params)
    assert mean.shape == (1000, 6)
    draws = [
        likelihood.sample(params, torch.Generator().manual_seed(0)) for _ in range(2)
    ]
    assert torch.equal(*draws)  # a seeded generator gives the same draws
    # The average of many draws of one distribution approaches its mean, within
    # a few standard errors: a tolerance that scales with the spread, so that
    # it suits unit-scale data and counts with large means alike.
    row = params[:1].expand(20000, -1)
    with torch.no_grad():
        draws = likelihood.sample(row, torch.Generator().manual_seed(1))
        expected = likelihood.mean(row)[0]
    standard_error = draws.std(0) / math.sqrt(len(draws))
    assert torch.all((draws.mean(0) - expected).abs() <= 5 * standard_error)


@pytest.mark.parametrize("name", sorted(LIKELIHOODS))
def test_negative_log_prob_is_minus_log_prob(name):
    likelihood = LIKELIHOODS[name](6)
    params = torch.randn(50, 6 * likelihood.n_params_per_feature)
    with torch.no_grad():
        x = likelihood.sample(params, torch.Generator().manual_seed(0))
    mask = torch.rand(50, 6, generator=torch.Generator().manual_seed(1)) < 0.7
    with torch.no_grad():  # the likelihood's own parameters need no gradient
        for m in (None, mask):
            expected = -likelihood.log_prob(x, params, m)
            assert_allclose(likelihood.negative_log_prob(x, params, m), expected)
        assert not torch.equal(expected, -likelihood.log_prob(x, params))


@pytest.mark.parametrize("name", sorted(LIKELIHOODS))
def test_the_kernel_leaves_out_only_terms_without_decoder_outputs(name):
    """log_prob - log_kernel is the same for any decoder output: importance
    weights normalised over draws of the code are those of the density."""
    likelihood = LIKELIHOODS[name](6).double()
    generator = torch.Generator().manual_seed(0)
    params = torch.randn(2, 40, 6 * likelihood.n_params_per_feature).double()
    with torch.no_grad():
        for parameter in likelihood.parameters():  # theta != 1, where the
            parameter.fill_(2.0)  # negative binomial's lgamma terms cancel
        x = likelihood.sample(params[0], generator).expand(2, -1, -1)
        mask = torch.rand(40, 6, generator=generator) < 0.7
        rest = likelihood.log_prob(x, params, mask) - likelihood.log_kernel(
            x, params, mask
        )
    assert_allclose(rest[0], rest[1], rtol=1e-9, atol=1e-9)
    if name in ("poisson", "negative_binomial"):
        assert rest.abs().max() > 1  # the lgamma terms, left out
    else:
        assert torch.equal(rest, torch.zeros_like(rest))


@pytest.mark.parametrize("name", sorted(LIKELIHOODS))
def test_seeded_sample_leaves_the_global_random_state_alone(name):
    likelihood = LIKELIHOODS[name](3)
    params = torch.randn(50, 3 * likelihood.n_params_per_feature)
    state = torch.get_rng_state()
    with torch.no_grad():
        likelihood.sample(params, torch.Generator().manual_seed(0))
    assert torch.equal(torch.get_rng_state(), state)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("name", sorted(LIKELIHOODS))
def test_sample_on_the_gpu_is_reproducible(name):
    likelihood = LIKELIHOODS[name](6).cuda()
    params = torch.randn(100, 6 * likelihood.n_params_per_feature, device="cuda")
    state = torch.cuda.get_rng_state()
    with torch.no_grad():
        draws = [
            likelihood.sample(params, torch.Generator("cuda").manual_seed(0))
            for _ in range(2)
        ]
    assert draws[0].is_cuda
    assert torch.equal(*draws)
    assert torch.equal(torch.cuda.get_rng_state(), state)


def test_bernoulli_samples_are_binary():
    draws = BernoulliLikelihood(3).sample(torch.randn(50, 3))
    assert set(draws.unique().tolist()) <= {0.0, 1.0}


@pytest.mark.parametrize("X", [np.array([[-0.1, 0.5]]), np.array([[0.0, 1.5]])])
def test_bernoulli_support_check(X):
    with pytest.raises(ValueError, match="needs X in \\[0, 1\\]"):
        BernoulliLikelihood.check_support(X)


@pytest.mark.parametrize(
    "likelihood, X, match",
    [
        (ContinuousBernoulliLikelihood, [[-0.1, 0.5]], "needs X in \\[0, 1\\]"),
        (ContinuousBernoulliLikelihood, [[0.0, 1.5]], "MinMaxScaler"),
        (PoissonLikelihood, [[-1.0, 2.0]], "'poisson' needs non-negative integer"),
        (PoissonLikelihood, [[0.5, 2.0]], "non-integer value.*'gaussian'"),
        (NegativeBinomialLikelihood, [[3.0, -2.0]], "'negative_binomial' needs"),
        (NegativeBinomialLikelihood, [[1.0, 2.25]], "non-integer value.*2.25"),
    ],
)
def test_support_check_of_new_likelihoods(likelihood, X, match):
    with pytest.raises(ValueError, match=match):
        likelihood.check_support(np.array(X))


@pytest.mark.parametrize("likelihood", [PoissonLikelihood, NegativeBinomialLikelihood])
def test_count_likelihoods_accept_counts_stored_as_floats(likelihood):
    likelihood.check_support(np.array([[0.0, 1.0, 7.0], [1e6, 0.0, 2.0]]))


def test_continuous_bernoulli_accepts_grey_levels():
    ContinuousBernoulliLikelihood.check_support(np.array([[0.0, 0.37, 1.0]]))


def test_gaussian_accepts_any_real_data():
    GaussianLikelihood.check_support(np.array([[-1e3, 1e3]]))


@pytest.mark.parametrize("name", sorted(LIKELIHOODS))
def test_masked_log_prob_is_the_log_prob_of_the_observed_entries(name):
    likelihood = LIKELIHOODS[name](5)
    x = torch.randint(0, 2, (3, 5)).float()
    params = torch.randn(3, 5 * likelihood.n_params_per_feature)
    mask = torch.tensor([[True, False, True, True, False]] * 3)
    elements = likelihood.log_prob_elements(x, params)
    expected = elements[:, [0, 2, 3]].sum(-1)
    got = likelihood.log_prob(x, params, mask=mask)
    assert_allclose(got.detach(), expected.detach(), rtol=1e-6)
    assert_allclose(
        likelihood.log_prob(x, params).detach(), elements.sum(-1).detach(), rtol=1e-6
    )


def test_negative_binomial_log_prob_is_accurate_for_large_theta():
    # As theta grows the negative binomial tends to the Poisson; in float32 the
    # log-pmf must not lose the difference lgamma(x + theta) - lgamma(theta).
    theta = 1e5
    likelihood = NegativeBinomialLikelihood(1)
    with torch.no_grad():
        likelihood.raw_inverse_dispersion.fill_(
            theta - NegativeBinomialLikelihood.min_inverse_dispersion
        )  # softplus(t) == t for large t
    x = torch.arange(0.0, 40.0).reshape(-1, 1)
    log_mean = torch.full_like(x, math.log(12.0))
    with torch.no_grad():
        got = likelihood.log_prob_elements(x, log_mean).double()
    expected = torch.distributions.NegativeBinomial(
        total_count=torch.tensor(theta, dtype=torch.float64),
        probs=torch.tensor(12.0 / (12.0 + theta), dtype=torch.float64),
    ).log_prob(x.double())
    assert_allclose(got, expected, atol=2e-3)


@settings(deadline=None, max_examples=50)
@given(
    params=arrays(np.float64, (3, 8), elements=floats),
    x=arrays(np.float64, (3, 4), elements=floats),
)
def test_heteroscedastic_gaussian_log_prob_matches_torch(params, x):
    params, x = torch.tensor(params), torch.tensor(x)
    likelihood = HeteroscedasticGaussianLikelihood(4)
    loc, raw = params[:, :4], params[:, 4:]
    scale = torch.nn.functional.softplus(raw) + likelihood.min_scale
    expected = torch.distributions.Normal(loc, scale).log_prob(x).sum(-1)
    assert_allclose(likelihood.log_prob(x, params), expected, rtol=1e-6, atol=1e-6)
    assert torch.equal(likelihood.mean(params), loc)


@settings(deadline=None, max_examples=50)
@given(
    logits=arrays(np.float64, (6, 3), elements=floats),
    codes=arrays(np.int64, 6, elements=st.integers(0, 2)),
)
def test_categorical_log_prob_matches_torch(logits, codes):
    logits, codes = torch.tensor(logits), torch.tensor(codes)
    x = torch.nn.functional.one_hot(codes, 3).double()
    expected = torch.distributions.Categorical(logits=logits).log_prob(codes)
    got = CategoricalLikelihood(3).log_prob(x, logits)
    assert_allclose(got, expected, rtol=1e-6, atol=1e-6)


def test_categorical_draws_are_one_hot_with_the_softmax_frequencies():
    logits = torch.tensor([[0.0, 1.0, -1.0]]).expand(20000, 3)
    with torch.no_grad():
        draws = CategoricalLikelihood(3).sample(
            logits, torch.Generator().manual_seed(0)
        )
    assert torch.all(draws.sum(-1) == 1) and set(draws.unique().tolist()) == {0, 1}
    assert_allclose(draws.mean(0), torch.softmax(logits[0], -1), atol=0.01)


def test_blocks_of_likelihoods_are_their_parts_side_by_side():
    blocks = (("gaussian", 2), ("categorical", 3), ("gaussian_heteroscedastic", 1))
    likelihood = make_likelihood(blocks, 6)
    assert isinstance(likelihood, BlockLikelihood) and likelihood.n_params == 7
    torch.manual_seed(0)
    params = torch.randn(5, 7)
    x = torch.cat(
        [
            torch.randn(5, 2),
            torch.eye(3)[torch.tensor([0, 2, 1, 1, 0])],
            torch.randn(5, 1),
        ],
        dim=1,
    )
    parts = likelihood.parts
    # (features, parameters) of each block.
    slices = [
        (slice(0, 2), slice(0, 2)),
        (slice(2, 5), slice(2, 5)),
        (slice(5, 6), slice(5, 7)),
    ]
    expected = sum(
        part.log_prob(x[:, f], params[:, p]) for part, (f, p) in zip(parts, slices)
    )
    assert_allclose(
        likelihood.log_prob(x, params).detach(), expected.detach(), rtol=1e-6
    )
    with torch.no_grad():
        means = torch.cat(
            [part.mean(params[:, p]) for part, (_, p) in zip(parts, slices)], 1
        )
        assert_allclose(likelihood.mean(params), means, rtol=1e-6)
        # One generator, used by the blocks in order.
        draws = likelihood.sample(params, torch.Generator().manual_seed(0))
        generator = torch.Generator().manual_seed(0)
        expected_draws = torch.cat(
            [
                part.sample(params[:, p], generator)
                for part, (_, p) in zip(parts, slices)
            ],
            1,
        )
    assert draws.shape == (5, 6)
    assert_array_equal(draws, expected_draws)
    # A single block is that likelihood alone, as in the classic model.
    assert type(make_likelihood((("bernoulli", 4),), 4)) is BernoulliLikelihood
    with pytest.raises(ValueError, match="cover 3 features"):
        make_likelihood((("gaussian", 3),), 4)


def test_a_restricted_block_likelihood_keeps_the_blocks_of_its_features():
    blocks = (("gaussian", 2), ("categorical", 3), ("gaussian_heteroscedastic", 1))
    likelihood = make_likelihood(blocks, 6)
    # Feature 1 (in the Gaussian block of 0 and 1) and feature 5 (two outputs).
    features = torch.tensor([False, True, False, False, False, True])
    restricted = likelihood.restricted(features)
    assert restricted.features.tolist() == [0, 1, 5]
    assert restricted.outputs.tolist() == [0, 1, 5, 6]
    # Its parts are the fitted ones (their parameters), not copies.
    assert restricted.likelihood.parts[1] is likelihood.parts[2]
    torch.manual_seed(0)
    x, params = torch.randn(4, 6), torch.randn(4, 7)
    elements = likelihood.log_prob_elements(x, params)[:, [0, 1, 5]]
    sub = restricted.likelihood.log_prob_elements(
        x[:, [0, 1, 5]], params[:, [0, 1, 5, 6]]
    )
    assert_allclose(sub.detach(), elements.detach(), rtol=1e-6)
    # Every block, or none: the likelihood itself over all features.
    for mask in (torch.ones(6, dtype=torch.bool), torch.zeros(6, dtype=torch.bool)):
        whole = likelihood.restricted(mask)
        assert whole.likelihood is likelihood
        assert whole.outputs.tolist() == list(range(7))
