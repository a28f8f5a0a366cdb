"""Training settings that follow the size of the data ("auto")."""

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from skvae import VAEImputer, VAEOutlierDetector, VAETransformer
from skvae._sizing import TrainingPlan


@pytest.mark.parametrize(
    "n_samples, expected",
    [
        # Up to 20,000 rows: the small-data settings, as before "auto".
        (5_000, TrainingPlan(100, 128, False, None)),
        (20_000, TrainingPlan(100, 128, False, None)),
        # Beyond: 100 * sqrt(20,000 / n) epochs, a held-out share, a cosine.
        (80_000, TrainingPlan(50, 128, True, "cosine")),
        (53_940, TrainingPlan(61, 128, True, "cosine")),
        # Batches double at 400,000 rows and again at 1,600,000.
        (399_999, TrainingPlan(22, 128, True, "cosine")),
        (400_000, TrainingPlan(22, 256, True, "cosine")),
        (1_000_000, TrainingPlan(14, 256, True, "cosine")),
        (2_000_000, TrainingPlan(10, 512, True, "cosine")),
        (10**9, TrainingPlan(10, 1024, True, "cosine")),
    ],
)
def test_the_auto_plan_of_the_transformer(n_samples, expected):
    assert VAETransformer()._training_plan(n_samples) == expected


def test_each_estimator_has_its_own_small_data_settings():
    assert VAEImputer()._training_plan(1_000) == TrainingPlan(400, 64, False, "cosine")
    assert VAEImputer()._training_plan(80_000) == TrainingPlan(200, 64, True, "cosine")
    detector = VAEOutlierDetector()
    assert detector._training_plan(1_000) == TrainingPlan(1000, 32, False, None)


def test_explicit_settings_are_used_as_given():
    vae = VAETransformer(max_epochs=7, batch_size=50, early_stopping=False)
    # Given epochs keep the learning rate constant, whatever the size.
    assert vae._training_plan(10**6) == TrainingPlan(7, 50, False, None)
    vae = VAETransformer(early_stopping=True)
    assert vae._training_plan(100).early_stopping


def test_partial_fit_trains_without_hold_out_or_schedule():
    assert VAETransformer()._training_plan(10**6, incremental=True) == (
        TrainingPlan(100, 256, False, None)
    )


def test_a_big_fit_follows_the_plan_and_keeps_it_when_saved(monkeypatch, tmp_path):
    # 2,000 rows made "big" by a small-data limit of 500 rows (a fast test).
    monkeypatch.setattr("skvae._sizing.SMALL_DATA", 500)
    big = np.random.default_rng(0).normal(size=(2_000, 3)).astype(np.float32)
    vae = VAETransformer(hidden_layer_sizes=(8,), random_state=0)
    vae.fit(big)
    assert vae.net_.max_epochs == 50  # 100 * sqrt(500 / 2,000)
    assert vae.net_.batch_size == 128
    # Early stopping held out a share and kept the best held-out epoch.
    assert len(vae.validation_scores_) == vae.n_iter_
    best = int(np.argmax(vae.validation_scores_)) + 1
    assert vae.best_epoch_ == best
    # The learning rate goes down a cosine over max_epochs.
    lr = vae.net_.optimizer_.param_groups[0]["lr"]
    # (stepped at the start of each epoch: the last epoch ran at step n - 1)
    progress = (vae.n_iter_ - 1) / vae.net_.max_epochs
    assert lr == pytest.approx(1e-3 * (1 + np.cos(np.pi * progress)) / 2)
    vae.save(tmp_path / "big.safetensors")
    loaded = VAETransformer.load(tmp_path / "big.safetensors")
    assert loaded.net_.max_epochs == vae.net_.max_epochs
    assert loaded.net_.train_split is not None
    assert_array_equal(loaded.transform(big[:50]), vae.transform(big[:50]))
