"""
==================================
Latent space of handwritten digits
==================================

A variational autoencoder with a two-dimensional latent space compresses each
8x8 image of scikit-learn's digits into two numbers. This example fits
:class:`~skvae.VAETransformer` with its default (Bernoulli) likelihood, puts its
codes next to the first two principal components, and shows how well the
images survive the round trip through the latent space.
"""

# %%
# Data
# ----
# The pixels are grey levels from 0 to 16. The Bernoulli likelihood models
# values in [0, 1], so the images are divided by 16.
import matplotlib.pyplot as plt
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.model_selection import cross_val_score
from sklearn.neighbors import KNeighborsClassifier

from skvae import (
    LatentSpaceDisplay,
    LossCurveDisplay,
    ReconstructionDisplay,
    VAETransformer,
)

X, y = load_digits(return_X_y=True)
X = X / 16.0
print(X.shape, X.min(), X.max())

# %%
# Fit the VAE and PCA
# -------------------
# The labels are not used for fitting: they only colour the plots.
vae = VAETransformer(n_components=2, max_epochs=100, random_state=0)
Z_vae = vae.fit_transform(X)
Z_pca = PCA(n_components=2).fit_transform(X)
print(f"epochs run: {vae.n_iter_}")

# %%
# Both maps side by side. PCA can only rotate and project the data, so the ten
# digits overlap heavily; the non-linear encoder pulls most of them into
# separate clusters.
fig, (ax_pca, ax_vae) = plt.subplots(1, 2, figsize=(12, 5), layout="constrained")
LatentSpaceDisplay(Z_pca, y).plot(ax=ax_pca)
ax_pca.set(title="PCA, 2 components", xlabel="component 1", ylabel="component 2")
LatentSpaceDisplay(Z_vae, y).plot(ax=ax_vae)
ax_vae.set_title("VAE, 2-d latent space (posterior means)")
plt.show()

# %%
# A number puts the picture into words: the cross-validated accuracy of a
# 5-nearest-neighbour classifier that sees only the two coordinates. (The
# codes were computed with all the data, labels aside, so this measures how
# well the map separates the classes rather than a true test accuracy.)
knn = KNeighborsClassifier(n_neighbors=5)
for name, Z in [("PCA", Z_pca), ("VAE", Z_vae)]:
    print(f"5-NN accuracy on the {name} codes: {cross_val_score(knn, Z, y).mean():.3f}")

# %%
# Reconstructions
# ---------------
# ``inverse_transform`` decodes the codes back to images: the decoder's mean,
# here the probability that each pixel is "on". Two numbers per image keep the
# identity of most digits but lose the details of the handwriting.
ReconstructionDisplay.from_estimator(vae, X, image_shape=(8, 8), n_images=12)
plt.show()

# %%
# Training
# --------
# The loss is the negative evidence lower bound (ELBO) in nats per image. It
# falls quickly, then slowly; ``fit`` stops at ``max_epochs`` or earlier, once
# it has not improved by ``tol`` for ``n_iter_no_change`` epochs.
LossCurveDisplay.from_estimator(vae)
plt.show()
