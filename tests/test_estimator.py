"""Behaviour of VAETransformer through its public API."""

import copy
import io
import pickle

import joblib
import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler, StandardScaler
from skorch.callbacks import Callback

from skvae import VAEImputer, VAEModule, VAEOutlierDetector, VAETransformer
from skvae._likelihoods import BernoulliLikelihood, GaussianLikelihood
from skvae._utils import supports_fused


# ----------------------------------------------------------------- the model
def test_defaults_build_the_classic_model(fitted_vae):
    module = fitted_vae.net_.module_
    encoder_layers = [
        m for m in module.encoder.modules() if isinstance(m, torch.nn.Linear)
    ]
    decoder_layers = [
        m for m in module.decoder.modules() if isinstance(m, torch.nn.Linear)
    ]
    # 64 -> 256 -> (mean, log-variance) of a 2-d latent; 2 -> 256 -> 64 logits.
    assert [(m.in_features, m.out_features) for m in encoder_layers] == [
        (64, 256),
        (256, 4),
    ]
    assert [(m.in_features, m.out_features) for m in decoder_layers] == [
        (2, 256),
        (256, 64),
    ]
    assert isinstance(module.encoder.hidden[1], torch.nn.ReLU)
    assert isinstance(module.likelihood, BernoulliLikelihood)
    assert isinstance(fitted_vae.net_.optimizer_, torch.optim.Adam)


def test_hidden_layer_sizes_build_a_deeper_mirrored_network(blobs):
    X, _ = blobs
    vae = VAETransformer(
        n_components=3, hidden_layer_sizes=(16, 8), likelihood="gaussian", max_epochs=1
    ).fit(X)
    module = vae.net_.module_
    widths = [
        (m.in_features, m.out_features)
        for m in module.decoder.modules()
        if isinstance(m, torch.nn.Linear)
    ]
    assert widths == [(3, 8), (8, 16), (16, 5)]


def test_training_lowers_the_loss(digits):
    X, _ = digits
    vae = VAETransformer(max_epochs=10, random_state=0).fit(X)
    assert vae.n_iter_ == len(vae.loss_curve_) == 10
    assert vae.loss_curve_[-1] < vae.loss_curve_[0]
    # The two terms of the loss are logged separately and add up to it.
    history = vae.history_
    assert_allclose(
        history[-1, "train_reconstruction"] + history[-1, "train_kl"],
        history[-1, "train_loss"],
        rtol=1e-5,
    )


def test_training_stops_when_the_loss_has_converged(binary):
    X, _ = binary
    vae = VAETransformer(max_epochs=500, n_iter_no_change=3, tol=10.0).fit(X)
    # With a huge tol nothing counts as an improvement after the first epoch.
    assert vae.n_iter_ == 4


def test_warm_up_epochs_do_not_count_towards_convergence(binary):
    X, _ = binary
    vae = VAETransformer(
        max_epochs=500, kl_warmup_epochs=5, n_iter_no_change=3, tol=10.0
    ).fit(X)
    # The 5 warm-up epochs, then the first counted epoch and 3 without a
    # tol-sized improvement.
    assert vae.n_iter_ == 5 + 1 + 3


# --------------------------------------------------------- transform & co.
def test_transform_is_the_deterministic_posterior_mean(fitted_vae, digits):
    X, _ = digits
    Z = fitted_vae.transform(X)
    assert Z.shape == (X.shape[0], 2)
    assert Z.dtype == np.float64
    assert_array_equal(fitted_vae.transform(X), Z)
    z_mean, _ = fitted_vae.net_.module_.encoder(
        torch.tensor(X[:5], dtype=torch.float32)
    )
    assert_allclose(Z[:5], z_mean.detach().numpy(), rtol=1e-5, atol=1e-6)


def test_transform_can_return_the_posterior_std(fitted_vae, digits):
    X, _ = digits
    Z, Z_std = fitted_vae.transform(X, return_std=True)
    assert_array_equal(Z, fitted_vae.transform(X))
    assert Z_std.shape == Z.shape and np.all(Z_std > 0)
    _, z_logvar = fitted_vae.net_.module_.encoder(
        torch.tensor(X[:5], dtype=torch.float32)
    )
    assert_allclose(Z_std[:5], np.exp(0.5 * z_logvar.detach().numpy()), rtol=1e-5)


def test_outputs_keep_the_float_dtype_of_the_input(fitted_vae, digits):
    X32 = digits[0].astype(np.float32)
    assert fitted_vae.transform(X32).dtype == np.float32
    assert fitted_vae.score_samples(X32).dtype == np.float32
    Z32 = fitted_vae.transform(X32)
    assert fitted_vae.inverse_transform(Z32).dtype == np.float32
    assert fitted_vae.inverse_transform(Z32.astype(np.float64)).dtype == np.float64


@pytest.mark.parametrize("fit_dtype", [np.float64, np.float32])
def test_inverse_transform_of_transformed_columns_keeps_the_codes_dtype(
    blobs, fit_dtype
):
    # Columns on normal scores (not in [0, 1]) go back through the schema.
    X = blobs[0].astype(fit_dtype)
    vae = VAETransformer(max_epochs=2, random_state=0).fit(X)
    Z = vae.transform(X).astype(np.float64)
    X64, X32 = vae.inverse_transform(Z), vae.inverse_transform(Z.astype(np.float32))
    assert X64.dtype == np.float64 and X32.dtype == np.float32
    assert_array_equal(X32, X64.astype(np.float32))


def test_fit_transform_equals_fit_then_transform(digits):
    X, _ = digits
    params = dict(max_epochs=3, random_state=0)
    assert_array_equal(
        VAETransformer(**params).fit_transform(X),
        VAETransformer(**params).fit(X).transform(X),
    )


def test_inverse_transform_decodes_to_the_bernoulli_mean(fitted_vae, digits):
    X, _ = digits
    X_rec = fitted_vae.inverse_transform(fitted_vae.transform(X))
    assert X_rec.shape == X.shape
    assert X_rec.min() >= 0 and X_rec.max() <= 1
    # Reconstructions are closer to their own input than to another digit's.
    own = np.mean((X_rec - X) ** 2)
    other = np.mean((X_rec - np.roll(X, 1, axis=0)) ** 2)
    assert own < other


def test_inverse_transform_checks_the_latent_dimension(fitted_vae):
    with pytest.raises(ValueError, match="n_components=2"):
        fitted_vae.inverse_transform(np.zeros((3, 5)))


def test_sample_draws_new_data_from_the_prior(fitted_vae):
    X_new = fitted_vae.sample(50, random_state=0)
    assert X_new.shape == (50, 64)
    assert set(np.unique(X_new)) <= {0.0, 1.0}  # Bernoulli draws
    assert_array_equal(fitted_vae.sample(50, random_state=0), X_new)
    assert not np.array_equal(fitted_vae.sample(50, random_state=1), X_new)
    # Without a seed, every call draws fresh randomness.
    assert not np.array_equal(fitted_vae.sample(50), fitted_vae.sample(50))


def test_sample_from_the_gaussian_likelihood_adds_the_learned_noise(blobs):
    X, _ = blobs
    vae = VAETransformer(likelihood="gaussian", max_epochs=20, random_state=0).fit(X)
    X_new = vae.sample(4000, random_state=0)
    means = vae.sample(4000, random_state=0, return_mean=True)  # the same z
    assert X_new.shape == means.shape == (4000, 5)
    noise = X_new - means
    scale = vae.net_.module_.likelihood.scale.detach().numpy()
    # Draws are the means plus noise of the learned scale, feature by feature.
    assert_allclose(noise.std(axis=0), scale, rtol=0.05)
    assert_allclose(noise.mean(axis=0), 0, atol=4 * scale.max() / np.sqrt(4000))


def test_sample_can_return_the_likelihood_mean(fitted_vae):
    means = fitted_vae.sample(20, random_state=0, return_mean=True)
    draws = fitted_vae.sample(20, random_state=0)
    assert means.shape == draws.shape == (20, 64)
    assert means.min() >= 0 and means.max() <= 1
    assert np.unique(means).size > 100  # probabilities, not 0/1 draws
    assert set(np.unique(draws)) <= {0.0, 1.0}


@pytest.mark.parametrize("n_samples", [0, -1, 2.5, "3"])
def test_sample_rejects_bad_n_samples(fitted_vae, n_samples):
    with pytest.raises(ValueError, match="n_samples"):
        fitted_vae.sample(n_samples)


def test_score_samples_is_a_deterministic_log_likelihood(fitted_vae, digits):
    X, _ = digits
    scores = fitted_vae.score_samples(X[:100])
    assert scores.shape == (100,)
    assert np.all(np.isfinite(scores))
    assert np.all(scores < 0)  # log-probabilities of binary-like data
    assert_array_equal(fitted_vae.score_samples(X[:100]), scores)
    assert fitted_vae.score(X[:100]) == pytest.approx(scores.mean(), rel=1e-6)
    # Global random state does not enter the estimate.
    torch.manual_seed(123)
    np.random.seed(123)
    assert_array_equal(fitted_vae.score_samples(X[:100]), scores)


@pytest.mark.parametrize("method", ["transform", "score_samples", "feature_scores"])
def test_a_row_result_depends_only_on_that_row(fitted_vae, digits, method):
    # Bit for bit: a row alone, among 7 rows or among 5,000 (several batches of
    # inference, the last one partial) goes through the same kernels.
    X = np.resize(digits[0], (5000, 64))
    if method == "feature_scores":
        estimator = VAEOutlierDetector(max_epochs=2, random_state=0).fit(X[:300])
    else:
        estimator = fitted_vae
    full = getattr(estimator, method)(X)
    order = np.random.RandomState(0).permutation(len(X))
    assert_array_equal(getattr(estimator, method)(X[order]), full[order])
    for i in (3, 1000, 4095, 4096, 4996):
        assert_array_equal(getattr(estimator, method)(X[i : i + 1])[0], full[i])
        assert_array_equal(getattr(estimator, method)(X[i - 3 : i + 4])[3], full[i])


def test_more_importance_samples_give_a_tighter_bound(fitted_vae, digits):
    X, _ = digits
    elbo = copy.deepcopy(fitted_vae).set_params(n_score_samples=1)
    iwae = copy.deepcopy(fitted_vae).set_params(n_score_samples=200)
    assert iwae.score(X) > elbo.score(X)


def test_score_samples_with_one_sample_is_the_elbo(digits):
    X, _ = digits
    vae = VAETransformer(max_epochs=3, n_score_samples=1, random_state=0).fit(X)
    # The ELBO of the training data is close to minus the last training loss.
    assert vae.score(X) == pytest.approx(-vae.loss_curve_[-1], rel=0.05)


def test_score_rejects_data_outside_the_likelihood_support(fitted_vae, digits):
    X, _ = digits
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        fitted_vae.score(X * 16)


def test_partial_fit_continues_training(digits):
    X, _ = digits
    vae = VAETransformer(random_state=0)
    for _ in range(3):
        for chunk in np.array_split(X, 4):
            vae.partial_fit(chunk)
    assert vae.n_iter_ == 12
    assert len(vae.loss_curve_) == 12
    assert vae.loss_curve_[-1] < vae.loss_curve_[0]
    module_before = vae.net_.module_
    vae.partial_fit(X[:100])
    assert vae.net_.module_ is module_before  # not re-initialised


def test_partial_fit_checks_the_number_of_features(digits):
    X, _ = digits
    vae = VAETransformer(random_state=0).partial_fit(X)
    with pytest.raises(ValueError, match="features"):
        vae.partial_fit(X[:, :10])


def test_partial_fit_refuses_early_stopping(digits):
    X, _ = digits
    with pytest.raises(ValueError, match="early_stopping"):
        VAETransformer(early_stopping=True).partial_fit(X)


def test_feature_names_out(fitted_vae):
    assert_array_equal(
        fitted_vae.get_feature_names_out(), ["vaetransformer0", "vaetransformer1"]
    )


def test_dataframe_input_and_pandas_output(digits):
    X, _ = digits
    df = pd.DataFrame(X, columns=[f"pixel{i}" for i in range(64)])
    vae = VAETransformer(n_components=3, max_epochs=2, random_state=0)
    vae.set_output(transform="pandas")
    out = vae.fit_transform(df)
    assert isinstance(out, pd.DataFrame)
    assert list(out.columns) == [
        "vaetransformer0",
        "vaetransformer1",
        "vaetransformer2",
    ]
    assert_array_equal(vae.feature_names_in_, df.columns)
    assert_allclose(out.to_numpy(), vae.set_output(transform="default").transform(df))


# ------------------------------------------------------------ likelihoods
def test_gaussian_likelihood_learns_a_scale_per_feature():
    # One latent factor seen through four features, each with noise of its
    # own level: the learned scales must recover those levels.
    rng = np.random.RandomState(0)
    noise = np.array([0.05, 0.2, 0.5, 1.0])
    z = rng.randn(2000, 1)
    X = z * np.array([1.0, -2.0, 1.5, 0.5]) + rng.randn(2000, 4) * noise
    vae = VAETransformer(
        n_components=1,
        hidden_layer_sizes=(32,),
        likelihood="gaussian",
        learning_rate=1e-2,
        max_epochs=60,
        random_state=0,
    ).fit(X)
    likelihood = vae.net_.module_.likelihood
    assert isinstance(likelihood, GaussianLikelihood)
    scale = likelihood.scale.detach().numpy()
    assert np.all(np.diff(scale) > 0)  # in the order of the noise levels
    assert_allclose(scale[1:], noise[1:], rtol=0.15)
    # 60 epochs do not resolve the smallest level fully; it stays the smallest.
    assert scale[0] < 0.15


def test_a_failed_fit_leaves_no_trace_of_the_previous_model(binary, blobs):
    vae = VAETransformer(likelihood="bernoulli", max_epochs=2, random_state=0)
    vae.fit(binary[0])
    with pytest.raises(ValueError, match="bernoulli"):
        vae.fit(blobs[0])  # outside [0, 1]: refused before training
    assert [name for name in vars(vae) if name.endswith("_")] == []
    with pytest.raises(NotFittedError):
        vae.transform(binary[0])


def test_bernoulli_outside_unit_interval_is_a_clear_error(blobs):
    X, _ = blobs
    with pytest.raises(ValueError, match="Column 0.*MinMaxScaler.*'gaussian'"):
        VAETransformer(likelihood="bernoulli").fit(X)


# ---------------------------------------------------- the sklearn ecosystem
def test_pipeline_with_a_classifier(digits):
    X, y = digits
    X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
    pipe = make_pipeline(
        MinMaxScaler(),
        VAETransformer(n_components=8, max_epochs=30, random_state=0),
        LogisticRegression(max_iter=1000),
    )
    pipe.fit(X_train, y_train)
    assert pipe.predict(X_test).shape == y_test.shape
    assert pipe.score(X_test, y_test) > 0.5  # ten classes: chance is 0.1


def test_grid_search_without_labels_picks_by_held_out_likelihood(digits):
    X, _ = digits
    search = GridSearchCV(
        VAETransformer(max_epochs=5, random_state=0), {"n_components": [1, 4]}, cv=2
    )
    search.fit(X)
    scores = search.cv_results_["mean_test_score"]
    assert np.all(np.isfinite(scores)) and np.all(scores < 0)
    assert search.best_params_["n_components"] == [1, 4][int(np.argmax(scores))]
    # The refit model is scored with the same method.
    assert search.score(X) == pytest.approx(search.best_estimator_.score(X))


def test_default_model_separates_digits_better_than_pca(digits):
    from sklearn.decomposition import PCA

    X, y = digits
    X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)

    def knn_accuracy(reducer):
        reducer.fit(X_train)
        knn = KNeighborsClassifier(5).fit(reducer.transform(X_train), y_train)
        return knn.score(reducer.transform(X_test), y_test)

    assert knn_accuracy(VAETransformer(random_state=0)) > knn_accuracy(PCA(2))


def test_clone_keeps_parameters_and_drops_the_fit(fitted_vae):
    cloned = clone(fitted_vae)
    assert cloned.get_params() == fitted_vae.get_params()
    assert not hasattr(cloned, "net_")


@pytest.mark.parametrize(
    "dumps, loads",
    [
        (pickle.dumps, pickle.loads),
        (
            lambda est: (joblib.dump(est, buf := io.BytesIO()), buf.getvalue())[1],
            lambda data: joblib.load(io.BytesIO(data)),
        ),
    ],
)
def test_pickle_and_joblib_round_trips(fitted_vae, digits, dumps, loads):
    X, _ = digits
    restored = loads(dumps(fitted_vae))
    assert_array_equal(restored.transform(X), fitted_vae.transform(X))
    assert_array_equal(restored.score_samples(X), fitted_vae.score_samples(X))
    assert_array_equal(
        restored.sample(5, random_state=0), fitted_vae.sample(5, random_state=0)
    )
    restored.partial_fit(X)  # still trainable
    assert restored.n_iter_ == fitted_vae.n_iter_ + 1


# ------------------------------------------------------- reproducibility
def test_same_random_state_gives_the_same_model(digits):
    X, _ = digits
    a = VAETransformer(max_epochs=3, random_state=42).fit(X).transform(X)
    b = VAETransformer(max_epochs=3, random_state=42).fit(X).transform(X)
    c = VAETransformer(max_epochs=3, random_state=7).fit(X).transform(X)
    assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_fit_is_the_plain_pytorch_training_loop(digits):
    # fit must train exactly as the textbook loop does: same data (float32,
    # unchanged), a fresh randperm per epoch, every row once (the last batch
    # partial), the batch-mean negative ELBO, Adam with PyTorch's defaults apart
    # from the learning rate, and no state restored or training stopped behind
    # the user's back. Starting the loop from fit's initial weights and random
    # state, it must end with fit's weights.
    X, _ = digits
    # Grey levels finer than float16's, 3 batches per epoch (the last of 44 rows).
    X = X[:300] * 0.9 + np.random.RandomState(0).rand(300, 64) * 0.1
    start = {}

    class GrabStart(Callback):
        def on_train_begin(self, net, **kwargs):
            start["weights"] = copy.deepcopy(net.module_.state_dict())
            start["rng"] = torch.get_rng_state()

    epochs = 4
    vae = VAETransformer(
        max_epochs=epochs,
        n_iter_no_change=epochs,
        batch_size=128,
        learning_rate=1e-3,
        callbacks=[GrabStart()],
        random_state=0,
    ).fit(X)

    model = VAEModule(X.shape[1])
    model.load_state_dict(start["weights"])
    fused = supports_fused(torch.optim.Adam, "cpu") or None
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, fused=fused)
    rows = torch.from_numpy(X.astype(np.float32))
    with torch.random.fork_rng():
        torch.set_rng_state(start["rng"])
        for _ in range(epochs):
            order = torch.randperm(len(rows))
            for i in range(0, len(rows), 128):
                x = rows[order[i : i + 128]]
                optimizer.zero_grad()
                out = model(x)
                bce = F.binary_cross_entropy_with_logits(
                    out.x_params, x, reduction="none"
                ).sum(dim=1)
                kl = 0.5 * (
                    out.z_mean.square() + out.z_logvar.exp() - 1 - out.z_logvar
                ).sum(dim=1)
                (bce + kl).mean().backward()
                optimizer.step()

    assert vae.n_iter_ == epochs
    settings = ("lr", "betas", "eps", "weight_decay", "amsgrad", "maximize")
    for key in settings:
        assert vae.net_.optimizer_.defaults[key] == optimizer.defaults[key], key
    expected = model.state_dict()
    for name, value in vae.net_.module_.state_dict().items():
        torch.testing.assert_close(value, expected[name], msg=name)


def test_fit_leaves_the_global_random_state_alone(digits):
    X, _ = digits
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    VAETransformer(max_epochs=1, random_state=0).fit(X)
    assert torch.equal(torch.rand(3), expected)


# ------------------------------------------------------------------ device
def test_auto_device_falls_back_to_the_cpu(binary, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    X, _ = binary
    vae = VAETransformer(device="auto", max_epochs=1).fit(X)
    assert vae.net_.device == "cpu"
    assert isinstance(vae.transform(X), np.ndarray)


@pytest.mark.parametrize("device", ["cuda", "cuda:1"])
def test_missing_cuda_device_is_a_clear_error(binary, monkeypatch, device):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    X, _ = binary
    with pytest.raises(ValueError, match="no CUDA device.*device='auto'"):
        VAETransformer(device=device).fit(X)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_trains_and_infers_on_the_gpu(digits):
    X, _ = digits
    vae = VAETransformer(device="cuda", max_epochs=3, random_state=0).fit(X)
    assert next(vae.net_.module_.parameters()).is_cuda
    Z = vae.transform(X)
    assert isinstance(Z, np.ndarray) and Z.shape == (len(X), 2)
    assert isinstance(vae.sample(4, random_state=0), np.ndarray)
    assert np.isfinite(vae.score(X))
    restored = pickle.loads(pickle.dumps(vae))
    assert_allclose(restored.transform(X), Z)


# ------------------------------------------------------------- verbosity
def test_verbose_prints_the_loss_per_epoch(binary, capsys):
    X, _ = binary
    VAETransformer(max_epochs=3, verbose=1).fit(X)
    captured = capsys.readouterr()
    out = captured.out
    assert "train_loss" in out and "train_kl" in out
    # All on stdout, and no bar or colours as it is not a terminal.
    assert captured.err == "" and "\r" not in out and "\x1b[" not in out
    assert len([line for line in out.splitlines() if line.strip()[:1].isdigit()]) == 3


def test_silent_by_default(binary, capsys):
    X, _ = binary
    VAETransformer(max_epochs=3, early_stopping=True, n_iter_no_change=1).fit(X)
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


# -------------------------------------------------------- training controls
def test_early_stopping_restores_the_best_held_out_epoch(digits):
    from skorch.callbacks import Callback

    class RecordWeights(Callback):
        def initialize(self):
            self.weights = {}
            return self

        def on_epoch_end(self, net, **kwargs):
            state = net.module_.state_dict()
            self.weights[len(net.history)] = {k: v.clone() for k, v in state.items()}

    X, _ = digits
    recorder = RecordWeights()
    vae = VAETransformer(
        max_epochs=60,
        early_stopping=True,
        n_iter_no_change=2,
        tol=0.0,
        learning_rate=0.01,
        callbacks=[recorder],
        random_state=0,
    ).fit(X)
    assert vae.n_iter_ < 60
    assert len(vae.validation_scores_) == vae.n_iter_
    assert vae.best_epoch_ == int(np.argmax(vae.validation_scores_)) + 1
    assert vae.best_epoch_ < vae.n_iter_
    best = recorder.weights[vae.best_epoch_]
    for name, value in vae.net_.module_.state_dict().items():
        assert torch.equal(value, best[name]), name


def test_kl_warmup_starts_from_a_pure_reconstruction_loss(digits):
    X, _ = digits
    vae = VAETransformer(max_epochs=3, kl_warmup_epochs=2, random_state=0).fit(X)
    history = vae.history_
    # Epoch 1 has KL weight 0, epoch 2 weight 1/2, epoch 3 the full weight.
    for epoch, weight in enumerate([0.0, 0.5, 1.0]):
        expected = (
            history[epoch, "train_reconstruction"] + weight * history[epoch, "train_kl"]
        )
        assert history[epoch, "train_loss"] == pytest.approx(expected, rel=1e-4)


def test_the_validation_loss_has_the_full_kl_weight_during_warm_up(digits):
    X, _ = digits
    vae = VAETransformer(
        max_epochs=3,
        kl_warmup_epochs=2,
        beta=2.0,
        early_stopping=True,
        n_iter_no_change=5,
        random_state=0,
    ).fit(X[:300])
    history = vae.history_
    for epoch, warmup in enumerate([0.0, 0.5, 1.0]):
        train = history[epoch, "train_reconstruction"] + (
            2.0 * warmup * history[epoch, "train_kl"]
        )
        assert history[epoch, "train_loss"] == pytest.approx(train, rel=1e-5)
        # The held-out loss is always the beta-weighted bound, so that
        # epochs of a warm-up and after it compare on one scale.
        valid = history[epoch, "valid_reconstruction"] + (
            2.0 * history[epoch, "valid_kl"]
        )
        assert history[epoch, "valid_loss"] == pytest.approx(valid, rel=1e-5)


def test_beta_weights_the_kl_term(digits):
    X, _ = digits
    vae = VAETransformer(max_epochs=2, beta=4.0, random_state=0).fit(X)
    history = vae.history_
    expected = history[-1, "train_reconstruction"] + 4.0 * history[-1, "train_kl"]
    assert history[-1, "train_loss"] == pytest.approx(expected, rel=1e-4)


def test_extra_skorch_callbacks_are_used(binary):
    from skorch.callbacks import LRScheduler

    X, _ = binary
    scheduler = LRScheduler(policy="StepLR", step_size=1, gamma=0.5)
    vae = VAETransformer(max_epochs=3, callbacks=[scheduler]).fit(X)
    assert vae.net_.optimizer_.param_groups[0]["lr"] == pytest.approx(1e-3 / 8)


def test_gradient_clipping_through_a_skorch_callback(binary):
    from skorch.callbacks import GradientNormClipping

    X, _ = binary
    clipper = GradientNormClipping(gradient_clip_value=1e-3)
    clipped = VAETransformer(max_epochs=2, callbacks=[clipper], random_state=0).fit(X)
    unclipped = VAETransformer(max_epochs=2, random_state=0).fit(X)
    assert not np.allclose(clipped.transform(X), unclipped.transform(X))
    assert clipped.loss_curve_[-1] > unclipped.loss_curve_[-1]  # tiny steps


@pytest.mark.parametrize(
    "optimizer, cls",
    [
        ("adam", torch.optim.Adam),
        ("adamw", torch.optim.AdamW),
        ("rmsprop", torch.optim.RMSprop),
        ("sgd", torch.optim.SGD),
    ],
)
def test_optimizer_choice(binary, optimizer, cls):
    X, _ = binary
    vae = VAETransformer(
        optimizer=optimizer, learning_rate=0.01, weight_decay=1e-4, max_epochs=1
    ).fit(X)
    assert type(vae.net_.optimizer_) is cls
    # The fused kernels are used wherever this PyTorch offers them.
    fused = vae.net_.optimizer_.param_groups[0].get("fused")
    assert bool(fused) == supports_fused(cls, "cpu")
    assert vae.net_.optimizer_.param_groups[0]["weight_decay"] == 1e-4


# ------------------------------------------------------ parameter checks
@pytest.mark.parametrize(
    "params, match",
    [
        ({"n_components": 0}, "n_components"),
        ({"n_components": 2.5}, "n_components"),
        ({"hidden_layer_sizes": ()}, "hidden_layer_sizes"),
        ({"hidden_layer_sizes": (8, -1)}, "hidden_layer_sizes"),
        ({"hidden_layer_sizes": (8, 0.5)}, "hidden_layer_sizes"),
        ({"hidden_layer_sizes": 0}, "hidden_layer_sizes"),
        ({"activation": "softmax"}, "activation"),
        ({"likelihood": "poisson-ish"}, "likelihood"),
        ({"beta": -1.0}, "beta"),
        ({"kl_warmup_epochs": -1}, "kl_warmup_epochs"),
        ({"max_epochs": 0}, "max_epochs"),
        ({"batch_size": 0}, "batch_size"),
        ({"learning_rate": 0.0}, "learning_rate"),
        ({"learning_rate": -1e-3}, "learning_rate"),
        ({"optimizer": "lbfgs"}, "optimizer"),
        ({"weight_decay": -0.1}, "weight_decay"),
        ({"early_stopping": "yes"}, "early_stopping"),
        ({"validation_fraction": 0.0}, "validation_fraction"),
        ({"validation_fraction": 1.0}, "validation_fraction"),
        ({"n_iter_no_change": 0}, "n_iter_no_change"),
        ({"tol": -1.0}, "tol"),
        ({"n_score_samples": 0}, "n_score_samples"),
        ({"device": "tpu"}, "device"),
        ({"device": "cuda:x"}, "device"),
        ({"device": 0}, "device"),
        ({"callbacks": "print"}, "callbacks"),
        ({"random_state": "seed"}, "random_state"),
        ({"verbose": -1}, "verbose"),
    ],
)
def test_bad_parameters_raise_before_training(binary, params, match):
    X, _ = binary
    with pytest.raises(ValueError, match=match):
        VAETransformer(**params).fit(X)


# ------------------------------------------------------- custom networks
class ConvEncoder(torch.nn.Module):
    def __init__(self, n_components):
        super().__init__()
        self.conv = torch.nn.Sequential(
            torch.nn.Unflatten(1, (1, 8, 8)),
            torch.nn.Conv2d(1, 8, 3, stride=2, padding=1),
            torch.nn.ReLU(),
            torch.nn.Flatten(),
        )
        self.head = torch.nn.Linear(8 * 4 * 4, 2 * n_components)

    def forward(self, x):
        return self.head(self.conv(x)).chunk(2, dim=-1)


class ConvVAE(VAEModule):
    def __init__(self, n_features, n_components=2, **kwargs):
        super().__init__(n_features, n_components, **kwargs)
        self.encoder = ConvEncoder(n_components)


def test_a_custom_module_plugs_into_the_estimator(digits, tmp_path):
    X, _ = digits
    vae = VAETransformer(module=ConvVAE, max_epochs=5, random_state=0).fit(X)
    assert isinstance(vae.net_.module_.encoder, ConvEncoder)
    assert vae.loss_curve_[-1] < vae.loss_curve_[0]
    assert vae.transform(X).shape == (len(X), 2)
    vae.save(tmp_path / "conv.safetensors")
    with pytest.raises(ValueError, match="module=ConvVAE"):
        VAETransformer.load(tmp_path / "conv.safetensors")
    loaded = VAETransformer.load(tmp_path / "conv.safetensors", module=ConvVAE)
    assert_array_equal(loaded.transform(X), vae.transform(X))
    with pytest.raises(ValueError, match="does not match"):
        VAETransformer.load(tmp_path / "conv.safetensors", module=VAEModule)


class OneTooWide(VAEModule):
    def __init__(self, n_features, n_components=2, **kwargs):
        super().__init__(n_features, n_components, **kwargs)
        self.decoder = torch.nn.Linear(n_components, n_features + 1)


@pytest.mark.parametrize(
    "estimator, expected",
    # The imputer's heteroscedastic Gaussian has a mean and a scale per feature.
    [(VAETransformer(module=OneTooWide), 8), (VAEImputer(module=OneTooWide), 16)],
)
def test_a_decoder_of_the_wrong_width_is_refused_before_training(
    binary, estimator, expected
):
    X = binary[0][:, :8] * 2.0  # not in [0, 1]: Gaussian columns
    with pytest.raises(ValueError) as info:
        estimator.set_params(max_epochs=2).fit(X)
    assert str(info.value) == (
        f"The decoder of module=OneTooWide outputs 9 values per code, but its "
        f"likelihood takes {expected} (likelihood.n_params, for 8 features). End "
        "the decoder with a layer of self.likelihood.n_params outputs."
    )
    assert not hasattr(estimator, "net_")


def test_module_must_be_a_torch_module(binary):
    X, _ = binary
    with pytest.raises(ValueError, match="module must be a torch.nn.Module"):
        VAETransformer(module=dict).fit(X)


# ---------------------------------------------------------- sparse input
@pytest.mark.parametrize("fmt", ["csr", "csc"])
def test_sparse_input_gives_the_same_model_as_dense(binary, fmt):
    import scipy.sparse as sp

    X, _ = binary
    params = dict(max_epochs=3, batch_size=16, random_state=0)
    dense = VAETransformer(**params).fit(X)
    sparse = VAETransformer(**params).fit(sp.csr_matrix(X).asformat(fmt))
    X_sparse = sp.csr_matrix(X).asformat(fmt)
    assert_allclose(sparse.transform(X_sparse), dense.transform(X), rtol=1e-5)
    assert_allclose(sparse.score_samples(X_sparse), dense.score_samples(X), rtol=1e-5)


def test_sparse_input_is_never_densified_as_a_whole(monkeypatch):
    import scipy.sparse as sp

    X = sp.random(1500, 20000, density=0.001, format="csr", random_state=0)
    X.data[:] = 1.0
    densified = []
    original = sp.csr_matrix.toarray

    def recording_toarray(self, *args, **kwargs):
        densified.append(self.shape[0])
        return original(self, *args, **kwargs)

    monkeypatch.setattr(sp.csr_matrix, "toarray", recording_toarray)
    vae = VAETransformer(
        hidden_layer_sizes=(8,), max_epochs=1, batch_size=100, random_state=0
    ).fit(X)
    assert densified and max(densified) == 100  # training batches
    densified.clear()
    vae.transform(X), vae.score_samples(X)
    assert densified and max(densified) < X.shape[0]  # inference batches


# -------------------------------------------------------- missing values
@pytest.fixture(scope="module")
def low_rank_with_gaps():
    """Correlated real data (rank 2 plus noise) with 20 % of entries removed."""
    rng = np.random.RandomState(0)
    X = rng.randn(300, 2) @ rng.randn(2, 8) + 0.1 * rng.randn(300, 8)
    X = StandardScaler().fit_transform(X)
    gaps = rng.rand(*X.shape) < 0.2
    return X, np.where(gaps, np.nan, X), gaps


def test_missing_values_train_encode_and_impute(low_rank_with_gaps):
    X, X_gaps, gaps = low_rank_with_gaps
    vae = VAETransformer(
        likelihood="gaussian",
        missing_values=np.nan,
        hidden_layer_sizes=(32,),
        max_epochs=150,
        random_state=0,
    ).fit(X_gaps)
    assert vae.__sklearn_tags__().input_tags.allow_nan
    Z = vae.transform(X_gaps)
    assert Z.shape == (300, 2) and np.all(np.isfinite(Z))
    assert np.all(np.isfinite(vae.score_samples(X_gaps)))
    filled = vae.inverse_transform(Z)
    assert not np.isnan(filled).any()
    imputed = np.where(gaps, filled, X_gaps)
    vae_rmse = np.sqrt(np.mean((imputed[gaps] - X[gaps]) ** 2))
    mean_rmse = np.sqrt(np.mean(X[gaps] ** 2))  # standardised: the mean is 0
    assert vae_rmse < 0.6 * mean_rmse


def test_missing_entries_do_not_enter_the_likelihood(low_rank_with_gaps):
    _, X_gaps, _ = low_rank_with_gaps
    vae = VAETransformer(
        likelihood="gaussian", missing_values=np.nan, max_epochs=2, random_state=0
    ).fit(X_gaps)
    # One row, with and without an extra gap: the score of the row with the
    # extra gap is that of the observed part only, so it differs.
    row = np.nan_to_num(X_gaps[:1])
    gap = row.copy()
    gap[0, 0] = np.nan
    assert vae.score_samples(gap)[0] != vae.score_samples(row)[0]
    # A fully missing row has probability 1: its estimate is near log 1 = 0
    # (an importance-weighted estimate of it, so not exactly), and it encodes.
    empty = np.full((1, 8), np.nan)
    assert abs(vae.score_samples(empty)[0]) < 0.5
    assert np.all(np.isfinite(vae.transform(empty)))


def test_nan_without_missing_values_is_an_error(low_rank_with_gaps):
    _, X_gaps, _ = low_rank_with_gaps
    with pytest.raises(ValueError, match="NaN"):
        VAETransformer(likelihood="gaussian", missing_values=None).fit(X_gaps)


def test_a_numeric_missing_values_marker_marks_gaps(low_rank_with_gaps):
    _, X_gaps, gaps = low_rank_with_gaps
    marked = np.where(gaps, -999.0, X_gaps)
    params = dict(likelihood="gaussian", max_epochs=3, random_state=0)
    with_marker = VAETransformer(missing_values=-999, **params).fit(marked)
    with_nan = VAETransformer(**params).fit(X_gaps)
    assert_array_equal(with_marker.transform(marked), with_nan.transform(X_gaps))
    assert_array_equal(
        with_marker.score_samples(marked), with_nan.score_samples(X_gaps)
    )
    # NaN is not a gap when another marker is chosen, as in scikit-learn.
    with pytest.raises(ValueError, match="NaN"):
        VAETransformer(missing_values=-999, **params).fit(X_gaps)


@pytest.mark.parametrize("marker", [True, "?"])
def test_missing_values_is_a_number_or_none(blobs, marker):
    with pytest.raises(ValueError, match="missing_values"):
        VAETransformer(missing_values=marker).fit(blobs[0])


def test_fit_seeds_only_the_generators_it_restores(binary, monkeypatch):
    # torch.manual_seed would also seed every CUDA device, which fit does not
    # restore; fit must seed the CPU and its own device only.
    seeded_everywhere = []
    monkeypatch.setattr(
        torch.cuda, "manual_seed_all", lambda seed: seeded_everywhere.append(seed)
    )
    X, _ = binary
    state = torch.get_rng_state()
    VAETransformer(max_epochs=2, random_state=0).fit(X)
    assert seeded_everywhere == []
    assert torch.equal(torch.get_rng_state(), state)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_fit_on_the_gpu_leaves_every_device_generator_alone(digits):
    X, _ = digits
    states = [torch.cuda.get_rng_state(i) for i in range(torch.cuda.device_count())]
    cpu_state = torch.get_rng_state()
    VAETransformer(device="cuda", max_epochs=1, random_state=0).fit(X)
    assert torch.equal(torch.get_rng_state(), cpu_state)
    for i, state in enumerate(states):
        assert torch.equal(torch.cuda.get_rng_state(i), state)


@pytest.mark.parametrize("global_seed", [1, 2])
def test_a_fixed_random_state_gives_the_same_model_whatever_the_global_state(
    digits, global_seed
):
    X, _ = digits
    torch.manual_seed(global_seed)
    np.random.seed(global_seed)
    codes = VAETransformer(max_epochs=2, random_state=0).fit(X[:300]).transform(X)
    torch.manual_seed(100)
    np.random.seed(100)
    again = VAETransformer(max_epochs=2, random_state=0).fit(X[:300]).transform(X)
    assert_array_equal(codes, again)
