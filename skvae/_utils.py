"""Small helpers: device resolution, seeding, tensor <-> ndarray."""

import functools
import os
import re
import warnings
from contextlib import contextmanager

import numpy as np
import torch

try:
    from ._version import __version__ as VERSION
except ImportError:  # a source tree that was never installed
    VERSION = "0+unknown"

_DEVICE_PATTERN = re.compile(r"^(cpu|auto|cuda(:\d+)?)$")


def resolve_device(device):
    """Turn the ``device`` parameter into a concrete torch device string.

    ``"auto"`` picks a CUDA device when there is one and the CPU otherwise;
    an explicit CUDA device that this machine lacks is an error. Inside a
    ``torch.distributed`` group of several processes, ``"cuda"`` (and
    ``"auto"``) mean this process's own GPU: ``cuda:LOCAL_RANK``, as
    ``torchrun`` numbers the processes of each machine.

    Parameters
    ----------
    device : str
        ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"auto"``.

    Returns
    -------
    device : str
    """
    if not isinstance(device, str) or not _DEVICE_PATTERN.match(device):
        raise ValueError(
            f"device={device!r} is not supported; use 'cpu', 'cuda', 'cuda:N' "
            "or 'auto'."
        )
    if device == "auto":
        if not torch.cuda.is_available():
            return "cpu"
        device = "cuda"
    if device == "cpu":
        return device
    if not torch.cuda.is_available():
        raise ValueError(
            f"device={device!r} was requested but PyTorch sees no CUDA device on "
            "this machine; use device='cpu', or device='auto' to fall back to "
            "the CPU when no GPU is present."
        )
    index = int(device.split(":")[1]) if ":" in device else 0
    if index >= torch.cuda.device_count():
        raise ValueError(
            f"device={device!r} was requested but only "
            f"{torch.cuda.device_count()} CUDA device(s) are present."
        )
    if device == "cuda" and process_group()[1] > 1:
        return f"cuda:{local_rank()}"
    return device


@functools.lru_cache(maxsize=None)
def supports_fused(optimizer_class, device):
    """Whether ``optimizer_class(..., fused=True)`` steps on ``device``.

    Fused optimizers update all parameters in one kernel: the same arithmetic
    as the default per-parameter loop, with far less overhead. Older PyTorch
    versions support them on CUDA only, and some optimizers not at all.
    """
    try:
        param = torch.nn.Parameter(torch.zeros(1, device=device))
        optimizer = optimizer_class([param], lr=1e-3, fused=True)
        param.grad = torch.zeros_like(param)
        optimizer.step()
    except (TypeError, RuntimeError, ValueError):
        return False
    return True


def process_group():
    """``(rank, world_size)`` of this process in ``torch.distributed``.

    ``(0, 1)`` unless a process group with more than one process is set up,
    for example by ``torchrun`` and ``torch.distributed.init_process_group``.
    """
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def local_rank():
    """This process's index among the processes of its machine.

    ``torchrun`` sets ``LOCAL_RANK``; without it, the global rank modulo the
    number of GPUs, which is the same on a single machine.
    """
    if "LOCAL_RANK" in os.environ:
        return int(os.environ["LOCAL_RANK"])
    return process_group()[0] % max(1, torch.cuda.device_count())


def shared_seed(seed, device):
    """The seed of process 0, on every process of the group.

    NCCL communicates through GPU tensors: the broadcast goes through this
    process's own ``device``, not through whichever GPU happens to be current.
    """
    if process_group()[1] == 1:
        return seed
    box = [seed]
    on = torch.device(device) if torch.distributed.get_backend() == "nccl" else None
    torch.distributed.broadcast_object_list(box, src=0, device=on)
    return box[0]


def draw_seed(random_state):
    """Draw a 31-bit seed from a ``numpy.random.RandomState``."""
    return int(random_state.randint(np.iinfo(np.int32).max))


def seeded_generator(seed, device):
    """A ``torch.Generator`` on ``device``, seeded with ``seed``.

    Sampling functions given a generator need one of the device their tensors
    live on: a CPU generator cannot draw CUDA tensors.
    """
    return torch.Generator(device=device).manual_seed(seed)


def seed_torch(seed, device):
    """Seed torch's global generators of the CPU and of ``device``.

    Unlike ``torch.manual_seed``, which seeds every CUDA device, this touches
    only the generators that ``forked_rng`` saves and restores.
    """
    torch.default_generator.manual_seed(seed)
    device = torch.device(device)
    if device.type == "cuda":
        with torch.cuda.device(device):
            torch.cuda.manual_seed(seed)


@contextmanager
def forked_rng(seed, device):
    """Run a block with torch's global generators seeded, then restore them.

    Module initialisation, the reparameterisation noise and gamma draws use
    torch's global generators of the CPU and of the device the tensors live
    on. Only those two are seeded, and both are restored afterwards, so the
    caller's random state, on the CPU and on every GPU, is left as it was.
    """
    device = torch.device(device)
    gpus = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=gpus, device_type="cuda"):
        seed_torch(seed, device)
        yield


# SplitMix64's increment and the multipliers of its finaliser.
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
MIX1 = np.uint64(0xBF58476D1CE4E5B9)
MIX2 = np.uint64(0x94D049BB133111EB)


def _signed(value):
    """The int64 with the bits of the uint64 ``value``: torch computes the
    uint64 arithmetic of SplitMix64 in int64, which wraps alike."""
    return int(np.array(value, dtype=np.uint64).view(np.int64))


def _shift_right(z, bits):
    """Logical right shift of int64 ``z`` read as uint64."""
    return (z >> bits) & ((1 << (64 - bits)) - 1)


def _mix64(z):
    """SplitMix64 finaliser, a bijective scramble of uint64 values, on an
    int64 tensor holding their bits (wrap-around multiplication modulo 2**64
    is the point, not an accident)."""
    z = (z ^ _shift_right(z, 30)) * _signed(MIX1)
    z = (z ^ _shift_right(z, 27)) * _signed(MIX2)
    return z ^ _shift_right(z, 31)


def golden_steps(n):
    """``1, 2, ..., n`` times ``_GOLDEN`` modulo 2**64: the position and
    counter offsets of ``row_keyed_normal`` (a uint64 array)."""
    return np.arange(1, n + 1, dtype=np.uint64) * _GOLDEN


def _golden_tensor(n, device):
    """``golden_steps(n)`` as an int64 tensor on ``device``."""
    steps = torch.arange(1, n + 1, dtype=torch.int64, device=device)
    return steps * _signed(_GOLDEN)


def seed_key(seed):
    """The key that ``seed`` mixes into every row's key (a uint64 scalar)."""
    key = _mix64(torch.tensor([_signed(seed)]) + _signed(_GOLDEN)).item()
    return np.array(key, dtype=np.int64).view(np.uint64)[()]


def row_keyed_normal(X, n_draws, n_dims, seed):
    """Standard normal draws keyed by the values of each row of ``X``.

    Each row gets its own stream of draws that depends only on the row's
    values and ``seed``, so estimates built from them do not change when rows
    are reordered, subset or batched differently, and never touch a global
    random generator. They are computed on ``X``'s device, bit for bit as on
    the CPU up to the last rounding of the inverse normal CDF.

    Parameters
    ----------
    X : Tensor of shape (n_rows, n_features), on any device (its float32
        values are the keys)
    n_draws, n_dims : int
    seed : int

    Returns
    -------
    eps : Tensor of shape (n_draws, n_rows, n_dims), float32, on X's device
    """
    X = X.to(torch.float32).contiguous()
    bits = X.view(torch.int32).to(torch.int64) & 0xFFFFFFFF
    hashed = _mix64(bits + _golden_tensor(X.shape[1], X.device))
    keys = _mix64(hashed.sum(dim=1)) ^ _signed(seed_key(seed))
    counters = _golden_tensor(n_draws * n_dims, X.device)
    # The top 53 bits give a uniform in (0, 1); the inverse normal CDF maps it.
    top = _shift_right(_mix64(keys[:, None] + counters), 11)
    uniform = (top.to(torch.float64) + 0.5) * 2.0**-53
    eps = torch.special.ndtri(uniform).to(torch.float32)
    return eps.reshape(len(X), n_draws, n_dims).transpose(0, 1)


def plain(value):
    """``value`` as a plain Python value (NumPy scalars unwrapped): messages
    then show ``0`` where a user wrote 0, not NumPy's ``np.int64(0)``."""
    return value.item() if isinstance(value, np.generic) else value


def to_tensor(X):
    """Float32 CPU tensor that shares memory with ``X`` when it can."""
    # Values beyond float32's range become inf here; callers check results.
    with np.errstate(over="ignore"):
        X = np.ascontiguousarray(X, dtype=np.float32)
    with warnings.catch_warnings():
        # Read-only arrays (memmaps) are fine: the tensor is never written to.
        warnings.filterwarnings("ignore", message="The given NumPy array is not writ")
        return torch.from_numpy(X)


def to_numpy(tensor, dtype):
    """Host ndarray of ``dtype`` from a tensor on any device."""
    return tensor.detach().cpu().numpy().astype(dtype, copy=False)
