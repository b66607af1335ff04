"""The L-BFGS driver: the result object, the convergence warning, early
stopping's monitor, and the BLAS thread policy under concurrent fits."""

import sys
import threading
import warnings

import numpy as np
import pytest
from scipy.optimize import OptimizeResult, rosen, rosen_der
from sklearn.exceptions import ConvergenceWarning
from threadpoolctl import threadpool_info

from conftest import sequences
from sklearn_gatedmem import LSTMClassifier
from sklearn_gatedmem._optimize import (
    LBFGSResult,
    ValidationMonitor,
    _check_lbfgs_result,
    fit_lbfgs,
)


def _quadratic(theta):
    return 0.5 * float(theta @ theta), theta.copy()


def test_fit_lbfgs_returns_one_result():
    result = fit_lbfgs(_quadratic, np.full(3, 2.0), max_iter=50, max_fun=100, tol=1e-10)
    assert isinstance(result, LBFGSResult)
    np.testing.assert_allclose(result.x, 0, atol=1e-8)
    assert result.n_iter == len(result.loss_curve) >= 1
    assert result.loss == result.loss_curve[-1]
    assert result.validation_scores is None and not result.interrupted


def test_the_callback_receives_scipys_intermediate_result():
    """SciPy hands the callback an OptimizeResult only when its parameter is
    named ``intermediate_result``: the monitor sees each iterate's ``x``."""
    seen = []

    def score(theta):
        seen.append(theta.copy())
        return -float(theta @ theta)

    monitor = ValidationMonitor(score)
    result = fit_lbfgs(_quadratic, np.full(3, 2.0), max_iter=50, max_fun=100, tol=1e-10,
                       monitor=monitor, n_iter_no_change=3)
    assert len(seen) == len(result.loss_curve) and seen[0].shape == (3,)
    assert result.validation_scores == monitor.scores
    assert result.best_validation_score == max(monitor.scores)


def test_early_stopping_keeps_the_best_scored_iterate():
    scores = iter([0.1, 0.5, 0.4, 0.3, 0.2, 0.1])
    monitor = ValidationMonitor(lambda theta: next(scores))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # stopping early is no convergence failure
        result = fit_lbfgs(lambda t: (rosen(t), rosen_der(t)), np.full(5, -1.5),
                           max_iter=50, max_fun=100, tol=0, monitor=monitor,
                           n_iter_no_change=3)
    assert result.n_iter == 5 and result.best_validation_score == 0.5
    assert result.loss == result.loss_curve[1]


def test_convergence_warning_after_a_failed_line_search():
    result = OptimizeResult(status=2, nit=7, nfev=30, message="ABNORMAL: ")
    with pytest.warns(ConvergenceWarning) as record:
        assert _check_lbfgs_result(result, max_iter=200, max_fun=15000, tol=1e-4) == 7
    assert len(record) == 1
    message = str(record[0].message)
    assert "iteration 7" in message and "line search" in message
    assert "tol" in message and "early_stopping" in message
    assert "scale" not in message.lower()
    converged = OptimizeResult(status=0, nit=5, nfev=9, message="CONVERGENCE")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _check_lbfgs_result(converged, 200, 15000, 1e-4) == 5


def _blas_threads():
    return [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_concurrent_fits_leave_blas_threads_as_found():
    """threadpoolctl's limit restores what it saw on entry; fits in threads
    interleave their limits. Before the reference-counted policy, rounds of 6
    fits left NumPy's BLAS at 1 thread ([2, 2, 2] became [1, 1, 2]) within 1
    to 5 rounds. A tiny switch interval makes the interleaving likely."""
    X, y, _ = sequences(60, n_steps=5, n_features=2)
    est = LSTMClassifier(hidden_layer_sizes=2, max_iter=20, tol=0, n_ensemble=1,
                         random_state=0, alpha=1.0, patch_size=None)  # one fit each
    before = _blas_threads()
    errors = []

    def fit():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                est.__class__(**est.get_params()).fit(X, y)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        for _ in range(8):
            threads = [threading.Thread(target=fit) for _ in range(6)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            assert not errors, errors
            assert _blas_threads() == before
    finally:
        sys.setswitchinterval(interval)


# -- the process's thread pools after default fits (issue 20) ------------------


def _pools():
    """Every thread pool of the process (BLAS and OpenMP) and its limit."""
    return sorted((lib["filepath"], lib["num_threads"]) for lib in threadpool_info())


@pytest.fixture
def two_blas_threads():
    """BLAS at 2 threads or more during the test, whatever the machine, so
    that the default ensemble fits its members side by side; and, as a user
    finds the process, no thread holding threadpoolctl's control of OpenBLAS
    (see ``_optimize._set_blas_threads``)."""
    from threadpoolctl import OpenBLASController, threadpool_limits

    with threadpool_limits(max(2, *_blas_threads()), user_api="blas"):
        getattr(OpenBLASController, "clear_controlling_thread", lambda: None)()
        yield


def _small_default():
    """Data on which the default ensemble fits its members side by side
    (on a machine whose BLAS has 2 threads or more), in a fraction of a second."""
    X, y, _ = sequences(60, n_steps=8, n_features=2)
    assert LSTMClassifier()._members_at_once(X) == 2
    return X, y, dict(max_iter=3)


def test_side_by_side_limits_are_restored_by_any_thread(two_blas_threads):
    """The first fit to enter sets BLAS to 1 thread; the last to leave,
    another thread, restores the limits, while the first is still alive.
    threadpoolctl lets only one Python thread at a time set OpenBLAS's
    process-wide pool; before the fix the first thread kept that control
    and the restore was ignored: the process stayed at 1 thread, and a
    limit set by the main thread was ignored too, as long as the first
    thread lived."""
    from threadpoolctl import threadpool_limits

    from sklearn_gatedmem._optimize import _blas_threads as inside_a_fit

    before = _pools()
    first_in, second_in, first_out, release = (threading.Event() for _ in range(4))

    def first():
        with inside_a_fit(_quadratic):
            first_in.set()
            second_in.wait(10)
        first_out.set()
        release.wait(10)  # alive while the second leaves and the main thread limits

    def second():
        first_in.wait(10)
        with inside_a_fit(_quadratic):
            second_in.set()
            first_out.wait(10)

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    try:
        threads[1].join(20)
        assert first_out.is_set() and not threads[1].is_alive()
        assert _pools() == before
        with threadpool_limits(1, user_api="blas"):
            assert set(_blas_threads()) == {1}
        assert _pools() == before
    finally:
        release.set()
        threads[0].join(20)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_default_fits_in_a_loop_leave_thread_pools_as_found(two_blas_threads):
    """The issue's script: before the fix, some pools were at 1 thread after
    1 to 3 default fits (6 runs out of 6)."""
    X, y, params = _small_default()
    before = _pools()
    for k in range(20):
        LSTMClassifier(random_state=k, **params).fit(X, y)
        assert _pools() == before, k


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_default_fits_in_user_threads_leave_thread_pools_as_found(two_blas_threads):
    """4 rounds of 6 default fits (each 3 networks side by side) in threads
    (issue 20's fault showed after 1 to 3 default fits)."""
    X, y, params = _small_default()
    before, errors = _pools(), []

    def fit(k):
        try:
            LSTMClassifier(random_state=k, **params).fit(X, y)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    for round_ in range(4):
        threads = [threading.Thread(target=fit, args=(k,)) for k in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert not errors, errors
        assert _pools() == before, round_


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("backend", ["threading", "loky"])
def test_grid_search_leaves_thread_pools_as_found(backend, two_blas_threads):
    """GridSearchCV(n_jobs=2) over the defaults, in joblib's threads or
    processes; the refit of the best runs in this process either way."""
    from joblib import parallel_backend
    from sklearn.model_selection import GridSearchCV

    X, y, params = _small_default()
    before = _pools()
    for _ in range(3):
        search = GridSearchCV(LSTMClassifier(**params), {"random_state": [0, 1]},
                              cv=2, n_jobs=2)
        with parallel_backend(backend):
            search.fit(X, y)
        assert _pools() == before
    assert len(search.best_estimator_.estimators_) == 3


@pytest.fixture
def blas_threads_in_evaluations(monkeypatch):
    """The BLAS threads of the process at each evaluation of the objective
    of any fit (one tuple per evaluation, one value per BLAS library)."""
    from threadpoolctl import ThreadpoolController

    from sklearn_gatedmem import _optimize

    libs = ThreadpoolController().select(user_api="blas").lib_controllers
    seen, real = [], _optimize.minimize

    def recording(fun, x0, *args, **kwargs):
        def recorded(theta):
            seen.append(tuple(lib.num_threads for lib in libs))
            return fun(theta)
        return real(recorded, x0, *args, **kwargs)

    monkeypatch.setattr(_optimize, "minimize", recording)
    return seen


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("as_a_call", [False, True])
def test_a_users_limit_in_this_thread_leaves_the_members_one_thread_each(
    as_a_call, two_blas_threads, blas_threads_in_evaluations
):
    """A user's ``threadpool_limits(2)`` in the thread that fits (around the
    fit, or as a call before it) holds threadpoolctl's control of OpenBLAS
    there: before the fix the members' threads could not set one BLAS
    thread each and ran side by side on 2 each (3.4 times the fit's time)."""
    from threadpoolctl import OpenBLASController, threadpool_limits

    X, y, params = _small_default()
    before = _pools()
    if as_a_call:  # the call's control is never given back by threadpoolctl
        limit = threadpool_limits(2, user_api="blas")
        LSTMClassifier(random_state=0, **params).fit(X, y)
        assert set(_blas_threads()) == {2}  # the user's limit, as set
        limit.restore_original_limits()
        getattr(OpenBLASController, "clear_controlling_thread", lambda: None)()
    else:
        with threadpool_limits(2, user_api="blas"):
            LSTMClassifier(random_state=0, **params).fit(X, y)
            assert set(_blas_threads()) == {2}
    assert _pools() == before
    assert blas_threads_in_evaluations
    assert set(blas_threads_in_evaluations) == {(1,) * len(blas_threads_in_evaluations[0])}


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_a_users_limit_in_another_thread_fits_the_members_one_at_a_time(two_blas_threads):
    """While another thread holds the control of OpenBLAS (inside its own
    ``threadpool_limits``), this thread's fits cannot keep one BLAS thread
    each: the members are fitted one after the other, not on 2 threads each
    side by side."""
    from threadpoolctl import threadpool_limits

    X, y, params = _small_default()
    before = _pools()
    holding, done = threading.Event(), threading.Event()

    def user():
        with threadpool_limits(2, user_api="blas"):
            holding.set()
            done.wait(20)

    thread = threading.Thread(target=user)
    thread.start()
    try:
        assert holding.wait(20)
        assert LSTMClassifier()._members_at_once(X) == 1
        est = LSTMClassifier(random_state=0, **params).fit(X, y)
        assert len(est.estimators_) == 3
    finally:
        done.set()
        thread.join(20)
    assert LSTMClassifier()._members_at_once(X) == 2
    assert _pools() == before
