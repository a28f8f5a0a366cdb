"""Grid searches on joblib's process pool and on a dask cluster."""

import joblib
import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose
from sklearn.model_selection import GridSearchCV

from skvae import VAETransformer

GRID = {"n_components": [1, 3]}


def _search(X, n_jobs=None):
    search = GridSearchCV(
        VAETransformer(max_epochs=4, random_state=0), GRID, cv=2, n_jobs=n_jobs
    )
    return search.fit(X)


@pytest.fixture(scope="module")
def sequential(digits):
    return _search(digits[0][:600])


def _threads_in_worker(_):
    return torch.get_num_threads()


def test_process_workers_do_not_oversubscribe_the_cores():
    n_cores = joblib.cpu_count()
    threads = joblib.Parallel(n_jobs=2)(
        joblib.delayed(_threads_in_worker)(i) for i in range(2)
    )
    assert 2 * max(threads) <= max(n_cores, 2)


def test_grid_search_with_process_workers(digits, sequential):
    parallel = _search(digits[0][:600], n_jobs=2)
    assert parallel.best_params_ == sequential.best_params_
    # Workers run torch with fewer threads: sums round differently, slightly.
    assert_allclose(
        parallel.cv_results_["mean_test_score"],
        sequential.cv_results_["mean_test_score"],
        rtol=1e-3,
    )


def test_grid_search_on_a_dask_cluster(digits, sequential):
    distributed = pytest.importorskip("distributed")
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        # Each worker runs PyTorch on its share of the cores.
        threads = client.run(_threads_in_worker, 0)
        assert 2 * max(threads.values()) <= max(joblib.cpu_count(), 2)
        with joblib.parallel_backend("dask"):
            on_dask = _search(digits[0][:600], n_jobs=-1)
    assert on_dask.best_params_ == sequential.best_params_
    assert_allclose(
        on_dask.cv_results_["mean_test_score"],
        sequential.cv_results_["mean_test_score"],
        rtol=1e-3,
    )
    assert np.isfinite(on_dask.best_estimator_.score(digits[0][:50]))


def test_grid_search_on_ray(digits, sequential):
    ray_joblib = pytest.importorskip("ray.util.joblib")
    import ray

    ray.init(num_cpus=2, include_dashboard=False)
    try:
        ray_joblib.register_ray()
        with joblib.parallel_backend("ray"):
            on_ray = _search(digits[0][:600], n_jobs=2)
    finally:
        ray.shutdown()
    assert on_ray.best_params_ == sequential.best_params_
