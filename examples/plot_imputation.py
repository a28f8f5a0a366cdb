"""
=====================================
Filling missing values with a VAE
=====================================

With ``missing_values=np.nan``, :class:`~skvae.VAETransformer` trains on a
table with gaps: missing entries are left out of the loss, and decoding the
codes of a row fills them. Here a fifth of the entries of scikit-learn's
breast cancer table are removed at random, and the VAE's fills are compared
with those of scikit-learn's imputers on the removed entries.
"""

# %%
# A table with gaps
# -----------------
# The table is standardised with the statistics of its observed entries, so
# errors are in units of each feature's standard deviation.
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_breast_cancer
from sklearn.experimental import enable_iterative_imputer  # noqa: F401
from sklearn.impute import IterativeImputer, KNNImputer, SimpleImputer
from sklearn.preprocessing import StandardScaler

from skvae import VAETransformer

X = load_breast_cancer().data
rng = np.random.RandomState(0)
gaps = rng.rand(*X.shape) < 0.2
scaler = StandardScaler().fit(np.where(gaps, np.nan, X))  # ignores NaN
X_true = scaler.transform(X)
X_gaps = np.where(gaps, np.nan, X_true)
print(f"{gaps.mean():.0%} of {X.size} entries missing")

# %%
# The VAE as an imputer
# ---------------------
# ``transform`` encodes the rows with their gaps; ``inverse_transform`` decodes
# full rows, and the decoded values go where entries are missing.
vae = VAETransformer(
    likelihood="gaussian",
    missing_values=np.nan,
    n_components=8,
    hidden_layer_sizes=(128,),
    max_epochs=200,
    batch_size=32,
    n_iter_no_change=30,
    random_state=0,
).fit(X_gaps)
decoded = vae.inverse_transform(vae.transform(X_gaps))
filled = {"VAETransformer": np.where(gaps, decoded, X_gaps)}

# %%
# Compared with scikit-learn's imputers
# -------------------------------------
imputers = {
    "SimpleImputer (mean)": SimpleImputer(),
    "KNNImputer": KNNImputer(n_neighbors=5),
    "IterativeImputer": IterativeImputer(max_iter=20, random_state=0),
}
for name, imputer in imputers.items():
    filled[name] = imputer.fit_transform(X_gaps)

rmse = {
    name: np.sqrt(np.mean((values[gaps] - X_true[gaps]) ** 2))
    for name, values in filled.items()
}
for name, value in sorted(rmse.items(), key=lambda item: item[1]):
    print(f"{name:<22} RMSE {value:.3f}")

fig, ax = plt.subplots(figsize=(6, 3))
names = sorted(rmse, key=rmse.get, reverse=True)
ax.barh(names, [rmse[n] for n in names], color="tab:blue")
ax.set_xlabel("RMSE on the removed entries (standard deviations)")
ax.set_title("Breast cancer table, 20 % of entries missing")
fig.tight_layout()
plt.show()

# %%
# The VAE learns the correlations between the 30 measurements, so its fills
# are far better than the column means and close to the iterative imputer's,
# which fits one regression per column. ``benchmarks/bench_imputation.py``
# repeats the comparison on three tables and three rates of missing entries.
