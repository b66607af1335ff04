"""The "auto" search's networks fitted in this process and in worker processes.

A fit of a few short cases is a Python loop over small NumPy calls, which
hold the GIL most of the time: two such fits in threads take longer than one
after the other. Measured on this project's 2-core AMD EPYC (AVX2), one
network of 20 cases of Trace (31 patches, 32 units, 100 iterations): 0.91 s
alone; two in threads 2.35 s, one after the other 1.91 s, in two processes
0.99 s. The search's networks are independent of one another, so
:func:`fit_shared` shares them between this process (this thread) and worker
processes, started by joblib's loky (as scikit-learn's ``n_jobs``: no
``if __name__ == "__main__"`` guard is needed in the user's script) for the
search and ended with it: no worker or thread of the search outlives the
fit. (Python's and loky's resource trackers, two small processes that any
use of multiprocessing starts once per process, stay.)

Starting a worker costs about 2.5 s of the other core (it imports NumPy,
SciPy and scikit-learn); this thread fits networks meanwhile, and a worker
is given a network only once it runs, so the start delays no fit. It pays
only for a search of enough work (:func:`worth_processes`): on a smaller one
this thread would be done before the worker is up.

Each network is fitted the same way wherever it runs (one BLAS thread, this
process's activation method), so the search chooses the same candidate as
one after the other.
"""

import threading
import warnings

from joblib.externals.loky import ProcessPoolExecutor
from sklearn.exceptions import ConvergenceWarning
from threadpoolctl import threadpool_limits

from . import _cells
from ._optimize import beside_other_fits, collecting_warnings

#: The search's networks are shared with worker processes when they unroll
#: at least this many steps in all (steps read x ``max_iter``, summed over
#: the networks): about 3 s of work at the smallest batch, beyond the 2.5 s a
#: worker takes to start (Trace cut to 30: 6 networks x 100 x 31 patches).
PROCESSES_FROM_STEPS = 10_000


def worth_processes(steps_read, max_iter):
    """Whether the networks of a search, which read ``steps_read`` steps each
    (a list, one per network), are worth sharing with worker processes
    (:data:`PROCESSES_FROM_STEPS`)."""
    return sum(steps_read) * max_iter >= PROCESSES_FROM_STEPS


def _running():
    """A worker's first task: returns once the worker runs."""
    return True


def _fit_in_worker(network, args, activations):
    """Fit ``network`` on ``args`` in a worker as this process would (one BLAS
    thread, its activation methods); returns it and the warnings other than
    ConvergenceWarning that the fit gave, as (category, message) pairs."""
    with threadpool_limits(1), _cells.pinned_activations(activations), \
            warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        network.fit(*args)
    return network, [(w.category, str(w.message)) for w in caught
                     if not issubclass(w.category, ConvergenceWarning)]


def fit_shared(networks, data, n_at_once):
    """Fit each network of ``networks`` on its ``(X, y, sample_weight)`` of
    ``data``: this thread takes them from the end, ``n_at_once - 1`` worker
    processes from the start, each once it runs.

    As in :func:`~sklearn_gatedmem._base._fit_members`, the networks'
    ConvergenceWarnings are dropped (the search's networks are not the model)
    and an error is raised once all have ended. Ctrl-C, or an interrupted
    network, stops this thread's network at its best weights and ends the
    workers at once.

    Returns
    -------
    fitted : list of estimator
        The networks fitted, in the order given; fewer, or one interrupted,
        after Ctrl-C.
    """
    executor = ProcessPoolExecutor(max_workers=n_at_once - 1)
    activations = _cells.activation_methods()
    todo, fitted, errors = list(range(len(networks))), [None] * len(networks), []
    # stop: no network is to be started (the last was, or Ctrl-C, or an
    # error), and this thread's network ends as on Ctrl-C
    lock, stop, in_workers = threading.Lock(), threading.Event(), set()

    def take(worker):
        with lock:
            if stop.is_set() or not todo:
                return None
            k = todo.pop(0 if worker else -1)
            if worker:
                in_workers.add(k)
            return k

    def feed():  # one thread per worker: hands it a network at a time
        try:
            executor.submit(_running).result()
            while (k := take(worker=True)) is not None:
                network, caught = executor.submit(
                    _fit_in_worker, networks[k], data[k], activations
                ).result()
                fitted[k] = network
                in_workers.discard(k)
                for category, message in caught:
                    warnings.warn(message, category, stacklevel=2)
                if network._interrupted:  # Ctrl-C reached the worker too
                    stop.set()
        except BaseException as error:  # noqa: BLE001 - raised below
            if not stop.is_set():  # not the workers' end
                errors.append(error)
                stop.set()

    feeders = [threading.Thread(target=feed, daemon=True) for _ in range(n_at_once - 1)]
    for feeder in feeders:
        feeder.start()
    try:
        while (k := take(worker=False)) is not None:
            with beside_other_fits(stop), collecting_warnings():
                fitted[k] = networks[k].fit(*data[k])
            if networks[k]._interrupted:
                stop.set()
        while in_workers and not stop.is_set():  # in short waits: Ctrl-C is seen here
            stop.wait(timeout=0.1)
    except KeyboardInterrupt:
        pass
    finally:
        # every network is fitted, or none is of use any more (Ctrl-C, an
        # error): the workers end now, also one still starting
        stop.set()
        executor.shutdown(wait=True, kill_workers=True)
        for feeder in feeders:
            feeder.join()
    if errors:
        raise errors[0]
    return [network for network in fitted if network is not None]
