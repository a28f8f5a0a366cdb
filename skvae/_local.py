"""The local view of ``VAEOutlierDetector``: distances to the training codes.

A row's local score is minus its mean distance to the ``n_neighbors`` nearest
posterior means of the training rows, the distance to a code ``c`` being the
root expected squared distance under the row's posterior,
``sqrt(||mu - c||^2 + tr(Sigma))``: a row whose code is uncertain is far from
every code. The detector adds it to the log-likelihood with the weight that
``calibrate`` sets on its reference rows. The torch function ``local_term``
is the one rule, used by the estimator and by its ONNX graph.
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
# Training codes kept for the look-up at most: a seeded random subset of
# bigger tables. Every row scored costs a distance to each code, and the
# codes are constants of the ONNX graph.
MAX_CODES = 10_000
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


def neighbour_scores(z_mean, z_logvar, codes, n_neighbors):
    """Minus the mean distance of each row to its ``n_neighbors`` nearest
    codes (see the module docstring), a code within ``SELF_DISTANCE`` of the
    row's posterior mean excepted. Needs ``n_neighbors < len(codes)``."""
    squared = (z_mean.unsqueeze(1) - codes.unsqueeze(0)).square().sum(dim=2)
    # One more than asked for, ascending: the first is dropped when it is
    # the row itself, the last otherwise.
    nearest, _ = torch.topk(squared, n_neighbors + 1, dim=1, largest=False)
    is_self = nearest[:, :1] < SELF_DISTANCE**2
    nearest = torch.where(is_self, nearest[:, 1:], nearest[:, :-1])
    spread = z_logvar.exp().sum(dim=1, keepdim=True)
    return -torch.sqrt(nearest + spread).mean(dim=1)


def local_term(z_mean, z_logvar, view):
    """What the local view adds to each row's log-likelihood, in nats:
    ``weight * (neighbour_scores - center)``, in float64."""
    scores = neighbour_scores(z_mean, z_logvar, view.codes, view.n_neighbors)
    return view.weight * (scores.double() - view.center)


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


def calibrate(log_likelihoods, local_scores):
    """``(weight, center)`` of ``local_term`` from reference rows: the local
    scores (``neighbour_scores``) centred on their median and scaled to the
    interquartile range of the log-likelihoods, times ``LOCAL_WEIGHT``. A
    weight of 0 (no local view) when either range is 0."""
    low, center, high = np.percentile(local_scores, [25, 50, 75])
    ll_low, ll_high = np.percentile(log_likelihoods, [25, 75])
    if not high > low or not ll_high > ll_low:
        return 0.0, float(center)
    return float(LOCAL_WEIGHT * (ll_high - ll_low) / (high - low)), float(center)
