"""A linear read-out of the rows the model completes, for ``VAEImputer``.

Where rows do not repeat, a smooth decoder can still miss what a straight
line through the other columns catches: on tables of many correlated
measurements, a gap at the edge of the data is better extrapolated by a
regression on the row's other entries than pulled towards the code's
typical rows. So the imputer may blend, per numeric column, a ridge
regression of the column on the other encoded entries (standardised numbers,
one-hot categories), fitted on the donors' pool: the training rows completed
by the model (``_donors.completed_mean``), which need no other imputer.

The regressions of all columns come from one inverse per penalty: with
``theta = inv(X'X + alpha * n * I)`` for the centred rows ``X`` (``n`` of
them), the ridge coefficients of entry ``j`` on the others are
``-theta[:, j] / theta[j, j]`` (the block inverse of ``X'X + alpha n I``).
The penalty and the weight of the read-out are chosen per column with the
donors' (``_donors.choose``), from predictions cross-fitted over
``FOLDS`` folds of the pool, so that a row's own value never predicts it.
"""

import numpy as np

# The candidate penalties, relative to the number of rows (the entries are
# standardised, so that X'X is about n times their correlations).
ALPHAS = (1e-3, 1e-2, 1e-1, 1.0)
# Folds of the pool for the predictions the choice is made on.
FOLDS = 5
# Encoded entries above which the read-out is left out: its inverse and its
# coefficients grow with their square.
MAX_ENTRIES = 512


def linear_entries(columns, numeric):
    """The encoded entries a read-out may fill: those of the ``numeric``
    columns (one entry each), none for tables of over ``MAX_ENTRIES``
    entries. ``columns`` gives the column of each entry."""
    if len(columns) > MAX_ENTRIES:
        return np.zeros(0, np.int64)
    return np.flatnonzero(np.isin(columns, numeric))


def ridge(rows, alpha, targets):
    """The ridge regressions of the ``targets`` entries of ``rows`` on their
    other entries.

    Returns
    -------
    center : ndarray of shape (n_encoded,)
        The mean row.
    coef : ndarray of shape (n_encoded, n_encoded)
        Column ``j`` holds the coefficients of entry ``j`` (0 on itself);
        columns of entries not in ``targets`` are 0. ``predict`` applies it.
    """
    center = rows.mean(axis=0)
    x = rows - center
    gram = x.T @ x
    gram[np.diag_indices_from(gram)] += alpha * len(rows)
    theta = np.linalg.inv(gram)
    coef = np.zeros_like(theta)
    coef[:, targets] = -theta[:, targets] / theta[targets, targets]
    coef[targets, targets] = 0.0
    return center, coef


def predict(keys, center, coef):
    """The read-out of rows ``keys`` completed by the model: each entry
    predicted from the others (the entries without coefficients get the
    mean row's value)."""
    return center + (keys - center) @ coef


def crossfit(pool_keys, positions, keys, targets, rng):
    """Predictions of the ``targets`` entries of ``keys`` (rows of the pool,
    at ``positions``, with entries hidden and completed by the model), each
    from regressions fitted without its pool row's fold.

    Returns
    -------
    dict
        ``alpha -> ndarray`` of the shape of ``keys``, one per ``ALPHAS``,
        NaN outside the ``targets`` entries (and in rows whose fold leaves
        under 2 rows to fit on).
    """
    folds = rng.permutation(len(pool_keys)) % FOLDS
    out = {alpha: np.full_like(keys, np.nan) for alpha in ALPHAS}
    for fold in range(FOLDS):
        rows = np.flatnonzero(folds[positions] == fold)
        train = folds != fold
        if not rows.size or train.sum() < 2:
            continue
        for alpha in ALPHAS:
            center, coef = ridge(pool_keys[train], alpha, targets)
            predicted = predict(keys[rows], center, coef)
            out[alpha][np.ix_(rows, targets)] = predicted[:, targets]
    return out


def fit_readout(pool_keys, alphas, targets):
    """The read-out of the whole pool: the coefficients of each entry in
    ``targets`` with its chosen penalty (``alphas``, per entry, each one of
    ``ALPHAS``).

    Returns
    -------
    center, coef : ndarray
        As ``ridge`` returns them, float32.
    """
    center = pool_keys.mean(axis=0)
    coef = np.zeros((pool_keys.shape[1],) * 2)
    for alpha in np.unique(alphas):
        entries = targets[alphas == alpha]
        center, part = ridge(pool_keys, alpha, entries)
        coef[:, entries] = part[:, entries]
    return center.astype(np.float32), coef.astype(np.float32)
