"""Pure loss functions of a batch: the KL term, the ELBO and the IWAE bound.

``NegativeELBO`` is the training criterion that ``VAENet`` builds from them.
"""

import math
from typing import NamedTuple

import torch
from torch import nn

_LOG_2PI = math.log(2 * math.pi)


def gaussian_kl(z_mean, z_logvar):
    """KL divergence from N(z_mean, exp(z_logvar)) to N(0, I), per sample.

    Parameters
    ----------
    z_mean, z_logvar : Tensor of shape (batch, n_components)

    Returns
    -------
    kl : Tensor of shape (batch,)
    """
    # expm1(v) - v equals exp(v) - 1 - v without the cancellation near v = 0.
    return 0.5 * (z_mean.square() + torch.expm1(z_logvar) - z_logvar).sum(dim=-1)


class ELBOTerms(NamedTuple):
    """Batch means of the loss and of its two terms."""

    loss: torch.Tensor
    reconstruction: torch.Tensor
    kl: torch.Tensor


def negative_elbo(output, x, likelihood, kl_weight=1.0, mask=None):
    """Negative evidence lower bound of a batch.

    The reconstruction term is the negative log-likelihood summed over
    features, the KL term is summed over latent dimensions, and both are
    averaged over the batch, so the loss is in nats per sample.

    Parameters
    ----------
    output : VAEOutput
        Result of ``VAEModule.forward(x)``.
    x : Tensor of shape (batch, n_features)
    likelihood : Likelihood
    kl_weight : float, default=1.0
        Multiplier of the KL term (``beta`` times the warm-up factor).
    mask : bool Tensor of shape (batch, n_features) or None
        Observed entries; missing ones do not enter the reconstruction term.

    Returns
    -------
    terms : ELBOTerms
    """
    reconstruction = likelihood.negative_log_prob(x, output.x_params, mask).mean()
    kl = gaussian_kl(output.z_mean, output.z_logvar).mean()
    return ELBOTerms(reconstruction + kl_weight * kl, reconstruction, kl)


def log_prior_ratio(z, z_mean, z_logvar):
    """``log p(z) - log q(z | x)`` for each draw of z, shape (K, batch).

    ``z`` (K, batch, n_components) are draws from q(z | x) = N(z_mean,
    exp(z_logvar)), with ``z_mean`` and ``z_logvar`` of shape (batch,
    n_components); p(z) is the standard normal prior. Adding ``log p(x | z)``
    gives the log importance weights ``log p(x, z) / q(z | x)``.
    """
    eps = (z - z_mean) * torch.exp(-0.5 * z_logvar)
    log_pz = -0.5 * (z.square() + _LOG_2PI).sum(dim=-1)
    log_qz = -0.5 * (eps.square() + _LOG_2PI + z_logvar).sum(dim=-1)
    return log_pz - log_qz


def negative_iwae(output, x, likelihood, kl_weight=1.0, mask=None):
    """Negative importance-weighted bound of a batch, from K draws per row.

    ``-log mean_k p(x, z_k) / q(z_k | x)`` averaged over the batch (with the
    prior and posterior terms weighted by ``kl_weight``); with a mask, of the
    observed entries only (the MIWAE bound). The reported terms are the
    average reconstruction term and the sampled KL term over the draws.

    Parameters
    ----------
    output : VAEOutput
        Result of ``VAEModule.forward(x, n_draws=K)``.
    x : Tensor of shape (batch, n_features)
    likelihood : Likelihood
    kl_weight : float, default=1.0
    mask : bool Tensor of shape (batch, n_features) or None

    Returns
    -------
    terms : ELBOTerms
    """
    n_draws = output.z.shape[0]
    x_rep = x.expand(n_draws, *x.shape)
    mask = None if mask is None else mask.expand(n_draws, *mask.shape)
    log_px_z = likelihood.log_prob(x_rep, output.x_params, mask)
    ratio = log_prior_ratio(output.z, output.z_mean, output.z_logvar)
    log_w = log_px_z + kl_weight * ratio
    bound = torch.logsumexp(log_w, dim=0) - math.log(n_draws)
    return ELBOTerms(-bound.mean(), -log_px_z.mean(), -ratio.mean())


class NegativeELBO(nn.Module):
    """The training criterion: ``negative_elbo`` with a KL weight ``beta``."""

    def __init__(self, beta=1.0):
        super().__init__()
        self.beta = beta

    def forward(self, output, x, likelihood, warmup=1.0, mask=None):
        kl_weight = self.beta * warmup
        # Several draws per row (a leading axis on z): the importance-weighted
        # bound; one draw: the ELBO with its closed-form KL term.
        loss = negative_iwae if output.z.dim() == 3 else negative_elbo
        return loss(output, x, likelihood, kl_weight=kl_weight, mask=mask)
