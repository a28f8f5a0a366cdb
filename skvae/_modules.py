"""The variational autoencoder as plain PyTorch modules.

Nothing here knows about scikit-learn or skorch: the modules map tensors to
tensors; the losses live in ``_losses.py`` and training in ``_net.py``.
"""

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from ._likelihoods import BernoulliLikelihood, make_likelihood

ACTIVATIONS = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "logistic": nn.Sigmoid,
    "elu": nn.ELU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "leaky_relu": nn.LeakyReLU,
}

# Posterior log-variances are clamped to this range: exp(-20) is far below any
# useful posterior width and exp(10) far above the unit prior, so the clamp
# only bites on diverging runs, where it keeps exp() finite.
LOGVAR_MIN, LOGVAR_MAX = -20.0, 10.0


class VAEOutput(NamedTuple):
    """What ``VAEModule.forward`` returns for a batch."""

    z_mean: torch.Tensor
    z_logvar: torch.Tensor
    z: torch.Tensor
    x_params: torch.Tensor


def _mlp(sizes, activation):
    """Linear layers of the given sizes, each followed by ``activation``."""
    layers = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(n_in, n_out), ACTIVATIONS[activation]()]
    return nn.Sequential(*layers)


class Encoder(nn.Module):
    """MLP from data to the mean and log-variance of q(z | x).

    Parameters
    ----------
    n_features : int
        Input dimension.
    n_components : int
        Latent dimension.
    hidden_layer_sizes : tuple of int
        Widths of the hidden layers, input side first.
    activation : str
        Name of the hidden activation.
    """

    def __init__(self, n_features, n_components, hidden_layer_sizes, activation):
        super().__init__()
        sizes = (n_features, *hidden_layer_sizes)
        self.hidden = _mlp(sizes, activation)
        # One layer for both heads: the same maths as two layers, one matmul.
        self.head = nn.Linear(sizes[-1], 2 * n_components)

    def forward(self, x):
        z_mean, z_logvar = self.head(self.hidden(x)).chunk(2, dim=-1)
        return z_mean, z_logvar.clamp(LOGVAR_MIN, LOGVAR_MAX)


class Decoder(nn.Module):
    """MLP from latent codes to the likelihood's parameters.

    Parameters
    ----------
    n_components : int
        Latent dimension.
    n_outputs : int
        Number of outputs (features times parameters per feature).
    hidden_layer_sizes : tuple of int
        Widths of the hidden layers, latent side first.
    activation : str
        Name of the hidden activation.
    linear_path : bool, default=False
        Add a linear map of z to the output, next to the MLP: the linear part
        of the relation between code and data (as in factor analysis) is then
        not squeezed through saturating hidden units.
    """

    def __init__(
        self, n_components, n_outputs, hidden_layer_sizes, activation, linear_path=False
    ):
        super().__init__()
        sizes = (n_components, *hidden_layer_sizes)
        self.hidden = _mlp(sizes, activation)
        self.head = nn.Linear(sizes[-1], n_outputs)
        self.linear = (
            nn.Linear(n_components, n_outputs, bias=False) if linear_path else None
        )

    def forward(self, z, outputs=None):
        """The likelihood's parameters at ``z``: those at the positions
        ``outputs`` (an index Tensor) only, when given."""
        if outputs is None:
            out = self.head(self.hidden(z))
            return out if self.linear is None else out + self.linear(z)
        # Only the rows of the head's weights that are asked for: the head
        # is most of a wide table's decoder.
        out = F.linear(
            self.hidden(z), self.head.weight[outputs], self.head.bias[outputs]
        )
        if self.linear is not None:
            out = out + F.linear(z, self.linear.weight[outputs])
        return out


class VAEModule(nn.Module):
    """Encoder, reparameterised sampling, decoder and likelihood.

    This is the default network of ``VAETransformer``. To use other networks,
    subclass it, call ``super().__init__(...)`` and replace ``self.encoder``
    (a module mapping ``x`` to ``(mean, log_var)``, each of shape ``(batch,
    n_components)``) and/or ``self.decoder`` (a module mapping ``z`` to the
    likelihood's parameters, of shape ``(batch, self.likelihood.n_params)``),
    then pass the class as
    ``VAETransformer(module=...)``.

    Parameters
    ----------
    n_features : int
        Number of observed features.
    n_components : int, default=2
        Latent dimension.
    hidden_layer_sizes : tuple of int, default=(256,)
        Encoder hidden widths; the decoder mirrors them.
    activation : str, default="relu"
        Hidden activation, a key of ``ACTIVATIONS``.
    likelihood : type or tuple of (str, int), default=BernoulliLikelihood
        Likelihood class, built with ``n_features``; or ``(name,
        n_features)`` blocks of features, each with the likelihood of that
        name (for tables, as a column schema resolves them).
    mask_input : bool, default=False
        Whether the encoder also sees which entries are observed: its input
        is then ``x`` (zeros in the gaps) next to the 0/1 observation mask,
        so that a gap and an observed zero are told apart.
    linear_path : bool, default=False
        Whether the decoder adds a linear map of z to its MLP's output.
    """

    def __init__(
        self,
        n_features,
        n_components=2,
        hidden_layer_sizes=(256,),
        activation="relu",
        likelihood=BernoulliLikelihood,
        mask_input=False,
        linear_path=False,
    ):
        super().__init__()
        hidden_layer_sizes = tuple(hidden_layer_sizes)
        self.n_components = n_components
        self.mask_input = bool(mask_input)
        self.likelihood = make_likelihood(likelihood, n_features)
        n_outputs = self.likelihood.n_params
        n_inputs = 2 * n_features if self.mask_input else n_features
        self.encoder = Encoder(n_inputs, n_components, hidden_layer_sizes, activation)
        self.decoder = Decoder(
            n_components, n_outputs, hidden_layer_sizes[::-1], activation, linear_path
        )

    def encode(self, x, mask=None):
        """Mean and log-variance of q(z | x); ``mask`` marks observed entries
        (None: all), for an encoder built with ``mask_input``."""
        if not self.mask_input:
            return self.encoder(x)
        observed = torch.ones_like(x) if mask is None else mask.to(x.dtype)
        return self.encoder(torch.cat([x, observed], dim=-1))

    def decode_some(self, z, outputs):
        """The decoder's outputs at the positions ``outputs`` (an index
        Tensor): computed alone by a ``Decoder``, picked from all of them by
        a decoder that a subclass put in its place."""
        if isinstance(self.decoder, Decoder):
            return self.decoder(z, outputs)
        return self.decoder(z)[..., outputs]

    def forward(self, x, mask=None, n_draws=None):
        """Encode ``x``, draw z and decode it.

        With ``n_draws=K``, K codes are drawn per row: ``z`` and ``x_params``
        then have a leading axis of size K (for importance-weighted bounds).
        """
        z_mean, z_logvar = self.encode(x, mask)
        shape = z_mean.shape if n_draws is None else (n_draws, *z_mean.shape)
        eps = torch.randn(shape, dtype=z_mean.dtype, device=z_mean.device)
        # Reparameterisation: z = mean + std * eps keeps z differentiable.
        z = z_mean + torch.exp(0.5 * z_logvar) * eps
        if n_draws is None:
            return VAEOutput(z_mean, z_logvar, z, self.decoder(z))
        params = self.decoder(z.reshape(-1, z.shape[-1]))
        return VAEOutput(z_mean, z_logvar, z, params.reshape(*z.shape[:-1], -1))
