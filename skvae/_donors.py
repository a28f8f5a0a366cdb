"""Donors for ``VAEImputer``: a look-up step in the latent space.

The fills of a gap blend the model's estimate (the MIWAE posterior mean, or a
posterior draw) with the values of the same column in the training rows
nearest to the row once both are completed by the model (observed entries as
they are, gaps filled with the model's estimate, as in predictive-mean
matching): its donors. Per column, the
number of donors ``k`` and the weight ``w`` of their mean come from the fit
data itself (``choose``): observed entries are hidden on purpose and filled
both ways, and the pair with the lowest squared error is kept (``w = 0``, the
model alone, unless donors do better). A weight of 1 with one donor keeps a
column's support (its levels, integer grid and categories) by construction.

Everything runs in the encoded space of the column schema (standardised
numbers, one-hot categories), so that the estimator and the ONNX graph share
``blend``.
"""

from typing import NamedTuple

import numpy as np
import torch

from ._importance import posterior_mean, posterior_sample

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
    """The donors and the choice per encoded entry, as tensors."""

    keys: torch.Tensor  # (n_pool, n_encoded): the rows completed by the model
    values: torch.Tensor  # (n_pool, n_encoded): encoded values, 0 in gaps
    observed: torch.Tensor  # (n_pool, n_encoded): 1.0 where observed
    n_neighbors: torch.Tensor  # (n_encoded,) int64: k of each entry's column
    weight: torch.Tensor  # (n_encoded,): w of each entry's column


def make_pool(choice, keys, values, widths):
    """The fitted donors from their saved parts: ``choice`` (the lists of
    ``n_neighbors`` and weights per column, or None without donors), the
    pool's completed rows ``keys`` and encoded ``values`` (NaN in gaps).

    Returns
    -------
    n_neighbors : ndarray of int64, weights : ndarray
        Per column (zeros without donors).
    pool : DonorPool or None
        With the choice spread over each column's ``widths`` entries.
    """
    if choice is None:
        return np.zeros(len(widths), np.int64), np.zeros(len(widths)), None
    n_neighbors, weights = np.asarray(choice[0], np.int64), np.asarray(choice[1])
    values = np.asarray(values, dtype=np.float32)
    observed = ~np.isnan(values)
    pool = DonorPool(
        torch.as_tensor(np.asarray(keys, np.float32)),
        torch.as_tensor(np.where(observed, values, 0.0)),
        torch.as_tensor(observed.astype(np.float32)),
        torch.as_tensor(np.repeat(n_neighbors, widths)),
        torch.as_tensor(np.repeat(weights.astype(np.float32), widths)),
    )
    return n_neighbors, weights, pool


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
    some of them may not have observed a column."""
    return min(2 * int(pool.n_neighbors.max()), len(pool.keys))


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
    ``n_candidates``), in float64. The torch function of
    ``VAEImputer.transform`` and its ONNX graph."""
    index = nearest(keys.to(pool.keys.dtype), pool.keys, n)
    means, count = donor_means(index, pool.values, pool.observed, pool.n_neighbors)
    weight = torch.where(count > 0, pool.weight, torch.zeros_like(pool.weight))
    fills = fills.to(torch.float64)
    return fills + weight.to(torch.float64) * (means - fills)


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


def fit_donors(encoded, complete, columns, n_columns, grid, rng):
    """Hide entries of ``CHOICE_ROWS`` rows of the pool and ``choose``.

    Parameters
    ----------
    encoded : ndarray of shape (n_pool, n_encoded)
        The pool's encoded rows, NaN in gaps.
    complete : callable
        Encoded rows with gaps to the rows completed by the model.
    columns, n_columns, grid :
        As for ``choose``.
    rng : numpy.random.Generator

    Returns
    -------
    n_neighbors, weights : ndarray
        As ``choose`` returns them.
    keys : ndarray of shape (n_pool, n_encoded)
        The pool's rows completed by the model.
    """
    keys = complete(encoded)
    # Rows drawn again (with other entries hidden) in pools under
    # CHOICE_ROWS: enough hidden entries per column to choose from.
    n_pool = len(encoded)
    chosen = rng.choice(n_pool, CHOICE_ROWS, replace=n_pool < CHOICE_ROWS)
    hidden = _hidden_entries(encoded[chosen], columns, n_columns, rng)
    fills = complete(np.where(hidden, np.nan, encoded[chosen]))
    truth = np.where(hidden, encoded[chosen], np.nan)
    n_neighbors, weights = choose(
        truth, fills, keys, encoded, chosen, columns, n_columns, grid
    )
    return n_neighbors, weights, keys


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


def choose(truth, fills, pool_keys, pool_values, exclude, columns, n_columns, grid):
    """The number of donors and the weight per column with the lowest squared
    error on the hidden entries.

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

    Returns
    -------
    n_neighbors : ndarray of int64, weights : ndarray of float
        Per column; weight 0 (and ``n_neighbors`` 0) where the model alone
        does best or too few entries were hidden.
    """
    best_k, best_w = np.zeros(n_columns, np.int64), np.zeros(n_columns)
    grid = [k for k in grid if k <= len(pool_keys) - 1]
    if not grid:
        return best_k, best_w
    hidden = ~np.isnan(truth)
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
    weights = np.asarray(WEIGHTS)
    errors = {}  # (k, column) -> squared errors per weight
    for k in grid:
        means, count = donor_means(index, values, observed, torch.tensor(k))
        means = np.where(count.numpy() > 0, means.numpy(), fills)
        for c in range(n_columns):
            entries = columns == c
            rows = hidden[:, entries].any(axis=1)
            gap = (means - fills)[rows][:, entries]
            miss = (truth - fills)[rows][:, entries]
            # Squared error of fills + w (means - fills), for every w at once.
            errors[k, c] = [np.sum((w * gap - miss) ** 2) for w in weights]
    for c in range(n_columns):
        if hidden[:, columns == c].any(axis=1).sum() < MIN_HIDDEN:
            continue
        k, w = min(
            ((k, i) for k in grid for i in range(len(weights))),
            key=lambda pair: (errors[pair[0], c][pair[1]], pair[1], pair[0]),
        )
        if w:
            best_k[c], best_w[c] = k, weights[w]
    return best_k, best_w
