"""Importance sampling from the posterior of a ``VAEModule``.

Log-likelihood estimates (``score_samples``), MIWAE fills, posterior draws and
per-feature expected log-likelihoods, all from the same decoded draws of
``importance_draws``.
"""

import math
from typing import NamedTuple

import torch

from ._losses import gaussian_kl, log_prior_ratio


class Draws(NamedTuple):
    """K codes drawn from q(z | x) for a batch, decoded and weighted."""

    z_mean: torch.Tensor  # (batch, n_components): the posterior means
    params: torch.Tensor  # (K, batch, n_params): decoder outputs
    log_px_z: torch.Tensor  # (K, batch): log p(x | z_k), observed entries
    log_w: torch.Tensor  # (K, batch): log p(x, z_k) / q(z_k | x)
    kl: torch.Tensor  # (batch,): closed-form KL(q(z | x) || p(z))


def importance_draws(module, x, eps, mask=None, kernel=False):
    """Draw z_k = mean + std * eps_k from q(z | x), decode and weight them.

    Parameters
    ----------
    module : VAEModule
    x : Tensor of shape (batch, n_features)
    eps : Tensor of shape (K, batch, n_components)
        Standard normal draws.
    mask : bool Tensor of shape (batch, n_features) or None
        Observed entries: the weights are then those of the observed part.
    kernel : bool, default=False
        Leave out of ``log_px_z`` and ``log_w`` the terms that no decoder
        output enters (``Likelihood.log_kernel_elements``): the weights
        normalised over the draws stay the same.

    Returns
    -------
    draws : Draws
    """
    z_mean, z_logvar = module.encode(x, mask)
    z = z_mean + torch.exp(0.5 * z_logvar) * eps  # (K, batch, n_components)
    n_draws, batch = z.shape[:2]
    params = module.decoder(z.reshape(n_draws * batch, -1)).reshape(n_draws, batch, -1)
    # Broadcast views of x (and the mask) over the K draws: no copies.
    x_rep = x.expand(n_draws, *x.shape)
    if mask is not None:
        mask = mask.expand(n_draws, *mask.shape)
    likelihood = module.likelihood
    log_density = likelihood.log_kernel if kernel else likelihood.log_prob
    log_px_z = log_density(x_rep, params, mask)
    log_w = log_px_z + log_prior_ratio(z, z_mean, z_logvar)
    return Draws(z_mean, params, log_px_z, log_w, gaussian_kl(z_mean, z_logvar))


def log_marginal_likelihood(module, x, eps, mask=None):
    """Importance-weighted estimate of log p(x) per sample.

    With K = ``len(eps)`` draws this is the IWAE bound
    ``log mean_k p(x, z_k) / q(z_k | x)``; with one draw it is the ELBO,
    using the closed-form KL term. Arguments as for ``importance_draws``.

    Returns
    -------
    log_px : Tensor of shape (batch,)
    """
    return marginal_of_draws(importance_draws(module, x, eps, mask))


def marginal_of_draws(draws):
    """``log_marginal_likelihood`` of the ``Draws`` of a batch."""
    if len(draws.log_w) == 1:
        return draws.log_px_z[0] - draws.kl
    return torch.logsumexp(draws.log_w, dim=0) - math.log(len(draws.log_w))


def posterior_mean(module, x, eps, mask=None):
    """E[x | x_observed] by self-normalised importance sampling, per entry.

    Each draw's likelihood mean, weighted by p(x_obs, z_k) / q(z_k | x_obs)
    normalised over the draws (the MIWAE imputation of Mattei and Frellsen,
    2019), for which the likelihood's kernel is enough. Arguments as for
    ``importance_draws``.

    Returns
    -------
    mean : Tensor of shape (batch, n_features)
    """
    draws = importance_draws(module, x, eps, mask, kernel=True)
    weights = torch.softmax(draws.log_w, dim=0).unsqueeze(-1)
    return (weights * module.likelihood.mean(draws.params)).sum(dim=0)


def posterior_sample(module, x, eps, mask=None, generator=None):
    """One draw of x from p(x | x_observed): z resampled by importance weight,
    then x from p(x | z). Arguments as for ``importance_draws``.

    Returns
    -------
    sample : Tensor of shape (batch, n_features)
    """
    draws = importance_draws(module, x, eps, mask, kernel=True)
    weights = torch.softmax(draws.log_w, dim=0).T  # (batch, K)
    pick = torch.multinomial(weights, 1, generator=generator).squeeze(-1)
    params = draws.params[pick, torch.arange(len(pick), device=pick.device)]
    return module.likelihood.sample(params, generator=generator)


def feature_log_likelihoods(module, x, eps, mask=None):
    """Each entry's expected log-likelihood under the posterior, per feature.

    ``sum_k w_k log p(x_j | z_k)`` with the self-normalised importance
    weights; 0 for missing entries. Arguments as for ``importance_draws``.

    Returns
    -------
    log_px : Tensor of shape (batch, n_features)
    """
    draws = importance_draws(module, x, eps, mask)
    weights = torch.softmax(draws.log_w, dim=0).unsqueeze(-1)
    x_rep = x.expand(len(draws.params), *x.shape)
    terms = module.likelihood.log_prob_elements(x_rep, draws.params)
    if mask is not None:
        terms = torch.where(mask, terms, 0.0)
    return (weights * terms).sum(dim=0)
