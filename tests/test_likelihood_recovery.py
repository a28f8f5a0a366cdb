"""Each new likelihood recovers the means of data drawn from a model of its kind.

The data come from a known latent model: z ~ N(0, I) in two dimensions, a
fixed random one-layer tanh network maps z to one natural parameter per
feature, and the observations are drawn from the likelihood's distribution
with the implied means. A model with the matching likelihood must reconstruct
those true means clearly better than one with a mismatched likelihood.

The margins were checked over many training seeds (the right likelihood's
error is 0.3 to 0.62 times the wrong one's), so the 0.8 threshold is not a
close call for the fixed seeds below.
"""

import numpy as np
import pytest
import torch
from sklearn.preprocessing import StandardScaler

from skvae import VAETransformer

N_SAMPLES, N_FEATURES = 400, 12

# Every model trains for all its epochs (n_iter_no_change == max_epochs): the
# count losses improve in small steps for a long time, and stopping early
# would compare models at different stages of training instead of likelihoods.
FIT_PARAMS = dict(
    n_components=2,
    hidden_layer_sizes=(32,),
    max_epochs=100,
    n_iter_no_change=100,
    batch_size=100,
    learning_rate=1e-2,
    random_state=0,
)

# The right likelihood's error must be below this share of the wrong one's.
MARGIN = 0.8


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Train on one thread, as the models are tiny.

    Extra threads only add synchronisation to such small matrix products, and
    when other processes compete for the cores, waiting for each other makes
    the fits many times slower.
    """
    n_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n_threads)


def _natural_parameters(rng, offset, gain):
    """Per-sample, per-feature natural parameters of the latent model."""
    z = rng.standard_normal((N_SAMPLES, 2))
    hidden = 8
    w_in = rng.standard_normal((2, hidden))
    w_out = rng.standard_normal((hidden, N_FEATURES)) / np.sqrt(hidden)
    return offset + gain * np.tanh(z @ w_in) @ w_out


def _count_data(likelihood, seed=0):
    """Counts and their true means; log-means between about e^-2 and e^2."""
    rng = np.random.RandomState(seed)
    mean = np.exp(_natural_parameters(rng, offset=0.0, gain=1.0))
    if likelihood == "poisson":
        X = rng.poisson(mean)
    else:
        # numpy counts failures before n successes: mean n (1 - p) / p.
        theta = 2.0
        X = rng.negative_binomial(theta, theta / (theta + mean))
    return X.astype(np.float64), mean


def _grey_level_data(seed=0):
    """Continuous Bernoulli grey levels and their true means."""
    rng = np.random.RandomState(seed)
    logits = torch.tensor(_natural_parameters(rng, offset=0.0, gain=3.0))
    distribution = torch.distributions.ContinuousBernoulli(logits=logits)
    uniforms = torch.tensor(rng.uniform(size=logits.shape))
    X = distribution.icdf(uniforms).clamp(0.0, 1.0)
    return X.numpy(), distribution.mean.numpy()


def _reconstruction_error(vae, X, true_mean):
    """Mean squared error of ``inverse_transform(transform(X))``."""
    X_hat = vae.inverse_transform(vae.transform(X))
    return float(np.mean((X_hat - true_mean) ** 2))


@pytest.mark.parametrize("likelihood", ["poisson", "negative_binomial"])
def test_count_likelihood_recovers_means_better_than_gaussian(likelihood):
    X, true_mean = _count_data(likelihood)
    right = VAETransformer(likelihood=likelihood, **FIT_PARAMS).fit(X)
    right_error = _reconstruction_error(right, X, true_mean)

    # The Gaussian gets standardised counts, the scale it fits best, and its
    # reconstruction is mapped back to counts for the comparison.
    scaler = StandardScaler().fit(X)
    X_scaled = scaler.transform(X)
    wrong = VAETransformer(likelihood="gaussian", **FIT_PARAMS).fit(X_scaled)
    X_hat = scaler.inverse_transform(wrong.inverse_transform(wrong.transform(X_scaled)))
    wrong_error = float(np.mean((X_hat - true_mean) ** 2))

    assert right_error < MARGIN * wrong_error


def test_continuous_bernoulli_recovers_means_better_than_bernoulli():
    X, true_mean = _grey_level_data()
    right = VAETransformer(likelihood="continuous_bernoulli", **FIT_PARAMS).fit(X)
    wrong = VAETransformer(likelihood="bernoulli", **FIT_PARAMS).fit(X)
    right_error = _reconstruction_error(right, X, true_mean)
    wrong_error = _reconstruction_error(wrong, X, true_mean)
    assert right_error < MARGIN * wrong_error
