"""Likelihoods of real values: Bernoulli, continuous Bernoulli and Gaussian."""

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ._base import Likelihood, _masked_sum

# Below this |logit| the continuous Bernoulli's closed forms are replaced by
# Taylor series: the closed forms are 0/0 at logit 0 and lose digits next to
# it, while the truncated series are accurate to ~1e-10 inside the window.
_CB_TAYLOR_WINDOW = 0.25


def _check_unit_interval(name, X):
    """Raise ``ValueError`` unless all of ``X`` lies in [0, 1]."""
    x_min, x_max = float(np.min(X)), float(np.max(X))
    if x_min < 0 or x_max > 1:
        raise ValueError(
            f"likelihood={name!r} needs X in [0, 1], got values in "
            f"[{x_min:.4g}, {x_max:.4g}]. Scale X into [0, 1] first (for "
            "example with sklearn.preprocessing.MinMaxScaler) or use "
            "likelihood='gaussian'."
        )


def _gaussian_log_density(x, loc, scale):
    """Per entry, the log-density of N(loc, scale**2) at ``x``."""
    z = (x - loc) / scale
    return -0.5 * z.square() - torch.log(scale) - 0.5 * math.log(2 * math.pi)


class BernoulliLikelihood(Likelihood):
    """Independent Bernoulli per feature; the decoder outputs logits.

    For grey levels in [0, 1] this is the usual binary cross-entropy loss of
    image autoencoders (not a normalised density for non-binary values).
    """

    def log_prob_elements(self, x, params):
        # Working on logits keeps log(sigmoid) finite for saturated units.
        return -F.binary_cross_entropy_with_logits(params, x, reduction="none")

    def negative_log_prob(self, x, params, mask=None):
        # The cross-entropy as it comes, rather than negated twice per entry.
        bce = F.binary_cross_entropy_with_logits(params, x, reduction="none")
        return _masked_sum(bce, mask)

    def mean(self, params):
        return torch.sigmoid(params)

    def sample(self, params, generator=None):
        return torch.bernoulli(torch.sigmoid(params), generator=generator)

    @classmethod
    def check_support(cls, X):
        _check_unit_interval("bernoulli", X)


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

    def log_prob_elements(self, x, params):
        return _gaussian_log_density(x, params, self.scale)

    def mean(self, params):
        return params

    def sample(self, params, generator=None):
        noise = torch.randn(
            params.shape, generator=generator, device=params.device, dtype=params.dtype
        )
        return params + self.scale * noise


class HeteroscedasticGaussianLikelihood(Likelihood):
    """Gaussian per entry, with a mean and a scale both from the decoder.

    The decoder outputs ``n_features`` means, then ``n_features`` raw scales
    (softplus plus ``min_scale``): each entry gets the noise level its code
    predicts, where ``GaussianLikelihood`` learns one per feature.
    """

    n_params_per_feature = 2
    min_scale = 1e-2

    def _split(self, params):
        loc, raw_scale = params.split(self.n_features, dim=-1)
        return loc, F.softplus(raw_scale) + self.min_scale

    def log_prob_elements(self, x, params):
        return _gaussian_log_density(x, *self._split(params))

    def mean(self, params):
        return self._split(params)[0]

    def sample(self, params, generator=None):
        loc, scale = self._split(params)
        noise = torch.randn(
            loc.shape, generator=generator, device=loc.device, dtype=loc.dtype
        )
        return loc + scale * noise


class NormalScoresLikelihood(GaussianLikelihood):
    """``GaussianLikelihood`` of columns on a standardised internal scale.

    What ``likelihood="auto"`` puts on numeric columns mapped to normal
    scores (of unit variance by construction). The floor on the scale is 5 %
    of that unit rather than 1e-3: a column that
    the others determine (a column and its logarithm, a total and its parts)
    would otherwise let the density tighten onto it without bound, which
    raises the likelihood but not the samples, as the latent codes that pin
    such a column down drift away from the prior that samples are drawn
    from.
    """

    min_scale = 0.05


class FastScaleNormalScoresLikelihood(NormalScoresLikelihood):
    """``NormalScoresLikelihood`` whose noise scales learn at ten times the
    network's rate, with a floor of 20 % of the unit.

    What ``likelihood="auto"`` puts on normal-score columns. Adam moves each
    parameter by about the learning rate per step, so a scale that starts at
    1 crawls on a small table: on 172 rows of penguins (2 batches per
    epoch, 100 epochs) the scales of its measurements stayed at 0.87 to
    0.89, where ten times the rate takes them to 0.42 to 0.53, and the
    samples blurred the species more (see the user guide's tables page).
    The floor of 0.2 then keeps a column that others determine (Wage's
    ``logwage`` next to ``wage``, diamonds' ``x``, ``y``, ``z`` next to
    ``carat``) from tightening onto the floor of 0.05, which lowered the
    detection scores of the samples (diamonds: 0.974 to 0.897; with a floor
    of 0.15, 0.958; with 0.2, 0.981).
    """

    min_scale = 0.2
    lr_scale = 10.0


class StandardizedHeteroscedasticLikelihood(HeteroscedasticGaussianLikelihood):
    """``HeteroscedasticGaussianLikelihood`` of standardised columns.

    What ``VAEImputer`` puts on numeric columns, which it standardises (unit
    variance by construction). The floor on each entry's scale is 10 % of
    that unit rather than 1 %: a value that many rows share exactly (a zero
    in a column of optional ingredients, a common integer) would otherwise
    earn ever more likelihood as its scale shrinks, which pulls training
    towards pinning such values down and leaves the importance weights of
    imputation resting on a few draws.
    """

    # Saved models name this variant, not its floor: another floor needs a
    # variant of its own, so that they keep theirs.
    min_scale = 0.1


def _continuous_bernoulli_log_norm(logits):
    """Log normalising constant of the continuous Bernoulli, from its logits.

    With lambda = sigmoid(logits) the constant is
    ``2 atanh(1 - 2 lambda) / (1 - 2 lambda) = logits / tanh(logits / 2)``,
    an even function of the logits equal to 2 at 0.
    """
    small = logits.abs() < _CB_TAYLOR_WINDOW
    # Each branch sees harmless stand-in values where the other one is used,
    # so that neither produces NaN values or NaN gradients through torch.where.
    a = torch.where(small, torch.ones_like(logits), logits.abs())
    # log(a / tanh(a / 2)) with tanh(a / 2) = (1 - e^-a) / (1 + e^-a).
    closed_form = torch.log(a) - torch.log(-torch.expm1(-a)) + F.softplus(-a)
    t = torch.where(small, logits, torch.zeros_like(logits)).square()
    taylor = math.log(2.0) + t * (
        1 / 12 - t * (7 / 1440 - t * (31 / 90720 - t * (127 / 4838400)))
    )
    return torch.where(small, taylor, closed_form)


class ContinuousBernoulliLikelihood(Likelihood):
    """Continuous Bernoulli per feature; the decoder outputs logits.

    The continuous Bernoulli [1]_ is the Bernoulli likelihood
    ``lambda^x (1 - lambda)^(1 - x)`` normalised into a proper density on
    [0, 1], so unlike ``BernoulliLikelihood`` it is a valid model of grey
    levels. Its mean is not ``lambda`` but is pulled towards 0.5.

    References
    ----------
    .. [1] G. Loaiza-Ganem and J. P. Cunningham, "The continuous Bernoulli:
       fixing a pervasive error in variational autoencoders", NeurIPS 2019.
    """

    def log_prob_elements(self, x, params):
        bce = F.binary_cross_entropy_with_logits(params, x, reduction="none")
        return _continuous_bernoulli_log_norm(params) - bce

    def mean(self, params):
        small = params.abs() < _CB_TAYLOR_WINDOW
        # mean = 1/2 + 1 / (2 tanh(logits / 2)) - 1 / logits, a difference of
        # two poles at 0, replaced there by its odd Taylor series.
        eta = torch.where(small, torch.ones_like(params), params)
        closed_form = 0.5 + 0.5 / torch.tanh(0.5 * eta) - 1 / eta
        e = torch.where(small, params, torch.zeros_like(params))
        t = e.square()
        taylor = 0.5 + e * (1 / 12 - t * (1 / 720 - t * (1 / 30240)))
        return torch.where(small, taylor, closed_form)

    def sample(self, params, generator=None):
        u = torch.rand(
            params.shape, generator=generator, device=params.device, dtype=params.dtype
        )
        # The inverse CDF is log1p(u expm1(eta)) / eta. expm1 overflows for
        # large positive eta, so positive logits use the mirror image
        # X ~ CB(eta)  <=>  1 - X ~ CB(-eta) and only eta <= 0 is evaluated.
        positive = params > 0
        a = -params.abs()
        v = torch.where(positive, 1 - u, u)
        # The closed form keeps its relative accuracy (expm1 and log1p do not
        # cancel) down to a = 0, where it is 0/0; a first-order series covers
        # |a| < 1e-4, where the next term, a^2 v (1 - v) (1 - 2 v) / 6, is
        # below 1e-10.
        small = a > -1e-4
        a_safe = torch.where(small, -torch.ones_like(a), a)
        closed_form = torch.log1p(v * torch.expm1(a_safe)) / a_safe
        taylor = v + 0.5 * a * v * (1 - v)
        x = torch.where(small, taylor, closed_form)
        return torch.where(positive, 1 - x, x).clamp(0.0, 1.0)

    @classmethod
    def check_support(cls, X):
        _check_unit_interval("continuous_bernoulli", X)
