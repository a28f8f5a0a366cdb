"""Likelihoods of counts: Poisson and negative binomial."""

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .._utils import forked_rng
from ._base import Likelihood

# Log-rates (and log-means) of the count likelihoods are clamped to this range.
# exp() of an unbounded decoder output overflows float32 above ~88, which would
# turn the loss into inf or NaN and make torch.poisson fail; e^-20 is already
# indistinguishable from a zero rate and e^20 (about 5e8) exceeds any count
# that float32 still stores exactly, so the clamp only bites on diverging runs.
LOG_RATE_MIN, LOG_RATE_MAX = -20.0, 20.0


def _check_counts(name, X):
    """Raise ``ValueError`` unless all of ``X`` are non-negative integers."""
    x_min = float(np.min(X))
    if x_min < 0:
        raise ValueError(
            f"likelihood={name!r} needs non-negative integer counts in X, got a "
            f"minimum of {x_min:.4g}. Pass the raw counts, or use "
            "likelihood='gaussian' for data that are not counts."
        )
    fractional = X[X != np.round(X)]
    if fractional.size:
        raise ValueError(
            f"likelihood={name!r} needs non-negative integer counts in X, got "
            f"{fractional.size} non-integer value(s) such as {fractional[0]:.4g}. "
            "Pass the raw counts (not normalised or log-transformed), or use "
            "likelihood='gaussian' for data that are not counts."
        )


class PoissonLikelihood(Likelihood):
    """Independent Poisson per feature; the decoder outputs log-rates.

    For counts (non-negative integers). The variance equals the mean; see
    ``NegativeBinomialLikelihood`` for overdispersed counts.
    """

    def rate(self, params):
        """Poisson rates from the decoder outputs, shape of ``params``."""
        return torch.exp(params.clamp(LOG_RATE_MIN, LOG_RATE_MAX))

    def log_kernel_elements(self, x, params):
        log_rate = params.clamp(LOG_RATE_MIN, LOG_RATE_MAX)
        return x * log_rate - torch.exp(log_rate)

    def log_prob_elements(self, x, params):
        return self.log_kernel_elements(x, params) - torch.lgamma(x + 1)

    def mean(self, params):
        return self.rate(params)

    def sample(self, params, generator=None):
        return torch.poisson(self.rate(params), generator=generator)

    interval_support = False  # whole numbers only

    @classmethod
    def check_support(cls, X):
        _check_counts("poisson", X)


def _gamma_sample(concentration, rate, generator=None):
    """Gamma draws that are reproducible from a ``torch.Generator``.

    torch samples the gamma distribution only from the global generator of the
    tensor's device. So an integer seed is drawn from ``generator``, and the
    global generator of that device is seeded with it inside ``forked_rng``,
    which restores the caller's global random state afterwards.
    """
    gamma = torch.distributions.Gamma(concentration, rate)
    if generator is None:
        return gamma.sample()
    seed = int(torch.randint(2**62, (), generator=generator, device=generator.device))
    with forked_rng(seed, concentration.device):
        return gamma.sample()


class NegativeBinomialLikelihood(Likelihood):
    """Negative binomial per feature; the decoder outputs log-means.

    For overdispersed counts: the variance is ``mean + mean^2 / theta`` with a
    learned inverse dispersion ``theta`` per feature (large ``theta`` tends to
    the Poisson). ``theta`` is kept above ``min_inverse_dispersion``: as it
    goes to 0 all mass moves to 0 with an unbounded variance, and
    ``lgamma(theta)`` diverges.
    """

    min_inverse_dispersion = 1e-3

    def __init__(self, n_features):
        super().__init__(n_features)
        # softplus(raw) + min_inverse_dispersion == 1 at initialisation, a
        # variance of mean + mean^2 that training can shrink or grow.
        init = math.log(math.expm1(1.0 - self.min_inverse_dispersion))
        self.raw_inverse_dispersion = nn.Parameter(torch.full((n_features,), init))

    @property
    def inverse_dispersion(self):
        """Per-feature inverse dispersion ``theta``, shape ``(n_features,)``."""
        return F.softplus(self.raw_inverse_dispersion) + self.min_inverse_dispersion

    def _log_ratio(self, params):
        """``log(mean / theta)``, and ``theta``."""
        theta = self.inverse_dispersion
        log_mean = params.clamp(LOG_RATE_MIN, LOG_RATE_MAX)
        return log_mean - torch.log(theta), theta

    def log_kernel_elements(self, x, params):
        # The terms of log_prob_elements with the mean in them.
        log_ratio, theta = self._log_ratio(params)
        return -theta * F.softplus(log_ratio) - x * F.softplus(-log_ratio)

    def log_prob_elements(self, x, params):
        log_ratio, theta = self._log_ratio(params)
        # With p = mean / (mean + theta): theta log(1 - p) = -theta
        # softplus(log_ratio) and x log(p) = -x softplus(-log_ratio). The
        # softplus form keeps the first term accurate when theta >> mean,
        # where log(theta) - log(theta + mean) would cancel.
        # lgamma(x + theta) - lgamma(theta) is a small difference of two large
        # numbers when theta is large (about 1e6 each at theta = 1e5, where
        # float32 keeps only ~0.06 of it): take it in float64.
        x64, theta64 = x.double(), theta.double()
        log_rising = torch.lgamma(x64 + theta64) - torch.lgamma(theta64)
        log_pmf = (
            log_rising.to(x.dtype)
            - torch.lgamma(x + 1)
            - theta * F.softplus(log_ratio)
            - x * F.softplus(-log_ratio)
        )
        return log_pmf

    def mean(self, params):
        return torch.exp(params.clamp(LOG_RATE_MIN, LOG_RATE_MAX))

    def sample(self, params, generator=None):
        # Gamma-Poisson mixture: rate ~ Gamma(theta, theta / mean) has the
        # given mean, and a Poisson count with that rate is negative binomial.
        mean = self.mean(params)
        theta = self.inverse_dispersion.expand_as(mean)
        rate = _gamma_sample(theta, theta / mean, generator)
        return torch.poisson(rate, generator=generator)

    interval_support = False  # whole numbers only

    @classmethod
    def check_support(cls, X):
        _check_counts("negative_binomial", X)
