"""Data-parallel training of one model over two processes (gloo, loopback)."""

import json
import os
import pickle
import socket
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from skvae import VAETransformer

# Plain SGD, whose steps scale with the gradients (Adam's do not): gradients
# summed rather than averaged over the processes would double every step.
PARAMS = dict(
    max_epochs=5,
    optimizer="sgd",
    learning_rate=0.02,
    n_iter_no_change=5,
    random_state=0,
)

WORKER = textwrap.dedent(
    """
    import json, pickle, sys
    import numpy as np
    import torch
    import torch.distributed as dist
    from sklearn.datasets import load_digits
    from skvae import VAETransformer
    from skvae._callbacks import AverageGradients

    dist.init_process_group("gloo")  # rank, size and address from torchrun's env
    torch.set_num_threads(1)
    X = load_digits().data / 16.0
    vae = VAETransformer(**PARAMS)
    vae.fit(X[:1400])
    weights = torch.cat([p.detach().flatten() for p in vae.net_.module_.parameters()])
    # Gradients 1 in one process and 2 in the other average to 1.5.
    param = torch.nn.Parameter(torch.zeros(3))
    param.grad = torch.full((3,), dist.get_rank() + 1.0)
    AverageGradients().on_grad_computed(vae.net_, named_parameters=[("p", param)])
    result = {
        "score": vae.score(X[1400:]),
        "loss_curve": vae.loss_curve_,
        "n_iter": vae.n_iter_,
        "batches": vae.history_[-1, "train_batch_count"],
        "checksum": float(weights.double().sum()),
        "averaged_gradient": param.grad.tolist(),
    }
    with open(sys.argv[1], "w") as f:
        json.dump(result, f)
    with open(sys.argv[1] + ".pkl", "wb") as f:
        pickle.dump(vae, f)
    dist.destroy_process_group()
    """
)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(not torch.distributed.is_available(), reason="no torch.distributed")
def test_two_processes_train_one_model_like_one_process(tmp_path, digits):
    script = tmp_path / "worker.py"
    script.write_text(WORKER.replace("**PARAMS", f"**{PARAMS!r}"))
    env = dict(
        os.environ,
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(_free_port()),
        WORLD_SIZE="2",
        OMP_NUM_THREADS="1",
    )
    workers = [
        subprocess.Popen(
            [sys.executable, str(script), str(tmp_path / f"rank{rank}.json")],
            env=dict(env, RANK=str(rank), LOCAL_RANK=str(rank)),
        )
        for rank in range(2)
    ]
    for worker in workers:
        assert worker.wait(timeout=300) == 0
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    # The two copies of the model stayed identical, and each process ran half
    # of every epoch's batches.
    assert ranks[0]["checksum"] == ranks[1]["checksum"]
    assert ranks[0]["score"] == ranks[1]["score"]
    assert ranks[0]["batches"] == int(np.ceil(1400 / 2 / 128))
    assert ranks[0]["averaged_gradient"] == ranks[1]["averaged_gradient"] == [1.5] * 3

    # A model pickled inside the group and used outside it trains on all rows.
    with open(tmp_path / "rank0.json.pkl", "rb") as f:
        restored = pickle.load(f)
    restored.partial_fit(digits[0][:10])
    assert restored.history_[-1, "train_rows"] == 10

    # Two processes of 128 rows each take the steps of one process with batches
    # of 256: the same training, so the same losses and model within noise
    # (with steps twice as long, the mean loss is 5 % lower).
    X = digits[0]
    single = VAETransformer(**PARAMS, batch_size=256).fit(X[:1400])
    assert np.mean(ranks[0]["loss_curve"]) == pytest.approx(
        np.mean(single.loss_curve_), rel=0.02
    )
    assert ranks[0]["score"] == pytest.approx(single.score(X[1400:]), rel=0.03)


def test_each_process_of_a_group_uses_its_own_gpu(monkeypatch):
    from skvae import _utils

    monkeypatch.setattr(_utils, "process_group", lambda: (3, 4))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert _utils.resolve_device("cuda") == "cuda:1"
    assert _utils.resolve_device("auto") == "cuda:1"
    assert _utils.resolve_device("cuda:0") == "cuda:0"  # an explicit choice stays
    monkeypatch.delenv("LOCAL_RANK")
    assert _utils.resolve_device("cuda") == "cuda:1"  # rank 3 of 2 GPUs a machine


@pytest.mark.parametrize("backend, device", [("nccl", "cuda:1"), ("gloo", None)])
def test_the_seed_is_broadcast_on_the_processs_own_device(monkeypatch, backend, device):
    from skvae import _utils

    calls = []
    monkeypatch.setattr(_utils, "process_group", lambda: (1, 2))
    monkeypatch.setattr(torch.distributed, "get_backend", lambda: backend)
    monkeypatch.setattr(
        torch.distributed,
        "broadcast_object_list",
        lambda box, src, device=None: calls.append(device) or box.__setitem__(0, 7),
    )
    assert _utils.shared_seed(3, "cuda:1") == 7
    assert calls == [None if device is None else torch.device(device)]
