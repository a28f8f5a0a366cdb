"""The detector's local view: distances to the nearest training codes."""

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose

from skvae._local import (
    LOCAL_WEIGHT,
    LocalView,
    blocked_local_term,
    calibrate,
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
