"""Donors for ``VAEImputer``: a look-up step in the latent space.

The fills of a gap blend the model's estimate (the MIWAE posterior mean, or a
posterior draw) with the values of the same column in the training rows
nearest to the row once both are completed by the model (observed entries as
they are, gaps filled with the model's estimate, as in predictive-mean
matching): its donors; and, for numeric columns, with a linear read-out of
the completed row (``_linear``). Per column, the number of donors ``k``, the
weight ``w`` of their mean and the weight ``v`` of the read-out come from the
fit data itself (``choose``): observed entries are hidden on purpose and
filled every way, and the blend with the lowest squared error is kept
(``w = v = 0``, the model alone, unless another does better). A weight of 1
with one donor keeps a column's support (its levels, integer grid and
categories) by construction. Posterior draws (``draw_donors``) take the
donors' values, not the read-out, which moves the point fills only.

Everything runs in the encoded space of the column schema (standardised
numbers, one-hot categories), so that the estimator and the ONNX graph share
``blend``.
"""

from itertools import product
from typing import NamedTuple

import numpy as np
import torch

from ._importance import posterior_mean, posterior_sample
from ._linear import crossfit, fit_readout, linear_entries, predict

# The candidates of the choice per column.
NEIGHBOURS = (1, 3, 5, 10, 20, 40)
WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0)
# Draws per row of the fills that complete the pool's rows.
CHOICE_DRAWS = 200
# Differences (in standard deviations) below which two entries count as equal
# in the distance of ``nearest``.
LOOKUP_SCALE = 1e-3
# Training rows kept as donors, and rows whose entries are hidden to choose.
POOL_ROWS = 5_000
CHOICE_ROWS = 2_000
HIDDEN_SHARE = 0.2
# Hidden entries a column needs before donors may fill it.
MIN_HIDDEN = 10
# Query rows times donors times entries per block of distances.
BLOCK_ENTRIES = 2**22


class DonorPool(NamedTuple):
    """The donors, the linear read-out (``_linear``) and the choice per
    encoded entry, as tensors."""

    keys: torch.Tensor  # (n_pool, n_encoded): the rows completed by the model
    values: torch.Tensor  # (n_pool, n_encoded): encoded values, 0 in gaps
    observed: torch.Tensor  # (n_pool, n_encoded): 1.0 where observed
    n_neighbors: torch.Tensor  # (n_encoded,) int64: k of each entry's column
    weight: torch.Tensor  # (n_encoded,): w of each entry's column
    linear: torch.Tensor  # (n_encoded,): v, the read-out's weight
    # The read-out's mean row (n_encoded,) and coefficients (n_encoded,
    # n_encoded); None where no column takes it.
    center: torch.Tensor = None
    coef: torch.Tensor = None


def make_pool(choice, keys, values, readout, widths):
    """The fitted donors from their saved parts: ``choice`` (the lists of
    ``n_neighbors``, donor weights and read-out weights per column, or None
    without donors; files saved before the read-out have no third list),
    the pool's completed rows ``keys`` and encoded ``values`` (NaN in gaps),
    and the ``readout`` (its center and coefficients, or None).

    Returns
    -------
    n_neighbors : ndarray of int64, weights, linear : ndarray
        Per column (zeros without donors).
    pool : DonorPool or None
        With the choice spread over each column's ``widths`` entries.
    """
    zeros = np.zeros(len(widths))
    if choice is None:
        return zeros.astype(np.int64), zeros, zeros, None
    n_neighbors, weights = np.asarray(choice[0], np.int64), np.asarray(choice[1])
    linear = np.asarray(choice[2]) if len(choice) > 2 else zeros
    values = np.asarray(values, dtype=np.float32)
    observed = ~np.isnan(values)
    if readout is not None:
        readout = [torch.as_tensor(np.asarray(part, np.float32)) for part in readout]
    pool = DonorPool(
        torch.as_tensor(np.asarray(keys, np.float32)),
        torch.as_tensor(np.where(observed, values, 0.0)),
        torch.as_tensor(observed.astype(np.float32)),
        torch.as_tensor(np.repeat(n_neighbors, widths)),
        torch.as_tensor(np.repeat(weights.astype(np.float32), widths)),
        torch.as_tensor(np.repeat(linear.astype(np.float32), widths)),
        *(readout or ()),
    )
    return n_neighbors, weights, linear, pool


def nearest(keys, pool_keys, n, exclude=None):
    """Indices of the ``n`` pool keys nearest each key, the nearest first.

    The distance sums ``log(1 + (d / LOOKUP_SCALE)**2)`` over the entries'
    differences ``d``: an entry equal in both rows adds nothing, and a large
    difference little more than a small one, so that rows which agree
    exactly on many columns (the same mixture, the same group) come first,
    as a look-up finds them, and rows close on every column next.
    ``exclude`` (int64 per row, or None) names a pool row that a row may not
    take (itself)."""
    diff = (keys.unsqueeze(1) - pool_keys.unsqueeze(0)) / LOOKUP_SCALE
    distances = torch.log1p(diff * diff).sum(-1)
    if exclude is not None:
        rows = torch.arange(len(keys))
        distances[rows, exclude] = torch.inf
    return torch.topk(distances, n, dim=1, largest=False).indices


def donor_means(index, values, observed, n_neighbors):
    """Mean over each entry's first ``n_neighbors`` donors among ``index``
    (per row, nearest first) that observed it, and how many there were."""
    picked = observed[index]  # (batch, n, n_encoded)
    rank = torch.cumsum(picked, dim=1) - 1.0
    use = picked * (rank < n_neighbors.to(rank.dtype)).to(picked.dtype)
    count = use.sum(dim=1)
    # In float64, where sums of a few float32 values are exact whatever
    # their order: the mean of two donors 46.6 and 46.7 (recorded to one
    # decimal) is then the same in every runtime, on whichever side of 46.65
    # it falls, and rounds the same.
    total = (use * values[index]).to(torch.float64).sum(dim=1)
    return total / torch.clamp(count, min=1.0).to(torch.float64), count


def n_candidates(pool):
    """How many nearest rows ``blend`` looks among: twice the largest k, as
    some of them may not have observed a column (at least one)."""
    return min(max(2 * int(pool.n_neighbors.max()), 1), len(pool.keys))


def completed(x, mask, fills):
    """The rows ``x`` with their gaps (``mask`` False) taken from ``fills``:
    the keys of ``nearest``. A batch without a mask has no gaps: ``x``."""
    return x if mask is None else torch.where(mask, x, fills)


def completed_mean(module, x, eps, mask=None):
    """``posterior_mean`` in the gaps of ``x``, its observed entries
    elsewhere (``x`` itself without a mask, with no draws): the keys of the
    donors and the rows of the detector's local density. Arguments as for
    ``_importance.importance_draws``."""
    if mask is None:
        return x
    return completed(x, mask, posterior_mean(module, x, eps, mask))


def completed_draw(module, x, eps, mask=None, generator=None):
    """``posterior_sample`` in the gaps of ``x``, its observed entries
    elsewhere. Arguments as for ``_importance.importance_draws``."""
    return completed(x, mask, posterior_sample(module, x, eps, mask, generator))


def blend(fills, keys, pool, n):
    """``fills`` moved towards the donors' means by each entry's weight (the
    model's own fills where no donor observed the entry), the donors looked
    for among the ``n`` pool rows nearest the ``keys`` (``completed`` rows;
    ``n_candidates``), and towards the linear read-out of the ``keys``
    (``_linear.predict``) by its weight, in float64. The torch function of
    ``VAEImputer.transform`` and its ONNX graph."""
    index = nearest(keys.to(pool.keys.dtype), pool.keys, n)
    means, count = donor_means(index, pool.values, pool.observed, pool.n_neighbors)
    weight = torch.where(count > 0, pool.weight, torch.zeros_like(pool.weight))
    fills = fills.to(torch.float64)
    blended = fills + weight.to(torch.float64) * (means - fills)
    if pool.coef is None:
        return blended
    center, coef = pool.center.to(torch.float64), pool.coef.to(torch.float64)
    readout = predict(keys.to(torch.float64), center, coef)
    return blended + pool.linear.to(torch.float64) * (readout - fills)


def blend_rows(fills, keys, pool):
    """``blend`` over the rows of ``fills`` in blocks that bound memory."""
    rows = _block_rows(pool)
    n = n_candidates(pool)
    parts = [
        blend(fills[i : i + rows], keys[i : i + rows], pool, n)
        for i in range(0, len(fills), rows)
    ]
    return torch.cat(parts) if parts else fills


def _block_rows(pool):
    """Query rows per block of ``nearest``, to bound its memory."""
    return max(1, BLOCK_ENTRIES // max(1, pool.keys.numel()))


def draw_donors(samples, keys, pool, columns, generator):
    """Posterior ``samples`` whose columns take, each with its column's
    weight as probability, the value of one donor drawn at random among the
    column's ``k`` nearest to the ``keys`` (the rows completed by the draws)
    that observed it.
    ``columns`` (int64, per encoded entry) names each entry's column, so
    that a categorical column takes the whole of one donor's category."""
    n = n_candidates(pool)
    out = []
    rows = _block_rows(pool)
    for i in range(0, len(samples), rows):
        part, key = samples[i : i + rows], keys[i : i + rows]
        index = nearest(key.to(pool.keys.dtype), pool.keys, n)
        out.append(_swapped(part, index, pool, columns, generator))
    return torch.cat(out) if out else samples


def _swapped(samples, index, pool, columns, generator):
    """``draw_donors`` for one block of rows."""
    picked = pool.observed[index]  # (batch, n, n_encoded)
    rank = torch.cumsum(picked, dim=1) - 1.0
    k = pool.n_neighbors.to(rank.dtype)
    # One uniform rank per row and column, below the column's k.
    n_columns = int(columns.max()) + 1
    u = torch.rand(len(samples), n_columns, generator=generator)
    count = torch.minimum(picked.sum(dim=1), k)  # donors per entry
    target = torch.floor(u[:, columns] * count)  # (batch, n_encoded)
    hit = picked * (rank == target.unsqueeze(1)).to(picked.dtype)
    donor = (hit * pool.values[index]).sum(dim=1)
    take = torch.rand(len(samples), n_columns, generator=generator)
    take = (take[:, columns] < pool.weight) & (count > 0)
    return torch.where(take, donor.to(samples.dtype), samples)


def pool_rows(n_rows, rng):
    """The training rows kept as donors: all, or ``POOL_ROWS`` of them."""
    if n_rows <= POOL_ROWS:
        return np.arange(n_rows)
    return np.sort(rng.choice(n_rows, POOL_ROWS, replace=False))


def fit_donors(encoded, complete, columns, n_columns, numeric, grid, rng):
    """Hide entries of ``CHOICE_ROWS`` rows of the pool and ``choose``.

    Parameters
    ----------
    encoded : ndarray of shape (n_pool, n_encoded)
        The pool's encoded rows, NaN in gaps.
    complete : callable
        Encoded rows with gaps to the rows completed by the model.
    columns, n_columns, grid :
        As for ``choose``.
    numeric : list of int
        The numeric columns, which the linear read-out may fill.
    rng : numpy.random.Generator

    Returns
    -------
    choice : Choice
        Per column, as ``choose`` returns it.
    keys : ndarray of shape (n_pool, n_encoded)
        The pool's rows completed by the model.
    readout : tuple of ndarray or None
        The read-out's center and coefficients (``_linear.fit_readout``),
        None where no column takes it.
    """
    keys = complete(encoded)
    # Rows drawn again (with other entries hidden) in pools under
    # CHOICE_ROWS: enough hidden entries per column to choose from.
    n_pool = len(encoded)
    chosen = rng.choice(n_pool, CHOICE_ROWS, replace=n_pool < CHOICE_ROWS)
    hidden = _hidden_entries(encoded[chosen], columns, n_columns, rng)
    fills = complete(np.where(hidden, np.nan, encoded[chosen]))
    truth = np.where(hidden, encoded[chosen], np.nan)
    targets = linear_entries(columns, numeric)
    readouts = crossfit(keys, chosen, fills, targets, rng) if targets.size else {}
    choice = choose(
        truth, fills, keys, encoded, chosen, columns, n_columns, grid, readouts
    )
    readout = None
    if choice.linear.any():
        targets = targets[choice.linear[columns[targets]] > 0]
        readout = fit_readout(keys, choice.alpha[columns[targets]], targets)
    return choice, keys, readout


class Choice(NamedTuple):
    """The choice of ``choose``, per column."""

    n_neighbors: np.ndarray  # int64: k, 0 without donors
    weight: np.ndarray  # w, the donors' weight
    linear: np.ndarray  # v, the linear read-out's weight
    alpha: np.ndarray  # the read-out's penalty (where v > 0)


def _hidden_entries(encoded, columns, n_columns, rng):
    """A mask of the encoded entries to hide: each observed column of each
    row with probability ``HIDDEN_SHARE``, rows keeping one observed column."""
    first = np.searchsorted(columns, np.arange(n_columns))
    observed = np.zeros((len(encoded), n_columns), dtype=bool)
    has = np.bincount(columns, minlength=n_columns) > 0
    observed[:, has] = ~np.isnan(encoded[:, first[has]])
    hide = observed & (rng.random(observed.shape) < HIDDEN_SHARE)
    hide[(hide == observed).all(axis=1)] = False
    return hide[:, columns]


def choose(
    truth, fills, pool_keys, pool_values, exclude, columns, n_columns, grid, readouts
):
    """The number of donors, their weight and the linear read-out's weight
    and penalty per column with the lowest squared error on the hidden
    entries. The fill ``fills + w (donors - fills) + v (readout - fills)``
    keeps ``w + v <= 1``: a blend of the three estimates.

    Parameters
    ----------
    truth : ndarray of shape (n_rows, n_encoded)
        Encoded rows, NaN except in the hidden entries.
    fills : ndarray
        The rows with their entries hidden, completed by the model.
    pool_keys, pool_values : ndarray
        The donors' completed rows and encoded values (NaN in gaps).
    exclude : ndarray of int64
        Each row's own position in the pool.
    columns : ndarray of int64
        The column of each encoded entry.
    n_columns : int
        The number of columns (some may have no encoded entry).
    grid : tuple of int
        The candidate numbers of donors.
    readouts : dict
        Penalty to the read-out of ``fills`` fitted without each row
        (``_linear.crossfit``; empty without a read-out), NaN in the
        entries it does not fill.

    Returns
    -------
    Choice
        Weights 0 (and ``n_neighbors`` 0) where the model alone does best
        or too few entries were hidden.
    """
    zeros = np.zeros(n_columns)
    choice = Choice(zeros.astype(np.int64), zeros.copy(), zeros.copy(), zeros.copy())
    grid = [k for k in grid if k <= len(pool_keys) - 1]
    if not grid:
        return choice
    hidden = ~np.isnan(truth)
    means = _donor_candidates(fills, pool_keys, pool_values, exclude, grid)
    for c in range(n_columns):
        entries = columns == c
        rows = hidden[:, entries].any(axis=1)
        if rows.sum() < MIN_HIDDEN:
            continue
        miss = (truth - fills)[rows][:, entries]
        donors = {k: (means[k] - fills)[rows][:, entries] for k in grid}
        readout = {
            alpha: (readouts[alpha] - fills)[rows][:, entries]
            for alpha in readouts
            if not np.isnan(readouts[alpha][:, entries]).any()
        }
        best = _best_blend(miss, donors, readout)
        choice.n_neighbors[c], choice.weight[c] = best[0], best[1]
        choice.linear[c], choice.alpha[c] = best[2], best[3]
    return choice


def _donor_candidates(fills, pool_keys, pool_values, exclude, grid):
    """The donors' means (``fills`` where no donor observed an entry) of
    each row of ``fills`` for every k of ``grid``, the row itself left out."""
    observed = ~np.isnan(pool_values)
    pool_keys = torch.as_tensor(pool_keys, dtype=torch.float32)
    keys = torch.as_tensor(fills, dtype=torch.float32)
    n = min(2 * max(grid), len(pool_keys) - 1)
    rows = max(1, BLOCK_ENTRIES // pool_keys.numel())
    index = torch.cat(
        [
            nearest(
                keys[i : i + rows], pool_keys, n, torch.as_tensor(exclude[i : i + rows])
            )
            for i in range(0, len(keys), rows)
        ]
    )
    values = torch.as_tensor(np.where(observed, pool_values, 0.0))
    observed = torch.as_tensor(observed, dtype=torch.float64)
    out = {}
    for k in grid:
        means, count = donor_means(index, values, observed, torch.tensor(k))
        out[k] = np.where(count.numpy() > 0, means.numpy(), fills)
    return out


def _best_blend(miss, donors, readouts):
    """The ``(k, w, v, alpha)`` whose blend ``w * donors[k] + v *
    readouts[alpha]`` (both as gaps from the model's fills) comes nearest
    ``miss`` in squared error; ties go to the smaller weights, so that the
    model alone (``(0, 0.0, 0.0, 0.0)``) is kept unless another does better.
    """
    # The read-out's options, alpha 0 standing for none (v = 0 only).
    lines = [(0.0, 0.0)] + list(readouts.items())
    pairs = [(i, j) for i in range(len(WEIGHTS)) for j in range(len(WEIGHTS))]
    best, best_key = (0, 0.0, 0.0, 0.0), (float(np.sum(miss**2)), 0, 0, 0, 0)
    for (k, gap), (a, (alpha, line)), (i, j) in product(
        donors.items(), enumerate(lines), pairs
    ):
        w, v = WEIGHTS[i], WEIGHTS[j]
        if w + v > 1.0 + 1e-9 or (v and not a):
            continue
        key = (float(np.sum((w * gap + v * line - miss) ** 2)), i + j, i, k, a)
        if key < best_key:
            best_key, best = key, (k if w else 0, w, v, alpha if v else 0.0)
    return best
