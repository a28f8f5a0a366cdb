"""Categorical columns, blocks of columns with likelihoods of their own, and
the registry of likelihoods by name."""

import torch
import torch.nn.functional as F
from torch import nn

from ._base import Likelihood, Restriction
from ._continuous import (
    BernoulliLikelihood,
    ContinuousBernoulliLikelihood,
    FastScaleNormalScoresLikelihood,
    GaussianLikelihood,
    HeteroscedasticGaussianLikelihood,
    NormalScoresLikelihood,
    StandardizedHeteroscedasticLikelihood,
)
from ._counts import NegativeBinomialLikelihood, PoissonLikelihood


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
    blocks : sequence of (str, int) or Likelihood
        ``(likelihood name, n_features)`` of each block, in feature order, or
        the block's likelihood itself.
    """

    def __init__(self, blocks):
        parts = [
            block
            if isinstance(block, Likelihood)
            else _ALL_LIKELIHOODS[block[0]](block[1])
            for block in blocks
        ]
        super().__init__(sum(part.n_features for part in parts))
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

    def restricted(self, features):
        keep = [i for i, (f, _) in enumerate(self._slices) if features[f].any()]
        if len(keep) in (0, len(self.parts)):
            return super().restricted(features)
        device = features.device
        return Restriction(
            # The kept parts themselves (their trained parameters), side by side.
            BlockLikelihood([self.parts[i] for i in keep]),
            _positions([self._slices[i][0] for i in keep], device),
            _positions([self._slices[i][1] for i in keep], device),
        )

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


def _positions(slices, device):
    """The positions that ``slices`` cover, in order, as an int64 Tensor."""
    return torch.cat([torch.arange(s.start, s.stop, device=device) for s in slices])


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
FAST_SCALE_NORMAL_SCORES = "gaussian_on_scores_fast_scale"
STANDARDIZED_HETEROSCEDASTIC = "gaussian_heteroscedastic_on_standardized"
_ALL_LIKELIHOODS = {
    **LIKELIHOODS,
    NORMAL_SCORES: NormalScoresLikelihood,
    FAST_SCALE_NORMAL_SCORES: FastScaleNormalScoresLikelihood,
    STANDARDIZED_HETEROSCEDASTIC: StandardizedHeteroscedasticLikelihood,
}
