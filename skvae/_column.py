"""``Column``: one column of the training data, as ``fit`` saw it."""

from dataclasses import dataclass, field

import numpy as np

from ._scan import CATEGORICAL
from ._transforms import ColumnTransform

# An input column with no observed value in fit: not modelled, no features.
EMPTY = "empty"


@dataclass
class Column:
    """One input column: how it is modelled and how to give it back.

    Parameters
    ----------
    name : str or int
        Column label (its position for arrays).
    likelihood : str
        Resolved likelihood name; ``"categorical"`` for categorical columns.
    dtype : str
        The input dtype, restored on output (``"category"`` for pandas
        categoricals, with ``categories`` and ``ordered``).
    categories : list or None
        The categories, in the order of the one-hot block.
    ordered : bool
        Whether a pandas categorical dtype was ordered.
    transform : ColumnTransform or None
        The internal transform of a numeric column, if any.
    low, high : float or None
        Range of a numeric column's observed values in ``fit``.
    decimals : int or None
        The fewest decimals that hold all of a transformed float column's
        observed values, if at most ``MAX_DECIMALS``: its outputs are rounded
        to them.
    levels, cuts : list or None
        For an integer column with a normal-score transform, its distinct
        observed values and the bounds between their intervals on the
        internal scale (``ndtri`` of the empirical CDF at each level but the
        last). Training spreads each value uniformly over its interval in
        probability (dequantisation, the randomised probability integral
        transform of discrete margins), so that the column's internal values
        are N(0, 1) like those of a continuous column rather than a few point
        masses that a Gaussian cannot fit; outputs are the level whose
        interval holds the internal value.
    n_observed : int or None
        For a categorical column, its number of observed (non-missing)
        entries in ``fit``, which sets the probability of a category that
        ``fit`` did not see (``unseen_log_prob``). None in files written
        before it was stored: such a model refuses unseen categories.
    unit_floor : bool
        Whether a standardised column with a heteroscedastic Gaussian
        likelihood (``VAEImputer``'s) has the floor on its noise scale of a
        unit-variance column, ``StandardizedHeteroscedasticLikelihood``.
        False in files written before that likelihood existed, whose columns
        keep the floor they were trained with.
    fast_scale : bool
        Whether a normal-score column's Gaussian noise scale learns fast and
        stops at 0.2, ``FastScaleNormalScoresLikelihood``. False in files
        written before that likelihood existed, whose columns keep the
        ``NormalScoresLikelihood`` they were trained with.
    """

    name: object
    likelihood: str
    dtype: str
    categories: list = None
    ordered: bool = False
    transform: ColumnTransform = None
    low: float = None
    high: float = None
    decimals: int = None
    levels: list = None
    cuts: list = None
    unit_floor: bool = False
    fast_scale: bool = False
    n_observed: int = None
    start: int = field(default=0, repr=False)

    @property
    def categorical(self):
        return self.likelihood == CATEGORICAL

    @property
    def unseen_log_prob(self):
        """Log-probability of a category that ``fit`` did not see.

        The additive-smoothing (Laplace) estimate of a level never observed:
        one pseudo-count for each of the ``width`` known categories and one
        for all unseen ones, over ``n_observed`` observed entries, so
        ``1 / (n_observed + width + 1)``. It depends on the training data
        only, so models fitted on the same rows give it the same value.
        """
        return -float(np.log(self.n_observed + self.width + 1))

    @property
    def width(self):
        if self.likelihood == EMPTY:
            return 0
        return len(self.categories) if self.categorical else 1

    def to_json(self):
        document = {"name": self.name, "likelihood": self.likelihood}
        document["dtype"] = self.dtype
        if self.low is not None:
            document["low"], document["high"] = float(self.low), float(self.high)
        if self.categorical:
            document["categories"] = self.categories
            document["ordered"] = self.ordered
        if self.transform is not None:
            document["transform"] = self.transform.to_json()
        if self.decimals is not None:
            document["decimals"] = self.decimals
        if self.levels is not None:
            document["levels"] = [float(v) for v in self.levels]
            document["cuts"] = [float(c) for c in self.cuts]
        if self.unit_floor:
            document["unit_floor"] = True
        if self.fast_scale:
            document["fast_scale"] = True
        if self.n_observed is not None:
            document["n_observed"] = int(self.n_observed)
        return document

    @classmethod
    def from_json(cls, document):
        document = dict(document)
        if "transform" in document:
            document["transform"] = ColumnTransform.from_json(document["transform"])
        return cls(**document)
