"""Hyper-parameter search in parallel: worker processes and a dask cluster.

A fit is deterministic (fixed ``random_state``, rows put in a canonical order
first), so a search gives the same results however its fits are scheduled.
BLAS is held to one thread everywhere, so that no GEMM changes its summation
order between the parent process and the workers.
"""

import warnings

import joblib
import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from sklearn_gatedmem import LSTMClassifier
from conftest import CELL_NAMES

PARAM_GRID = {
    "lstmclassifier__hidden_layer_sizes": [2, 6],
    "lstmclassifier__cell": CELL_NAMES,
}


def _search(n_jobs):
    rng = np.random.RandomState(0)
    X = rng.normal(size=(90, 8))
    y = (X[:, :2].sum(axis=1) > 0).astype(int)
    pipe = make_pipeline(StandardScaler(), LSTMClassifier(max_iter=15, random_state=0))
    search = GridSearchCV(pipe, PARAM_GRID, cv=3, n_jobs=n_jobs)
    with warnings.catch_warnings(), threadpool_limits(limits=1):
        warnings.simplefilter("ignore", ConvergenceWarning)
        return search.fit(X, y)


def _scores(search):
    return {
        key: value for key, value in search.cv_results_.items()
        if key.startswith(("split", "mean_test", "std_test", "rank_test"))
    }


@pytest.fixture(scope="module")
def sequential():
    return _search(n_jobs=1)


def test_sequential_search_finds_differences(sequential):
    scores = sequential.cv_results_["mean_test_score"]
    assert len(scores) == 2 * len(CELL_NAMES) and np.ptp(scores) > 0  # the grid matters


def _assert_same_search(search, reference):
    assert search.best_params_ == reference.best_params_
    assert search.best_score_ == reference.best_score_
    ours, theirs = _scores(search), _scores(reference)
    assert ours.keys() == theirs.keys()
    for key in ours:
        np.testing.assert_array_equal(ours[key], theirs[key], err_msg=key)


def test_two_worker_processes_match_one(sequential):
    with joblib.parallel_config(backend="loky", inner_max_num_threads=1):
        parallel = _search(n_jobs=2)
    _assert_same_search(parallel, sequential)


def test_dask_cluster_matches_one_process(sequential):
    distributed = pytest.importorskip("dask.distributed")
    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None
    ) as cluster, distributed.Client(cluster) as client:
        with distributed.get_task_stream(client) as tasks:
            with joblib.parallel_backend("dask"):
                on_dask = _search(n_jobs=-1)
    assert tasks.data, "no task ran on the cluster"  # joblib batches the fits
    _assert_same_search(on_dask, sequential)
