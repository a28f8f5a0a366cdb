"""
=========================================
VAE codes as features for a classifier
=========================================

:class:`~skvae.VAETransformer` is a scikit-learn transformer, so it slots into
a :class:`~sklearn.pipeline.Pipeline` between a scaler and a classifier. This
example compares the test accuracy of a logistic regression trained on VAE
codes with one trained on as many principal components, for several code sizes.
Neither reducer sees the labels; only the classifier does.
"""

# %%
# Data and pipelines
# ------------------
# The pixels of the digits are grey levels from 0 to 16. A
# :class:`~sklearn.preprocessing.MinMaxScaler` maps each pixel into [0, 1], the
# range the default Bernoulli likelihood needs. ``clip=True`` keeps test pixels
# that are darker than any training pixel inside that range.
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler

from skvae import VAETransformer

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.3, stratify=y, random_state=0
)


def pipeline(reducer):
    return make_pipeline(
        MinMaxScaler(clip=True), reducer, LogisticRegression(max_iter=2000)
    )


print(pipeline(VAETransformer(n_components=4)))

# %%
# Accuracy against the number of components
# -----------------------------------------
# ``max_epochs=50`` keeps the example fast; the default (100, with a
# convergence check) trains a little further.
sizes = [2, 4, 8, 16]
scores = {"VAE": [], "PCA": []}
fitted = {}
for n in sizes:
    vae = VAETransformer(n_components=n, max_epochs=50, random_state=0)
    pca = PCA(n_components=n, random_state=0)
    for name, reducer in [("VAE", vae), ("PCA", pca)]:
        model = pipeline(reducer).fit(X_train, y_train)
        fitted[name, n] = model
        scores[name].append(model.score(X_test, y_test))
        print(f"{name} n_components={n:2d}: test accuracy {scores[name][-1]:.3f}")

raw = make_pipeline(MinMaxScaler(clip=True), LogisticRegression(max_iter=2000))
raw_score = raw.fit(X_train, y_train).score(X_test, y_test)
print(f"all 64 pixels: test accuracy {raw_score:.3f}")

# %%
# With two or four numbers per image the non-linear codes carry more class
# information than as many principal components. As the codes grow, PCA
# catches up and then overtakes the briefly trained VAE, and both approach the
# accuracy of the classifier on all 64 pixels: the VAE earns its keep when the
# representation has to be small.
fig, ax = plt.subplots(figsize=(6, 4), layout="constrained")
for (name, values), marker in zip(scores.items(), ["o", "s"]):
    ax.plot(sizes, values, marker=marker, label=f"{name} + logistic regression")
ax.axhline(raw_score, color="gray", linestyle="--", label="all 64 pixels")
ax.set_xscale("log", base=2)
ax.set_xticks(sizes, [str(n) for n in sizes])
ax.set_ylim(top=1.0)
ax.set(
    xlabel="n_components",
    ylabel="test accuracy",
    title="Digits: accuracy of a classifier on reduced features",
)
ax.legend(loc="lower right")
plt.show()

# %%
# A fitted step is reached like in any pipeline, for example to read how long
# the VAE trained or to encode a few test images with everything but the
# classifier.
model = fitted["VAE", 4]
print("epochs run:", model.named_steps["vaetransformer"].n_iter_)
print(np.round(model[:-1].transform(X_test[:3]), 2))
