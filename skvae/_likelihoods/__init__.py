"""Observation models p(x | z) for the decoder.

A likelihood turns the decoder's raw output ("params") into a distribution
over the data. Each one knows how to score data (``log_prob``), summarise the
distribution (``mean``) and draw from it (``sample``), and which data it can
model (``check_support``). They are ``torch.nn.Module`` objects so that
likelihood parameters that do not depend on z (such as a per-feature noise
scale) are trained, saved and moved between devices with the rest of the model.

The package holds the base class (``_base``), the likelihoods of real values
(``_continuous``) and of counts (``_counts``), and categorical columns, blocks
and the registry by name (``_blocks``).
"""

from ._base import Likelihood
from ._blocks import (
    FAST_SCALE_NORMAL_SCORES,
    LIKELIHOODS,
    NORMAL_SCORES,
    STANDARDIZED_HETEROSCEDASTIC,
    BlockLikelihood,
    CategoricalLikelihood,
    make_likelihood,
)
from ._continuous import (
    BernoulliLikelihood,
    ContinuousBernoulliLikelihood,
    FastScaleNormalScoresLikelihood,
    GaussianLikelihood,
    HeteroscedasticGaussianLikelihood,
    NormalScoresLikelihood,
    StandardizedHeteroscedasticLikelihood,
)
from ._counts import (
    LOG_RATE_MAX,
    LOG_RATE_MIN,
    NegativeBinomialLikelihood,
    PoissonLikelihood,
)

__all__ = [
    "FAST_SCALE_NORMAL_SCORES",
    "FastScaleNormalScoresLikelihood",
    "LIKELIHOODS",
    "LOG_RATE_MAX",
    "LOG_RATE_MIN",
    "NORMAL_SCORES",
    "STANDARDIZED_HETEROSCEDASTIC",
    "BernoulliLikelihood",
    "BlockLikelihood",
    "CategoricalLikelihood",
    "ContinuousBernoulliLikelihood",
    "GaussianLikelihood",
    "HeteroscedasticGaussianLikelihood",
    "Likelihood",
    "NegativeBinomialLikelihood",
    "NormalScoresLikelihood",
    "PoissonLikelihood",
    "StandardizedHeteroscedasticLikelihood",
    "make_likelihood",
]
