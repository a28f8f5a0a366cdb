"""
=============================================
A custom network: convolutions for the images
=============================================

By default :class:`~skvae.VAETransformer` builds fully connected encoder and
decoder networks from ``hidden_layer_sizes`` and ``activation``. Any other
PyTorch networks can take their place: subclass :class:`~skvae.VAEModule`,
replace its ``encoder`` and ``decoder`` attributes, and pass the class as the
``module`` parameter. Everything else (likelihoods, training controls,
``score``, pipelines, grid searches) works unchanged.

This example gives the 8x8 digits a small convolutional encoder and decoder
and compares them with the default networks.
"""

# %%
# The networks
# ------------
# The encoder maps a batch of flat images, shape ``(batch, 64)``, to the mean
# and the log-variance of q(z | x), each of shape ``(batch, n_components)``.
# The decoder maps codes, shape ``(batch, n_components)``, to the parameters
# of the likelihood: for the Bernoulli likelihood, one logit per pixel.
import matplotlib.pyplot as plt
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn

from skvae import ReconstructionDisplay, VAEModule, VAETransformer


class ConvEncoder(nn.Module):
    def __init__(self, n_components):
        super().__init__()
        self.body = nn.Sequential(
            nn.Unflatten(1, (1, 8, 8)),
            nn.Conv2d(1, 16, kernel_size=3, padding=1),  # 16 x 8 x 8
            nn.ReLU(),
            nn.Conv2d(16, 32, kernel_size=3, stride=2, padding=1),  # 32 x 4 x 4
            nn.ReLU(),
            nn.Flatten(),
        )
        self.head = nn.Linear(32 * 4 * 4, 2 * n_components)

    def forward(self, x):
        mean, log_var = self.head(self.body(x)).chunk(2, dim=-1)
        # As in the default encoder, bound the log-variance so that exp()
        # stays finite even if training goes astray.
        return mean, log_var.clamp(-20.0, 10.0)


class ConvDecoder(nn.Module):
    def __init__(self, n_components):
        super().__init__()
        self.body = nn.Sequential(
            nn.Linear(n_components, 32 * 4 * 4),
            nn.ReLU(),
            nn.Unflatten(1, (32, 4, 4)),
            nn.ConvTranspose2d(32, 16, kernel_size=4, stride=2, padding=1),  # 8 x 8
            nn.ReLU(),
            nn.Conv2d(16, 1, kernel_size=3, padding=1),
            nn.Flatten(),
        )

    def forward(self, z):
        return self.body(z)


# %%
# The module subclass receives the same keyword arguments as
# :class:`~skvae.VAEModule`. Calling ``super().__init__`` builds the
# likelihood (and default networks, replaced right away).
class ConvVAE(VAEModule):
    def __init__(self, n_features, n_components=2, **kwargs):
        if n_features != 64:
            raise ValueError(f"ConvVAE expects 8x8 images, got {n_features} features")
        super().__init__(n_features, n_components, **kwargs)
        self.encoder = ConvEncoder(n_components)
        self.decoder = ConvDecoder(n_components)


# %%
# Fit both models
# ---------------
X, _ = load_digits(return_X_y=True)
X = X / 16.0  # grey levels in [0, 1] for the Bernoulli likelihood
X_train, X_test = train_test_split(X, test_size=0.25, random_state=0)

params = dict(n_components=8, max_epochs=60, random_state=0)
models = {
    "fully connected (default)": VAETransformer(**params),
    "convolutional": VAETransformer(module=ConvVAE, **params),
}
for name, vae in models.items():
    vae.fit(X_train)
    n_weights = sum(p.numel() for p in vae.net_.module_.parameters())
    print(
        f"{name:>26}: {n_weights:6d} weights, held-out log-likelihood "
        f"{vae.score(X_test):.2f} nats per image"
    )

# %%
# On these tiny images both models reach about the same held-out
# log-likelihood, and their reconstructions of test images look alike. The
# convolutional networks get there with fewer weights, because each filter is
# shared across the whole image.
fig, axes = plt.subplots(2, 1, figsize=(8, 3.6), layout="constrained")
for ax, (name, vae) in zip(axes, models.items()):
    ReconstructionDisplay.from_estimator(vae, X_test, image_shape=(8, 8), ax=ax)
    ax.set_title(f"{name}: data (top), reconstruction (bottom)")
plt.show()
