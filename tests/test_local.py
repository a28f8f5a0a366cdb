"""The detector's local views: distances to the nearest training codes, and
the local density among the training rows."""

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose
from sklearn.neighbors import LocalOutlierFactor

from skvae._local import (
    DISTANCE_FLOOR,
    LOCAL_WEIGHT,
    DensityView,
    LocalView,
    blocked_density_term,
    blocked_local_term,
    calibrate,
    density_scores,
    density_term,
    fit_density,
    local_term,
    neighbour_scores,
)

CODES = torch.tensor([[0.0, 0.0], [3.0, 4.0], [6.0, 8.0], [0.0, 1.0]])


def test_neighbour_scores_by_hand():
    # Posterior variances exp(0) = 1 in each of two dimensions: tr = 2.
    z_mean = torch.tensor([[0.0, 0.0], [0.0, 2.0]])
    z_logvar = torch.zeros(2, 2)
    # The first row is the code [0, 0]: its neighbours are [0, 1] (squared
    # distance 1) and [3, 4] (25). The second is no code: [0, 1] (1) and
    # [0, 0] (4).
    scores = neighbour_scores(z_mean, z_logvar, CODES, 2)
    expected = [-(np.sqrt(3) + np.sqrt(27)) / 2, -(np.sqrt(3) + np.sqrt(6)) / 2]
    assert_allclose(scores.numpy(), expected, rtol=1e-6)
    one = neighbour_scores(z_mean, torch.full((2, 2), np.log(0.5)), CODES, 1)
    assert_allclose(one.numpy(), [-np.sqrt(2), -np.sqrt(2)], rtol=1e-6)


def test_a_code_within_the_self_distance_is_the_row_itself():
    # A float32 rounding away from [3, 4]: still the row itself.
    z_mean = torch.tensor([[3.0, 4.0 + 2e-6]])
    score = neighbour_scores(z_mean, torch.full((1, 2), -30.0), CODES, 1)
    # Its nearest other code is [0, 1] (squared distance 18) or [6, 8] (25).
    assert_allclose(score.numpy(), [-np.sqrt(18)], rtol=1e-5)


def test_local_term_is_weighted_and_centred_and_blocks_agree(monkeypatch):
    rng = np.random.default_rng(0)
    z_mean = torch.tensor(rng.normal(size=(50, 2)), dtype=torch.float32)
    z_logvar = torch.tensor(rng.normal(size=(50, 2)), dtype=torch.float32)
    view = LocalView(CODES, 3, 2.5, -4.0)
    raw = neighbour_scores(z_mean, z_logvar, CODES, 3).double()
    term = local_term(z_mean, z_logvar, view)
    assert term.dtype == torch.float64
    assert torch.equal(term, 2.5 * (raw + 4.0))
    monkeypatch.setattr("skvae._local._BLOCK_ENTRIES", 7 * len(CODES))
    assert np.array_equal(blocked_local_term(z_mean, z_logvar, view), term.numpy())


def test_calibrate_by_hand():
    log_px = np.array([-10.0, -8.0, -6.0, -4.0, -2.0])  # quartiles -8, -4
    local = np.array([-3.0, -2.5, -2.0, -1.5, -1.0])  # -2.5, -2 (median), -1.5
    weight, center = calibrate(log_px, local)
    assert weight == pytest.approx(LOCAL_WEIGHT * 4.0 / 1.0, rel=1e-12)
    assert center == -2.0
    # No spread in either score: no local view.
    assert calibrate(log_px, np.full(5, -1.0)) == (0.0, -1.0)
    assert calibrate(np.zeros(5), local)[0] == 0.0
    # The density's share of the range.
    assert calibrate(log_px, local, 3.0)[0] == pytest.approx(12.0, rel=1e-12)


# ------------------------------------------------------------ local density
def _density_view(rows, n_neighbors, weight=1.0, center=0.0):
    k_distances, log_densities = fit_density(rows, n_neighbors)
    return DensityView(rows, k_distances, log_densities, n_neighbors, weight, center)


def test_density_scores_are_minus_log_local_outlier_factors(monkeypatch):
    # scikit-learn's LocalOutlierFactor is the reference, with its floor of
    # the mean reachability distance.
    monkeypatch.setattr("skvae._local.DISTANCE_FLOOR", 1e-10)
    rng = np.random.default_rng(0)
    train = np.vstack([0.1 * rng.normal(size=(40, 3)), 3 + rng.normal(size=(60, 3))])
    new = np.vstack([rng.normal(size=(20, 3)), [[0.5, 0.0, 0.0], [3.0, 3.0, 3.0]]])
    train, new = train.astype(np.float32), new.astype(np.float32)
    lof = LocalOutlierFactor(n_neighbors=7, novelty=True).fit(train)
    view = _density_view(torch.from_numpy(train), 7)
    scores = density_scores(torch.from_numpy(new), view)
    assert scores.dtype == torch.float64
    assert_allclose(scores.numpy(), -np.log(-lof.score_samples(new)), rtol=1e-6)
    # A training row scored again is not its own neighbour: its score is
    # its factor among the other training rows.
    own = density_scores(torch.from_numpy(train), view).numpy()
    assert_allclose(own, -np.log(-lof.negative_outlier_factor_), atol=1e-6)
    assert own[:40].mean() == pytest.approx(0.0, abs=0.1)  # as dense as theirs


def test_duplicated_training_rows_keep_finite_densities():
    rows = torch.tensor([[0.0, 0.0]] * 5 + [[1.0, 0.0], [0.0, 2.0]])
    view = _density_view(rows, 3)
    assert torch.equal(view.k_distances[:5], torch.zeros(5, dtype=torch.float64))
    assert torch.isfinite(view.log_densities).all()
    # A duplicate is as dense as its neighbours; a row 1 away from five
    # rows at distance 0 of each other is DISTANCE_FLOOR / (1 + floor) as
    # dense as they are.
    scores = density_scores(torch.tensor([[0.0, 0.0], [0.0, -1.0]]), view)
    assert scores[0].item() == pytest.approx(0.0, abs=1e-12)
    assert scores[1].item() == pytest.approx(
        np.log(DISTANCE_FLOOR / (1 + DISTANCE_FLOOR)), rel=1e-9
    )


def test_density_term_is_weighted_and_centred_and_blocks_agree(monkeypatch):
    rng = np.random.default_rng(1)
    rows = torch.tensor(rng.normal(size=(30, 4)), dtype=torch.float32)
    new = torch.tensor(rng.normal(size=(25, 4)), dtype=torch.float32)
    view = _density_view(rows, 5, weight=2.5, center=-0.3)
    raw = density_scores(new, view)
    term = density_term(new, view)
    assert torch.equal(term, 2.5 * (raw + 0.3))
    monkeypatch.setattr("skvae._local._BLOCK_ENTRIES", 7 * len(rows))
    assert np.array_equal(blocked_density_term(new, view), term.numpy())
    # fit_density in blocks of rows too.
    blocked = fit_density(rows, 5)
    monkeypatch.undo()
    for part, whole in zip(blocked, fit_density(rows, 5)):
        assert torch.equal(part, whole)


def test_the_rows_of_the_local_density_fill_the_gaps_alone():
    from skvae._donors import completed_mean
    from skvae._importance import posterior_mean
    from skvae._modules import VAEModule

    torch.manual_seed(0)
    module = VAEModule(3, 2, (8,), likelihood=[("gaussian", 3)], mask_input=True)
    module.eval()
    x = torch.tensor([[0.5, -1.0, 2.0], [1.0, 0.0, -0.5]])
    mask = torch.tensor([[True, False, True], [True, True, True]])
    eps = torch.randn(4, 2, 2)
    rows = completed_mean(module, x, eps, mask)
    fills = posterior_mean(module, x, eps, mask)
    assert torch.equal(rows[mask], x[mask])
    assert rows[0, 1] == fills[0, 1] and fills[0, 1] != x[0, 1]
    assert completed_mean(module, x, eps) is x
