"""
=====================================================
Choosing the latent size without labels
=====================================================

:meth:`~skvae.VAETransformer.score` estimates the average log-likelihood
log p(x) of the data it is given, in nats per sample, and higher is better.
Called on data the model did not see, it rewards a model that explains new
images well, whatever their labels. That is all
:class:`~sklearn.model_selection.GridSearchCV` needs to pick ``n_components``
by cross-validation on unlabelled data.
"""

# %%
# The search
# ----------
# Each candidate is fitted on two thirds of the images and scored on the other
# third, three times. ``max_epochs=40`` keeps the example fast; give real
# searches the default budget.
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV, train_test_split

from skvae import VAETransformer

X, _ = load_digits(return_X_y=True)
X = X / 16.0  # grey levels in [0, 1] for the Bernoulli likelihood
X_train, X_test = train_test_split(X, test_size=0.2, random_state=0)

search = GridSearchCV(
    VAETransformer(max_epochs=40, random_state=0),
    param_grid={"n_components": [1, 2, 4, 8, 16]},
    cv=3,
)
search.fit(X_train)  # no y
print("best:", search.best_params_, f"score {search.best_score_:.2f} nats")

# %%
# The score curve
# ---------------
# One latent dimension is too few to describe the digits. Past a handful of
# dimensions the held-out log-likelihood falls again: with this training
# budget the larger models explain new images less well. The error bars are
# one standard deviation over the three folds.
results = search.cv_results_
sizes = np.array(results["param_n_components"], dtype=int)
fig, ax = plt.subplots(figsize=(6, 4), layout="constrained")
ax.errorbar(
    sizes,
    results["mean_test_score"],
    yerr=results["std_test_score"],
    marker="o",
    capsize=4,
)
best = search.best_params_["n_components"]
ax.axvline(best, color="gray", linestyle="--", label=f"best: {best}")
ax.set_xscale("log", base=2)
ax.set_xticks(sizes, [str(n) for n in sizes])
ax.set(
    xlabel="n_components",
    ylabel="held-out log-likelihood (nats per image)",
    title="GridSearchCV of the latent size, no labels",
)
ax.legend()
plt.show()

# %%
# The number of importance samples
# --------------------------------
# The score is the importance-weighted bound of Burda et al. with
# ``n_score_samples`` draws per image (10 by default). One draw gives the
# evidence lower bound (ELBO); more draws give a tighter bound, closer to the
# true log p(x), at a proportional cost. Every candidate of a search uses the
# same value, so their scores stay comparable. The refitted best model scores
# the images that were kept out of the search:
vae = search.best_estimator_
for k in [1, 10, 100]:
    score = vae.set_params(n_score_samples=k).score(X_test)
    print(f"n_score_samples={k:3d}: {score:.2f} nats per image")
