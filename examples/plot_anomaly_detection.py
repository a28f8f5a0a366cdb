"""
==============================================
Novelty detection with the log-likelihood
==============================================

:meth:`~skvae.VAETransformer.score_samples` estimates log p(x) for each
sample: how plausible the sample is under the trained model. A model trained
only on "normal" data gives low values to samples unlike anything it saw. Here
a VAE learns the digits 0 to 4; the digits 5 to 9 play the role of the
novelties it has to flag.
"""

# %%
# Data
# ----
# The model is fitted on 70% of the digits 0-4. The remaining 0-4 images and
# all the 5-9 images form the test set.
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.metrics import RocCurveDisplay, roc_auc_score
from sklearn.model_selection import train_test_split

from skvae import VAETransformer

X, y = load_digits(return_X_y=True)
X = X / 16.0  # grey levels in [0, 1] for the Bernoulli likelihood
normal = y < 5
X_train, X_normal = train_test_split(X[normal], test_size=0.3, random_state=0)
X_novel = X[~normal]
print(f"train: {len(X_train)}, test: {len(X_normal)} normal + {len(X_novel)} novel")

vae = VAETransformer(n_components=8, max_epochs=100, random_state=0).fit(X_train)

# %%
# Scores
# ------
# ``score_samples`` returns one log-likelihood estimate per image, in nats.
# The unseen images of the digits 0-4 get scores like the training images;
# the digits 5-9 score lower.
log_px_train = vae.score_samples(X_train)
log_px_normal = vae.score_samples(X_normal)
log_px_novel = vae.score_samples(X_novel)
for name, values in [
    ("train (0-4)", log_px_train),
    ("test, normal (0-4)", log_px_normal),
    ("test, novel (5-9)", log_px_novel),
]:
    print(f"{name:>18}: median log p(x) = {np.median(values):.1f}")

# %%
# A low log-likelihood is the anomaly score: ``-score_samples``. The area
# under the ROC curve is the probability that a random novel image scores
# lower than a random normal one (0.5 is chance, 1 is perfect).
is_novel = np.r_[np.zeros(len(X_normal)), np.ones(len(X_novel))]
anomaly_score = -np.r_[log_px_normal, log_px_novel]
auc = roc_auc_score(is_novel, anomaly_score)
print(f"ROC AUC: {auc:.3f}")

fig, (ax_hist, ax_roc) = plt.subplots(1, 2, figsize=(12, 4.5), layout="constrained")
bins = np.linspace(anomaly_score.min(), np.percentile(anomaly_score, 99.5), 50)
ax_hist.hist(-log_px_normal, bins=bins, alpha=0.6, density=True, label="digits 0-4")
ax_hist.hist(-log_px_novel, bins=bins, alpha=0.6, density=True, label="digits 5-9")
ax_hist.set(
    xlabel="anomaly score: -log p(x) (nats)",
    ylabel="density",
    title="Held-out images, model trained on 0-4",
)
ax_hist.legend()
RocCurveDisplay.from_predictions(
    is_novel, anomaly_score, name="VAE", plot_chance_level=True, ax=ax_roc
)
ax_roc.set_title(f"Detecting the digits 5-9 (AUC = {auc:.3f})")
plt.show()

# %%
# The most and the least plausible test images according to the model. The
# top of the ranking is all ones: thin strokes leave few pixels to explain,
# so simple images get high likelihoods. A likelihood measures how well the
# model can describe an image, which is related to, but not the same as, how
# typical the image is; keep this in mind when thresholding it.
X_test = np.r_[X_normal, X_novel]
order = np.argsort(anomaly_score)
fig, axes = plt.subplots(2, 8, figsize=(8, 2.6), layout="constrained")
for row, (indices, label) in enumerate(
    [(order[:8], "most plausible"), (order[-8:], "least plausible")]
):
    for ax, i in zip(axes[row], indices):
        ax.imshow(X_test[i].reshape(8, 8), cmap="gray_r", vmin=0, vmax=1)
        ax.set_axis_off()
    axes[row, 0].set_title(label, loc="left", fontsize=10)
plt.show()
