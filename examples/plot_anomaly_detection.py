"""
==============================================
Outlier detection, and what makes a row odd
==============================================

:class:`~skvae.VAEOutlierDetector` learns the distribution of normal data and
scores each row by its estimated log-likelihood, plus how far it lies from
its nearest training rows: rows the model finds unlikely, or that lie apart,
are outliers. It has the API of scikit-learn's outlier detectors
(``predict`` in {-1, +1}, ``decision_function``, ``contamination``), and
:meth:`~skvae.VAEOutlierDetector.feature_scores` tells which features make a
row unlikely. Here it learns the digits 0 to 4 and flags the digits 5 to 9,
then learns one cultivar of the wine table and explains the odd wines.
"""

# %%
# Images: learn the digits 0-4
# ----------------------------
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.datasets import load_digits, load_wine
from sklearn.metrics import RocCurveDisplay, roc_auc_score
from sklearn.model_selection import train_test_split

from skvae import VAEOutlierDetector

X, y = load_digits(return_X_y=True)
X = X / 16.0  # grey levels in [0, 1]: the Bernoulli likelihood
normal = y < 5
X_train, X_normal = train_test_split(X[normal], test_size=0.3, random_state=0)
X_novel = X[~normal]
detector = VAEOutlierDetector(contamination=0.05, max_epochs=100, random_state=0)
detector.fit(X_train)
print(f"epochs: {detector.n_iter_}, threshold offset_: {detector.offset_:.1f} nats")

# %%
# ``score_samples`` is the log-likelihood estimate plus the local views of
# each row's nearest training rows (higher is more normal; see the user
# guide). ``predict`` flags the rows below ``offset_``, here the 5 % quantile of the
# training rows' cross-fitted scores (each by a model fitted without it), so
# that about 5 % of new digits 0-4 are flagged.
X_test = np.r_[X_normal, X_novel]
is_novel = np.r_[np.zeros(len(X_normal)), np.ones(len(X_novel))]
scores = detector.score_samples(X_test)
flagged = detector.predict(X_test) == -1
print(
    f"flagged: {flagged[is_novel == 0].mean():.1%} of the unseen 0-4, "
    f"{flagged[is_novel == 1].mean():.1%} of the 5-9"
)
auc = roc_auc_score(is_novel, -scores)

fig, (ax_hist, ax_roc) = plt.subplots(1, 2, figsize=(12, 4.5), layout="constrained")
bins = np.linspace(np.percentile(scores, 0.5), scores.max(), 50)
ax_hist.hist(
    scores[is_novel == 0],
    bins=bins,
    alpha=0.6,
    density=True,
    label="digits 0-4 (unseen)",
)
ax_hist.hist(
    scores[is_novel == 1], bins=bins, alpha=0.6, density=True, label="digits 5-9"
)
ax_hist.axvline(detector.offset_, color="k", linestyle="--", label="offset_")
ax_hist.set(
    xlabel="score_samples (nats)",
    ylabel="density",
    title="Held-out images, model trained on 0-4",
)
ax_hist.legend()
RocCurveDisplay.from_predictions(
    is_novel, -scores, name="VAEOutlierDetector", plot_chance_level=True, ax=ax_roc
)
ax_roc.set_title(f"Detecting the digits 5-9 (ROC-AUC = {auc:.3f})")
plt.show()

# %%
# Which pixels make an image unlikely
# -----------------------------------
# ``feature_scores`` splits a row's log-likelihood over its features: the
# expected log-likelihood of each pixel given the row's code. The most
# anomalous images, with their pixels' scores below them (dark: pixels the
# model did not expect):
order = np.argsort(scores)[:6]
contributions = detector.feature_scores(X_test[order])
fig, axes = plt.subplots(2, 6, figsize=(9, 3.4), layout="constrained")
for j, i in enumerate(order):
    axes[0, j].imshow(X_test[i].reshape(8, 8), cmap="gray_r", vmin=0, vmax=1)
    axes[0, j].set_title(f"{scores[i]:.0f} nats", fontsize=9)
    axes[1, j].imshow(
        contributions[j].reshape(8, 8), cmap="magma", vmin=contributions.min(), vmax=0
    )
for ax in axes.flat:
    ax.set_axis_off()
fig.suptitle("Least likely test images (top) and their pixel scores (bottom)")
plt.show()

# %%
# A table: learn one cultivar of wine
# -----------------------------------
# Tables go in as they are, in their own units: the detector standardises
# each numeric column. The two other cultivars play the outliers.
wine = load_wine(as_frame=True)
table, cultivar = wine.data, wine.target
train = table[cultivar == 0].sample(frac=0.7, random_state=0)
test = table.drop(train.index)
# Only the scores matter here, not the threshold: novelty=False skips the
# cross-fitting that sets it for new rows.
wine_detector = VAEOutlierDetector(max_epochs=200, novelty=False, random_state=0)
wine_detector.fit(train)
wine_scores = wine_detector.score_samples(test)
print(f"wine ROC-AUC: {roc_auc_score(cultivar[test.index] != 0, -wine_scores):.3f}")

# %%
# For a DataFrame, ``feature_scores`` returns a DataFrame with its columns:
# for the three least likely wines, the measurements the model expected
# least.
odd = test.iloc[np.argsort(wine_scores)[:3]]
explained = wine_detector.feature_scores(odd)
fig, axes = plt.subplots(1, 3, figsize=(12, 4), sharex=True, layout="constrained")
for ax, (index, row) in zip(axes, explained.iterrows()):
    row.sort_values().head(6)[::-1].plot.barh(ax=ax, color="tab:red")
    ax.set_title(f"wine {index} (cultivar {cultivar[index]})")
    ax.set_xlabel("feature score (nats)")
plt.show()
print(pd.concat([odd.T, train.mean().rename("training mean")], axis=1).round(2))
