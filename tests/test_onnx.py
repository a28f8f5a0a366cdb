"""ONNX export: onnxruntime's outputs against the estimators' own."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

pytest.importorskip("onnx")
pytest.importorskip("onnxscript")
ort = pytest.importorskip("onnxruntime")
skl2onnx = pytest.importorskip("skl2onnx")

import torch  # noqa: E402
from skl2onnx.common.data_types import (  # noqa: E402
    DoubleTensorType,
    FloatTensorType,
    Int64TensorType,
)
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import MinMaxScaler  # noqa: E402
from torch import nn  # noqa: E402

from skvae import (  # noqa: E402
    VAEImputer,
    VAEModule,
    VAEOutlierDetector,
    VAETransformer,
    to_onnx,
)
from skvae._likelihoods import Likelihood  # noqa: E402
from skvae._onnx._draws import ndtri, uniform_graph  # noqa: E402
from skvae._utils import row_keyed_normal  # noqa: E402

# onnxruntime and PyTorch run the same float32 network with different
# kernels: a few float32 roundings apart.
RTOL, ATOL = 1e-5, 1e-5


def run(onx, X):
    """All outputs of the ONNX model on X."""
    session = ort.InferenceSession(
        onx.SerializeToString(), providers=["CPUExecutionProvider"]
    )
    return session.run(None, {session.get_inputs()[0].name: X})


def assert_close(actual, expected, rtol=RTOL, atol=ATOL):
    assert actual.dtype == expected.dtype
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol)


def check_transform(vae, X, batch_sizes=(1, 1000)):
    """transform through onnxruntime equals transform, for float32 and
    float64 input, at each batch size."""
    for dtype in (np.float64, np.float32):
        onx = to_onnx(vae, X[:1].astype(dtype))
        for n in batch_sizes:
            rows = np.ascontiguousarray(np.resize(X, (n, X.shape[1])), dtype=dtype)
            (Z,) = run(onx, rows)
            assert Z.shape == (n, vae.n_components)
            assert_close(Z, vae.transform(rows))


def random_data(likelihood, n=400, n_features=6, seed=0):
    rng = np.random.default_rng(seed)
    if likelihood in ("bernoulli", "continuous_bernoulli"):
        return rng.random((n, n_features))
    if likelihood in ("poisson", "negative_binomial"):
        return rng.poisson(rng.gamma(2.0, 2.0, size=(n, n_features))).astype(float)
    return rng.normal(size=(n, n_features)) * [1, 2, 3, 4, 5, 6][:n_features]


# --------------------------------------------------------------------------
# transform
# --------------------------------------------------------------------------
@pytest.mark.parametrize(
    "likelihood",
    ["bernoulli", "continuous_bernoulli", "gaussian", "poisson", "negative_binomial"],
)
def test_transform_matches_for_each_likelihood(likelihood):
    X = random_data(likelihood)
    vae = VAETransformer(
        n_components=3, hidden_layer_sizes=(32,), likelihood=likelihood, max_epochs=3
    )
    vae.set_params(random_state=0).fit(X)
    check_transform(vae, X)


def test_transform_matches_on_digits(digits):
    X, _ = digits
    vae = VAETransformer(n_components=4, max_epochs=3, random_state=0).fit(X)
    assert set(vae.likelihoods_.values()) == {"bernoulli"}
    check_transform(vae, X)


def test_normal_scores_gaps_and_tails():
    """Transformed columns (normal scores of skewed, discrete and constant
    columns), gaps and values beyond the range seen in fit."""
    rng = np.random.default_rng(1)
    n = 500
    X = np.column_stack(
        [
            rng.lognormal(size=n),
            rng.integers(0, 4, size=n).astype(float),  # ties: merged knots
            np.full(n, 3.0),  # constant: one knot
            rng.normal(size=n) * 1e3,
            rng.standard_t(2, size=n),
        ]
    )
    X[rng.random(X.shape) < 0.15] = np.nan
    vae = VAETransformer(n_components=2, hidden_layer_sizes=(16,), max_epochs=3)
    vae.set_params(random_state=0).fit(X)
    assert all(c.transform is not None for c in vae._schema.columns)
    X_new = X * rng.uniform(0.5, 2.0, size=X.shape) + rng.normal(size=X.shape)
    X_new[:5] = X[:5]  # on the knots
    X_new[5] = np.nan  # a row with no observed value
    check_transform(vae, X_new)


def test_numeric_missing_marker_and_no_missing_values():
    X = random_data("gaussian")
    X_gaps = X.copy()
    X_gaps[np.random.default_rng(0).random(X.shape) < 0.2] = -1.0
    vae = VAETransformer(missing_values=-1.0, likelihood="gaussian", max_epochs=2)
    check_transform(vae.set_params(random_state=0).fit(X_gaps), X_gaps)
    vae = VAETransformer(missing_values=None, max_epochs=2, random_state=0).fit(X)
    check_transform(vae, X)


def test_mixed_likelihoods_and_dataframe():
    pd = pytest.importorskip("pandas")
    X = np.column_stack([random_data("bernoulli")[:, :2], random_data("poisson")])
    frame = pd.DataFrame(X, columns=[f"c{i}" for i in range(X.shape[1])])
    likelihood = {"c2": "poisson", "c3": "poisson", "c4": "negative_binomial"}
    vae = VAETransformer(likelihood=likelihood, max_epochs=2, random_state=0)
    vae.fit(frame)
    (Z,) = run(to_onnx(vae, X[:1]), X)  # an array: one input tensor
    assert_close(Z, vae.transform(frame))
    onx = to_onnx(vae, frame[:1])  # a DataFrame: one input per column
    session = ort.InferenceSession(onx.SerializeToString())
    assert [i.name for i in session.get_inputs()] == list(frame.columns)
    (Z,) = session.run(None, {c: frame[[c]].to_numpy() for c in frame.columns})
    assert_close(Z, vae.transform(frame))


class _Encoder(nn.Module):
    def __init__(self, n_features, n_components):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(n_features, 8), nn.Tanh())
        self.mean = nn.Linear(8, n_components)
        self.log_var = nn.Linear(8, n_components)

    def forward(self, x):
        h = self.body(x)
        return self.mean(h), self.log_var(h)


class _CustomVAE(VAEModule):
    def __init__(self, n_features, n_components=2, **kwargs):
        super().__init__(n_features, n_components, **kwargs)
        self.encoder = _Encoder(n_features, n_components)


def test_custom_module():
    X = random_data("bernoulli")
    vae = VAETransformer(module=_CustomVAE, max_epochs=2, random_state=0).fit(X)
    check_transform(vae, X, batch_sizes=(1, 50))


class _ClippedBernoulli(Likelihood):
    """A likelihood of the user's own, not one of skvae's."""

    def log_prob_elements(self, x, params):
        return -nn.functional.binary_cross_entropy_with_logits(
            params, x, reduction="none"
        )

    def mean(self, params):
        return torch.sigmoid(params)

    def sample(self, params, generator=None):
        return torch.bernoulli(torch.sigmoid(params), generator=generator)


class _OwnLikelihoodVAE(VAEModule):
    def __init__(self, n_features, n_components=2, **kwargs):
        kwargs["likelihood"] = _ClippedBernoulli
        super().__init__(n_features, n_components, **kwargs)


def test_score_samples_of_a_likelihood_of_ones_own_is_refused():
    X = random_data("bernoulli")
    vae = VAETransformer(module=_OwnLikelihoodVAE, max_epochs=1, random_state=0)
    vae.fit(X)
    options = {VAETransformer: {"score_samples": True}}
    with pytest.raises(ValueError, match="with the _ClippedBernoulli likelihood"):
        to_onnx(vae, X[:1], options=options)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_model_fitted_on_the_gpu(digits):
    """The export copies the network to the CPU; the model stays on the GPU."""
    X, _ = digits
    vae = VAETransformer(device="cuda", max_epochs=2, random_state=0).fit(X)
    options = {VAETransformer: {"score_samples": True}}
    Z, scores = run(to_onnx(vae, X[:1], options=options), X)
    assert next(vae.net_.module_.parameters()).is_cuda
    assert_close(Z, vae.transform(X), rtol=1e-4, atol=1e-4)
    assert_close(scores[:, 0], vae.score_samples(X), rtol=1e-4, atol=1e-4)


# --------------------------------------------------------------------------
# score_samples, the outlier detector, the imputer
# --------------------------------------------------------------------------
@pytest.mark.parametrize(
    "likelihood, n_score_samples",
    [
        ("bernoulli", 10),
        ("continuous_bernoulli", 10),
        ("gaussian", 10),
        ("gaussian", 1),  # the ELBO, with its closed-form KL term
        ("auto", 10),
        ("poisson", 10),  # lgamma of the counts, from ONNX operators
        ("negative_binomial", 10),
    ],
)
def test_score_samples(likelihood, n_score_samples):
    X = random_data("gaussian" if likelihood == "auto" else likelihood)
    if likelihood == "auto":  # normal scores: the log-slopes join the score
        X = np.exp(X / 3)
        X[np.random.default_rng(0).random(X.shape) < 0.1] = np.nan
    vae = VAETransformer(
        likelihood=likelihood, n_score_samples=n_score_samples, max_epochs=3
    )
    vae.set_params(random_state=0).fit(X)
    options = {VAETransformer: {"score_samples": True}}
    for dtype in (np.float64, np.float32):
        rows = X.astype(dtype)
        onx = to_onnx(vae, rows[:1], options=options)
        for n in (1, len(rows)):
            Z, scores = run(onx, rows[:n])
            assert_close(Z, vae.transform(rows[:n]))
            assert scores.shape == (n, 1)
            assert_close(scores[:, 0], vae.score_samples(rows[:n]))


def test_transform_and_score_samples_share_one_encoder():
    """The graph holds the encoder's weights once, not once per output."""
    from onnx import numpy_helper

    X = random_data("gaussian")
    vae = VAETransformer(likelihood="gaussian", max_epochs=2, random_state=0).fit(X)
    options = {VAETransformer: {"score_samples": True}}
    onx = to_onnx(vae, X[:1].astype(np.float32), options=options)
    first = vae.net_.module_.encoder.hidden[0].weight.detach().numpy()
    arrays = [numpy_helper.to_array(t) for t in onx.graph.initializer]
    copies = [
        a for a in arrays if np.array_equal(a, first) or np.array_equal(a, first.T)
    ]
    assert len(copies) == 1


def test_lgamma_accuracy():
    """The ONNX lgamma equals scipy's to 1e-6 relative over the range counts
    and dispersions take (exact zeros at 1 and 2 to 1e-9), and torch's own
    float32 lgamma in float32."""
    from scipy.special import gammaln

    from skvae._onnx._embed import export

    class LogGamma(nn.Module):
        def forward(self, x):
            return torch.lgamma(x)

    x = np.concatenate([np.arange(1.0, 1001.0), np.geomspace(1e-3, 1e6, 500)])
    for dtype in (np.float64, np.float32):
        example = torch.ones(2, dtype=torch.float64 if dtype == np.float64 else None)
        model = export(LogGamma(), (example,), ["x"], ["y"], 18)
        session = ort.InferenceSession(model.SerializeToString())
        (y,) = session.run(None, {"x": x.astype(dtype)})
        if dtype == np.float64:
            np.testing.assert_allclose(y, gammaln(x), rtol=1e-6, atol=1e-9)
        else:
            expected = torch.lgamma(torch.from_numpy(x.astype(dtype))).numpy()
            np.testing.assert_allclose(y, expected, rtol=1e-6, atol=1e-6)


def test_outlier_detector():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 5))
    X_new = np.vstack([rng.normal(size=(995, 5)), rng.normal(size=(5, 5)) * 6])
    detector = VAEOutlierDetector(contamination=0.1, max_epochs=5, random_state=0)
    detector.fit(X)
    # The graph holds the local view: the training codes, of which a
    # training row is not its own neighbour.
    assert detector.n_neighbors_ == 20
    X_new = np.vstack([X_new, X[:100]])
    detector.set_params(n_score_samples=3)  # the threshold keeps the draws of fit
    options = {VAEOutlierDetector: {"score_samples": True}}
    for dtype in (np.float64, np.float32):
        rows = X_new.astype(dtype)
        label, scores, samples = run(to_onnx(detector, rows[:1], options=options), rows)
        assert label.dtype == np.int64 and label.shape == (len(rows), 1)
        np.testing.assert_array_equal(label[:, 0], detector.predict(rows))
        assert_close(scores[:, 0], detector.decision_function(rows))
        assert_close(samples[:, 0], detector.score_samples(rows))
    # Without the option: label and scores, as skl2onnx writes IsolationForest.
    assert len(run(to_onnx(detector, X[:1]), X)) == 2


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.filterwarnings("ignore:Skipping features without any observed values")
def test_imputer(dtype):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 5)) @ rng.normal(size=(5, 5))
    X[rng.random(X.shape) < 0.2] = np.nan
    X[:, 4] = np.nan  # no observed value: dropped, or kept as zeros
    X_new = rng.normal(size=(1000, 5)) @ rng.normal(size=(5, 5))
    X_new[rng.random(X_new.shape) < 0.2] = np.nan
    for params in (
        dict(add_indicator=True),
        dict(keep_empty_features=True),
    ):
        imputer = VAEImputer(n_impute_samples=50, max_epochs=5, random_state=0)
        imputer.set_params(**params).fit(X.astype(dtype))
        rows = X_new.astype(dtype)
        onx = to_onnx(imputer, rows[:1])
        for n in (1, 1000):
            (filled,) = run(onx, rows[:n])
            assert_close(filled, imputer.transform(rows[:n]), rtol=1e-4)


def test_imputer_with_donors():
    # Groups of rows that repeat exactly: the donors fill the gaps of column
    # 0 (weight 1), in the graph as in transform.
    rng = np.random.default_rng(0)
    X = np.repeat(rng.normal(size=(30, 3)).round(2), 6, axis=0)
    X = np.column_stack([X, rng.normal(size=len(X)).round(2)])
    X[rng.random(len(X)) < 0.2, 0] = np.nan
    imputer = VAEImputer(n_impute_samples=20, max_epochs=20, random_state=0).fit(X)
    assert imputer.donor_weights_[0] == 1.0
    (filled,) = run(to_onnx(imputer, X[:1]), X)
    assert_close(filled, imputer.transform(X), rtol=1e-4)


def test_imputer_with_the_linear_readout():
    # Column 3 is the sum of the others: the read-out fills its gaps, in the
    # graph as in transform.
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 3))
    X = np.column_stack([X, X.sum(axis=1)])
    X[rng.random(len(X)) < 0.2, 3] = np.nan
    imputer = VAEImputer(n_impute_samples=20, max_epochs=20, random_state=0).fit(X)
    assert imputer.linear_weights_[3] > 0
    (filled,) = run(to_onnx(imputer, X[:1]), X)
    assert_close(filled, imputer.transform(X), rtol=1e-4)


def test_imputer_rounds_to_the_decimals_of_fit():
    # Columns recorded to 1 or 2 decimals get fills at that precision.
    rng = np.random.default_rng(1)
    X = rng.normal(size=(300, 3)) @ rng.normal(size=(3, 3))
    X = np.column_stack([np.round(X[:, 0], 1), np.round(X[:, 1], 2), X[:, 2]])
    X[rng.random(X.shape) < 0.2] = np.nan
    imputer = VAEImputer(n_impute_samples=20, max_epochs=5, random_state=0).fit(X)
    assert [c.decimals for c in imputer._schema.columns] == [1, 2, None]
    (filled,) = run(to_onnx(imputer, X[:1]), X)
    expected = imputer.transform(X)
    assert_close(filled, expected, rtol=1e-4)
    assert_close(np.round(filled[:, 0], 1), filled[:, 0], rtol=0, atol=0)
    assert_close(np.round(filled[:, 1], 2), filled[:, 1], rtol=0, atol=0)


def test_imputer_fitted_on_a_dataframe():
    # Integer and float32 columns: the graph takes the table's values as one
    # float array and gives back what transform gives the DataFrame.
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(2)
    values = rng.normal(size=(300, 3)) @ rng.normal(size=(3, 3))
    frame = pd.DataFrame(
        {
            "count": pd.array(np.round(5 * np.abs(values[:, 0])), dtype="Int64"),
            "size": values[:, 1].astype(np.float32),
            "x": values[:, 2],
        }
    )
    gaps = rng.random(frame.shape) < 0.2
    frame = frame.mask(gaps)
    imputer = VAEImputer(n_impute_samples=20, max_epochs=5, random_state=0).fit(frame)
    X = frame.to_numpy(dtype=np.float64, na_value=np.nan)
    (filled,) = run(to_onnx(imputer, X[:1]), X)
    expected = imputer.transform(frame).to_numpy(dtype=np.float64)
    assert_close(filled, expected, rtol=1e-4)
    assert_close(filled[~gaps], X[~gaps], rtol=0, atol=0)


def test_imputer_with_normal_scores_decodes_levels_and_splines_in_the_graph():
    # The graph inverts the columns' maps with decode_numeric, as transform
    # does: here the cubic normal-score maps and the levels of an integer
    # column, which VAEImputer's standardised columns do not use.
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(3)
    frame = pd.DataFrame(
        {
            "rooms": pd.array(rng.integers(1, 6, size=200), dtype="Int64"),
            "price": rng.lognormal(size=200),
        }
    )
    gaps = rng.random(frame.shape) < 0.2
    frame = frame.mask(gaps)
    imputer = VAEImputer(n_impute_samples=10, max_epochs=3, random_state=0)
    imputer._numeric_transform = "normal_scores"
    imputer.fit(frame)
    X = frame.to_numpy(dtype=np.float64, na_value=np.nan)
    (filled,) = run(to_onnx(imputer, X[:1]), X)
    expected = imputer.transform(frame).to_numpy(dtype=np.float64)
    assert set(filled[gaps[:, 0], 0]) <= set(range(1, 6))
    assert_close(filled, expected, rtol=1e-4)


def test_imputer_missing_marker_and_counts():
    rng = np.random.default_rng(0)
    X = rng.poisson(3.0, size=(300, 4)).astype(float)
    X[rng.random(X.shape) < 0.2] = -1
    imputer = VAEImputer(
        missing_values=-1,
        likelihood="poisson",
        n_impute_samples=30,
        max_epochs=5,
        random_state=0,
    ).fit(X)
    (filled,) = run(to_onnx(imputer, X[:1]), X)
    assert_close(filled, imputer.transform(X), rtol=1e-4)


def test_draws_equal_row_keyed_normal():
    """The ONNX hashing and the AS241 inverse CDF give skvae's draws,
    bit for bit, also for zeros, -0.0, subnormals and extreme values."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(500, 5)).astype(np.float32)
    X *= np.float32(10.0) ** rng.integers(-44, 38, size=X.shape).astype(np.float32)
    special = [0.0, -0.0, 1.0, -2.0, 0.5, 2**-126, 2**-149, -(2**-140), 3.4e38]
    X[: len(special), 0] = special
    n_draws, n_dims, seed = 4, 3, 2024
    model = uniform_graph(X.shape[1], n_draws * n_dims, seed, 18)
    (u,) = run(model, X)
    eps = ndtri(torch.from_numpy(u)).to(torch.float32)
    eps = eps.reshape(len(X), n_draws, n_dims).transpose(0, 1)
    expected = row_keyed_normal(torch.from_numpy(X), n_draws, n_dims, seed)
    assert torch.equal(eps, expected)


def test_ndtri_accuracy():
    p = torch.from_numpy(np.r_[np.linspace(1e-12, 1 - 1e-12, 10001), 2.0**-54])
    expected = torch.special.ndtri(p)
    error = (ndtri(p) - expected).abs() / expected.abs().clamp(min=1e-300)
    assert error.max() < 1e-13


# --------------------------------------------------------------------------
# Pipelines, and running without PyTorch
# --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def digits_pipeline(digits):
    X, y = digits
    X = X * 16.0  # raw grey levels: the scaler is part of the pipeline
    pipeline = make_pipeline(
        MinMaxScaler(),
        VAETransformer(n_components=8, max_epochs=10, random_state=0),
        LogisticRegression(max_iter=1000),
    )
    return pipeline.fit(X, y), X, y


def test_pipeline_with_skl2onnx(digits_pipeline):
    """skl2onnx.to_onnx converts the pipeline as it is: no registration."""
    pipeline, X, _ = digits_pipeline
    X = X.astype(np.float32)
    onx = skl2onnx.to_onnx(pipeline, X[:1])
    for n in (1, 1000):
        label, _ = run(onx, X[:n])
        np.testing.assert_array_equal(label, pipeline.predict(X[:n]))


def test_skl2onnx_without_registration():
    """In a fresh process, skl2onnx converts through the estimators' hooks."""
    script = textwrap.dedent(
        """
        import numpy as np, onnxruntime as ort, skl2onnx
        from skvae import VAETransformer
        X = np.random.default_rng(0).random((50, 4)).astype(np.float32)
        vae = VAETransformer(max_epochs=1, random_state=0).fit(X)
        onx = skl2onnx.to_onnx(vae, X[:1])
        session = ort.InferenceSession(onx.SerializeToString())
        (Z,) = session.run(None, {session.get_inputs()[0].name: X})
        np.testing.assert_allclose(Z, vae.transform(X), rtol=1e-5, atol=1e-5)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr


def test_pipeline_float64(digits_pipeline):
    pipeline, X, _ = digits_pipeline
    options = {LogisticRegression: {"zipmap": False}}  # ZipMap takes float only
    label, probabilities = run(to_onnx(pipeline, X[:1], options=options), X)
    np.testing.assert_array_equal(label, pipeline.predict(X))
    assert_close(probabilities, pipeline.predict_proba(X))


def test_runs_without_torch(digits_pipeline, tmp_path):
    """The exported graph runs with onnxruntime alone: in a process where
    importing torch (or skvae) fails."""
    pipeline, X, _ = digits_pipeline
    X = X[:200].astype(np.float32)
    vae = pipeline[1]
    models = {
        "pipeline": skl2onnx.to_onnx(pipeline, X[:1]),
        "transformer": to_onnx(vae, X[:1] / 16.0),
    }
    for name, onx in models.items():
        (tmp_path / f"{name}.onnx").write_bytes(onx.SerializeToString())
    np.save(tmp_path / "X.npy", X)
    script = textwrap.dedent(
        """
        import json, sys
        sys.modules["torch"] = None  # import torch raises ImportError
        sys.modules["skvae"] = None
        import numpy as np
        import onnxruntime as ort
        try:
            import torch  # noqa: F401
        except ImportError:
            pass
        else:
            raise SystemExit("torch is importable")
        X = np.load("X.npy")
        out = {}
        for name, rows in (("pipeline", X), ("transformer", X / np.float32(16))):
            session = ort.InferenceSession(name + ".onnx")
            first = session.run(None, {session.get_inputs()[0].name: rows})[0]
            out[name] = first.tolist()
        print(json.dumps(out))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONNOUSERSITE": "1"},
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    np.testing.assert_array_equal(out["pipeline"], pipeline.predict(X))
    Z = np.asarray(out["transformer"], dtype=np.float32)
    assert_close(Z, vae.transform(X / np.float32(16)))


# --------------------------------------------------------------------------
# Clear errors at conversion
# --------------------------------------------------------------------------
def test_categorical_columns_are_refused():
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"a": np.arange(40.0), "b": ["x", "y"] * 20})
    vae = VAETransformer(max_epochs=1, random_state=0).fit(frame)
    with pytest.raises(ValueError, match="categorical"):
        to_onnx(vae, initial_types=[("X", FloatTensorType([None, 2]))])


def test_sample_posterior_is_refused():
    X = random_data("gaussian")
    X[::3, 0] = np.nan
    imputer = VAEImputer(sample_posterior=True, max_epochs=1, random_state=0).fit(X)
    with pytest.raises(ValueError, match="sample_posterior"):
        to_onnx(imputer, X[:1])


def test_input_type_and_opset_are_checked(fitted_vae):
    with pytest.raises(ValueError, match="float or double"):
        to_onnx(fitted_vae, initial_types=[("X", Int64TensorType([None, 64]))])
    with pytest.raises(ValueError, match="fitted on 64 features"):
        to_onnx(fitted_vae, initial_types=[("X", DoubleTensorType([None, 3]))])
    with pytest.raises(ValueError, match="target_opset >= 18"):
        to_onnx(fitted_vae, np.zeros((1, 64)), target_opset=17)


def test_unfitted_is_refused():
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        to_onnx(VAETransformer(), np.zeros((1, 3)))


def test_skvae_imports_without_onnx():
    script = textwrap.dedent(
        """
        import sys
        for name in ("onnx", "onnxruntime", "skl2onnx", "onnxscript"):
            sys.modules[name] = None
        import skvae
        try:
            skvae.to_onnx(skvae.VAETransformer(), None)
        except ImportError as exc:
            assert "skvae[onnx]" in str(exc), exc
        else:
            raise SystemExit("no ImportError")
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
