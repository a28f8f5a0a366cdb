"""The local views of ``VAEOutlierDetector``: a row among its neighbours.

Two scores look at a row's ``n_neighbors`` nearest training rows; the
detector adds both to the log-likelihood, each with the weight that
``calibrate`` sets on its reference rows.

- The codes (``neighbour_scores``): minus the row's mean distance to the
  nearest posterior means of the training rows, the distance to a code ``c``
  being the root expected squared distance under the row's posterior,
  ``sqrt(||mu - c||^2 + tr(Sigma))``: a row whose code is uncertain is far
  from every code.
- The local density (``density_scores``): minus the log of the row's local
  outlier factor (Breunig et al., 2000) among the training rows as the model
  completes them (``_donors.completed_mean``: the encoded columns, standardised
  numbers and one-hot categories, with the gaps filled by the model's
  posterior means). It compares the density around a row with the density
  around its neighbours, which neither the likelihood of a model that
  smooths over clusters of different spreads nor distances among
  low-dimensional codes see: a row just outside a tight cluster lies where a
  wide cluster's rows would be normal.

The torch functions ``local_term`` and ``density_term`` are the one rule,
used by the estimator and by its ONNX graph.
"""

from typing import NamedTuple

import numpy as np
import torch

# A training code this close to a row's posterior mean is the row itself (a
# training row scored again, as fit_predict does), which is not its own
# neighbour. Float32 codes of one row from different batches, or from the
# ONNX graph, differ by about 1e-6; codes of distinct rows by far more.
SELF_DISTANCE = 1e-4
# Weight of the local score against the log-likelihood, once both are
# measured in interquartile ranges of their reference scores. Half a range
# for one: on the one-class benchmark (seed 0), equal weights drowned the
# likelihood on digits, whose two-dimensional codes of near classes overlap
# (ROC-AUC 0.980 against 0.988 for the likelihood alone), where half kept
# it (0.987) and still lifted wine (0.974 to 0.988) and near digits (0.879
# to 0.904).
LOCAL_WEIGHT = 0.5
# Weight of the local density against the log-likelihood plus the codes'
# view, in interquartile ranges of their reference scores. Measured on the
# one-class benchmark (seeds 0-4, ROC-AUC): the planted table of local
# anomalies needs it high, where the likelihood and the codes alone score
# 0.751 against LocalOutlierFactor's 0.986. With 20 neighbours (as
# LocalOutlierFactor's default) and 3 ranges: planted 0.983, near digits
# 0.958 (0.898 before, against 0.904), digits 0.993 (0.986), wine 0.977
# (0.977) and breast cancer 0.963 (0.968). With 10 neighbours: 0.984,
# 0.972, 0.996, 0.974 and 0.963; with 15 and 2.5 ranges: 0.983, 0.966,
# 0.995, 0.976 and 0.963.
DENSITY_WEIGHT = 3.0
# Distance (in the encoded columns' units: standard deviations) added to the
# mean reachability distance of a row, so that duplicated training rows,
# whose neighbours lie at distance 0, keep a finite density.
DISTANCE_FLOOR = 1e-3
# Training codes kept for the look-up at most: a seeded random subset of
# bigger tables. Every row scored costs a distance to each code, and the
# codes are constants of the ONNX graph.
MAX_CODES = 10_000
# Numbers of the completed training rows kept for the local density at most:
# wide rows keep fewer rows (a random subset of the codes' rows), so that the
# fitted detector, its files and its ONNX graph stay within 64 MiB of them
# (10,000 rows of up to 1,677 encoded columns).
MAX_DENSITY_ENTRIES = 2**24
# Query rows per block of the distance computation, times the numbers in the
# training codes: the differences of one block take 16 MiB in float32.
_BLOCK_ENTRIES = 2**22


class LocalView(NamedTuple):
    """What ``local_term`` needs, as fitted: the training codes (a tensor of
    shape ``(n_codes, n_components)``), the neighbours per row, and the
    ``weight`` and ``center`` of ``calibrate``."""

    codes: torch.Tensor
    n_neighbors: int
    weight: float
    center: float


def _nearest_others(squared, n_neighbors):
    """The ``n_neighbors`` smallest of each row's squared distances
    (ascending) and their columns, the smallest excepted when it is under
    ``SELF_DISTANCE**2``: the row itself."""
    # One more than asked for, ascending: the first is dropped when it is
    # the row itself, the last otherwise.
    nearest, index = torch.topk(squared, n_neighbors + 1, dim=1, largest=False)
    is_self = nearest[:, :1] < SELF_DISTANCE**2
    nearest = torch.where(is_self, nearest[:, 1:], nearest[:, :-1])
    index = torch.where(is_self, index[:, 1:], index[:, :-1])
    return nearest, index


def neighbour_scores(z_mean, z_logvar, codes, n_neighbors):
    """Minus the mean distance of each row to its ``n_neighbors`` nearest
    codes (see the module docstring), a code within ``SELF_DISTANCE`` of the
    row's posterior mean excepted. Needs ``n_neighbors < len(codes)``."""
    squared = (z_mean.unsqueeze(1) - codes.unsqueeze(0)).square().sum(dim=2)
    nearest, _ = _nearest_others(squared, n_neighbors)
    spread = z_logvar.exp().sum(dim=1, keepdim=True)
    return -torch.sqrt(nearest + spread).mean(dim=1)


def local_term(z_mean, z_logvar, view):
    """What the local view adds to each row's log-likelihood, in nats:
    ``weight * (neighbour_scores - center)``, in float64."""
    scores = neighbour_scores(z_mean, z_logvar, view.codes, view.n_neighbors)
    return view.weight * (scores.double() - view.center)


class DensityView(NamedTuple):
    """What ``density_term`` needs, as fitted (see ``fit_density``): the
    completed training rows, their distances to their ``n_neighbors``-th
    nearest other row and the logs of their local reachability densities
    (float64), and the ``weight`` and ``center`` of ``calibrate``."""

    rows: torch.Tensor
    k_distances: torch.Tensor
    log_densities: torch.Tensor
    n_neighbors: int
    weight: float
    center: float


def _squared_distances(a, b):
    """Squared Euclidean distances between the rows of ``a`` and ``b``, in
    float64 (one product, not a tensor of every difference)."""
    a, b = a.double(), b.double()
    cross = a @ b.T
    squared = a.square().sum(dim=1, keepdim=True) + b.square().sum(dim=1) - 2 * cross
    return squared.clamp(min=0.0)


def _log_reachability_density(squared, index, k_distances):
    """Minus the log of the mean reachability distance of each row to its
    neighbours ``index`` (squared distances ``squared``), floored by
    ``DISTANCE_FLOOR``: ``max(d(row, o), k_distance(o))`` for each
    neighbour ``o``."""
    reach = torch.maximum(squared.sqrt(), k_distances[index])
    return -torch.log(reach.mean(dim=1) + DISTANCE_FLOOR)


def density_scores(rows, view):
    """Minus the log local outlier factor of each completed row among the
    view's training rows: the log of its local reachability density less
    the log of its neighbours' mean one. 0 for a row as dense as its
    neighbours, negative for one in a sparser place. A training row within
    ``SELF_DISTANCE`` is the row itself, not its neighbour."""
    squared = _squared_distances(rows, view.rows)
    nearest, index = _nearest_others(squared, view.n_neighbors)
    own = _log_reachability_density(nearest, index, view.k_distances)
    theirs = torch.logsumexp(view.log_densities[index], dim=1)
    return own - (theirs - np.log(view.n_neighbors))


def density_term(rows, view):
    """What the local density adds to each row's score, in nats:
    ``weight * (density_scores - center)``, in float64."""
    return view.weight * (density_scores(rows, view) - view.center)


def fit_density(rows, n_neighbors):
    """The ``k_distances`` and ``log_densities`` of ``DensityView`` for the
    completed training rows ``rows`` (a float32 tensor), each row's
    neighbours being the other rows (by position, duplicates included), as
    float64 tensors."""
    n_rows = len(rows)
    step = max(1, _BLOCK_ENTRIES // max(1, n_rows))
    nearest, index = [], []
    for start in range(0, n_rows, step):
        squared = _squared_distances(rows[start : start + step], rows)
        own = torch.arange(start, min(start + step, n_rows))
        squared[torch.arange(len(own)), own] = torch.inf
        values, columns = torch.topk(squared, n_neighbors, dim=1, largest=False)
        nearest.append(values)
        index.append(columns)
    nearest, index = torch.cat(nearest), torch.cat(index)
    k_distances = nearest[:, -1].sqrt()
    log_densities = _log_reachability_density(nearest, index, k_distances)
    return k_distances, log_densities


def blocked_density_term(rows, view):
    """``density_term`` in blocks of rows (bounded memory), as float64
    NumPy."""
    step = max(1, _BLOCK_ENTRIES // max(1, len(view.rows)))
    parts = [density_term(rows[i : i + step], view) for i in range(0, len(rows), step)]
    if not parts:
        return np.zeros(0)
    return torch.cat(parts).numpy()


def blocked_local_term(z_mean, z_logvar, view):
    """``local_term`` in blocks of rows (bounded memory), as float64 NumPy."""
    step = max(1, _BLOCK_ENTRIES // max(1, view.codes.numel()))
    parts = [
        local_term(z_mean[i : i + step], z_logvar[i : i + step], view)
        for i in range(0, len(z_mean), step)
    ]
    if not parts:
        return np.zeros(0)
    return torch.cat(parts).double().numpy()


def code_rows(n_samples, seed):
    """Positions of the training rows whose codes the look-up keeps: all of
    them, or ``MAX_CODES`` drawn with ``seed``, in order."""
    if n_samples <= MAX_CODES:
        return np.arange(n_samples)
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n_samples, MAX_CODES, replace=False))


def density_rows(n_codes, n_features, n_neighbors, seed):
    """Positions, among the ``n_codes`` rows of the codes, of the rows that
    the local density keeps: all of them, or as many as
    ``MAX_DENSITY_ENTRIES`` numbers allow (and at least ``n_neighbors + 1``),
    drawn with ``seed``, in order."""
    keep = max(n_neighbors + 1, MAX_DENSITY_ENTRIES // max(1, n_features))
    if n_codes <= keep:
        return np.arange(n_codes)
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n_codes, keep, replace=False))


def calibrate(scores, local_scores, share=LOCAL_WEIGHT):
    """``(weight, center)`` of ``local_term`` or ``density_term`` from
    reference rows: the local scores centred on their median and scaled to
    the interquartile range of the ``scores`` they are added to, times
    ``share`` (``LOCAL_WEIGHT`` or ``DENSITY_WEIGHT``). A weight of 0 (no
    local view) when either range is 0."""
    low, center, high = np.percentile(local_scores, [25, 50, 75])
    ll_low, ll_high = np.percentile(scores, [25, 75])
    if not high > low or not ll_high > ll_low:
        return 0.0, float(center)
    return float(share * (ll_high - ll_low) / (high - low)), float(center)
