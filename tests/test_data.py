"""Data held once and served in batches: dense, sparse, with gaps."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from skvae._data import (
    BatchIterator,
    HoldoutSplit,
    InMemoryDataset,
    as_rows,
    has_nan,
)


def test_batch_iterator_visits_every_row_once_per_epoch():
    X = torch.arange(10, dtype=torch.float32)[:, None]
    batches = list(BatchIterator(InMemoryDataset(X), batch_size=3, shuffle=True))
    assert [len(xb) for xb, _ in batches] == [3, 3, 3, 1]
    seen = torch.cat([xb for xb, _ in batches]).flatten()
    assert sorted(seen.tolist()) == list(range(10))
    assert not torch.equal(seen, X.flatten())  # shuffled
    ordered = torch.cat([xb for xb, _ in BatchIterator(InMemoryDataset(X), 4)])
    assert torch.equal(ordered, X)
    assert len(BatchIterator(InMemoryDataset(X), 4)) == 3


def test_holdout_split_is_a_disjoint_seeded_partition():
    X = torch.arange(20, dtype=torch.float32)[:, None]
    train, valid = HoldoutSplit(0.25, seed=0)(InMemoryDataset(X))
    assert len(train) == 15 and len(valid) == 5
    rows = torch.cat([train.indices, valid.indices]).sort().values
    assert torch.equal(rows, torch.arange(20))
    again, _ = HoldoutSplit(0.25, seed=0)(InMemoryDataset(X))
    assert torch.equal(again.indices, train.indices)
    valid_rows = torch.cat([xb for xb, _ in BatchIterator(valid, 2)]).flatten()
    assert torch.equal(valid_rows.long(), valid.indices)


def test_holdout_split_needs_a_training_row():
    with pytest.raises(ValueError, match="validation_fraction"):
        HoldoutSplit(0.5, seed=0)(InMemoryDataset(torch.zeros(1, 2)))


def test_sparse_rows_are_densified_one_batch_at_a_time():
    X = sp.random(50, 7, density=0.2, format="csc", random_state=0)
    rows = as_rows(X)
    assert sp.isspmatrix_csr(rows) and rows.dtype == np.float32
    dataset = InMemoryDataset(rows)
    batches = list(BatchIterator(dataset, batch_size=16, shuffle=True))
    assert [tuple(x.shape) for x, _ in batches] == [(16, 7)] * 3 + [(2, 7)]
    seen = torch.cat([x for x, _ in batches])
    expected = torch.tensor(X.toarray(), dtype=torch.float32)
    assert torch.allclose(seen.sum(0), expected.sum(0))  # every row once
    ordered = torch.cat([x for x, _ in BatchIterator(dataset, 16)])
    assert torch.equal(ordered, expected)


def test_missing_values_come_with_a_mask_and_zeros_in_the_gaps():
    X = torch.tensor([[1.0, float("nan")], [float("nan"), 2.0], [3.0, 4.0]])
    x, mask = next(iter(BatchIterator(InMemoryDataset(X, missing=True), 3)))
    assert torch.equal(mask, torch.tensor([[True, False], [False, True], [True, True]]))
    assert torch.equal(x, torch.tensor([[1.0, 0.0], [0.0, 2.0], [3.0, 4.0]]))
    _, no_mask = next(iter(BatchIterator(InMemoryDataset(X), 3)))
    assert no_mask is None


def test_subsets_keep_sparse_and_missing_settings():
    X = sp.csr_matrix(np.array([[np.nan, 1.0], [2.0, 0.0], [0.0, 3.0]], np.float32))
    train, valid = HoldoutSplit(1 / 3, seed=0)(InMemoryDataset(X, missing=True))
    assert train.missing and valid.missing and len(valid) == 1
    x, mask = valid.take(valid.indices)
    assert x.shape == (1, 2) and mask is not None


def test_data_goes_to_the_gpu_only_when_it_fits(monkeypatch):
    from skvae import _data

    free = 1000
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device: (free, 4 * free))
    assert _data.fits_on_device(400, "cuda")
    assert not _data.fits_on_device(600, "cuda")  # more than half the free memory


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_large_data_streams_from_pinned_host_memory(monkeypatch):
    from skvae import _data

    monkeypatch.setattr(_data, "fits_on_device", lambda n_bytes, device: False)
    rows = as_rows(np.random.rand(100, 5), "cuda")
    assert rows.device.type == "cpu" and rows.is_pinned()
    x, _ = next(iter(BatchIterator(InMemoryDataset(rows), 10, device="cuda")))
    assert x.is_cuda and x.shape == (10, 5)


def test_gap_free_data_trains_without_a_mask_and_with_the_same_result():
    from skvae import VAETransformer

    rng = np.random.RandomState(0)
    X = rng.rand(200, 6)
    vae = VAETransformer(max_epochs=3, random_state=0).fit(X)
    assert vae._dataset(X).take(slice(0, 4))[1] is None  # no mask per batch
    gappy = X.copy()
    gappy[0, 0] = np.nan
    x, mask = vae._dataset(gappy).take(slice(0, 4))
    assert not mask[0, 0] and x[0, 0] == 0 and mask[1:].all()
    # The mask of gap-free data was all True: leaving it out changes nothing.
    rejecting = VAETransformer(missing_values=None, max_epochs=3, random_state=0)
    np.testing.assert_array_equal(rejecting.fit(X).transform(X), vae.transform(X))


@pytest.mark.parametrize(
    "values, expected",
    [
        ([1.0, 2.0], False),
        ([1.0, np.nan], True),
        # Overflows to inf in the sum, yet holds no NaN.
        ([3e38, 3e38, -1.0], False),
    ],
)
def test_has_nan(values, expected):
    X = np.array([values], dtype=np.float32)
    assert has_nan(X) is expected
    assert has_nan(sp.csr_matrix(X)) is expected


@pytest.mark.parametrize("values", [[np.inf, 1.0], [np.inf, -np.inf, np.nan]])
def test_has_nan_refuses_infinity(values):
    X = np.array([values])
    for data in (X, sp.csr_matrix(X)):
        with pytest.raises(ValueError, match="Input X contains infinity"):
            has_nan(data)


def test_has_nan_on_views_and_read_only_arrays():
    X = np.arange(12.0).reshape(3, 4)
    X[2, 1] = np.nan
    assert has_nan(X[::-1]) and has_nan(X.T) and not has_nan(X[:2])
    X.flags.writeable = False
    assert has_nan(X)
