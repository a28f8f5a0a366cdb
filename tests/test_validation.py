"""Bad input gives a clear error before training; nothing fails silently."""

import threading
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from numpy.testing import assert_array_equal
from sklearn.exceptions import NotFittedError
from skorch.callbacks import Callback

from skvae import VAETransformer

rng = np.random.RandomState(0)
GOOD = rng.rand(20, 4)

# (name, X, parameters, exception, message pattern): fit() must raise this,
# naming the fix.
NO_GAPS = {"missing_values": None}
AS_GIVEN = {"likelihood": "gaussian"}
BAD_TRAINING_DATA = [
    ("nan", np.where(GOOD > 0.9, np.nan, GOOD), NO_GAPS, ValueError, "NaN"),
    ("inf", np.where(GOOD > 0.9, np.inf, GOOD), {}, ValueError, "infinity"),
    (
        "strings",
        np.array([["a", "b"], ["c", "d"]]),
        {},
        ValueError,
        "convert string.*DataFrame.*categorical",
    ),
    ("objects", np.array([[{}, 1.0]], dtype=object), {}, TypeError, "dict"),
    ("complex", GOOD + 1j, {}, ValueError, "Complex data not supported"),
    ("1-d", GOOD[:, 0], {}, ValueError, "(?s)Expected 2D array.*reshape"),
    ("3-d", GOOD.reshape(5, 4, 4), {}, ValueError, "dim 3"),
    ("no samples", np.empty((0, 4)), {}, ValueError, "0 sample"),
    ("no features", np.empty((5, 0)), {}, ValueError, "0 feature"),
    ("huge", np.full((3, 2), 1e30), AS_GIVEN, ValueError, "Column 0.*Scale it"),
    ("beyond float32", np.full((3, 2), 1e300), AS_GIVEN, ValueError, "Scale it"),
    (
        "sparse with NaN",
        sp.csr_matrix(np.where(GOOD > 0.9, np.nan, GOOD)),
        NO_GAPS,
        ValueError,
        "NaN",
    ),
    (
        "sparse outside [0, 1]",
        sp.csr_matrix(GOOD * 3),
        {},
        ValueError,
        "sparse matrix.*explicit likelihood.*'gaussian'",
    ),
    (
        "outside [0, 1]",
        GOOD * 3,
        {"likelihood": "bernoulli"},
        ValueError,
        "Column 0.*MinMaxScaler",
    ),
    ("list of ragged rows", [[0.1, 0.2], [0.3]], {}, ValueError, "inhomogeneous"),
    (
        "complex column",
        pd.DataFrame({"x": GOOD[:, 0], "z": GOOD[:, 1] + 1j}),
        {},
        ValueError,
        "Column 'z' has dtype complex128.*real and imaginary parts",
    ),
    (
        "integers beyond float64",
        pd.DataFrame({"id": np.array([2**63 + 5, 3] * 10, dtype=np.uint64)}),
        {},
        ValueError,
        r"Column 'id' holds integers as large as 9.223e\+18, beyond 2\*\*53",
    ),
    (
        "no columns",
        pd.DataFrame(index=range(5)),
        {},
        ValueError,
        r"0 feature\(s\) \(shape=\(5, 0\)\)",
    ),
    # NumPy scalars are shown as the numbers they are, not np.int64(7).
    (
        "numpy key",
        GOOD,
        {"likelihood": {np.int64(7): "gaussian"}},
        ValueError,
        "names the column 7, which X does not have",
    ),
    (
        "numpy key of no likelihood",
        GOOD,
        {"likelihood": {np.int64(0): "normal"}},
        ValueError,
        r"likelihood\[0\]='normal' is not a likelihood; use one of \['auto', "
        "'bernoulli', 'categorical', 'continuous",
    ),
]


@pytest.mark.parametrize(
    "X, params, exception, match",
    [case[1:] for case in BAD_TRAINING_DATA],
    ids=[case[0] for case in BAD_TRAINING_DATA],
)
def test_bad_training_data_is_a_clear_error(X, params, exception, match):
    vae = VAETransformer(max_epochs=1, **params)
    with pytest.raises(exception, match=match):
        vae.fit(X)
    assert not hasattr(vae, "net_")


def test_edge_cases_that_are_fine():
    # A single sample, constant columns and a mixed int/float DataFrame train.
    VAETransformer(max_epochs=2).fit(GOOD[:1])
    X = np.column_stack([GOOD, np.zeros(20), np.ones(20)])
    Z = VAETransformer(likelihood="gaussian", max_epochs=2).fit_transform(X)
    assert np.all(np.isfinite(Z))
    df = pd.DataFrame({"a": [0, 1, 1], "b": [0.5, 0.25, 1.0]})
    VAETransformer(max_epochs=1).fit(df)
    # Sparse matrices of any scipy format are accepted (as CSR).
    VAETransformer(max_epochs=1).fit(sp.coo_matrix(GOOD))


def test_complex_columns_at_inference_are_a_clear_error():
    df = pd.DataFrame(GOOD, columns=list("abcd"))
    vae = VAETransformer(max_epochs=1).fit(df)
    with pytest.raises(ValueError, match="Column 'b' has dtype complex128"):
        vae.transform(df.assign(b=df["b"] + 1j))


def test_a_numpy_count_of_samples_is_shown_plainly(fitted):
    with pytest.raises(ValueError, match=r"n_samples must be a positive int, got 0\.$"):
        fitted.sample(np.int64(0))


def test_early_stopping_needs_two_samples():
    with pytest.raises(ValueError, match="validation_fraction"):
        VAETransformer(early_stopping=True).fit(GOOD[:1])


@pytest.fixture(scope="module")
def fitted():
    return VAETransformer(max_epochs=2, random_state=0).fit(GOOD)


@pytest.mark.parametrize(
    "method", ["transform", "inverse_transform", "score_samples", "score", "sample"]
)
def test_methods_need_a_fitted_model(method):
    args = () if method == "sample" else (GOOD,)
    with pytest.raises(NotFittedError):
        getattr(VAETransformer(), method)(*args)


@pytest.mark.parametrize("method", ["transform", "score_samples", "partial_fit"])
def test_wrong_number_of_features(fitted, method):
    with pytest.raises(ValueError, match="X has 3 features.*expecting 4"):
        getattr(fitted, method)(GOOD[:, :3])


def test_wrong_latent_dimension(fitted):
    with pytest.raises(ValueError, match="n_components=2"):
        fitted.inverse_transform(GOOD)


def test_feature_names_must_match_those_seen_in_fit():
    df = pd.DataFrame(GOOD, columns=list("abcd"))
    vae = VAETransformer(max_epochs=1).fit(df)
    with pytest.raises(ValueError, match="feature names should match"):
        vae.transform(df.rename(columns={"a": "z"}))


# ---------------------------------------------------------------- fuzzing
DTYPES = st.sampled_from([np.float64, np.float32, np.int64, np.bool_, np.complex128])
SHAPES = st.tuples(st.integers(0, 4), st.integers(0, 5))
ALLOWED = (ValueError, TypeError)


@st.composite
def inputs(draw):
    dtype = draw(DTYPES)
    shape = draw(SHAPES)
    if dtype is np.bool_:
        elements = st.booleans()
    elif dtype is np.int64:
        elements = st.integers(-3, 3)
    elif dtype is np.complex128:
        elements = st.complex_numbers(max_magnitude=2)
    else:
        elements = st.floats(allow_nan=True, allow_infinity=True, width=32)
    return draw(arrays(dtype, shape, elements=elements))


# scikit-learn's finiteness check sums X first: inf + -inf warns before it
# raises its ValueError.
SUM_OF_INFINITIES = pytest.mark.filterwarnings(
    "ignore:invalid value encountered in reduce:RuntimeWarning"
)
FUZZ = settings(
    deadline=None,
    max_examples=60,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


def _valid(X, n_features=None, unit_interval=False, gaps=False, fit=False):
    """Whether ``X`` is data that the estimator must accept."""
    if X.ndim != 2 or 0 in X.shape or X.dtype.kind == "c":
        return False
    if n_features is not None and X.shape[1] != n_features:
        return False
    values = X.astype(np.float64)
    missing = np.isnan(values) if gaps else np.zeros(values.shape, bool)
    if fit and missing.all(axis=0).any():  # a column with nothing observed
        return False
    observed = values[~missing]
    if not np.all(np.isfinite(observed)):
        return False
    return (
        not unit_interval
        or observed.size == 0
        or (observed.min() >= 0 and observed.max() <= 1)
    )


@SUM_OF_INFINITIES
@FUZZ
@given(
    X=inputs(),
    likelihood=st.sampled_from(["auto", "bernoulli", "gaussian"]),
    missing_values=st.sampled_from([np.nan, None]),
)
def test_fit_on_arbitrary_arrays(X, likelihood, missing_values):
    vae = VAETransformer(
        likelihood=likelihood,
        missing_values=missing_values,
        max_epochs=1,
        random_state=0,
    )
    gaps = missing_values is not None
    if not _valid(X, unit_interval=likelihood == "bernoulli", gaps=gaps, fit=True):
        with pytest.raises(ALLOWED):
            vae.fit(X)
        assert not hasattr(vae, "net_")
        return
    if likelihood == "gaussian" and np.nanmax(np.abs(X.astype(float))) > 1e6:
        # Values modelled as given at this scale are refused, or train until
        # the loss overflows: either way a clear error, never a silent model.
        try:
            scores = vae.fit(X).score_samples(X)
        except (ValueError, FloatingPointError) as exc:
            assert "scale" in str(exc).lower()
        else:
            assert np.all(np.isfinite(scores))
        return
    Z = vae.fit(X).transform(X)  # valid data is accepted
    assert Z.shape == (X.shape[0], 2) and np.all(np.isfinite(Z))
    assert np.all(np.isfinite(vae.score_samples(X)))


@SUM_OF_INFINITIES
@FUZZ
@given(X=inputs())
def test_inference_on_arbitrary_arrays(fitted, X):
    # ``fitted`` models data in [0, 1] with the Bernoulli likelihood, gaps allowed.
    for method, n_features, unit_interval, gaps in [
        (fitted.transform, 4, False, True),
        (fitted.score_samples, 4, True, True),
        (fitted.inverse_transform, 2, False, False),
    ]:
        if not _valid(X, n_features, unit_interval, gaps):
            with pytest.raises(ALLOWED):
                method(X)
            continue
        out = method(X)
        assert len(out) == len(X) and np.all(np.isfinite(out))


@FUZZ
@given(n=st.one_of(st.integers(-2, 50), st.floats(-1, 5), st.text(max_size=2)))
def test_sample_on_arbitrary_counts(fitted, n):
    if not (isinstance(n, int) and n >= 1):
        with pytest.raises(ValueError, match="n_samples"):
            fitted.sample(n, random_state=0)
        return
    out = fitted.sample(n, random_state=0)
    assert out.shape == (n, 4) and np.all(np.isfinite(out))


# ------------------------------------------------------- training gone wrong
class Poison(Callback):
    """Make the loss non-finite from a given epoch on (a diverging run)."""

    def __init__(self, epoch):
        self.epoch = epoch

    def on_batch_begin(self, net, batch=None, training=None, **kwargs):
        if training and len(net.history) >= self.epoch:
            batch[0].fill_(float("nan"))


def test_divergence_in_fit_stops_at_once_and_leaves_the_model_unfitted():
    vae = VAETransformer(max_epochs=5, callbacks=[Poison(epoch=2)])
    with pytest.raises(FloatingPointError, match="epoch 2.*learning_rate.*scale X"):
        vae.fit(GOOD)
    assert not hasattr(vae, "net_") and not hasattr(vae, "n_iter_")


@pytest.mark.parametrize("how", ["fit", "refit", "first partial_fit"])
def test_the_divergence_message_says_the_estimator_is_left_unfitted(how):
    vae = VAETransformer(max_epochs=3, random_state=0)
    if how == "refit":  # a fitted model is not kept either: fit starts afresh
        vae.fit(GOOD)
    vae.set_params(callbacks=[Poison(epoch=1)])
    with pytest.raises(FloatingPointError) as info:
        vae.partial_fit(GOOD) if how == "first partial_fit" else vae.fit(GOOD)
    assert str(info.value).endswith(
        "or pick a likelihood that matches the data. The estimator is left unfitted."
    )
    with pytest.raises(NotFittedError):
        vae.transform(GOOD)


def test_divergence_in_partial_fit_keeps_the_last_good_model():
    X = GOOD.copy()
    vae = VAETransformer(random_state=0).partial_fit(X)
    before = vae.transform(X)
    vae.net_.callbacks_.append(("poison", Poison(epoch=2).initialize()))
    with pytest.raises(FloatingPointError, match="not finite") as info:
        vae.partial_fit(X)
    assert str(info.value).endswith(
        "the data. The model is left as it was before this call."
    )
    assert vae.n_iter_ == 1 and len(vae.loss_curve_) == 1
    assert all(torch.isfinite(p).all() for p in vae.net_.module_.parameters())
    assert_array_equal(vae.transform(X), before)
    assert len(vae.net_.history) == 1


def test_a_huge_learning_rate_is_stopped_with_advice(blobs):
    X, _ = blobs
    vae = VAETransformer(likelihood="gaussian", learning_rate=1e12, max_epochs=50)
    with pytest.raises(FloatingPointError, match="Lower learning_rate"):
        vae.fit(X * 1e6)


class Interrupt(Callback):
    """Press Ctrl-C in the middle of an epoch."""

    def __init__(self, epoch):
        self.epoch = epoch

    def on_epoch_begin(self, net, **kwargs):
        self.batches = 0

    def on_batch_end(self, net, training=None, **kwargs):
        self.batches += bool(training)
        if training and len(net.history) == self.epoch and self.batches == 2:
            raise KeyboardInterrupt


class RecordWeights(Callback):
    def on_train_begin(self, net, **kwargs):
        self.weights = []

    def on_epoch_end(self, net, **kwargs):
        self.weights.append([p.detach().clone() for p in net.module_.parameters()])


def test_ctrl_c_keeps_the_model_of_the_last_completed_epoch(digits):
    X, _ = digits
    recorder = RecordWeights()
    vae = VAETransformer(
        max_epochs=10, batch_size=64, callbacks=[recorder, Interrupt(3)]
    )
    with pytest.warns(UserWarning, match="interrupted during epoch 3"):
        vae.fit(X)
    assert vae.n_iter_ == 2 and len(vae.loss_curve_) == 2
    for now, then in zip(vae.net_.module_.parameters(), recorder.weights[1]):
        assert torch.equal(now, then)
    assert vae.transform(X).shape == (len(X), 2)  # usable


# ------------------------------------------------- determinism, concurrency
def test_inference_does_not_change_the_model(fitted):
    state = {k: v.clone() for k, v in fitted.net_.module_.state_dict().items()}
    fitted.transform(GOOD), fitted.score(GOOD), fitted.sample(3)
    fitted.inverse_transform(GOOD[:, :2])
    for k, v in fitted.net_.module_.state_dict().items():
        assert torch.equal(v, state[k])


def test_transform_from_eight_threads_matches_one_call(digits):
    X, _ = digits
    vae = VAETransformer(max_epochs=2, random_state=0).fit(X)
    expected_z, expected_s = vae.transform(X), vae.score_samples(X)
    barrier = threading.Barrier(8)

    def work(_):
        barrier.wait()
        return vae.transform(X), vae.score_samples(X)

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(work, range(8)))
    for z, s in results:
        assert_array_equal(z, expected_z)
        assert_array_equal(s, expected_s)


def test_no_warnings_on_clean_input(digits):
    X, _ = digits
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        vae = VAETransformer(max_epochs=2, random_state=0).fit(X)
        vae.transform(X), vae.score(X), vae.sample(2), vae.inverse_transform(X[:, :2])


@pytest.mark.parametrize("method", ["transform", "score_samples"])
def test_extreme_values_at_inference_are_a_clear_error(method):
    vae = VAETransformer(likelihood="gaussian", max_epochs=1, random_state=0).fit(GOOD)
    with pytest.raises(ValueError, match="overflowed float32.*Scale X"):
        getattr(vae, method)(np.full((2, 4), 1e300))  # finite, but not in float32


@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("method", ["transform", "score_samples"])
def test_infinity_at_inference_is_refused(fitted, method, sparse):
    # The model takes the rows as they are (Bernoulli on [0, 1]): the one check
    # on their way to the encoder refuses infinity, gaps or not.
    X = GOOD.copy()
    X[1, 2], X[3, 0] = np.inf, np.nan
    X = sp.csr_matrix(X) if sparse else X
    with pytest.raises(ValueError, match="contains infinity"):
        getattr(fitted, method)(X)


@pytest.mark.parametrize(
    "likelihood, value, match",
    [
        ("bernoulli", 1.5, "Column 2: likelihood='bernoulli' needs X in"),
        ("continuous_bernoulli", -0.25, "Column 2.*got values in \\[-0.25, 1\\]"),
        ("poisson", 0.5, "Column 2.*1 non-integer value.*0.5"),
        ("negative_binomial", 0.75, "Column 2.*non-integer value.*0.75"),
    ],
)
def test_a_value_outside_the_support_names_its_column_among_gaps(
    likelihood, value, match
):
    # Column 2 alone leaves the support, with a value inside its range for
    # the counts; column 0 holds gaps, which fit in any.
    X = np.tile([[0.0, 1.0, 1.0, 0.0]], (20, 1))
    X[::3, 0] = np.nan
    X[::2, 2] = 0.0
    X[7, 2] = value
    with pytest.raises(ValueError, match=match):
        VAETransformer(likelihood=likelihood, max_epochs=1).fit(X)
