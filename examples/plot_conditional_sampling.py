"""
=====================================
Conditional samples and their gaps
=====================================

:meth:`~skvae.VAETransformer.sample` draws rows from the model's conditional
distribution of the other columns given some: here, penguins of each
species, and penguins within a range of body mass, next to the real ones.
The synthetic rows also get the gaps of the real table, where the real table
has them.
"""

# %%
# Fit the table as it is
# ----------------------
import matplotlib.pyplot as plt
import numpy as np
from palmerpenguins import load_penguins

from skvae import VAETransformer

penguins = load_penguins()
vae = VAETransformer(n_components=8, random_state=0).fit(penguins)

# %%
# Body mass given the species
# ---------------------------
# ``given`` as a dict gives every row the same value. The species column
# comes back exactly as given; the other columns are drawn from the model's
# conditional distribution, by importance-weighted inference rather than by
# rejection, so a rare species costs the same as a common one.
species = ["Adelie", "Chinstrap", "Gentoo"]
draws = {
    name: vae.sample(1000, random_state=0, given={"species": name}) for name in species
}
print(draws["Gentoo"].head().to_string())
print((draws["Gentoo"]["species"] == "Gentoo").all())

fig, axes = plt.subplots(1, 3, figsize=(12, 3.5), layout="constrained", sharey=True)
bins = np.histogram_bin_edges(penguins["body_mass_g"].dropna(), bins=20)
for ax, name in zip(axes, species):
    real = penguins.loc[penguins["species"] == name, "body_mass_g"].dropna()
    synthetic = draws[name]["body_mass_g"].dropna()
    ax.hist(real, bins=bins, density=True, alpha=0.5, label=f"real ({len(real)})")
    ax.hist(synthetic, bins=bins, density=True, alpha=0.5, label="given species")
    ax.set_title(name)
    ax.set_xlabel("body_mass_g")
    ax.legend()

# %%
# The draws follow the model's joint distribution of the columns: where the
# model blurs the species (some synthetic Gentoo penguins are as light as
# Adelie ones, in unconditional samples too), so do the conditional draws. A
# model trained longer or with more components sharpens both.

# %%
# A range: penguins heavier than 5 kg
# -----------------------------------
# A range is not one value: give the real rows' values of that column, one
# row per sample, and the other columns are drawn given each of them.
heavy = penguins.loc[penguins["body_mass_g"] > 5000, ["body_mass_g"]]
given = heavy.sample(1000, replace=True, random_state=0)
synthetic = vae.sample(given=given, random_state=0)
print(synthetic["body_mass_g"].min() > 5000)
print(synthetic["species"].value_counts(normalize=True).round(2).to_dict())
print(
    penguins.loc[heavy.index, "species"].value_counts(normalize=True).round(2).to_dict()
)

# %%
# Gaps as in the data
# -------------------
# ``sample`` reproduces each column's gaps at its rate in the data
# (``missing_rates_``); ``missing=False`` gives rows without gaps.
unconditional = vae.sample(len(penguins) * 10, random_state=0)
rates = {
    "real": penguins.isna().mean(),
    "synthetic": unconditional.isna().mean(),
}
print({k: round(v, 4) for k, v in vae.missing_rates_.items() if v})
fig, ax = plt.subplots(figsize=(7, 3.5), layout="constrained")
columns = [c for c in penguins.columns if rates["real"][c] > 0]
for offset, (name, rate) in zip([-0.2, 0.2], rates.items()):
    ax.bar(np.arange(len(columns)) + offset, rate[columns] * 100, 0.4, label=name)
ax.set_xticks(np.arange(len(columns)), columns, rotation=20)
ax.set_ylabel("missing (%)")
ax.legend()
plt.show()
