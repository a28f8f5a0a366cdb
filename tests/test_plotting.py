"""The Displays render a fitted model to a file."""

import matplotlib
import numpy as np
import pytest
from numpy.testing import assert_array_equal

from skvae import (
    LatentSpaceDisplay,
    LatentTraversalDisplay,
    LossCurveDisplay,
    ReconstructionDisplay,
    SamplesDisplay,
    VAETransformer,
)

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def _render(display, tmp_path):
    path = tmp_path / "figure.png"
    display.figure_.savefig(path)
    assert path.stat().st_size > 1000
    return display


def test_latent_space(fitted_vae, digits, tmp_path):
    X, y = digits
    display = _render(LatentSpaceDisplay.from_estimator(fitted_vae, X, y), tmp_path)
    offsets = display.ax_.collections[0].get_offsets()
    np.testing.assert_allclose(offsets, fitted_vae.transform(X), rtol=1e-6)


def test_reconstructions(fitted_vae, digits, tmp_path):
    X, _ = digits
    display = ReconstructionDisplay.from_estimator(
        fitted_vae, X, image_shape=(8, 8), n_images=6
    )
    _render(display, tmp_path)
    assert display.reconstructions.shape == (6, 64)


@pytest.mark.parametrize("mean", [True, False])
def test_samples(fitted_vae, tmp_path, mean):
    display = SamplesDisplay.from_estimator(
        fitted_vae, image_shape=(8, 8), n_samples=10, mean=mean, random_state=0
    )
    _render(display, tmp_path)
    assert display.images.shape == (10, 64)


@pytest.mark.parametrize("mean", [True, False])
def test_samples_take_a_random_state_instance(fitted_vae, mean):
    def images(random_state):
        return SamplesDisplay.from_estimator(
            fitted_vae,
            image_shape=(8, 8),
            n_samples=4,
            mean=mean,
            random_state=random_state,
        ).images

    assert_array_equal(
        images(np.random.RandomState(3)), images(np.random.RandomState(3))
    )
    assert not np.array_equal(
        images(np.random.RandomState(3)), images(np.random.RandomState(4))
    )


def test_latent_traversal(fitted_vae, tmp_path):
    display = LatentTraversalDisplay.from_estimator(
        fitted_vae, image_shape=(8, 8), n_steps=5
    )
    _render(display, tmp_path)
    assert display.images.shape == (25, 64)


def test_latent_traversal_needs_two_dimensions(digits):
    vae = VAETransformer(n_components=3, max_epochs=1).fit(digits[0])
    with pytest.raises(ValueError, match="n_components=3"):
        LatentTraversalDisplay.from_estimator(vae, image_shape=(8, 8))


def test_loss_curve_with_held_out_loss(digits, tmp_path):
    vae = VAETransformer(max_epochs=3, early_stopping=True).fit(digits[0])
    display = _render(LossCurveDisplay.from_estimator(vae), tmp_path)
    assert len(display.ax_.lines) == 2
    np.testing.assert_allclose(display.ax_.lines[0].get_ydata(), vae.loss_curve_)


def test_draws_on_a_given_axes(fitted_vae):
    _, ax = plt.subplots()
    assert LossCurveDisplay.from_estimator(fitted_vae, ax=ax).ax_ is ax
