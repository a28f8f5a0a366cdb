"""Observation models p(x | z) for the decoder.

A likelihood turns the decoder's raw output ("params") into a distribution
over the data. Each one knows how to score data (``log_prob``), summarise the
distribution (``mean``) and draw from it (``sample``), and which data it can
model (``check_support``). They are ``torch.nn.Module`` objects so that
likelihood parameters that do not depend on z (such as a per-feature noise
scale) are trained, saved and moved between devices with the rest of the model.
"""

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


class Likelihood(nn.Module):
    """Base class of the observation models.

    Parameters
    ----------
    n_features : int
        Number of observed features.
    """

    #: Number of decoder outputs per observed feature.
    n_params_per_feature = 1

    def __init__(self, n_features):
        super().__init__()
        self.n_features = n_features

    def log_prob(self, x, params):
        """Log-density of ``x`` summed over features, shape ``(batch,)``."""
        raise NotImplementedError

    def mean(self, params):
        """Mean of the distribution, shape ``(batch, n_features)``."""
        raise NotImplementedError

    def sample(self, params, generator=None):
        """Draw one value per entry, shape ``(batch, n_features)``."""
        raise NotImplementedError

    @classmethod
    def check_support(cls, X):
        """Raise ``ValueError`` if the array ``X`` lies outside the support."""


class BernoulliLikelihood(Likelihood):
    """Independent Bernoulli per feature; the decoder outputs logits.

    For grey levels in [0, 1] this is the usual binary cross-entropy loss of
    image autoencoders (not a normalised density for non-binary values).
    """

    def log_prob(self, x, params):
        # Working on logits keeps log(sigmoid) finite for saturated units.
        bce = F.binary_cross_entropy_with_logits(params, x, reduction="none")
        return -bce.sum(dim=-1)

    def mean(self, params):
        return torch.sigmoid(params)

    def sample(self, params, generator=None):
        return torch.bernoulli(torch.sigmoid(params), generator=generator)

    @classmethod
    def check_support(cls, X):
        x_min, x_max = float(np.min(X)), float(np.max(X))
        if x_min < 0 or x_max > 1:
            raise ValueError(
                "likelihood='bernoulli' needs X in [0, 1], got values in "
                f"[{x_min:.4g}, {x_max:.4g}]. Scale X into [0, 1] first (for "
                "example with sklearn.preprocessing.MinMaxScaler) or use "
                "likelihood='gaussian'."
            )


class GaussianLikelihood(Likelihood):
    """Independent Gaussian per feature with a learned per-feature scale.

    The decoder outputs the mean; the standard deviation is one trained
    parameter per feature, kept above ``min_scale`` so that the density cannot
    collapse onto a feature that the decoder fits exactly.
    """

    min_scale = 1e-3

    def __init__(self, n_features):
        super().__init__(n_features)
        # softplus(raw) + min_scale == 1 at initialisation.
        init = math.log(math.expm1(1.0 - self.min_scale))
        self.raw_scale = nn.Parameter(torch.full((n_features,), init))

    @property
    def scale(self):
        """Per-feature standard deviation, shape ``(n_features,)``."""
        return F.softplus(self.raw_scale) + self.min_scale

    def log_prob(self, x, params):
        scale = self.scale
        z = (x - params) / scale
        log_density = -0.5 * z.square() - torch.log(scale) - 0.5 * math.log(2 * math.pi)
        return log_density.sum(dim=-1)

    def mean(self, params):
        return params

    def sample(self, params, generator=None):
        noise = torch.randn(
            params.shape, generator=generator, device=params.device, dtype=params.dtype
        )
        return params + self.scale * noise


_LIKELIHOODS = {
    "bernoulli": BernoulliLikelihood,
    "gaussian": GaussianLikelihood,
}
