"""Observation models p(x | z) for the decoder.

A likelihood turns the decoder's raw output ("params") into a distribution
over the data. Each one knows how to score data (``log_prob``), summarise the
distribution (``mean``) and draw from it (``sample``), and which data it can
model (``check_support``). They are ``torch.nn.Module`` objects so that
likelihood parameters that do not depend on z (such as a per-feature noise
scale) are trained, saved and moved between devices with the rest of the model.
"""

import abc
import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ._utils import forked_rng

# Below this |logit| the continuous Bernoulli's closed forms are replaced by
# Taylor series: the closed forms are 0/0 at logit 0 and lose digits next to
# it, while the truncated series are accurate to ~1e-10 inside the window.
_CB_TAYLOR_WINDOW = 0.25

# Log-rates (and log-means) of the count likelihoods are clamped to this range.
# exp() of an unbounded decoder output overflows float32 above ~88, which would
# turn the loss into inf or NaN and make torch.poisson fail; e^-20 is already
# indistinguishable from a zero rate and e^20 (about 5e8) exceeds any count
# that float32 still stores exactly, so the clamp only bites on diverging runs.
LOG_RATE_MIN, LOG_RATE_MAX = -20.0, 20.0


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


def _masked_sum(values, mask):
    """Sum over features of the entries that ``mask`` marks (all if None)."""
    if mask is not None:
        # where(), not a product: a masked entry's term may be inf or NaN.
        values = torch.where(mask, values, 0.0)
    return values.sum(dim=-1)


def _gaussian_log_density(x, loc, scale):
    """Per entry, the log-density of N(loc, scale**2) at ``x``."""
    z = (x - loc) / scale
    return -0.5 * z.square() - torch.log(scale) - 0.5 * math.log(2 * math.pi)


class Likelihood(nn.Module, abc.ABC):
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

    @property
    def n_params(self):
        """Number of decoder outputs: the width of ``params``."""
        return self.n_features * self.n_params_per_feature

    @abc.abstractmethod
    def log_prob_elements(self, x, params):
        """Log-density of each entry of ``x``, shape ``(batch, n_features)``."""

    def log_kernel_elements(self, x, params):
        """``log_prob_elements`` up to the terms that no decoder output enters
        (such as ``lgamma`` of counts): enough for importance weights
        normalised over draws of the code, where those terms cancel, and
        written with operators that ONNX has. The log-density itself unless
        a likelihood has such terms."""
        return self.log_prob_elements(x, params)

    def log_prob(self, x, params, mask=None):
        """Log-density of ``x`` summed over features, shape ``(batch,)``.

        Parameters
        ----------
        x : Tensor of shape (batch, n_features)
        params : Tensor of shape (batch, n_features * n_params_per_feature)
            Decoder output.
        mask : bool Tensor of shape (batch, n_features) or None
            Observed entries; the others (missing values) add nothing.
        """
        return _masked_sum(self.log_prob_elements(x, params), mask)

    def log_kernel(self, x, params, mask=None):
        """``log_kernel_elements`` summed as ``log_prob`` sums."""
        return _masked_sum(self.log_kernel_elements(x, params), mask)

    def params_of(self, features):
        """The decoder outputs that the log-densities of some entries need.

        Parameters
        ----------
        features : bool Tensor of shape (n_features,)

        Returns
        -------
        needed : bool Tensor of shape (n_params,)
            All outputs if any feature is asked for (a block likelihood knows
            its blocks), none otherwise.
        """
        return features.any().expand(self.n_params)

    def negative_log_prob(self, x, params, mask=None):
        """``-log_prob(x, params, mask)``: the reconstruction term of the loss."""
        return -self.log_prob(x, params, mask)

    @abc.abstractmethod
    def mean(self, params):
        """Mean of the distribution, shape ``(batch, n_features)``."""

    @abc.abstractmethod
    def sample(self, params, generator=None):
        """Draw one value per entry, shape ``(batch, n_features)``."""

    @classmethod
    def check_support(cls, X):
        """Raise ``ValueError`` if the array ``X`` lies outside the support."""


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

    @classmethod
    def check_support(cls, X):
        _check_counts("negative_binomial", X)


class CategoricalLikelihood(Likelihood):
    """One categorical variable, one-hot encoded over ``n_features`` entries.

    The decoder outputs one logit per category; the probabilities are their
    softmax. ``x`` is the one-hot row (a gap is masked across the whole
    block), so ``log_prob`` is the log-probability of the observed category;
    ``mean`` gives the probabilities and ``sample`` one-hot draws.
    """

    def log_prob_elements(self, x, params):
        # Only the observed category's entry is non-zero; the row sums to
        # log p(category). log_softmax stays finite for extreme logits.
        return x * F.log_softmax(params, dim=-1)

    def mean(self, params):
        return F.softmax(params, dim=-1)

    def sample(self, params, generator=None):
        probs = F.softmax(params, dim=-1).reshape(-1, self.n_features)
        draws = torch.multinomial(probs, 1, generator=generator).squeeze(-1)
        one_hot = F.one_hot(draws, self.n_features).to(params.dtype)
        return one_hot.reshape(params.shape)


class BlockLikelihood(Likelihood):
    """Likelihoods side by side, each over its own block of features.

    For tables: runs of numeric columns with one likelihood each, and one
    ``CategoricalLikelihood`` per categorical column. ``log_prob_elements``,
    ``mean`` and ``sample`` concatenate those of the blocks.

    Parameters
    ----------
    blocks : tuple of (str, int)
        ``(likelihood name, n_features)`` of each block, in feature order.
    """

    def __init__(self, blocks):
        parts = [_ALL_LIKELIHOODS[name](width) for name, width in blocks]
        super().__init__(sum(width for _, width in blocks))
        self.parts = nn.ModuleList(parts)
        bounds = [0]
        param_bounds = [0]
        for part in parts:
            bounds.append(bounds[-1] + part.n_features)
            param_bounds.append(param_bounds[-1] + part.n_params)
        self._slices = [
            (slice(a, b), slice(c, d))
            for a, b, c, d in zip(bounds, bounds[1:], param_bounds, param_bounds[1:])
        ]

    @property
    def n_params(self):
        return sum(part.n_params for part in self.parts)

    def params_of(self, features):
        """The outputs of the blocks that hold one of ``features``."""
        needed = torch.zeros(self.n_params, dtype=torch.bool, device=features.device)
        for f, o in self._slices:
            needed[o] = features[f].any()
        return needed

    def _joined(self, call):
        """``call(part, features, outputs)`` of each block, side by side."""
        return torch.cat(
            [call(part, *slices) for part, slices in zip(self.parts, self._slices)],
            dim=-1,
        )

    def log_prob_elements(self, x, params):
        return self._joined(
            lambda part, f, o: part.log_prob_elements(x[..., f], params[..., o])
        )

    def log_kernel_elements(self, x, params):
        return self._joined(
            lambda part, f, o: part.log_kernel_elements(x[..., f], params[..., o])
        )

    def mean(self, params):
        return self._joined(lambda part, _, o: part.mean(params[..., o]))

    def sample(self, params, generator=None):
        return self._joined(
            lambda part, _, o: part.sample(params[..., o], generator=generator)
        )


def make_likelihood(likelihood, n_features):
    """The likelihood module for ``VAEModule``'s ``likelihood`` argument.

    Parameters
    ----------
    likelihood : Likelihood subclass or tuple of (str, int)
        A class, built over all ``n_features``; or the ``(name, n_features)``
        blocks of a column schema (one block gives that likelihood alone).
    n_features : int

    Returns
    -------
    likelihood : Likelihood
    """
    if isinstance(likelihood, type):
        return likelihood(n_features)
    blocks = tuple((name, int(width)) for name, width in likelihood)
    if sum(width for _, width in blocks) != n_features:
        raise ValueError(
            f"The likelihood blocks {blocks} cover "
            f"{sum(w for _, w in blocks)} features, not n_features={n_features}."
        )
    if len(blocks) == 1:
        return _ALL_LIKELIHOODS[blocks[0][0]](n_features)
    return BlockLikelihood(blocks)


LIKELIHOODS = {
    "bernoulli": BernoulliLikelihood,
    "continuous_bernoulli": ContinuousBernoulliLikelihood,
    "gaussian": GaussianLikelihood,
    "gaussian_heteroscedastic": HeteroscedasticGaussianLikelihood,
    "negative_binomial": NegativeBinomialLikelihood,
    "poisson": PoissonLikelihood,
    "categorical": CategoricalLikelihood,
}
# Also those that the column schema chooses internally, never by name.
NORMAL_SCORES = "gaussian_on_scores"
STANDARDIZED_HETEROSCEDASTIC = "gaussian_heteroscedastic_on_standardized"
_ALL_LIKELIHOODS = {
    **LIKELIHOODS,
    NORMAL_SCORES: NormalScoresLikelihood,
    STANDARDIZED_HETEROSCEDASTIC: StandardizedHeteroscedasticLikelihood,
}
