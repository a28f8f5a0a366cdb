"""save / load: round trips, devices and every kind of bad file."""

import copy
import json
import os

import numpy as np
import pandas as pd
import pytest
import safetensors.torch
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.exceptions import NotFittedError

from skvae import VAETransformer, _persistence


@pytest.fixture
def saved(fitted_vae, tmp_path):
    path = tmp_path / "model.safetensors"
    fitted_vae.save(path)
    return path


def test_round_trip_gives_the_same_model(fitted_vae, saved, digits):
    X, _ = digits
    loaded = VAETransformer.load(saved)
    for name, value in fitted_vae.get_params().items():
        assert _same(value, loaded.get_params()[name]), name
    assert_array_equal(loaded.transform(X), fitted_vae.transform(X))
    assert_array_equal(loaded.score_samples(X), fitted_vae.score_samples(X))
    assert_array_equal(
        loaded.sample(5, random_state=0), fitted_vae.sample(5, random_state=0)
    )
    assert_array_equal(
        loaded.inverse_transform(X[:3, :2]), fitted_vae.inverse_transform(X[:3, :2])
    )
    assert loaded.loss_curve_ == fitted_vae.loss_curve_
    assert loaded.n_iter_ == fitted_vae.n_iter_
    assert len(loaded.history_) == len(fitted_vae.history_)


def test_training_continues_exactly_after_loading(fitted_vae, saved, digits):
    X, _ = digits
    loaded = VAETransformer.load(saved)
    original = copy.deepcopy(fitted_vae)
    original.partial_fit(X)
    loaded.partial_fit(X)
    assert_array_equal(loaded.transform(X), original.transform(X))


@pytest.mark.parametrize("early_stopping_now", [True, False])
def test_a_model_fitted_with_early_stopping_cannot_continue_training(
    binary, tmp_path, early_stopping_now
):
    X, _ = binary
    vae = VAETransformer(max_epochs=2, early_stopping=True, random_state=0).fit(X)
    vae.save(tmp_path / "m.safetensors")
    loaded = VAETransformer.load(tmp_path / "m.safetensors")
    for model in (vae, loaded):
        model.set_params(early_stopping=early_stopping_now)
        match = "early_stopping=True" + (": there is no" if early_stopping_now else "")
        match = match if early_stopping_now else "fitted with early stopping"
        with pytest.raises(ValueError, match=match) as info:
            model.partial_fit(X)
        if not early_stopping_now:
            assert str(info.value) == (
                "partial_fit cannot continue a model fitted with early stopping "
                "(early_stopping=True, or 'auto' on over 20,000 rows): it holds its "
                "best epoch on a held-out share of the fit's data. Fit with "
                "early_stopping=False to go on training with partial_fit."
            )
        assert model.n_iter_ == 2


def test_feature_names_and_float32_are_kept(digits, tmp_path):
    X, _ = digits
    df = pd.DataFrame(X.astype(np.float32), columns=[f"p{i}" for i in range(64)])
    vae = VAETransformer(max_epochs=1, early_stopping=True, random_state=0).fit(df)
    vae.save(tmp_path / "m.safetensors")
    loaded = VAETransformer.load(tmp_path / "m.safetensors")
    assert_array_equal(loaded.feature_names_in_, df.columns)
    samples = loaded.sample(2)
    assert list(samples.columns) == list(df.columns)
    assert (samples.dtypes == np.float32).all()
    assert loaded.validation_scores_ == vae.validation_scores_
    with pytest.warns(UserWarning, match="feature names"):
        loaded.transform(X)


def test_a_gpu_trained_model_loads_on_a_cpu_only_machine(
    fitted_vae, digits, tmp_path, monkeypatch
):
    X, _ = digits
    gpu_model = copy.deepcopy(fitted_vae)
    gpu_model._device = "cuda"  # as recorded by a fit on a GPU
    gpu_model.set_params(device="cuda")
    gpu_model.save(tmp_path / "gpu.safetensors")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    loaded = VAETransformer.load(tmp_path / "gpu.safetensors")
    assert loaded.device == "cpu" and loaded.net_.device == "cpu"
    state = loaded.net_.optimizer_.state_dict()["state"]
    tensors = [*loaded.net_.module_.state_dict().values()]
    tensors += [v for slots in state.values() for v in slots.values()]
    assert tensors and all(
        t.device.type == "cpu" for t in tensors if torch.is_tensor(t)
    )
    assert_array_equal(loaded.transform(X), fitted_vae.transform(X))
    with pytest.raises(ValueError, match="no CUDA device"):
        VAETransformer.load(tmp_path / "gpu.safetensors", device="cuda")


def test_saving_an_unfitted_model_is_an_error(tmp_path):
    with pytest.raises(NotFittedError):
        VAETransformer().save(tmp_path / "m.safetensors")


def test_a_failed_save_leaves_the_previous_file_intact(fitted_vae, saved, monkeypatch):
    before = saved.read_bytes()

    def fail(fd):
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", fail)
    with pytest.raises(OSError, match="disk full"):
        fitted_vae.save(saved)
    assert saved.read_bytes() == before
    assert os.listdir(saved.parent) == [saved.name]


def _rewrite(path, mutate_document=None, mutate_tensors=None):
    """Re-save a model file after a change, with a valid digest."""
    with safetensors.safe_open(path, "pt") as f:
        metadata = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    info = json.loads(metadata["skvae"])
    if mutate_document:
        mutate_document(info)
    if mutate_tensors:
        mutate_tensors(tensors)
    document = json.dumps(info)
    metadata = {"skvae": document, "sha256": _persistence._digest(document, tensors)}
    safetensors.torch.save_file(tensors, path, metadata=metadata)


def _set_version(info):
    info["format_version"] = 99


def _drop_a_weight(tensors):
    del tensors["module.decoder.head.bias"]


def _widen(info):
    info["params"]["n_components"] = 3


@pytest.mark.parametrize(
    "mutate_document, mutate_tensors, match",
    [
        (_set_version, None, "format version 99.*re-save"),
        (None, _drop_a_weight, "does not match"),
        (_widen, None, "does not match"),
    ],
)
def test_inconsistent_files_are_clear_errors(
    saved, mutate_document, mutate_tensors, match
):
    _rewrite(saved, mutate_document, mutate_tensors)
    with pytest.raises(ValueError, match=match):
        VAETransformer.load(saved)


def test_an_edited_file_fails_the_integrity_check(saved):
    data = bytearray(saved.read_bytes())
    data[-10] ^= 0xFF  # flip bits inside the last tensor
    saved.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="integrity check"):
        VAETransformer.load(saved)


def test_a_truncated_file_is_a_clear_error(saved):
    saved.write_bytes(saved.read_bytes()[:1000])
    with pytest.raises(ValueError, match="not a readable safetensors file"):
        VAETransformer.load(saved)


def test_a_foreign_safetensors_file_is_a_clear_error(tmp_path):
    path = tmp_path / "other.safetensors"
    safetensors.torch.save_file({"weight": torch.zeros(2)}, path)
    with pytest.raises(ValueError, match="not a skvae model"):
        VAETransformer.load(path)


@pytest.mark.parametrize("content", [b"", b"\x80\x04 not a model", b"{}" * 10])
def test_garbage_is_a_clear_error(tmp_path, content):
    path = tmp_path / "garbage.safetensors"
    path.write_bytes(content)
    with pytest.raises(ValueError, match="not a readable safetensors file"):
        VAETransformer.load(path)


def test_a_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="No model file"):
        VAETransformer.load(tmp_path / "nothing.safetensors")


def test_an_unpickled_gpu_model_keeps_training_on_the_cpu(fitted_vae, digits):
    import pickle

    X, _ = digits
    gpu_model = copy.deepcopy(fitted_vae)
    # What a model fitted on a GPU looks like once skorch has mapped it to the
    # CPU of a machine without one: the net is on the CPU, the rest says cuda.
    gpu_model._device = "cuda"
    gpu_model.net_.iterator_train__device = "cuda"
    gpu_model.net_.iterator_valid__device = "cuda"
    restored = pickle.loads(pickle.dumps(gpu_model))
    restored.partial_fit(X)
    assert restored.n_iter_ == fitted_vae.n_iter_ + 1
    assert restored._device == "cpu"
    state = restored.net_.optimizer_.state_dict()["state"]
    tensors = [*restored.net_.module_.state_dict().values()]
    tensors += [v for slots in state.values() for v in slots.values()]
    assert all(t.device.type == "cpu" for t in tensors if torch.is_tensor(t))


# ------------------------------------------------- parameters, kept exactly
def _same(a, b):
    """Equal in value and type family (NaN equal to NaN)."""
    if isinstance(a, np.random.RandomState):
        return isinstance(b, np.random.RandomState) and all(
            np.array_equal(x, y) for x, y in zip(a.get_state(), b.get_state())
        )
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and np.array_equal(a, b)
    if isinstance(a, (tuple, list)):
        return (
            type(a) is type(b)
            and len(a) == len(b)
            and all(_same(x, y) for x, y in zip(a, b))
        )
    if isinstance(a, dict):
        return (
            isinstance(b, dict)
            and list(a) == list(b)
            and all(_same(a[k], b[k]) for k in a)
        )
    for family in (bool, np.bool_), (str,), (type(None),):
        if isinstance(a, family):
            return isinstance(b, family) and a == b
    if isinstance(a, (int, np.integer)):
        return isinstance(b, (int, np.integer)) and not isinstance(b, bool) and a == b
    if isinstance(a, (float, np.floating)):
        return isinstance(b, (float, np.floating)) and (
            a == b or (np.isnan(a) and np.isnan(b))
        )
    raise AssertionError(f"unexpected value {a!r}")


_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**40), 2**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=5),
    st.integers(-1000, 1000).map(np.int64),
    st.integers(0, 255).map(np.uint8),
    st.floats(-1e6, 1e6, width=32).map(np.float32),
    st.floats(allow_nan=False).map(np.float64),
    st.booleans().map(np.bool_),
)
_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.lists(inner, max_size=3).map(tuple),
        st.dictionaries(
            st.one_of(st.text(max_size=4), st.integers(0, 50)), inner, max_size=3
        ),
    ),
    max_leaves=8,
)


@settings(deadline=None, max_examples=200)
@given(value=_values)
def test_every_plain_parameter_value_comes_back_equal(value):
    encoded = _persistence.encode_params({"p": value})
    decoded = _persistence.decode_params(json.loads(json.dumps(encoded)))
    assert _same(value, decoded["p"])


def test_numpy_parameters_survive_save_and_load(binary, tmp_path):
    X, _ = binary
    vae = VAETransformer(
        n_components=np.int64(2),
        hidden_layer_sizes=np.array([8, 4]),
        beta=np.float32(0.5),
        tol=np.float32(1e-4),
        learning_rate=np.float32(2e-3),
        random_state=np.int64(3),
        max_epochs=2,
    ).fit(X)
    vae.save(tmp_path / "m.safetensors")
    loaded = VAETransformer.load(tmp_path / "m.safetensors")
    for name, value in vae.get_params().items():
        assert _same(value, loaded.get_params()[name]), name
    assert loaded.beta == 0.5 and loaded.tol == np.float32(1e-4)
    assert_array_equal(loaded.transform(X), vae.transform(X))


def test_a_random_state_instance_is_kept_with_its_state(binary, tmp_path):
    X, _ = binary
    vae = VAETransformer(max_epochs=1, random_state=np.random.RandomState(0)).fit(X)
    vae.save(tmp_path / "m.safetensors")
    loaded = VAETransformer.load(tmp_path / "m.safetensors")
    assert _same(vae.random_state, loaded.random_state)
    assert loaded.random_state is not vae.random_state


def test_parameters_that_are_not_plain_data_are_refused(binary, tmp_path):
    from skorch.callbacks import LRScheduler

    X, _ = binary
    vae = VAETransformer(max_epochs=1, callbacks=[LRScheduler()]).fit(X)
    with pytest.raises(ValueError, match="callbacks.*pickle"):
        vae.save(tmp_path / "m.safetensors")
    assert not (tmp_path / "m.safetensors").exists()


# ------------------------------------------------------- what the digest sees
def _edit_header(path, old, new):
    """Change the safetensors JSON header in place, keeping its length."""
    data = bytearray(path.read_bytes())
    n = int.from_bytes(data[:8], "little")
    header = data[8 : 8 + n].decode()
    assert old in header and len(old) == len(new)
    data[8 : 8 + n] = header.replace(old, new, 1).encode()
    path.write_bytes(bytes(data))


def test_the_digest_covers_dtypes(saved):
    with safetensors.safe_open(saved, "pt") as f:
        assert f.get_tensor("module.decoder.head.bias").dtype == torch.float32
    n = int.from_bytes(saved.read_bytes()[:8], "little")
    header = json.loads(saved.read_bytes()[8 : 8 + n])
    entry = json.dumps(header["module.decoder.head.bias"], separators=(",", ":"))
    _edit_header(saved, entry, entry.replace("F32", "I32"))
    with pytest.raises(ValueError, match="integrity check"):
        VAETransformer.load(saved)


def test_the_digest_covers_shapes(saved):
    n = int.from_bytes(saved.read_bytes()[:8], "little")
    header = json.loads(saved.read_bytes()[8 : 8 + n])
    entry = json.dumps(header["module.encoder.head.weight"], separators=(",", ":"))
    rows, cols = header["module.encoder.head.weight"]["shape"]
    swapped = entry.replace(f"[{rows},{cols}]", f"[{cols},{rows}]")
    assert len(swapped) == len(entry) and swapped != entry
    _edit_header(saved, entry, swapped)
    with pytest.raises(ValueError, match="integrity check"):
        VAETransformer.load(saved)


# --------------------------------------------------------- long trainings
def test_a_long_training_history_can_be_saved(fitted_vae, tmp_path):
    vae = copy.deepcopy(fitted_vae)
    # 100 epochs of 8,000 batches each: a run of 1M rows at batch size 128.
    batch = {"train_loss": 1.0, "train_batch_size": 128, "train_kl": 0.1}
    for epoch in range(100):
        vae.net_.history.new_epoch()
        vae.net_.history.record("epoch", epoch)
        vae.net_.history.record("batches", [dict(batch) for _ in range(8000)])
        vae.net_.history.record("train_loss", 1.0)
    vae.save(tmp_path / "m.safetensors")
    assert (tmp_path / "m.safetensors").stat().st_size < 2**21
    loaded = VAETransformer.load(tmp_path / "m.safetensors")
    assert len(loaded.history_) == len(vae.net_.history)
    assert loaded.history_[-1, "train_loss"] == 1.0


# ------------------------------------------------------------- permissions
@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600)])
def test_a_new_file_gets_the_permissions_of_the_umask(
    fitted_vae, tmp_path, umask, mode
):
    old = os.umask(umask)
    try:
        fitted_vae.save(tmp_path / "m.safetensors")
    finally:
        os.umask(old)
    assert (tmp_path / "m.safetensors").stat().st_mode & 0o777 == mode


def test_overwriting_a_file_keeps_its_permissions(fitted_vae, saved):
    os.chmod(saved, 0o640)
    fitted_vae.save(saved)
    assert saved.stat().st_mode & 0o777 == 0o640


# ----------------------------------------------------- older file versions
def test_a_version_1_file_still_loads():
    from pathlib import Path

    data = Path(__file__).parent / "data"
    expected = np.load(data / "model_v1_expected.npz")
    loaded = VAETransformer.load(data / "model_v1.safetensors")
    assert loaded.hidden_layer_sizes == (8,)
    assert_allclose(loaded.transform(expected["X"]), expected["codes"], rtol=1e-6)
    assert_allclose(loaded.score_samples(expected["X"]), expected["scores"], rtol=1e-5)


@pytest.mark.parametrize("early_stopping", [False, True])
def test_a_loaded_imputer_draws_the_same_fills_as_the_saved_one(
    early_stopping, tmp_path
):
    from skvae import VAEImputer

    rng = np.random.RandomState(0)
    X = rng.randn(40, 3)
    X[rng.rand(*X.shape) < 0.2] = np.nan
    imputer = VAEImputer(
        sample_posterior=True,
        n_impute_samples=20,
        max_epochs=3,
        early_stopping=early_stopping,
        random_state=0,
    ).fit(X)
    imputer.save(tmp_path / "i.safetensors")
    loaded = VAEImputer.load(tmp_path / "i.safetensors")
    # Two calls each: the draws go on from the same state.
    for _ in range(2):
        assert_array_equal(loaded.transform(X), imputer.transform(X))


def _drop_the_donors(info):
    """The document as files from before the imputer's donors hold it."""
    del info["params"]["n_neighbors"]
    for name in ("_donor_choice", "_donor_keys", "_donor_values", "_donor_readout"):
        del info["fitted"][name]


def test_an_imputer_saved_before_the_donors_loads_without_them(tmp_path):
    from skvae import VAEImputer

    rng = np.random.RandomState(0)
    X = np.repeat(rng.randn(30, 3).round(2), 6, axis=0)
    X[rng.rand(len(X)) < 0.2, 0] = np.nan
    imputer = VAEImputer(max_epochs=20, n_impute_samples=50, random_state=0).fit(X)
    assert imputer.donor_weights_.any()
    path = tmp_path / "i.safetensors"
    imputer.save(path)
    _rewrite(path, _drop_the_donors)
    loaded = VAEImputer.load(path)
    assert not loaded.donor_weights_.any()
    alone = imputer.set_params(n_neighbors=0).fit(X).transform(X)
    assert_array_equal(loaded.transform(X), alone)


def _drop_the_readout(info):
    """The document as files with donors but no linear read-out hold it."""
    del info["fitted"]["_donor_readout"]
    info["fitted"]["_donor_choice"] = info["fitted"]["_donor_choice"][:2]


def test_an_imputer_saved_before_the_readout_loads_with_donors_alone(tmp_path):
    import torch

    from skvae import VAEImputer

    rng = np.random.RandomState(0)
    X = rng.randn(300, 3)
    X = np.column_stack([X, X.sum(axis=1)])
    X[rng.rand(len(X)) < 0.2, 3] = np.nan
    imputer = VAEImputer(max_epochs=20, n_impute_samples=50, random_state=0).fit(X)
    assert imputer.linear_weights_.any()
    path = tmp_path / "i.safetensors"
    imputer.save(path)
    _rewrite(path, _drop_the_readout)
    loaded = VAEImputer.load(path)
    assert not loaded.linear_weights_.any()
    assert_array_equal(loaded.donor_weights_, imputer.donor_weights_)
    pool = imputer._donor_pool
    imputer._donor_pool = pool._replace(linear=torch.zeros_like(pool.linear))
    assert_array_equal(loaded.transform(X), imputer.transform(X))
