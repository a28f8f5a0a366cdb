"""Importance sampling from the posterior of a ``VAEModule``.

Log-likelihood estimates (``score_samples``), MIWAE fills, posterior draws
(which also give conditional samples: the known columns observed, the rest
missing) and per-feature expected log-likelihoods, all from the same decoded
draws of ``importance_draws``.
"""

import math
from typing import NamedTuple

import torch

from ._losses import gaussian_kl, log_prior_ratio

# Rounds of fills before the encoder proposes codes for conditional draws: on
# tables of a few columns, the fills settle within a few rounds.
FILL_STEPS = 10


class Draws(NamedTuple):
    """K codes drawn from q(z | x) for a batch, decoded and weighted."""

    z_mean: torch.Tensor  # (batch, n_components): the posterior means
    params: torch.Tensor  # (K, batch, n_params): decoder outputs
    log_px_z: torch.Tensor  # (K, batch): log p(x | z_k), observed entries
    log_w: torch.Tensor  # (K, batch): log p(x, z_k) / q(z_k | x)
    kl: torch.Tensor  # (batch,): closed-form KL(q(z | x) || p(z))
    z: torch.Tensor  # (K, batch, n_components): the codes drawn
    z_logvar: torch.Tensor  # (batch, n_components): the posterior log-variances


def importance_draws(
    module, x, eps, mask=None, kernel=False, prior_share=0.0, restriction=None
):
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
    prior_share : float, default=0.0
        Draw from the mixture (1 - s) q(z | x) + s p(z) instead: the last
        ``round(s K)`` codes are the prior draws ``eps`` themselves, and the
        weights are p(x, z) over the mixture's density (defensive importance
        sampling: the weights stay bounded by 1 / s times the likelihood where
        q(z | x) misses the posterior).
    restriction : Restriction or None, default=None
        Weigh the draws by the features of this ``Likelihood.restricted``
        alone (those that hold every observed entry), and decode only its
        outputs: ``params`` then holds those. None decodes all.

    Returns
    -------
    draws : Draws
    """
    z_mean, z_logvar = module.encode(x, mask)
    z = z_mean + torch.exp(0.5 * z_logvar) * eps  # (K, batch, n_components)
    n_draws, batch = z.shape[:2]
    n_prior = round(prior_share * n_draws)
    if n_prior:
        z = torch.cat([z[: n_draws - n_prior], eps[n_draws - n_prior :]])
    flat = z.reshape(n_draws * batch, -1)
    likelihood = module.likelihood
    if restriction is None:
        params = module.decoder(flat)
    else:
        likelihood = restriction.likelihood
        params = module.decode_some(flat, restriction.outputs)
        x = x[..., restriction.features]
        if mask is not None:
            mask = mask[..., restriction.features]
    params = params.reshape(n_draws, batch, -1)
    # Broadcast views of x (and the mask) over the K draws: no copies.
    x_rep = x.expand(n_draws, *x.shape)
    if mask is not None:
        mask = mask.expand(n_draws, *mask.shape)
    log_density = likelihood.log_kernel if kernel else likelihood.log_prob
    log_px_z = log_density(x_rep, params, mask)
    log_ratio = log_prior_ratio(z, z_mean, z_logvar)  # log p(z) - log q(z | x)
    if prior_share:
        # log p(z) - log((1 - s) q(z | x) + s p(z)), from the ratio above.
        log_ratio = -torch.logaddexp(
            math.log1p(-prior_share) - log_ratio,
            torch.tensor(math.log(prior_share), device=z.device),
        )
    log_w = log_px_z + log_ratio
    kl = gaussian_kl(z_mean, z_logvar)
    return Draws(z_mean, params, log_px_z, log_w, kl, z, z_logvar)


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
    return resampled_draw(module, x, eps, mask, generator)[0]


def resampled_draw(
    module,
    x,
    eps,
    mask=None,
    generator=None,
    return_mean=False,
    prior_share=0.0,
    restriction=None,
):
    """Sampling-importance-resampling: one of the K codes of each row, picked
    with probability proportional to its weight p(x_obs, z_k) / q(z_k | x),
    then x from p(x | z) (its mean with ``return_mean``).

    As K grows, the picked code follows p(z | x_observed), and the draw of x
    the conditional distribution of the whole row given its observed entries.
    Arguments as for ``importance_draws``; with ``restriction``, the weights
    come from its features, and only the picked codes are decoded in full.

    Returns
    -------
    sample : Tensor of shape (batch, n_features)
    z : Tensor of shape (batch, n_components)
        The picked codes.
    """
    draws = importance_draws(module, x, eps, mask, True, prior_share, restriction)
    weights = torch.softmax(draws.log_w, dim=0).T  # (batch, K)
    pick = torch.multinomial(weights, 1, generator=generator).squeeze(-1)
    rows = torch.arange(len(pick), device=pick.device)
    z = draws.z[pick, rows]
    params = draws.params[pick, rows] if restriction is None else module.decoder(z)
    if return_mean:
        return module.likelihood.mean(params), z
    return module.likelihood.sample(params, generator=generator), z


def filled_by_means(module, x, mask, n_steps):
    """``x`` with its missing entries replaced by the decoder's mean at the
    encoder's mean, ``n_steps`` times over (each time from the last fill).

    A code fitted to the observed entries only: where the encoder saw no gaps
    in training, the gaps as zeros pull its code towards rows with those
    zeros, and the fills move it back to codes that agree with the observed
    entries.
    """
    filled = x
    for _ in range(n_steps):
        z_mean, _ = module.encode(filled, mask)
        means = module.likelihood.mean(module.decoder(z_mean))
        filled = torch.where(mask, x, means)
    return filled


def conditional_fill(module, x, eps, mask):
    """``x`` with its missing entries filled by ``filled_by_means`` over
    ``FILL_STEPS`` rounds: the start of ``conditional_draw``, which depends on
    a row's observed entries only, so that rows with the same condition share
    it. Arguments as for ``importance_draws`` (``eps`` is not used).

    Returns
    -------
    filled : Tensor of shape (batch, n_features)
    """
    return filled_by_means(module, x, mask, FILL_STEPS)


def conditional_draw(
    module, filled, eps, mask, restriction=None, generator=None, return_mean=False
):
    """One draw of each row given its observed entries (``resampled_draw``),
    with the codes drawn from a mixture of q(z | x_observed, rest filled by
    ``conditional_fill``) and the prior, half each: the first proposes codes
    near the observed entries, the second keeps the weights bounded where the
    first is too narrow. The weights need only the given columns' blocks
    (``restriction``, see ``Likelihood.restricted``): the rest is decoded for
    the picked code alone. ``filled`` holds the rows as ``conditional_fill``
    returns them; other arguments as for ``importance_draws``.

    Returns
    -------
    sample, z : as for ``resampled_draw``
    """
    return resampled_draw(
        module, filled, eps, mask, generator, return_mean, 0.5, restriction
    )


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
