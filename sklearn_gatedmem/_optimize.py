"""The L-BFGS driver: :func:`fit_lbfgs` and what keeps a fit reliable.

One function runs SciPy's L-BFGS-B over the flat weight vector, as
scikit-learn's ``BaseMultilayerPerceptron._fit_lbfgs`` does (``minimize(...,
method="L-BFGS-B", jac=True)``, then a check of the result that warns when it
did not converge), with what this package adds around it:

* the fit guard (:class:`_FitGuard`): every evaluation is checked and the
  last iterate kept, so that Ctrl-C or an overflowing objective ends the fit
  at that iterate with a warning; NaN never reaches the weights;
* early stopping (:class:`ValidationMonitor`): held-out rows scored after
  every iteration, the best weights kept;
* the BLAS thread policy (:func:`_blas_threads`): L-BFGS's own arithmetic on
  one thread, the objective on all, and the process left exactly as found,
  even with fits running concurrently in threads; the fits of one ensemble
  that share the cores (:func:`beside_other_fits`) keep one thread each, and
  stop together.

It returns one :class:`LBFGSResult`.
"""

import dataclasses
import threading
import time
import warnings
from contextlib import contextmanager

import numpy as np
import threadpoolctl
from scipy.optimize import OptimizeResult, minimize
from sklearn.exceptions import ConvergenceWarning
from threadpoolctl import ThreadpoolController


@dataclasses.dataclass
class LBFGSResult:
    """What :func:`fit_lbfgs` found.

    Attributes
    ----------
    x : ndarray of shape (n_params,)
        The weights kept: the last iterate, or with early stopping the best
        scored one.
    n_iter : int
        Iterations run.
    loss : float
        The objective at ``x`` (NaN if interrupted before a first evaluation).
    loss_curve : list of float
        The objective after each iteration.
    validation_scores : list of float or None
        With early stopping, the held-out score after each iteration.
    best_validation_score : float or None
        With early stopping, that of ``x``.
    interrupted : bool
        Whether a KeyboardInterrupt ended the fit.
    """

    x: np.ndarray
    n_iter: int
    loss: float
    loss_curve: list
    validation_scores: list = None
    best_validation_score: float = None
    interrupted: bool = False


def fit_lbfgs(fun, theta0, *, max_iter, max_fun, tol, monitor=None,
              n_iter_no_change=10, verbose=0, warn_at_max_iter=True):
    """Minimise ``fun`` by L-BFGS-B from ``theta0``, guarded.

    Parameters
    ----------
    fun : callable
        ``theta -> (loss, grad)``, the objective and its gradient.
    theta0 : ndarray of shape (n_params,)
    max_iter, max_fun : int
    tol : float
        SciPy's ``gtol``.
    monitor : ValidationMonitor, default=None
        Early stopping: scores held-out rows after every iteration and stops
        after ``n_iter_no_change`` iterations without a strict improvement
        (by raising StopIteration in the callback, which SciPy >= 1.11
        honours); the best weights are returned.
    n_iter_no_change : int
    verbose : int
        Print one line per iteration when positive.
    warn_at_max_iter : bool, default=True
        Whether reaching ``max_iter`` is a ConvergenceWarning (False: it is
        the budget the estimators' defaults measured, see
        ``BaseLSTM._minimize``). Every other stop short of convergence warns.

    Returns
    -------
    result : LBFGSResult
    """
    curve, start = [], time.perf_counter()

    # SciPy passes an OptimizeResult to a callback only if its parameter is
    # named ``intermediate_result`` (it inspects the signature): keep the name
    def callback(intermediate_result):
        curve.append(float(intermediate_result.fun))
        line = f"Iteration {len(curve)}, loss = {curve[-1]:.8f}"
        if monitor is not None:
            score = monitor.update(intermediate_result.x, len(curve))
            line += f", validation score = {score:.6f}"
        if verbose:
            print(f"{line}, elapsed = {time.perf_counter() - start:.2f} s")
        if monitor is not None and monitor.patience_lost(len(curve), n_iter_no_change):
            if verbose:
                print(
                    "Validation score did not improve for "
                    f"{n_iter_no_change} consecutive iterations. Stopping "
                    f"at the best, iteration {monitor.best_iter}."
                )
            raise StopIteration

    guard = _FitGuard(theta0)
    with _blas_threads(fun) as fun:
        result = guard.minimize(
            guard.objective(fun),
            theta0,
            method="L-BFGS-B",
            jac=True,
            callback=guard.callback(callback),
            options={"maxfun": max_fun, "maxiter": max_iter, "gtol": tol},
        )
    if guard.stopped:  # the guard warned already
        n_iter = int(result.nit)
    elif monitor is not None and monitor.stopped:  # stopped early, as asked
        n_iter = int(result.nit)
    else:
        n_iter = _check_lbfgs_result(result, max_iter, max_fun, tol, warn_at_max_iter)
    found = LBFGSResult(
        x=result.x, n_iter=n_iter, loss=float(result.fun), loss_curve=curve,
        interrupted=guard.interrupted,
    )
    if monitor is not None:
        if not monitor.scores:  # converged before a first iteration
            found.validation_scores = []
            found.best_validation_score = monitor.score(result.x)
        else:
            found.x, found.loss = monitor.best_theta, curve[monitor.best_iter - 1]
            found.validation_scores = monitor.scores
            found.best_validation_score = monitor.best_score
    return found


def _check_lbfgs_result(result, max_iter, max_fun, tol, warn_at_max_iter=True):
    """The iterations run; a ConvergenceWarning when L-BFGS did not converge.

    The warning says what stopped the fit, at which iteration, and what to
    change. Unlike scikit-learn's generic text it gives no advice to scale
    the data: the estimators standardise it already.

    Parameters
    ----------
    result : OptimizeResult
        From ``scipy.optimize.minimize(method="L-BFGS-B")``.
    max_iter, max_fun : int
    tol : float
    warn_at_max_iter : bool, default=True
        False: reaching ``max_iter`` is no warning (a budget, not a failure).

    Returns
    -------
    n_iter : int
    """
    n_iter = min(int(result.nit), max_iter)
    if result.status == 0:
        return n_iter
    if n_iter >= max_iter and not warn_at_max_iter:
        return n_iter
    if n_iter >= max_iter:
        cause = f"it reached max_iter={max_iter} iterations"
        change = (
            f"Raise max_iter (now {max_iter}) to fit further, raise tol (now "
            f"{tol:g}) to accept a larger gradient, or set early_stopping=True "
            "to stop on a held-out score instead."
        )
    elif result.nfev >= max_fun:
        cause = f"it reached max_fun={max_fun} loss evaluations"
        change = (
            f"Raise max_fun (now {max_fun}), raise tol (now {tol:g}), or set "
            "early_stopping=True to stop on a held-out score instead."
        )
    else:  # status 2: the line search found no lower objective
        cause = "the line search could not lower the objective any further"
        change = (
            "More iterations will not help (max_iter is not the limit): the "
            f"largest gradient component is still above tol={tol:g}, at the "
            "precision of the arithmetic. Raise tol to accept this point, add "
            "regularisation (alpha), or set early_stopping=True."
        )
    _warn(
        f"L-BFGS did not converge: the fit stopped at iteration {n_iter} because "
        f"{cause} (SciPy: {result.message}). The estimator keeps the weights of "
        f"that iteration. {change}",
        stacklevel=_AT_FIT,
    )
    return n_iter


# the frames from _warn up to the user's call of an estimator's fit:
# _warn, its caller, fit_lbfgs, _minimize, _fit_network, _fit, fit, _fit_context
_AT_FIT = 9


def _warn(message, stacklevel):
    """A ConvergenceWarning; inside :func:`collecting_warnings` (a member
    of an ensemble), the message kept for the ensemble's one warning.

    The list lives in this thread, so that fits in several threads keep
    their own; ``warnings.catch_warnings``, which records through the
    process's global warning state, mixed them up and left the filters
    changed (issue 20).
    """
    kept = getattr(_THIS_THREAD, "warnings", None)
    if kept is not None:
        kept.append(message)
    else:
        warnings.warn(message, ConvergenceWarning, stacklevel=stacklevel)


@contextmanager
def collecting_warnings():
    """Inside, this thread's fits keep their ConvergenceWarning texts in the
    yielded list instead of warning (see :func:`_warn`)."""
    previous, kept = getattr(_THIS_THREAD, "warnings", None), []
    _THIS_THREAD.warnings = kept
    try:
        yield kept
    finally:
        _THIS_THREAD.warnings = previous


class _NonFiniteObjective(ArithmeticError):
    """The objective or its gradient is NaN or infinite."""


class _FitGuard:
    """Keeps a fit's weights usable whatever happens inside L-BFGS.

    * :meth:`objective` evaluates under silenced floating-point warnings
      (saturated gates underflow ``exp``; an overflow shows in the result) and
      checks the result: a NaN or infinite loss or gradient raises
      :class:`_NonFiniteObjective` instead of reaching L-BFGS.
    * :meth:`callback` records every iterate before the fit's own callback
      runs (L-BFGS iterates only lower the objective: the last is the best).
    * :meth:`minimize` ends the fit at that iterate, with a ConvergenceWarning
      naming the iteration, on KeyboardInterrupt or a non-finite objective;
      a non-finite objective at the initial weights is a ValueError.
    """

    def __init__(self, theta0):
        self.x, self.fun, self.nit, self.stopped = theta0.copy(), np.nan, 0, False
        self.interrupted = False

    def objective(self, fun):
        def checked(theta):
            if not np.isfinite(theta).all():  # SciPy's own arithmetic overflowed
                raise _NonFiniteObjective(
                    "L-BFGS stepped to non-finite weights: the objective, "
                    f"{self.fun:.3g} at the last iterate, is too large for it"
                )
            if _stop_requested():  # another fit of the ensemble was interrupted
                raise KeyboardInterrupt
            with np.errstate(all="ignore"):
                loss, grad = fun(theta)
            if not (np.isfinite(loss) and np.isfinite(grad).all()):
                raise _NonFiniteObjective(
                    f"loss = {float(loss):.3g}, {np.count_nonzero(~np.isfinite(grad))} of "
                    f"{grad.size} gradient entries NaN or infinite"
                )
            if np.isnan(self.fun):  # the first evaluation: L-BFGS starts at theta0
                self.fun = float(loss)
            return loss, grad

        return checked

    def callback(self, callback):
        def recording(intermediate_result):  # the name SciPy dispatches on
            self.x = intermediate_result.x.copy()  # SciPy reuses its array
            self.fun, self.nit = float(intermediate_result.fun), self.nit + 1
            callback(intermediate_result)

        return recording

    def minimize(self, *args, **kwargs):
        """``scipy.optimize.minimize(*args, **kwargs)``, guarded."""
        try:
            return minimize(*args, **kwargs)
        except KeyboardInterrupt:
            problem = "was interrupted (KeyboardInterrupt)"
            self.interrupted = True
        except _NonFiniteObjective as exc:
            if np.isnan(self.fun):  # not even the initial weights evaluate
                raise ValueError(
                    f"The objective is not finite at the initial weights ({exc}): "
                    "it overflows. Scale down sample_weight or alpha, or rescale "
                    "X and y."
                ) from None
            problem = f"stopped because the objective overflowed ({exc})"
        self.stopped = True
        kept = f"those of iteration {self.nit}" if self.nit else "its initial ones"
        _warn(
            f"The fit {problem} at iteration {self.nit + 1}; the estimator keeps "
            f"the best weights reached, {kept}.",
            stacklevel=_AT_FIT,
        )
        return OptimizeResult(
            x=self.x, fun=self.fun, nit=self.nit, success=False, status=99,
            message=problem,
        )


class ValidationMonitor:
    """Scores held-out rows on candidate weights; keeps the best weights.

    Parameters
    ----------
    score : callable
        ``theta -> float``, the estimator's score of the held-out rows with
        weights ``theta`` (higher is better; NaN when not finite), computed
        through the prediction path without touching any fitted attribute.
    """

    def __init__(self, score):
        self.score = score
        self.scores, self.best_score, self.best_iter = [], -np.inf, 0
        self.best_theta, self.stopped = None, False

    def update(self, theta, iteration):
        """Score ``theta`` after ``iteration``; keep it if strictly better."""
        score = self.score(theta)
        self.scores.append(score)
        best = self.best_score
        if score > best or (np.isnan(best) and not np.isnan(score)) or iteration == 1:
            # theta may be SciPy's work array, overwritten by the next step
            self.best_theta, self.best_score, self.best_iter = theta.copy(), score, iteration
        return score

    def patience_lost(self, iteration, n_iter_no_change):
        """True, once, when ``n_iter_no_change`` iterations brought nothing better."""
        self.stopped = iteration - self.best_iter >= n_iter_no_change
        return self.stopped


# -- BLAS threads --------------------------------------------------------------
# threadpoolctl's limit restores, on exit, the value it saw on entry: fits
# running in threads interleave their limits, and the last to leave could
# restore another's "1" (measured: [2, 2, 2] became [1, 1, 2]). So the limits
# are set here under one lock with reference counts: the first fit to enter
# records the process's limits and sets 1, the last to leave restores the
# recorded ones; likewise, evaluations of the objective (in any fit) have all
# the recorded threads while at least one runs, and 1 once none does.
_BLAS_LOCK = threading.Lock()
_BLAS = {"controller": None, "libs": None, "original": None, "fits": 0, "evaluating": 0}
_THIS_THREAD = threading.local()  # .stop: beside_other_fits; .warnings: collecting_warnings


def blas_threads():
    """The BLAS threads a fit's evaluations may use: the largest limit of
    the process's BLAS libraries (as a user's ``threadpool_limits`` set it),
    the limits recorded before the first running fit set them to 1."""
    with _BLAS_LOCK:
        if _BLAS["fits"]:
            return max(_BLAS["original"], default=1)
        if _BLAS["controller"] is None:
            _BLAS["controller"] = ThreadpoolController()
        blas = _BLAS["controller"].select(user_api="blas")
        return max((lib.num_threads for lib in blas.lib_controllers), default=1)


# threadpoolctl's controller of OpenBLAS's process-wide pool (None before
# threadpoolctl had one): which thread may set it (_set_blas_threads)
_OPENBLAS = getattr(threadpoolctl, "OpenBLASController", None)


def _blas_controller():
    """The thread holding threadpoolctl's control of OpenBLAS, or None."""
    state = getattr(_OPENBLAS, "_SHARED_STATE", None)
    holder = getattr(state, "controlling_thread", None)
    return holder if holder is not None and holder.is_alive() else None


def release_blas_control():
    """Give up this thread's control of OpenBLAS's threads, if it holds it,
    before it starts the threads of fits side by side.

    A user's ``threadpool_limits`` in this thread, as a call or around the
    fit, keeps control here (:func:`_set_blas_threads`): the fits' threads
    could not then set BLAS to one thread each, and each ran on all of them,
    side by side (measured: PLAID cut to 30 cases, a default fit after
    ``threadpool_limits(2)`` took 12.2 s against 3.6 s; 12.9 s against
    3.8 s with AVX2 emulated). The limits stay as
    the user set them; the fits set and restore them as they do without a
    user's limit, and a later ``threadpool_limits`` takes control again.
    """
    with _BLAS_LOCK:
        if _OPENBLAS is not None and _blas_controller() is threading.current_thread():
            _OPENBLAS.clear_controlling_thread()


def blas_controlled_elsewhere():
    """Whether another live thread holds threadpoolctl's control of OpenBLAS
    (inside a user's ``threadpool_limits`` there): this thread's fits cannot
    set BLAS's threads, so fits side by side would share the cores each on
    all of them."""
    with _BLAS_LOCK:  # the fits' own threads hold it only under this lock
        holder = _blas_controller()
    return holder is not None and holder is not threading.current_thread()


@contextmanager
def beside_other_fits(stop):
    """Inside, this thread's fits run beside the other fits of an ensemble.

    Their evaluations keep BLAS at one thread, since the fits share the cores
    (two 32-unit networks fitted side by side on 2 cores took 0.6 of the time
    of one after the other with 2 threads each), and they end, as on Ctrl-C,
    keeping their best weights, once ``stop`` (a :class:`threading.Event`)
    is set.
    """
    _THIS_THREAD.stop = stop
    try:
        yield
    finally:
        _THIS_THREAD.stop = None


def _stop_requested():
    stop = getattr(_THIS_THREAD, "stop", None)
    return stop is not None and stop.is_set()


def _set_blas_threads(n_threads):
    """Every BLAS library to ``n_threads`` (an int, or one per library), for
    the whole process, from whichever thread calls (under ``_BLAS_LOCK``).

    OpenBLAS with pthreads (NumPy's and SciPy's wheels) has one thread pool
    per process, so threadpoolctl (3.8 here) lets one Python thread at a
    time set it: the first to call ``set_num_threads`` becomes the
    "controlling thread", and the calls of every other thread are silently
    ignored until it ends or calls ``clear_controlling_thread``. Setting it
    here without giving control back was the cause of issue 20: the member
    thread that entered first kept control, the last to leave (another
    thread) restored the recorded limits in vain, and the process stayed at
    1 thread (and a user's later ``threadpool_limits`` in the main thread
    was ignored while that thread lived). So control is given back at once:
    between two of these calls no fit's thread holds it. Another thread
    that holds it (inside a user's ``threadpool_limits``) keeps it and its
    limits, ours being ignored meanwhile; a thread inside such a limit that
    fits gives control up here, and takes it back to restore its limits.
    """
    libs = _BLAS["libs"]
    if isinstance(n_threads, int):
        n_threads = [n_threads] * len(libs)
    for lib, n in zip(libs, n_threads):
        lib.set_num_threads(n)
    # only if this thread holds control; absent before threadpoolctl had the rule
    for kind in {type(lib) for lib in libs}:
        release = getattr(kind, "clear_controlling_thread", None)
        if release is not None:
            release()


@contextmanager
def _blas_threads(fun):
    """L-BFGS's own vector arithmetic on one BLAS thread, ``fun`` on all.

    SciPy's L-BFGS-B calls BLAS on vectors of the size of the weights, and
    SciPy's wheels bring their own OpenBLAS, whose worker threads keep
    spinning on the cores for a while after each call: the next evaluation of
    the objective then ran at up to half speed (measured on 2 cores: 44 ms
    evaluations took 70 to 120 ms inside ``minimize``). So BLAS is limited to
    one thread while ``minimize`` runs, and ``fun`` (yielded, wrapped) gets
    back the threads BLAS had (those a user's own limit allows). On exit the
    process's limits are as they were before the first of the concurrent
    fits entered.
    """
    with _BLAS_LOCK:
        if _BLAS["fits"] == 0:
            if _BLAS["controller"] is None:  # made once: it scans the libraries
                _BLAS["controller"] = ThreadpoolController()
            blas = _BLAS["controller"].select(user_api="blas")
            _BLAS["libs"] = list(blas.lib_controllers)
            _BLAS["original"] = [lib.num_threads for lib in _BLAS["libs"]]
            _set_blas_threads(1)
        _BLAS["fits"] += 1
    n_threads = max(_BLAS["original"], default=1)
    if getattr(_THIS_THREAD, "stop", None) is not None:
        n_threads = 1  # the cores are shared with the ensemble's other fits

    def with_threads(theta):
        if n_threads == 1:
            return fun(theta)
        with _BLAS_LOCK:
            if _BLAS["evaluating"] == 0:
                _set_blas_threads(n_threads)
            _BLAS["evaluating"] += 1
        try:
            return fun(theta)
        finally:
            with _BLAS_LOCK:
                _BLAS["evaluating"] -= 1
                if _BLAS["evaluating"] == 0:
                    _set_blas_threads(1)

    try:
        yield with_threads
    finally:
        with _BLAS_LOCK:
            _BLAS["fits"] -= 1
            if _BLAS["fits"] == 0:
                _set_blas_threads(_BLAS["original"])
