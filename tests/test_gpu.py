"""Tables, donors, the local view and persistence with a model fitted on a GPU.

Each test fits on ``device="cuda"`` and checks the result against what the
same model gives on the CPU: a model saved on a GPU loads in a process that
sees no CUDA device, and its codes, scores and fills match there to float32
rounding (scores and fills average draws keyed by each row's values, which
are the same on every device).
"""

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch
from numpy.testing import assert_allclose

from skvae import VAEImputer, VAEOutlierDetector, VAETransformer
from skvae._utils import row_keyed_normal

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]

SMALL = dict(
    max_epochs=15,
    batch_size=32,
    learning_rate=1e-2,
    hidden_layer_sizes=(32,),
    random_state=0,
    device="cuda",
)


@pytest.fixture(scope="module")
def table():
    """Mixed columns; gaps in w depend on c (MAR)."""
    rng = np.random.default_rng(0)
    n = 400
    x = rng.normal(size=n)
    c = np.where(rng.random(n) < 0.5, "a", "b").astype(object)
    w = np.where(c == "a", 3.0, -3.0) + 0.3 * rng.normal(size=n)
    w[(c == "a") & (rng.random(n) < 0.4)] = np.nan
    return pd.DataFrame(
        {
            "x": x,
            "y": 2 * x + 0.1 * rng.normal(size=n),
            "c": pd.Categorical(c),
            "w": w,
            "n": rng.integers(0, 10, size=n),
        }
    )


def _on_a_cpu_only_machine(path, cls, method, data_path):
    """Load ``path`` in a process without CUDA and return ``method``'s output."""
    code = (
        "import json, sys, numpy as np, pandas as pd, torch\n"
        "import skvae\n"
        "assert not torch.cuda.is_available()\n"
        f"model = skvae.{cls}.load({str(path)!r})\n"
        f"X = pd.read_pickle({str(data_path)!r})\n"
        f"out = np.asarray(model.{method}(X), dtype=float)\n"
        "print(json.dumps(out.tolist()))\n"
    )
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    run = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr
    return np.array(json.loads(run.stdout.splitlines()[-1]))


def test_row_keyed_draws_are_the_same_on_the_gpu():
    X = torch.randn(3_000, 17)
    X[0, 3] = float("nan")
    on_cpu = row_keyed_normal(X, 10, 4, seed=5)
    on_gpu = row_keyed_normal(X.cuda(), 10, 4, seed=5)
    assert on_gpu.is_cuda
    assert_allclose(on_gpu.cpu().numpy(), on_cpu.numpy(), rtol=1e-6, atol=1e-6)


def test_a_table_fitted_on_the_gpu_samples_steers_and_loads_on_a_cpu(table, tmp_path):
    vae = VAETransformer(**SMALL).fit(table)
    assert next(vae.net_.module_.parameters()).is_cuda

    out = vae.sample(2_000, random_state=0)
    assert list(out.columns) == list(table.columns)
    assert (out.dtypes == table.dtypes).all()
    rate = table["w"].isna().mean()
    assert abs(out["w"].isna().mean() - rate) < 0.03
    by_c = out["w"].isna().groupby(out["c"], observed=True).mean()
    assert by_c["a"] > 2 * by_c["b"]  # gaps stay with c (0.4 against 0)

    given = vae.sample(200, given={"c": "b", "n": 3}, random_state=0)
    assert (given["c"] == "b").all() and (given["n"] == 3).all()
    assert given["w"].mean() < 0  # w follows c
    again = vae.sample(200, given={"c": "b", "n": 3}, random_state=0)
    pd.testing.assert_frame_equal(given, again)

    path = tmp_path / "table.safetensors"
    vae.save(path)
    data = tmp_path / "table.pkl"
    table.to_pickle(data)
    codes = _on_a_cpu_only_machine(path, "VAETransformer", "transform", data)
    assert_allclose(codes, vae.transform(table), rtol=1e-4, atol=1e-5)


def test_donor_imputer_on_the_gpu_matches_its_cpu_copy(table, tmp_path):
    imputer = VAEImputer(n_neighbors="auto", **SMALL).fit(table)
    filled = imputer.transform(table)
    assert not filled.isna().any().any()
    assert set(filled["n"]) <= set(table["n"])  # donors keep the integer grid
    observed = table["w"].notna()
    assert_allclose(filled.loc[observed, "w"], table.loc[observed, "w"])

    path = tmp_path / "imputer.safetensors"
    imputer.save(path)
    data = tmp_path / "gaps.pkl"
    table.drop(columns="c").to_pickle(data)
    numeric = VAEImputer(n_neighbors="auto", **SMALL).fit(table.drop(columns="c"))
    numeric.save(path)
    on_cpu = _on_a_cpu_only_machine(path, "VAEImputer", "transform", data)
    on_gpu = numeric.transform(table.drop(columns="c")).to_numpy(dtype=float)
    assert_allclose(on_cpu, on_gpu, rtol=1e-4, atol=1e-4)


def test_local_detector_on_the_gpu_matches_its_cpu_copy(table, tmp_path):
    X = table[["x", "y", "n"]].astype(float)
    detector = VAEOutlierDetector(n_neighbors=10, contamination=0.05, **SMALL)
    labels = detector.fit(X).predict(X)
    # offset_ comes from cross-fitted scores (novelty=True): the training rows
    # scored by the final model are flagged a little less often.
    assert 0.01 < (labels == -1).mean() < 0.08
    scores = detector.score_samples(X)
    assert_allclose(detector.decision_function(X), scores - detector.offset_)
    far = pd.DataFrame({"x": [0.0], "y": [8.0], "n": [5.0]})  # y far from 2 x
    assert detector.predict(far)[0] == -1

    path = tmp_path / "detector.safetensors"
    detector.save(path)
    data = tmp_path / "rows.pkl"
    X.to_pickle(data)
    on_cpu = _on_a_cpu_only_machine(path, "VAEOutlierDetector", "score_samples", data)
    assert_allclose(on_cpu, scores, rtol=1e-4, atol=1e-4)
