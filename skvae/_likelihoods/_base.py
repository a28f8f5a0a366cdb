"""The base class of the observation models and what they all use."""

import abc
from typing import NamedTuple

import torch
from torch import nn


class Restriction(NamedTuple):
    """A likelihood over some of the features only (``Likelihood.restricted``):
    ``likelihood`` scores ``x[..., features]`` from the decoder outputs
    ``params[..., outputs]`` (both int64 index Tensors)."""

    likelihood: "Likelihood"
    features: torch.Tensor
    outputs: torch.Tensor


def _masked_sum(values, mask):
    """Sum over features of the entries that ``mask`` marks (all if None)."""
    if mask is not None:
        # where(), not a product: a masked entry's term may be inf or NaN.
        values = torch.where(mask, values, 0.0)
    return values.sum(dim=-1)


class Likelihood(nn.Module, abc.ABC):
    """Base class of the observation models.

    Parameters
    ----------
    n_features : int
        Number of observed features.
    """

    #: Number of decoder outputs per observed feature.
    n_params_per_feature = 1
    #: Learning rate of the likelihood's own parameters (such as a noise
    #: scale per feature), as a multiple of the network's.
    lr_scale = 1.0

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

    def restricted(self, features):
        """The likelihood of the blocks that hold one of ``features`` (a bool
        Tensor of shape ``(n_features,)``), as a ``Restriction``: its
        log-densities of those features need only its outputs. All features
        here, which share their outputs; a block likelihood keeps its blocks.
        """
        device = features.device
        return Restriction(
            self,
            torch.arange(self.n_features, device=device),
            torch.arange(self.n_params, device=device),
        )

    def negative_log_prob(self, x, params, mask=None):
        """``-log_prob(x, params, mask)``: the reconstruction term of the loss."""
        return -self.log_prob(x, params, mask)

    @abc.abstractmethod
    def mean(self, params):
        """Mean of the distribution, shape ``(batch, n_features)``."""

    @abc.abstractmethod
    def sample(self, params, generator=None):
        """Draw one value per entry, shape ``(batch, n_features)``."""

    # Whether check_support needs only each column's smallest and largest
    # values (the support is an interval), so that a scan need not pass them
    # all.
    interval_support = True

    @classmethod
    def check_support(cls, X):
        """Raise ``ValueError`` if the array ``X`` lies outside the support."""
