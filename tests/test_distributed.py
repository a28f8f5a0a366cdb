"""Data-parallel training of one model over two processes (gloo, loopback)."""

import json
import os
import socket
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from skvae import VAETransformer

WORKER = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import torch
    import torch.distributed as dist
    from sklearn.datasets import load_digits
    from skvae import VAETransformer

    dist.init_process_group("gloo")  # rank, size and address from torchrun's env
    torch.set_num_threads(1)
    X = load_digits().data / 16.0
    vae = VAETransformer(max_epochs=40, n_iter_no_change=40, random_state=0)
    vae.fit(X[:1400])
    weights = torch.cat([p.detach().flatten() for p in vae.net_.module_.parameters()])
    result = {
        "score": vae.score(X[1400:]),
        "n_iter": vae.n_iter_,
        "batches": len(vae.history_[-1, "batches"]),
        "checksum": float(weights.double().sum()),
    }
    with open(sys.argv[1], "w") as f:
        json.dump(result, f)
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
    script.write_text(WORKER)
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

    # Two processes of 128 rows each take the steps of one process with batches
    # of 256: the same training, so the same model within noise.
    X = digits[0]
    single = VAETransformer(
        max_epochs=40, n_iter_no_change=40, batch_size=256, random_state=0
    ).fit(X[:1400])
    assert ranks[0]["score"] == pytest.approx(single.score(X[1400:]), rel=0.02)
