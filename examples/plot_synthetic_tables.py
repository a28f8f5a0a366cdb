"""
=====================================
Synthetic rows of a mixed table
=====================================

:class:`~skvae.VAETransformer` fits a pandas DataFrame as it comes: numeric
columns in their own units, categorical columns of strings, and gaps. Here it
learns the Palmer penguins table (344 penguins, 3 species, 3 islands, 4
measurements, sex, year, a few gaps) and draws a synthetic table of the same
size, which comes back as a DataFrame with the same columns and dtypes, and
with gaps where the real table has them. (For rows drawn given some columns,
see :ref:`sphx_glr_auto_examples_plot_conditional_sampling.py`.)
"""

# %%
# Fit the table as it is
# ----------------------
import matplotlib.pyplot as plt
import numpy as np
from palmerpenguins import load_penguins

from skvae import VAETransformer

penguins = load_penguins()
print(penguins.dtypes.to_string())
print(f"gaps per column: {penguins.isna().sum().to_dict()}")

vae = VAETransformer(n_components=8, random_state=0).fit(penguins)
print(vae.likelihoods_)

# %%
# ``likelihood="auto"`` chose a categorical likelihood (a softmax over the
# categories) for the string columns and a Gaussian on normal scores for the
# numeric ones; gaps were left out of the loss.
#
# Draw a synthetic table
# ----------------------
synthetic = vae.sample(len(penguins), random_state=0)
print(synthetic.head().to_string())
print((synthetic.dtypes == penguins.dtypes).all())

# %%
# Real and synthetic, column by column
# ------------------------------------
# Numeric columns keep their distribution (the normal-score map learned at
# ``fit`` takes draws back to each column's units), integer columns stay
# integers within the range seen, and categories keep their frequencies.
numeric = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]
categorical = ["species", "island", "sex"]
fig, axes = plt.subplots(2, 4, figsize=(13, 6), layout="constrained")
for ax, column in zip(axes[0], numeric):
    bins = np.histogram_bin_edges(penguins[column].dropna(), bins=20)
    ax.hist(penguins[column].dropna(), bins=bins, alpha=0.5, label="real")
    ax.hist(synthetic[column], bins=bins, alpha=0.5, label="synthetic")
    ax.set_title(column)
axes[0, 0].legend()
for ax, column in zip(axes[1], categorical):
    shares = {
        "real": penguins[column].value_counts(normalize=True),
        "synthetic": synthetic[column].value_counts(normalize=True),
    }
    levels = shares["real"].index
    width = 0.4
    for offset, (name, share) in zip([-width / 2, width / 2], shares.items()):
        ax.bar(
            np.arange(len(levels)) + offset, share.reindex(levels), width, label=name
        )
    ax.set_xticks(np.arange(len(levels)), levels)
    ax.set_title(column)
axes[1, 3].axis("off")

# %%
# Relations between columns
# -------------------------
# The latent code carries what the columns share: bill and flipper lengths
# per species, as in the real table.
fig, ax = plt.subplots(figsize=(6, 4.5), layout="constrained")
colours = {"Adelie": "tab:orange", "Chinstrap": "tab:purple", "Gentoo": "tab:green"}
for name, table, marker in [("real", penguins, "o"), ("synthetic", synthetic, "x")]:
    ax.scatter(
        table["flipper_length_mm"],
        table["bill_length_mm"],
        c=table["species"].map(colours).fillna("grey"),
        marker=marker,
        s=12,
        alpha=0.6,
        label=name,
    )
ax.set_xlabel("flipper_length_mm")
ax.set_ylabel("bill_length_mm")
ax.set_title("by species (o real, x synthetic)")
plt.show()

# %%
# ``benchmarks/bench_tables.py`` compares such synthetic tables with those of
# SDV's synthesizers, with SDMetrics' quality report.
