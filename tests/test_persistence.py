"""save / load: round trips, devices and every kind of bad file."""

import copy
import json
import os

import numpy as np
import pandas as pd
import pytest
import safetensors.torch
import torch
from numpy.testing import assert_array_equal
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
    assert loaded.get_params() == fitted_vae.get_params()
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


def test_feature_names_and_float32_are_kept(digits, tmp_path):
    X, _ = digits
    df = pd.DataFrame(X.astype(np.float32), columns=[f"p{i}" for i in range(64)])
    vae = VAETransformer(max_epochs=1, early_stopping=True, random_state=0).fit(df)
    vae.save(tmp_path / "m.safetensors")
    loaded = VAETransformer.load(tmp_path / "m.safetensors")
    assert_array_equal(loaded.feature_names_in_, df.columns)
    assert loaded.sample(2).dtype == np.float32
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
    assert_array_equal(loaded.transform(X), fitted_vae.transform(X))
    with pytest.raises(ValueError, match="no CUDA device"):
        VAETransformer.load(tmp_path / "gpu.safetensors", device="cuda")


def test_objects_that_are_not_plain_data_are_dropped_with_a_warning(binary, tmp_path):
    from skorch.callbacks import LRScheduler

    X, _ = binary
    vae = VAETransformer(
        max_epochs=1,
        callbacks=[LRScheduler()],
        random_state=np.random.RandomState(0),
    ).fit(X)
    with pytest.warns(UserWarning, match="callbacks, random_state"):
        vae.save(tmp_path / "m.safetensors")
    loaded = VAETransformer.load(tmp_path / "m.safetensors")
    assert loaded.callbacks is None and loaded.random_state is None
    assert_array_equal(loaded.transform(X), vae.transform(X))


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
