"""Tests of _processes: a fit's networks (the "auto" search's, the
ensemble's) shared between this thread and worker processes."""

import contextlib
import os
import threading
import time

import joblib
import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning

from sklearn_gatedmem import LSTMClassifier, _objective, _processes
from sklearn_gatedmem._base import _fit_members


def series(n_samples=30, n_steps=40, seed=0):
    """Series whose class says which half has the larger mean."""
    X = np.random.RandomState(seed).normal(size=(n_samples, n_steps, 1))
    half = n_steps // 2
    return X, (X[:, :half, 0].mean(axis=1) > X[:, half:, 0].mean(axis=1)).astype(int)


def loky_workers():
    """The pids of this process's loky worker processes (Linux: from /proc),
    as a set: joblib's own reusable workers (an earlier test's
    ``GridSearchCV(n_jobs=2)``) may be among them, so tests compare with the
    set before."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                parent = int(stat.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{entry}/cmdline", "rb") as cmdline:
                command = cmdline.read()
        except OSError:  # ended meanwhile
            continue
        if parent == os.getpid() and b"LokyProcess" in command:
            pids.append(int(entry))
    return set(pids)


@pytest.fixture
def workers_before():
    """This process's loky workers when the test starts."""
    return loky_workers()


@pytest.fixture
def slow_here(monkeypatch):
    """This process's networks start after a pause: the worker, which takes
    a while to start, then surely fits some of them."""
    original = _processes.beside_other_fits

    @contextlib.contextmanager
    def paused(stop):
        time.sleep(0.5)
        with original(stop):
            yield

    monkeypatch.setattr(_processes, "beside_other_fits", paused)


def networks_and_data(n_networks, max_iter=5):
    X, y = series()
    networks = [LSTMClassifier(hidden_layer_sizes=4, max_iter=max_iter, alpha=1.0,
                               n_ensemble=1, random_state=k) for k in range(n_networks)]
    data = [(X[k:], y[k:], None) for k in range(n_networks)]
    return networks, data


def test_a_search_is_shared_only_when_it_has_work_for_seconds():
    # Trace cut to 30: 6 networks of 31 patches, 100 iterations, 20 rows
    assert _processes.worth_processes([31] * 6, 100, 20)
    assert not _processes.worth_processes([31] * 6, 10, 20)
    assert not _processes.worth_processes([1] * 12, 100, 20)  # tables: one step
    assert not _processes.worth_processes([31] * 6, 100, 5000)  # threads do as well
    # workers the search started take any work, not any batch
    assert _processes.worth_processes([1] * 3, 10, 500, started=True)
    assert not _processes.worth_processes([1] * 3, 10, 5000, started=True)
    # the user keeps joblib (so a fit) from starting processes
    with joblib.parallel_config(backend="threading"):
        assert not _processes.worth_processes([31] * 6, 100, 20)
    with joblib.parallel_config(n_jobs=1):
        assert not _processes.worth_processes([31] * 6, 100, 20)


def test_an_ensemble_counts_the_steps_and_rows_its_networks_read():
    # 16 series of 40 steps, 4 of 2,000: read in patches of 2 (the upper
    # quartile's), 1,000 patch steps each, not the longest's 32 patches of 63
    rng = np.random.RandomState(0)
    X = rng.normal(size=(20, 2000, 1))
    X[:16, 40:] = np.nan
    est = LSTMClassifier(variable_length=True)
    assert est._worth_processes(X, started=False)
    assert not est.set_params(patch_size=63)._worth_processes(X, started=False)
    # equal lengths: each case read patch_shifts ways, rows of every reading
    X = rng.normal(size=(250, 400, 1))  # 50 patches of 8, 3 networks, 100 iterations
    assert LSTMClassifier(patch_size=8, patch_shifts=1)._worth_processes(X, False)
    assert not LSTMClassifier(patch_size=8, patch_shifts=5)._worth_processes(X, False)


def test_a_joblib_that_hides_its_backend_keeps_fits_in_threads(monkeypatch):
    monkeypatch.setattr(_processes, "get_active_backend", None)
    assert not _processes.worth_processes([31] * 6, 100, 20)


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="counts worker processes in /proc")
def test_networks_fitted_in_workers_are_those_fitted_here(slow_here, workers_before):
    networks, data = networks_and_data(16)
    here, _ = _fit_members([clone(n) for n in networks], 1, data)
    threads = threading.active_count()
    with _processes.Workers() as workers:
        shared, stops = _processes.fit_shared(networks, data, 2, workers)
    assert len(stops) == len(shared) and all(len(kept) == 1 for kept in stops)  # max_iter
    in_workers = [a is not b for a, b in zip(shared, networks)]  # copies came back
    assert any(in_workers) and not all(in_workers)
    for a, b in zip(here, shared):
        assert a.n_iter_ == b.n_iter_
        for name in a.coefs_:
            np.testing.assert_array_equal(a.coefs_[name], b.coefs_[name])
    # nothing of the search outlives it
    assert threading.active_count() == threads, threading.enumerate()
    assert loky_workers() <= workers_before  # none of the fit's is left


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="counts worker processes in /proc")
def test_a_network_error_in_a_worker_is_raised_here_and_ends_the_workers(
        slow_here, workers_before):
    networks, data = networks_and_data(8)
    X, y, _ = data[0]
    X = X.copy()
    X[0, 0, 0] = np.inf  # the first network (a worker's) cannot be fitted
    data[0] = (X, y, None)
    threads = threading.active_count()
    with pytest.raises(ValueError, match="infinity"), _processes.Workers() as workers:
        _processes.fit_shared(networks, data, 2, workers)
    assert threading.active_count() == threads
    assert loky_workers() <= workers_before  # none of the fit's is left


def test_a_workers_warnings_are_warned_here(slow_here):
    """A warning of a network fitted in a worker is warned again in this
    process, whose filters decide, as for a network in a thread."""
    from sklearn.exceptions import DataConversionWarning

    networks, data = networks_and_data(16)
    X, y, _ = data[0]
    data[0] = (X, y[:, None], None)  # the worker's first: a column-vector y
    with pytest.warns(DataConversionWarning, match="column-vector"), \
            _processes.Workers() as workers:
        shared, _ = _processes.fit_shared(networks, data, 2, workers)
    assert shared[0] is not networks[0]  # fitted in the worker


def test_without_processes_the_networks_are_fitted_here(monkeypatch):
    """Where no process can be started (no shared memory for the stop
    event, as in some sandboxes), this thread fits every network."""
    def no_shared_memory(*args):
        raise OSError("[Errno 38] Function not implemented")

    monkeypatch.setattr(_processes, "get_context", no_shared_memory)
    networks, data = networks_and_data(4)
    here, _ = _fit_members([clone(n) for n in networks], 1, data)
    with _processes.Workers() as workers:
        shared, _ = _processes.fit_shared(networks, data, 2, workers)
        assert not workers.started
    assert all(a is b for a, b in zip(shared, networks))  # fitted here
    for a, b in zip(here, shared):
        for name in a.coefs_:
            np.testing.assert_array_equal(a.coefs_[name], b.coefs_[name])


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="counts worker processes in /proc")
def test_a_worker_that_fails_hands_its_network_back(monkeypatch, workers_before):
    """A worker that dies (or cannot be sent its network) loses nothing:
    this thread fits that network and the rest.

    The worker "runs" at once: waiting for a real process to start, the
    feeder could find every network taken by this thread, which fitted all
    twelve first on a fast machine (the worker was then given none)."""
    from concurrent.futures import Future
    from concurrent.futures.process import BrokenProcessPool

    executor = _processes.Workers.executor
    given = []

    def breaking(self, n_workers):
        pool = executor(self, n_workers)

        class Breaking:
            def submit(self, fn, *args):
                if fn is _processes._running:
                    running = Future()
                    running.set_result(True)
                    return running
                if fn is _processes._fit_in_worker:
                    given.append(args[0].random_state)
                    raise BrokenProcessPool("A worker died")
                return pool.submit(fn, *args)

        return Breaking()

    monkeypatch.setattr(_processes.Workers, "executor", breaking)
    networks, data = networks_and_data(12, max_iter=30)
    here, _ = _fit_members([clone(n) for n in networks], 1, data)
    with _processes.Workers() as workers:
        shared, _ = _processes.fit_shared(networks, data, 2, workers)
    assert len(given) == 1  # the worker got one network, then gave up
    assert all(a is b for a, b in zip(shared, networks))  # all fitted here
    for a, b in zip(here, shared):
        for name in a.coefs_:
            np.testing.assert_array_equal(a.coefs_[name], b.coefs_[name])
    assert loky_workers() <= workers_before  # none of the fit's is left


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_the_search_chooses_alike_in_workers_and_here(monkeypatch, slow_here):
    X, y = series(n_samples=24, n_steps=64)
    params = dict(hidden_layer_sizes=4, max_iter=15, n_ensemble=1, random_state=0)
    monkeypatch.setattr("sklearn_gatedmem._base.blas_threads", lambda: 2)
    calls = []

    def counting(*args, **kwargs):
        calls.append(1)
        return _processes.fit_shared(*args, **kwargs)

    monkeypatch.setattr("sklearn_gatedmem._base.fit_shared", counting)
    monkeypatch.setattr(_processes, "PROCESSES_FROM_STEPS", 10**12)
    here = LSTMClassifier(**params).fit(X, y)
    assert calls == []
    monkeypatch.setattr(_processes, "PROCESSES_FROM_STEPS", 0)
    shared = LSTMClassifier(**params).fit(X, y)
    assert calls == [1]
    for name in ("mean_test_score", "std_test_score", "mean_test_log_loss", "rank_test_score"):
        np.testing.assert_array_equal(here.cv_results_[name], shared.cv_results_[name])
    np.testing.assert_array_equal(here.predict_proba(X), shared.predict_proba(X))


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="counts worker processes in /proc")
def test_ctrl_c_in_a_shared_search_fits_nothing_and_ends_the_workers(
        monkeypatch, slow_here, ctrl_c, workers_before):
    X, y = series(n_samples=24, n_steps=64)
    monkeypatch.setattr("sklearn_gatedmem._base.blas_threads", lambda: 2)
    monkeypatch.setattr(_processes, "PROCESSES_FROM_STEPS", 0)
    timer = threading.Timer(1.0, ctrl_c)
    try:
        timer.start()
        with pytest.raises(KeyboardInterrupt, match="choosing"):
            LSTMClassifier(hidden_layer_sizes=4, max_iter=300, tol=0, random_state=0).fit(X, y)
    finally:
        timer.join()
    assert loky_workers() <= workers_before  # none of the fit's is left


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_ensemble_members_fitted_in_workers_are_those_fitted_here(monkeypatch):
    """With no search (alpha fixed), the members alone are worth workers."""
    X, y = series(n_samples=24, n_steps=64)
    params = dict(hidden_layer_sizes=4, max_iter=15, alpha=1.0, n_ensemble=4, random_state=0)
    monkeypatch.setattr("sklearn_gatedmem._base.blas_threads", lambda: 2)
    monkeypatch.setattr(_processes, "PROCESSES_FROM_STEPS", 10**12)
    here = LSTMClassifier(**params).fit(X, y)
    monkeypatch.setattr(_processes, "PROCESSES_FROM_STEPS", 0)
    shared = LSTMClassifier(**params).fit(X, y)
    for a, b in zip(here.estimators_, shared.estimators_):
        assert a.random_state == b.random_state and a.n_iter_ == b.n_iter_
        for name in a.coefs_:
            np.testing.assert_array_equal(a.coefs_[name], b.coefs_[name])
    np.testing.assert_array_equal(here.predict_proba(X), shared.predict_proba(X))


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="counts worker processes in /proc")
def test_ctrl_c_stops_the_members_in_workers_at_their_best_weights(
        monkeypatch, ctrl_c, workers_before):
    """Ctrl-C reaches this process only; it ends its member, and through the
    workers' stop theirs, at their best weights: no running member is lost,
    none is started after."""
    X, _ = series(n_samples=60, n_steps=64)
    y = np.random.RandomState(1).randint(2, size=len(X))  # no quick convergence
    monkeypatch.setattr("sklearn_gatedmem._base.blas_threads", lambda: 2)
    monkeypatch.setattr(_processes, "PROCESSES_FROM_STEPS", 0)
    given, executor = [], _processes.Workers.executor

    def recording(self, n_workers):  # notes when a worker is given a member
        pool = executor(self, n_workers)

        class Recording:
            def submit(self, fn, *args):
                given.append(fn is _processes._fit_in_worker)
                return pool.submit(fn, *args)

        return Recording()

    monkeypatch.setattr(_processes.Workers, "executor", recording)
    evaluations, original = [], _objective.loss_grad

    def counting(theta, *args, **kwargs):  # this process's evaluations only
        if any(given):
            evaluations.append(1)
            if len(evaluations) == 20:  # the worker fits its member by now
                ctrl_c()
        return original(theta, *args, **kwargs)

    monkeypatch.setattr(_objective, "loss_grad", counting)
    with pytest.warns(ConvergenceWarning, match="interrupted"):
        est = LSTMClassifier(hidden_layer_sizes=8, max_iter=5000, tol=0, random_state=0,
                             n_ensemble=4, alpha=1.0, patch_size=2).fit(X, y)  # no search
    assert len(evaluations) >= 20  # the interrupt was sent
    # this thread's first member and the worker's first, both interrupted
    assert len(est.estimators_) == 2 and est._interrupted
    assert all(m._interrupted and m.n_iter_ < 5000 for m in est.estimators_)
    assert est.predict_proba(X).shape == (len(X), 2)
    assert loky_workers() <= workers_before  # none of the fit's is left


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_a_large_ensemble_stays_in_threads_after_a_shared_search(monkeypatch):
    """The classifier searches a sample of 100 cases in workers; its
    ensemble on all 1,200 rows stays in threads (large batches)."""
    X, y = series(n_samples=1200, n_steps=64)
    monkeypatch.setattr("sklearn_gatedmem._base.blas_threads", lambda: 2)
    monkeypatch.setattr(_processes, "PROCESSES_FROM_STEPS", 0)
    rows = []

    def recording(networks, data, n_at_once, workers):
        rows.append(len(data[0][0]))
        return _processes.fit_shared(networks, data, n_at_once, workers)

    monkeypatch.setattr("sklearn_gatedmem._base.fit_shared", recording)
    est = LSTMClassifier(hidden_layer_sizes=4, max_iter=3, random_state=0).fit(X, y)
    assert est.cv_results_ is not None and len(est.estimators_) == 3
    assert rows and max(rows) <= 100  # the search's networks only
