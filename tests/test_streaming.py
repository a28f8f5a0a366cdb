"""Data larger than memory: memory-mapped files and chunked training."""

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from skvae import VAETransformer


def _file_pages_mb():
    """Resident memory of this process backed by files, in MiB (Linux)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("RssFile:"):
                return int(line.split()[1]) / 1024
    pytest.skip("no RssFile in /proc/self/status")


@pytest.fixture
def file_backed(tmp_path, digits):
    X = np.tile(digits[0].astype(np.float32), (4, 1))
    np.save(tmp_path / "X.npy", X)
    return np.load(tmp_path / "X.npy", mmap_mode="r"), X


@pytest.mark.parametrize("scale", [1.0, 16.0])
def test_a_memory_mapped_file_gives_the_same_model(tmp_path, digits, scale):
    # Digits in [0, 1] stream as they are; in 0..16 they are transformed
    # batch by batch.
    X = np.tile(digits[0].astype(np.float32) * scale, (4, 1))
    np.save(tmp_path / "X.npy", X)
    X_mapped = np.load(tmp_path / "X.npy", mmap_mode="r")
    params = dict(max_epochs=2, random_state=0)
    from_file = VAETransformer(**params).fit(X_mapped)
    in_memory = VAETransformer(**params).fit(X)
    assert from_file.likelihoods_ == in_memory.likelihoods_
    assert_array_equal(from_file.transform(X_mapped), in_memory.transform(X))
    assert_array_equal(from_file.score_samples(X_mapped), in_memory.score_samples(X))
    assert from_file.transform(X_mapped).dtype == np.float32


def test_a_memory_mapped_file_is_checked_like_an_array(tmp_path):
    X = np.random.RandomState(0).rand(50, 3).astype(np.float32)
    X[10, 1] = np.nan
    np.save(tmp_path / "nan.npy", X)
    with pytest.raises(ValueError, match="Column 1 contains NaN"):
        VAETransformer(missing_values=None).fit(
            np.load(tmp_path / "nan.npy", mmap_mode="r")
        )
    np.save(tmp_path / "big.npy", np.nan_to_num(X) * 3)
    big = np.load(tmp_path / "big.npy", mmap_mode="r")
    with pytest.raises(ValueError, match="MinMaxScaler"):
        VAETransformer(likelihood="bernoulli").fit(big)
    vae = VAETransformer(max_epochs=1).fit(np.nan_to_num(X))
    with pytest.raises(ValueError, match="features"):
        vae.transform(np.load(tmp_path / "big.npy", mmap_mode="r")[:, :2])


@pytest.mark.skipif(not hasattr(__import__("mmap"), "MADV_DONTNEED"), reason="Linux")
def test_fitting_a_file_does_not_load_it_into_memory(tmp_path):
    rng = np.random.RandomState(0)
    path = tmp_path / "large.npy"
    X = np.lib.format.open_memmap(
        path, mode="w+", dtype=np.float32, shape=(40_000, 1_000)
    )
    for start in range(0, len(X), 10_000):
        X[start : start + 10_000] = rng.rand(10_000, 1_000)
    X.flush()
    del X
    X = np.load(path, mmap_mode="r")  # 160 MB on disk
    before = _file_pages_mb()
    vae = VAETransformer(hidden_layer_sizes=(16,), max_epochs=1, batch_size=256)
    vae.fit(X)
    vae.transform(X), vae.score_samples(X[:5000])
    # Pages read are unmapped again: the file never becomes resident as a whole.
    assert _file_pages_mb() - before < 40


def test_partial_fit_over_chunks_converges_like_fit(digits):
    X, _ = digits
    epochs = 30
    whole = VAETransformer(max_epochs=epochs, n_iter_no_change=epochs, random_state=0)
    whole.fit(X)
    chunked = VAETransformer(random_state=0)
    for _ in range(epochs):
        for chunk in np.array_split(X, 3):
            chunked.partial_fit(chunk)
    assert chunked.score(X) == pytest.approx(whole.score(X), rel=0.03)


@pytest.mark.parametrize("method", ["transform", "score_samples"])
def test_inference_reads_a_memory_mapped_file_once(file_backed, monkeypatch, method):
    from skvae import _data

    X_mapped, X = file_backed
    vae = VAETransformer(max_epochs=1, random_state=0).fit(X)
    reads = []
    release = _data.release_pages
    monkeypatch.setattr(_data, "release_pages", lambda a: reads.append(1) or release(a))
    rows = []
    original_take = _data.InMemoryDataset.take

    def take(self, batch_rows):
        x, mask = original_take(self, batch_rows)
        rows.append(len(x))
        return x, mask

    monkeypatch.setattr(_data.InMemoryDataset, "take", take)
    getattr(vae, method)(X_mapped)
    # Each row is read once, by the batch that computes with it: no extra pass.
    assert sum(rows) == len(X) and len(reads) == len(rows)


def test_bad_values_in_a_memory_mapped_file_are_caught_at_inference(tmp_path):
    X = np.random.RandomState(0).rand(50, 3).astype(np.float32)
    vae = VAETransformer(max_epochs=1, missing_values=None).fit(X)
    X[40, 1] = np.nan
    np.save(tmp_path / "nan.npy", X)
    mapped = np.load(tmp_path / "nan.npy", mmap_mode="r")
    for method in (vae.transform, vae.score_samples):
        with pytest.raises(ValueError, match="NaN"):
            method(mapped)
    X[40, 1] = 3.0
    np.save(tmp_path / "big.npy", X)
    with pytest.raises(ValueError, match="MinMaxScaler"):
        vae.score_samples(np.load(tmp_path / "big.npy", mmap_mode="r"))
