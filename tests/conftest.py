import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits, make_blobs

from skvae import VAETransformer


@pytest.fixture(scope="session")
def blobs():
    """Small real-valued data with three clusters (for the Gaussian likelihood)."""
    X, y = make_blobs(n_samples=60, n_features=5, centers=3, random_state=0)
    return X, y


@pytest.fixture(scope="session")
def binary():
    """A binary matrix with structure (for the Bernoulli likelihood)."""
    rng = np.random.RandomState(0)
    prototypes = rng.rand(3, 12) > 0.5
    labels = rng.randint(3, size=80)
    flips = rng.rand(80, 12) < 0.1
    return (prototypes[labels] ^ flips).astype(np.float64), labels


@pytest.fixture(scope="session")
def digits():
    """scikit-learn's digits scaled to [0, 1]."""
    X, y = load_digits(return_X_y=True)
    return X / 16.0, y


@pytest.fixture(scope="module")
def fitted_vae(digits):
    """The default model, briefly trained on the digits."""
    X, _ = digits
    return VAETransformer(max_epochs=5, random_state=0).fit(X)


def cuda_available():
    return torch.cuda.is_available()


@pytest.fixture(scope="session")
def small_vae():
    """A factory of small ``VAETransformer`` models that learn a table of a
    few hundred rows in 20 epochs; keyword arguments override its settings."""
    from skvae import VAETransformer

    def make(**params):
        settings = {
            "max_epochs": 20,
            "batch_size": 16,
            "learning_rate": 1e-2,
            "hidden_layer_sizes": (32,),
            "random_state": 0,
        }
        return VAETransformer(**{**settings, **params})

    return make
