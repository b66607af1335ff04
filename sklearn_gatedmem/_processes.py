"""Networks of one fit shared between this thread and worker processes.

A fit of a few short cases is a Python loop over small NumPy calls, which
hold the GIL most of the time: two such fits in threads take longer than one
after the other. Measured on this project's 2-core AMD EPYC (AVX2), one
network of 20 cases of Trace (31 patches, 32 units, 100 iterations): 0.91 s
alone; two in threads 2.35 s, one after the other 1.91 s, in two processes
0.99 s. So the networks of a fit with much work -- the "auto" search's, then
the ensemble's members -- are shared (:func:`fit_shared`) between this
thread and worker processes (:class:`Workers`), started by joblib's loky (as
scikit-learn's ``n_jobs``: no ``if __name__ == "__main__"`` guard is needed
in the user's script) when first needed and ended with the fit: no worker
or thread of it outlives the fit. (Python's and loky's resource trackers, two
small processes that any use of multiprocessing starts once per process,
stay.)

Starting a worker costs about 2.5 s of another core (it imports NumPy,
SciPy and scikit-learn); this thread fits networks meanwhile, and a worker
is given a network only once it runs, so the start delays no fit. It pays
only for enough work of small batches (:func:`worth_processes`): on less
work this thread would be done before the worker is up, and large batches
release the GIL in threads.

Each network is fitted the same way wherever it runs (one BLAS thread, this
process's activation methods, the same seed): the fitted weights are those of
one network after the other, bit for bit.
"""

import signal
import threading
import warnings

from joblib.externals.loky import ProcessPoolExecutor
from joblib.externals.loky.backend.context import get_context
from threadpoolctl import threadpool_limits

from . import _cells
from ._optimize import beside_other_fits, collecting_warnings

try:  # joblib's active backend is not public API (scikit-learn's tests read it too)
    from joblib._parallel_backends import LokyBackend
    from joblib.parallel import get_active_backend
except ImportError:  # pragma: no cover - a joblib that renamed them
    LokyBackend = get_active_backend = None

#: Networks are shared with worker processes when they unroll at least this
#: many steps in all (steps read x ``max_iter``, summed over the networks):
#: about 3 s of work at the smallest batch, beyond the 2.5 s a worker takes
#: to start (Trace cut to 30: the search's 6 networks x 31 patches x 100).
PROCESSES_FROM_STEPS = 10_000

#: ... and when they are fitted on at most this many rows: larger batches make
#: NumPy calls long enough to release the GIL, and threads share the cores as
#: well as processes, without sending the data (two networks of 32 steps, 30
#: iterations, in threads against one after the other: 1.07 of the time at
#: 20 rows, 0.69 at 300, 0.54 at 1,000).
PROCESSES_MAX_ROWS = 1_000


def worth_processes(steps_read, max_iter, n_rows, started=False):
    """Whether networks that read ``steps_read`` steps each (a list, one per
    network) of at most ``n_rows`` rows are worth sharing with worker
    processes (:data:`PROCESSES_FROM_STEPS`, :data:`PROCESSES_MAX_ROWS`; the
    first not when the workers were ``started`` already, their start being
    paid), and the user lets joblib start processes:
    its active backend is loky, its default, and not limited to one job
    (``joblib.parallel_config(backend="threading")`` or ``n_jobs=1`` keeps a
    fit's networks in this process; so do joblib versions that do not say
    which backend is active)."""
    if get_active_backend is None:
        return False
    backend, n_jobs = get_active_backend()
    if not isinstance(backend, LokyBackend) or n_jobs == 1:
        return False
    return n_rows <= PROCESSES_MAX_ROWS and (
        started or sum(steps_read) * max_iter >= PROCESSES_FROM_STEPS
    )


class Workers:
    """The worker processes of one fit, started by :meth:`executor` when
    first needed and ended with the ``with`` block (also while starting).

    Attributes
    ----------
    stop : multiprocessing Event or None
        Set, the networks running anywhere end at their best weights, as on
        Ctrl-C (:func:`~sklearn_gatedmem._optimize.beside_other_fits`).
    """

    def __init__(self):
        self._executor, self.stop, self._threads = None, None, set()
        self._unavailable = False

    @property
    def started(self):
        """Whether the processes were started (the ensemble then uses them)."""
        return self._executor is not None

    def executor(self, n_workers):
        """The executor of ``n_workers`` processes, started at the first call;
        None where processes cannot be started (no shared memory for the
        stop event, as in some sandboxes): the fit then runs here."""
        if self._executor is None and not self._unavailable:
            self._threads = set(threading.enumerate())
            try:
                self.stop = get_context("loky").Event()
                self._executor = ProcessPoolExecutor(
                    max_workers=n_workers, initializer=_start_worker, initargs=(self.stop,)
                )
            except (OSError, ImportError, NotImplementedError):
                self._unavailable = True
        return self._executor

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        if self._executor is not None:
            self._executor.shutdown(wait=True, kill_workers=True)
            self._executor = None
            # the feeder thread of loky's call queue can end a moment later
            for thread in set(threading.enumerate()) - self._threads:
                if thread.name == "QueueFeederThread":
                    thread.join(timeout=10)


_WORKER_STOP = None  # in a worker: its Workers' stop


def _start_worker(stop):
    global _WORKER_STOP
    # Ctrl-C reaches the parent, which relays it through stop: a worker
    # interrupted between two networks would break the pool
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _WORKER_STOP = stop


def _running():
    """A worker's first task: returns once the worker runs."""
    return True


def _fit_in_worker(network, args, activations):
    """Fit ``network`` on ``args`` in a worker as the parent would (one BLAS
    thread, its activation methods, ending on its stop). Returns the network,
    its ConvergenceWarning texts and every other warning as (category,
    message) pairs, to be warned again in the parent, whose filters then
    decide what is shown, as for a network in a thread (a worker's filters
    are not the parent's: loky does not pass on ``-W`` options)."""
    with threadpool_limits(1), _cells.pinned_activations(activations), \
            beside_other_fits(_WORKER_STOP), collecting_warnings() as kept, \
            warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        network.fit(*args)
    return network, kept, [(w.category, str(w.message)) for w in caught]


def fit_shared(networks, data, n_at_once, workers):
    """Fit each network of ``networks`` on its ``(X, y, sample_weight)`` of
    ``data``: this thread takes them from the end, ``n_at_once - 1`` worker
    processes of ``workers`` (a :class:`Workers`) from the start, each once
    it runs.

    As :func:`~sklearn_gatedmem._base._fit_members` in threads: Ctrl-C, or
    an interrupted network, stops every running network at its best weights
    (in the workers too) and cancels those not started. A worker that fails,
    whatever the cause (it could not start, died, or its network could not be
    sent or fitted), hands its network back to this thread, which fits it
    (and raises its error, if the network's own) and the rest; so does a
    machine where no worker can be started (:meth:`Workers.executor`).

    Returns
    -------
    fitted : list of estimator
        The networks fitted, in order (copies, for those fitted in a worker).
    stops : list of list of str
        For each of them, the texts of the ConvergenceWarnings it would have
        raised alone.
    """
    executor = workers.executor(n_at_once - 1)
    stop = workers.stop if executor is not None else threading.Event()
    stop.clear()
    activations = _cells.activation_methods()
    n = len(networks)
    todo, fitted, stops, caught = list(range(n)), [None] * n, [None] * n, []
    lock = threading.Lock()

    def take(first):
        with lock:
            if stop.is_set() or not todo:
                return None
            return todo.pop(0 if first else -1)

    def feed():  # one thread per worker: hands it a network at a time
        k = None
        try:
            executor.submit(_running).result()
            while (k := take(first=True)) is not None:
                fitted[k], stops[k], given = executor.submit(
                    _fit_in_worker, networks[k], data[k], activations
                ).result()
                caught.extend(given)
                if fitted[k]._interrupted:
                    stop.set()
        except BaseException:  # noqa: BLE001 - this thread fits it instead
            with lock:
                if k is not None and fitted[k] is None:
                    todo.append(k)

    feeders = [] if executor is None else [
        threading.Thread(target=feed, daemon=True) for _ in range(n_at_once - 1)
    ]
    for feeder in feeders:
        feeder.start()
    try:
        while True:
            if (k := take(first=False)) is not None:
                with beside_other_fits(stop), collecting_warnings() as stops[k]:
                    fitted[k] = networks[k].fit(*data[k])
                if fitted[k]._interrupted:
                    stop.set()
            else:
                alive = [feeder for feeder in feeders if feeder.is_alive()]
                if not alive:
                    break
                alive[0].join(timeout=0.1)  # in short waits: Ctrl-C is seen here
    except KeyboardInterrupt:  # outside L-BFGS, which keeps the best weights
        stop.set()
    except BaseException:
        stop.set()
        raise
    finally:
        for feeder in feeders:
            while feeder.is_alive():
                try:
                    feeder.join(timeout=0.1)
                except KeyboardInterrupt:
                    stop.set()
    for category, message in caught:
        warnings.warn(message, category, stacklevel=4)
    done = [k for k in range(n) if fitted[k] is not None]
    return [fitted[k] for k in done], [stops[k] for k in done]
