"""
=====================================
Filling missing values with a VAE
=====================================

:class:`~skvae.VAEImputer` is a drop-in scikit-learn imputer: it learns the
distribution of a table from its observed entries and fills each gap with
its expected value given the rest of its row (the MIWAE method). Here a
fifth of the entries of the wine table are removed at random; the fills are
compared with those of scikit-learn's imputers, the imputer goes into a
pipeline before a classifier, and ``sample_posterior=True`` shows how
uncertain a fill is.
"""

# %%
# A table with gaps
# -----------------
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_wine
from sklearn.experimental import enable_iterative_imputer  # noqa: F401
from sklearn.impute import IterativeImputer, KNNImputer, SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skvae import VAEImputer

X, y = load_wine(return_X_y=True)
rng = np.random.RandomState(0)
gaps = rng.rand(*X.shape) < 0.2
X_gaps = np.where(gaps, np.nan, X)
print(f"{gaps.mean():.0%} of {X.size} entries missing")

# %%
# Fill the gaps
# -------------
# ``fit_transform`` returns the table with its gaps filled; observed entries
# come back unchanged. Errors are in units of each column's standard
# deviation.
imputers = {
    "SimpleImputer (mean)": SimpleImputer(),
    "KNNImputer": KNNImputer(),
    "IterativeImputer": IterativeImputer(random_state=0),
    "VAEImputer": VAEImputer(random_state=0),
}
std = np.nanstd(X_gaps, axis=0)
rmse = {}
for name, imputer in imputers.items():
    filled = imputer.fit_transform(X_gaps)
    assert np.array_equal(filled[~gaps], X[~gaps])
    rmse[name] = np.sqrt(np.mean(((filled - X) / std)[gaps] ** 2))
    print(f"{name:<22} RMSE {rmse[name]:.3f}")

fig, ax = plt.subplots(figsize=(6, 2.8), layout="constrained")
names = sorted(rmse, key=rmse.get, reverse=True)
ax.barh(names, [rmse[n] for n in names], color="tab:blue")
ax.set_xlabel("RMSE on the removed entries (standard deviations)")
ax.set_title("Wine, 20 % of entries missing")
plt.show()

# %%
# In a pipeline
# -------------
# Like any scikit-learn imputer, it goes before a model that cannot take
# gaps, and is refitted on each training fold of a cross-validation.
model = make_pipeline(
    VAEImputer(random_state=0), StandardScaler(), LogisticRegression(max_iter=1000)
)
scores = cross_val_score(model, X_gaps, y, cv=3)
print(f"accuracy with gaps filled by the VAE: {scores.mean():.3f}")

# %%
# How sure is a fill?
# -------------------
# ``sample_posterior=True`` draws each gap from the model's posterior
# predictive instead of taking its expected value: each row, and each call of
# ``transform``, gets another plausible completion (multiple imputation). The
# spread of 200 draws for one wine's three missing values shows how much its
# observed entries say about them.
sampler = VAEImputer(sample_posterior=True, random_state=0).fit(X_gaps)
row = int(np.flatnonzero(gaps.sum(axis=1) == 3)[0])
draws = sampler.transform(np.repeat(X_gaps[[row]], 200, axis=0))  # 200 draws
mean_fill = imputers["VAEImputer"].transform(X_gaps[[row]])[0]
missing = np.flatnonzero(gaps[row])
names = load_wine().feature_names
fig, axes = plt.subplots(
    1, len(missing), figsize=(3 * len(missing), 2.6), layout="constrained"
)
for ax, j in zip(np.atleast_1d(axes), missing):
    ax.hist(draws[:, j], bins=20, color="tab:blue", alpha=0.7)
    ax.axvline(mean_fill[j], color="k", label="expected value")
    ax.axvline(X[row, j], color="tab:red", linestyle="--", label="true value")
    ax.set_title(names[j], fontsize=9)
axes[0].legend(fontsize=8)
fig.suptitle(f"Draws for the gaps of wine {row}")
plt.show()
