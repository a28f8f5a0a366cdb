"""Losses, data iteration and splitting: pure functions, no fitting."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from numpy.testing import assert_allclose

from skvae._importance import (
    feature_log_likelihoods,
    log_marginal_likelihood,
    posterior_mean,
    posterior_sample,
)
from skvae._likelihoods import BernoulliLikelihood, GaussianLikelihood
from skvae._losses import NegativeELBO, gaussian_kl, negative_elbo, negative_iwae
from skvae._modules import VAEModule, VAEOutput
from skvae._utils import row_keyed_normal

floats = st.floats(-5, 5)


@settings(deadline=None, max_examples=50)
@given(
    mean=arrays(np.float64, (4, 3), elements=floats),
    logvar=arrays(np.float64, (4, 3), elements=floats),
)
def test_gaussian_kl_matches_torch_and_is_non_negative(mean, logvar):
    mean, logvar = torch.tensor(mean), torch.tensor(logvar)
    kl = gaussian_kl(mean, logvar)
    q = torch.distributions.Normal(mean, torch.exp(0.5 * logvar))
    p = torch.distributions.Normal(torch.zeros_like(mean), torch.ones_like(mean))
    expected = torch.distributions.kl_divergence(q, p).sum(-1)
    assert_allclose(kl, expected, rtol=1e-6, atol=1e-9)
    assert torch.all(kl >= 0)


def test_gaussian_kl_is_zero_at_the_prior_and_exact_near_it():
    assert torch.equal(
        gaussian_kl(torch.zeros(2, 3), torch.zeros(2, 3)), torch.zeros(2)
    )
    # For tiny log-variances v, exp(v) - 1 - v ~ v**2 / 2 must not cancel to 0.
    v = torch.full((1, 1), 1e-4, dtype=torch.float32)
    assert gaussian_kl(torch.zeros(1, 1), v).item() == pytest.approx(0.25e-8, rel=1e-3)


def test_negative_elbo_is_reconstruction_plus_weighted_kl():
    likelihood = BernoulliLikelihood(3)
    out = VAEOutput(
        z_mean=torch.ones(2, 2),
        z_logvar=torch.zeros(2, 2),
        z=torch.ones(2, 2),
        x_params=torch.zeros(2, 3),
    )
    x = torch.ones(2, 3)
    terms = negative_elbo(out, x, likelihood, kl_weight=0.5)
    assert terms.reconstruction.item() == pytest.approx(3 * math.log(2))  # logits 0
    assert terms.kl.item() == pytest.approx(1.0)  # 0.5 * (1 + 1) per sample
    assert terms.loss.item() == pytest.approx(3 * math.log(2) + 0.5)


def test_one_draw_estimate_is_the_single_sample_elbo():
    torch.manual_seed(0)
    module = VAEModule(4, n_components=2, hidden_layer_sizes=(8,))
    x = torch.rand(5, 4).round()
    eps = torch.randn(1, 5, 2)
    z_mean, z_logvar = module.encoder(x)
    z = z_mean + torch.exp(0.5 * z_logvar) * eps[0]
    expected = module.likelihood.log_prob(x, module.decoder(z)) - gaussian_kl(
        z_mean, z_logvar
    )
    assert_allclose(log_marginal_likelihood(module, x, eps).detach(), expected.detach())


class _Affine(torch.nn.Module):
    def __init__(self, weight, bias):
        super().__init__()
        self.weight, self.bias = weight, bias

    def forward(self, x):
        return x @ self.weight.T + self.bias


class _ExactPosterior(torch.nn.Module):
    """q(z | x) = the true posterior of a linear-Gaussian model."""

    def __init__(self, W, b, noise):
        super().__init__()
        precision = torch.diag(1 + (W * W).sum(0) / noise**2)  # W^T W is diagonal
        self.cov = torch.linalg.inv(precision)
        self.W, self.b, self.noise = W, b, noise

    def forward(self, x):
        mean = (x - self.b) @ self.W / self.noise**2 @ self.cov
        log_var = torch.log(torch.diagonal(self.cov)).expand_as(mean)
        return mean, log_var


def _linear_gaussian_model():
    torch.manual_seed(0)
    n_features, n_components, noise = 5, 2, 0.7
    Q, _ = torch.linalg.qr(torch.randn(n_features, n_components, dtype=torch.float64))
    W = Q * torch.tensor([2.0, 0.5], dtype=torch.float64)  # orthogonal columns
    b = torch.randn(n_features, dtype=torch.float64)
    module = VAEModule(
        n_features, n_components, hidden_layer_sizes=(3,), likelihood=GaussianLikelihood
    ).double()
    module.encoder = _ExactPosterior(W, b, noise)
    module.decoder = _Affine(W, b)
    with torch.no_grad():
        module.likelihood.raw_scale.fill_(
            math.log(math.expm1(noise - GaussianLikelihood.min_scale))
        )
    marginal = torch.distributions.MultivariateNormal(
        b, W @ W.T + noise**2 * torch.eye(n_features, dtype=torch.float64)
    )
    return module, marginal


@pytest.mark.parametrize("n_draws", [2, 5, 50])
def test_importance_weighted_bound_is_exact_with_the_true_posterior(n_draws):
    # z ~ N(0, I), x | z ~ N(W z + b, noise^2 I). When q(z | x) is the true
    # posterior, every importance weight p(x, z) / q(z | x) equals p(x), so the
    # bound is log p(x) for any number of draws: the -log K term and both
    # log-densities must be exact.
    module, marginal = _linear_gaussian_model()
    x = torch.randn(7, 5, dtype=torch.float64) * 2
    eps = torch.randn(n_draws, 7, 2, dtype=torch.float64)
    with torch.no_grad():
        estimate = log_marginal_likelihood(module, x, eps)
    assert_allclose(estimate, marginal.log_prob(x), rtol=0, atol=1e-10)


def test_the_training_bound_with_several_draws_is_the_iwae_bound():
    # With the exact posterior the importance-weighted training loss is
    # -log p(x) for any draws; its terms are the sampled reconstruction and KL.
    module, marginal = _linear_gaussian_model()
    x = torch.randn(7, 5, dtype=torch.float64)
    with torch.no_grad():
        output = module(x, n_draws=4)
        terms = negative_iwae(output, x, module.likelihood)
    assert output.z.shape == (4, 7, 2) and output.x_params.shape == (4, 7, 5)
    assert_allclose(terms.loss, -marginal.log_prob(x).mean(), rtol=0, atol=1e-10)
    assert_allclose(terms.loss, terms.reconstruction + terms.kl, rtol=1e-10)


def test_importance_weighted_bound_is_tighter_than_the_elbo():
    torch.manual_seed(0)
    module = VAEModule(6, n_components=2, hidden_layer_sizes=(8,))
    x = torch.rand(200, 6).round()
    with torch.no_grad():
        elbo = log_marginal_likelihood(module, x, torch.randn(1, 200, 2)).mean()
        iwae = log_marginal_likelihood(module, x, torch.randn(100, 200, 2)).mean()
    assert iwae > elbo


def test_row_keyed_draws_depend_only_on_the_row():
    X = torch.rand(6, 3)
    eps = row_keyed_normal(X, 4, 2, seed=0)
    assert eps.shape == (4, 6, 2) and eps.dtype == torch.float32
    assert torch.equal(row_keyed_normal(X[[3, 1]], 4, 2, seed=0), eps[:, [3, 1]])
    assert not torch.equal(row_keyed_normal(X, 4, 2, seed=1), eps)
    # Statistically standard normal.
    big = row_keyed_normal(torch.rand(5000, 3), 10, 2, seed=0)
    assert abs(big.mean().item()) < 0.02 and abs(big.std().item() - 1) < 0.02


# --------------------------------------------------------------------------
# Importance sampling against the closed forms of a linear-Gaussian model
# --------------------------------------------------------------------------
class _FixedProposal(torch.nn.Module):
    """q(z | x) = N(mean, exp(log_var) I) whatever x: a deliberately poor
    proposal, so that only the importance weights can correct it."""

    def __init__(self, mean, log_var, n_components):
        super().__init__()
        self.mean, self.log_var, self.n_components = mean, log_var, n_components

    def forward(self, x):
        shape = (*x.shape[:-1], self.n_components)
        mean = torch.full(shape, self.mean, dtype=x.dtype)
        return mean, torch.full(shape, self.log_var, dtype=x.dtype)


# z ~ N(0, I), x | z ~ N(W z + b, NOISE^2 I)
_W = torch.tensor(
    [[1.0, 0.5], [-0.8, 1.0], [0.6, -0.9], [1.2, 0.3]], dtype=torch.float64
)
_B = torch.tensor([0.5, -1.0, 2.0, 0.0], dtype=torch.float64)
_NOISE = 0.5


def _poor_proposal_model(mean=1.0, log_var=math.log(2.0)):
    """The linear-Gaussian model with the fixed proposal N(mean, e^log_var I)."""
    module = VAEModule(
        4, 2, hidden_layer_sizes=(3,), likelihood=GaussianLikelihood
    ).double()
    module.encoder = _FixedProposal(mean, log_var, 2)
    module.decoder = _Affine(_W, _B)
    with torch.no_grad():
        module.likelihood.raw_scale.fill_(
            math.log(math.expm1(_NOISE - GaussianLikelihood.min_scale))
        )
    return module


def _exact_posterior(x, observed):
    """Mean and covariance of p(z | x_observed) for each row of the model."""
    means, covs = [], []
    for row, seen in zip(x, observed):
        W_o = _W[seen]
        precision = torch.eye(2, dtype=torch.float64) + W_o.T @ W_o / _NOISE**2
        cov = torch.linalg.inv(precision)
        means.append(cov @ W_o.T @ (row[seen] - _B[seen]) / _NOISE**2)
        covs.append(cov)
    return torch.stack(means), torch.stack(covs)


def _rows_with_gaps():
    x = torch.tensor(
        [[2.0, -2.5, 0.5, 1.5], [0.0, 0.5, 3.0, -1.0], [1.0, -1.0, 2.0, 2.5]],
        dtype=torch.float64,
    )
    observed = torch.tensor(
        [[True, True, False, True], [True, False, True, False], [False] * 3 + [True]]
    )
    return x, observed


def test_miwae_fills_are_the_exact_conditional_means():
    # E[x | x_obs] = W E[z | x_obs] + b. The proposal misses the posterior
    # (mean 1 in every direction, twice the prior's variance), so the fills
    # are right only if each draw counts with its importance weight.
    module = _poor_proposal_model()
    x, observed = _rows_with_gaps()
    eps = torch.randn(
        20000, 3, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0)
    )
    with torch.no_grad():
        fills = posterior_mean(module, x, eps, observed)
    z_mean, _ = _exact_posterior(x, observed)
    assert_allclose(fills, z_mean @ _W.T + _B, rtol=0, atol=0.03)


def test_feature_scores_are_the_exact_expected_log_likelihoods():
    # E[log N(x_j; W_j z + b_j, s^2) | x_obs] = log N(x_j; W_j m + b_j, s^2)
    # - W_j C W_j^T / (2 s^2), with the posterior's mean m and covariance C;
    # 0 for missing entries.
    module = _poor_proposal_model()
    x, observed = _rows_with_gaps()
    eps = torch.randn(
        20000, 3, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0)
    )
    with torch.no_grad():
        scores = feature_log_likelihoods(module, x, eps, observed)
    z_mean, z_cov = _exact_posterior(x, observed)
    residual = x - z_mean @ _W.T - _B
    spread = torch.einsum("jk,nkl,jl->nj", _W, z_cov, _W)
    expected = -0.5 * math.log(2 * math.pi * _NOISE**2) - (
        residual.square() + spread
    ) / (2 * _NOISE**2)
    assert_allclose(scores, torch.where(observed, expected, 0.0), rtol=0, atol=0.03)


def test_posterior_draws_follow_the_exact_conditional_distribution():
    # x | x_obs ~ N(W m + b, W C W^T + s^2 I): many copies of one row, each
    # with its own draws of z, give the conditional's mean and variances.
    # Picking the most heavily weighted code instead of drawing one would
    # leave out most of the spread of the code.
    module = _poor_proposal_model(mean=0.5, log_var=0.0)
    n_rows = 4000
    x = torch.tensor([[1.5, 0.0, 0.0, 0.0]], dtype=torch.float64).expand(n_rows, 4)
    observed = torch.tensor([[True, False, False, False]]).expand(n_rows, 4)
    generator = torch.Generator().manual_seed(0)
    eps = torch.randn(500, n_rows, 2, dtype=torch.float64, generator=generator)
    with torch.no_grad():
        draws = posterior_sample(module, x, eps, observed, generator=generator)
    z_mean, z_cov = _exact_posterior(x[:1], observed[:1])
    mean = z_mean[0] @ _W.T + _B
    variance = torch.diagonal(_W @ z_cov[0] @ _W.T) + _NOISE**2
    assert_allclose(draws.mean(0), mean, rtol=0, atol=0.06)
    assert_allclose(draws.var(0), variance, rtol=0.1)


@pytest.mark.parametrize("beta, warmup", [(0.6, 0.5), (2.0, 1.0), (1.0, 0.0)])
def test_the_multi_draw_loss_weights_the_prior_ratio_by_beta_and_warm_up(beta, warmup):
    # -log mean_k exp(log p(x | z_k) + w (log p(z_k) - log q(z_k | x))) with
    # w = beta * warm-up, each term from torch.distributions.
    module = _poor_proposal_model(mean=0.3, log_var=-0.5)
    x, _ = _rows_with_gaps()
    torch.manual_seed(0)
    with torch.no_grad():
        output = module(x, n_draws=6)
        terms = NegativeELBO(beta)(output, x, module.likelihood, warmup)
    z = output.z  # (6, 3, 2)
    normal = torch.distributions.Normal
    log_px_z = normal(z @ _W.T + _B, _NOISE).log_prob(x).sum(-1)
    log_pz = normal(0.0, 1.0).log_prob(z).sum(-1)
    log_qz = normal(0.3, math.exp(-0.25)).log_prob(z).sum(-1)
    log_w = log_px_z + beta * warmup * (log_pz - log_qz)
    expected = -(torch.logsumexp(log_w, 0) - math.log(6)).mean()
    assert_allclose(terms.loss, expected, rtol=1e-8)
