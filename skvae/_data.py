"""Training and inference data: rows of one array, served in batches.

The data is held once: as a dense float32 tensor (on the training device when
it is a GPU), as a scipy CSR matrix that is densified one batch at a time, or,
for a memory-mapped file (``np.load(path, mmap_mode="r")``), as the file
itself, read one batch at a time.
Batches are index slices of it, never per-sample ``__getitem__`` calls and
collation. With missing values, each batch comes with its observation mask and
the gaps filled with zeros. Batches of inference are padded to whole blocks of
rows (``pad_rows``).
"""

import math
import mmap
import warnings

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.utils import assert_all_finite

from ._utils import process_group, to_tensor


def observed_entries(X, marker=np.nan):
    """The entries of ``X`` (a NumPy array or a tensor) that are not gaps: not
    NaN and, for a numeric ``marker``, not equal to it.

    The one rule of what a gap is among numbers, that the estimators and
    their ONNX graphs share.
    """
    observed = X == X  # False at NaN, for arrays and tensors alike
    if marker is not None and marker == marker:
        observed = observed & (X != marker)
    return observed


def zero_gaps(x, observed):
    """``x`` with zeros in its gaps (where not ``observed``): the encoder's
    input."""
    return torch.where(observed, x, 0.0)


def is_file_backed(X):
    """Whether ``X`` is a memory-mapped float array, to be streamed."""
    return isinstance(X, np.memmap) and X.dtype in (np.float32, np.float64)


def release_pages(X):
    """Unmap the pages of a memory-mapped array that reads brought in.

    They stay in the operating system's file cache, so the next read is still
    fast, but they stop counting towards this process's resident memory.
    """
    mapping = getattr(X, "_mmap", None)
    if mapping is not None and hasattr(mmap, "MADV_DONTNEED"):
        mapping.madvise(mmap.MADV_DONTNEED)


def file_chunks(X, max_bytes=2**26):
    """Copies of consecutive row blocks of a memory-mapped array."""
    rows = max(1, max_bytes // max(1, X.shape[1] * X.itemsize))
    for start in range(0, X.shape[0], rows):
        chunk = np.array(X[start : start + rows])
        release_pages(X)
        yield chunk


# Share of the GPU's free memory that the training data may take; the rest is
# left for the model, its gradients, optimizer state and activations.
_DEVICE_DATA_SHARE = 0.5


def fits_on_device(n_bytes, device):
    """Whether ``n_bytes`` of data fit comfortably on a CUDA ``device``."""
    free, _ = torch.cuda.mem_get_info(torch.device(device))
    return n_bytes <= _DEVICE_DATA_SHARE * free


def has_nan(X):
    """Whether the array or sparse matrix ``X`` holds a NaN (a gap).

    An infinite entry is an error, with scikit-learn's message: this check
    also stands in for ``validate_data``'s at inference time, so that the data
    is read once (``_BaseVAE._check_input``).
    """
    values = X.data if sp.issparse(X) else X
    # One pass without a temporary: the sum of finite entries is finite unless
    # it overflows; only a sum that is not finite makes each entry be looked at.
    if math.isfinite(_total(values)):
        return False
    with np.errstate(over="ignore", invalid="ignore"):
        assert_all_finite(values, allow_nan=True, input_name="X")
    return bool(np.isnan(values).any())


def _total(values):
    """The sum of an array's entries, in its dtype (inf when it overflows).

    PyTorch sums on its threads, NumPy on one: on 2 cores, 8.5 ms instead of
    23 ms for 100,000 MNIST rows, a tenth of the encoder's time on them.
    """
    try:
        with warnings.catch_warnings():
            # Read-only arrays are fine: the tensor is only read.
            warnings.filterwarnings("ignore", message="The given NumPy array is not wr")
            return torch.from_numpy(np.asarray(values)).sum().item()
    except (TypeError, ValueError):  # negative strides, dtypes torch lacks
        with np.errstate(over="ignore", invalid="ignore"):
            return float(np.sum(values))


def as_rows(X, device="cpu"):
    """Hold ``X`` for batching: a float32 tensor on ``device``, float32 CSR, or
    the memory-mapped array itself.

    Sparse matrices stay sparse on the host and memory-mapped files on disk;
    only their batches are densified or read (and moved to ``device``).
    """
    if sp.issparse(X):
        return sp.csr_matrix(X, dtype=np.float32)
    if is_file_backed(X):
        return X
    rows = to_tensor(X)
    if str(device).startswith("cuda") and not fits_on_device(rows.nbytes, device):
        # Too large for the GPU: keep it on the host in page-locked memory, from
        # which each batch is copied to the GPU asynchronously.
        return rows.pin_memory()
    return rows.to(device)


class InMemoryDataset(torch.utils.data.Dataset):
    """Rows of one array, optionally restricted to a subset of row indices.

    Parameters
    ----------
    X : Tensor of shape (n_samples, n_features), scipy CSR matrix or np.memmap
        The data, as returned by ``as_rows``.
    indices : Tensor of int64 or None
        Rows that belong to this dataset (all rows when None).
    missing : bool, default=False
        Whether NaN entries mark missing values; batches then come with a
        boolean mask of the observed entries and zeros in the gaps.
    generator : torch.Generator or None, default=None
        Draws the shuffling permutations when training is spread over several
        processes: seeded alike everywhere, so that all processes agree on the
        order and each takes its own share. None uses torch's global generator.
    prepare : callable or None, default=None
        Applied to each batch of a memory-mapped array as it is read (an
        ndarray in, an ndarray out): checks its values, or encodes them, there
        rather than in a pass of its own over the file.
    """

    def __init__(self, X, indices=None, missing=False, generator=None, prepare=None):
        self.X = X
        self.indices = indices
        self.missing = missing
        self.generator = generator
        self.prepare = prepare
        # Batches of page-locked rows are page-locked too, so that their copy
        # to the GPU is asynchronous; decided once, not per batch.
        self._pinned = torch.is_tensor(X) and X.is_pinned()

    @property
    def device(self):
        """Device of the stored rows (the host for sparse data)."""
        return self.X.device if torch.is_tensor(self.X) else torch.device("cpu")

    def __len__(self):
        return self.X.shape[0] if self.indices is None else len(self.indices)

    def __getitem__(self, i):
        row = i if self.indices is None else int(self.indices[i])
        x, mask = self.take([row])
        return x[0], 0 if mask is None else mask[0]

    def subset(self, indices):
        """The same rows restricted to ``indices`` (positions in ``X``)."""
        return InMemoryDataset(
            self.X, indices, self.missing, self.generator, self.prepare
        )

    def take(self, rows):
        """Dense batch ``(x, mask)`` of the given rows of ``X``.

        Parameters
        ----------
        rows : slice or Tensor of int64
            Positions in ``X``.

        Returns
        -------
        x : Tensor of shape (n_rows, n_features), float32
        mask : bool Tensor of the same shape, or None without missing values
        """
        if torch.is_tensor(self.X):
            x = self.X[rows]
            if self._pinned:
                x = x.pin_memory()
        else:
            if torch.is_tensor(rows):
                rows = rows.cpu().numpy()
            if sp.issparse(self.X):
                x = torch.from_numpy(self.X[rows].toarray())
            else:
                block = np.array(self.X[rows])
                # Unmap after every batch: the kernel maps pages around each
                # one read, which over an epoch would map the whole file.
                release_pages(self.X)
                if self.prepare is not None:
                    block = self.prepare(block)
                x = torch.from_numpy(block.astype(np.float32, copy=False))
        if not self.missing:
            return x, None
        mask = observed_entries(x)
        return zero_gaps(x, mask), mask


def _to(tensor, device):
    return None if tensor is None else tensor.to(device, non_blocking=True)


class BatchIterator:
    """Yield ``(x, mask)`` batches from an ``InMemoryDataset`` by index slices.

    Plays the role of skorch's ``DataLoader``: one ``randperm`` per epoch and
    one gather per batch. ``mask`` reaches the loss as skorch's ``y``.

    Parameters
    ----------
    dataset : InMemoryDataset
    batch_size : int, default=128
    shuffle : bool, default=False
    device : str or torch.device, default="cpu"
        Where batches are sent, if the data lives elsewhere.
    mask_in_x : bool, default=False
        Yield ``({"x": x, "mask": observed}, mask)``: the observation mask
        also goes to the module's ``forward`` (all True without gaps).

    Notes
    -----
    In a ``torch.distributed`` process group of more than one process, a
    shuffled epoch is shared out: each process takes rows ``rank, rank +
    world_size, ...`` of a permutation that all processes draw alike (the
    remainder rows are left out, so that every process runs the same number
    of batches). The group is looked up when an epoch starts, so a net built
    inside a group and used outside it trains on all rows.
    """

    def __init__(
        self, dataset, batch_size=128, shuffle=False, device="cpu", mask_in_x=False
    ):
        self.dataset = dataset
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.device = device
        self.mask_in_x = mask_in_x
        self.rank, self.world_size = process_group() if shuffle else (0, 1)

    def _n_rows(self):
        if self.world_size > 1:
            return len(self.dataset) // self.world_size
        return len(self.dataset)

    def __len__(self):
        return math.ceil(self._n_rows() / self.batch_size)

    def _order(self):
        indices = self.dataset.indices
        if not self.shuffle:
            return indices
        generator = self.dataset.generator
        if generator is None or self.world_size == 1:
            order = torch.randperm(len(self.dataset), device=self.dataset.device)
        else:
            order = torch.randperm(len(self.dataset), generator=generator)
            order = order[self.rank :: self.world_size][: self._n_rows()]
            order = order.to(self.dataset.device)
        return order if indices is None else indices[order]

    def __iter__(self):
        order, size = self._order(), self.batch_size
        for start in range(0, self._n_rows(), size):
            if order is None:
                rows = slice(start, start + size)
            else:
                rows = order[start : start + size]
            x, mask = self.dataset.take(rows)
            x, mask = _to(x, self.device), _to(mask, self.device)
            if self.mask_in_x:
                # For a module whose encoder sees the mask: skorch passes the
                # dict's items to forward() as keyword arguments.
                observed = (
                    torch.ones_like(x, dtype=torch.bool) if mask is None else mask
                )
                yield {"x": x, "mask": observed}, mask
            else:
                yield x, mask


class HoldoutSplit:
    """skorch ``train_split`` that holds out a random fraction of the rows.

    Parameters
    ----------
    fraction : float
        Share of rows used for validation.
    seed : int
        Seed of the permutation.
    """

    def __init__(self, fraction, seed):
        self.fraction = fraction
        self.seed = seed

    def __call__(self, dataset, y=None, **fit_params):
        order, n_valid = self._order(len(dataset))
        order = order.to(dataset.device)
        if dataset.indices is not None:
            order = dataset.indices[order]
        return dataset.subset(order[n_valid:]), dataset.subset(order[:n_valid])

    def held_out(self, n_samples):
        """Positions of the rows held out of a dataset of ``n_samples`` rows."""
        order, n_valid = self._order(n_samples)
        return order[:n_valid].numpy()

    def _order(self, n_samples):
        """A seeded permutation of the rows, and how many of its first ones
        are held out."""
        n_valid = max(1, round(self.fraction * n_samples))
        if n_valid >= n_samples:
            raise ValueError(
                f"validation_fraction={self.fraction} leaves no training rows "
                f"out of {n_samples}; lower it or pass more samples."
            )
        generator = torch.Generator().manual_seed(self.seed)
        return torch.randperm(n_samples, generator=generator), n_valid


# Inference runs on batches of a multiple of ROW_BLOCK rows, the last one
# padded with zero rows, so that a row's codes and scores do not depend on the
# other rows of its batch: BLAS libraries multiply a few rows with other
# kernels than many (summing in another order), and vectorised loops leave
# the last floats of a tensor to scalar code, whose exp and log round
# differently. 32 rows fill whole AVX-512 loop steps (2 x 16 floats).
ROW_BLOCK = 32


def block_rows(rows):
    """``rows`` rounded down to a multiple of ``ROW_BLOCK``, and at least one
    block."""
    return max(ROW_BLOCK, rows - rows % ROW_BLOCK)


def pad_rows(x, mask=None):
    """``x`` and ``mask`` with rows appended up to a multiple of ``ROW_BLOCK``:
    zeros in ``x``, observed entries in ``mask``."""
    extra = -len(x) % ROW_BLOCK
    if not extra:
        return x, mask
    x = torch.cat([x, x.new_zeros(extra, *x.shape[1:])])
    if mask is not None:
        mask = torch.cat([mask, mask.new_ones(extra, *mask.shape[1:])])
    return x, mask


def padded_batches(batches):
    """``(n_rows, x, mask)`` for each ``(x, mask)`` batch, padded by
    ``pad_rows``: the results of the first ``n_rows`` rows are the batch's."""
    for x, mask in batches:
        yield (len(x), *pad_rows(x, mask))
