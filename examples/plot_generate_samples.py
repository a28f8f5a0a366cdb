"""
=====================================
Generating new digits
=====================================

A VAE is a generative model: the decoder turns any point of the latent space
into an image, and latent points drawn from the prior N(0, I) give images that
resemble the training data. This example fits a VAE with a two-dimensional
latent space on the digits and looks at what it generates, with
:class:`~skvae.SamplesDisplay` and :class:`~skvae.LatentTraversalDisplay`.
"""

# %%
# Fit
# ---
# sphinx_gallery_thumbnail_number = 3
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits

from skvae import LatentTraversalDisplay, SamplesDisplay, VAETransformer

X, _ = load_digits(return_X_y=True)
X = X / 16.0  # grey levels in [0, 1] for the Bernoulli likelihood
vae = VAETransformer(n_components=2, max_epochs=100, random_state=0).fit(X)

# %%
# Decoded draws from the prior
# ----------------------------
# ``SamplesDisplay.from_estimator`` draws latent points from the prior and, by
# default, shows the decoder's mean for each one: for the Bernoulli likelihood,
# the probability that each pixel is on. Most look like digits, some like a
# blend of two, since the latent space is continuous.
SamplesDisplay.from_estimator(vae, image_shape=(8, 8), n_samples=32, random_state=0)
plt.show()

# %%
# Samples from the full model
# ---------------------------
# :meth:`~skvae.VAETransformer.sample` goes one step further and draws the
# pixels themselves from the likelihood. With the Bernoulli likelihood each
# pixel is then 0 or 1, so the images are noisier, binary versions of the
# means above. ``mean=False`` shows such samples.
SamplesDisplay.from_estimator(
    vae, image_shape=(8, 8), n_samples=32, mean=False, random_state=0
)
plt.show()

# %%
# The samples are ordinary NumPy arrays of shape ``(n_samples, n_features)``:
X_new = vae.sample(5, random_state=0)
print(X_new.shape, X_new.dtype, np.unique(X_new))

# %%
# A map of the latent plane
# -------------------------
# ``LatentTraversalDisplay`` decodes a regular grid of latent points, here
# from -2.5 to 2.5 in both directions, about 2.5 standard deviations of the
# prior. Neighbouring images change smoothly, and each region of the plane
# holds one kind of digit, as in the latent space plot of the encoded data.
LatentTraversalDisplay.from_estimator(vae, image_shape=(8, 8), n_steps=15)
plt.show()
