"""A guard against fits and predictions that cannot fit in memory.

Before anything large is allocated, :func:`fit_bytes` or :func:`predict_bytes`
adds up what the call will hold at its peak, and :func:`check_memory` turns a
request beyond the memory available into a ``ValueError`` that gives the
estimate in GB, instead of a ``MemoryError`` (or the kernel's OOM killer)
part-way through. The estimates are deliberately rough, within a small
factor, and never below the arrays that certainly exist:

* the weights: the flat vector and its copies (gradient, L-BFGS's history of
  10 pairs, penalty mask, work copies, the fitted ``coefs_``);
* copies of ``X``: the validated array, and in fit the canonical rows;
* one chunk's work arrays, exactly as the objective allocates them
  (:func:`sklearn_gatedmem._objective.work_bytes_per_sample`, the same model
  that sizes the automatic chunks), plus the time-major input.
"""

import os

from ._cells import n_recurrent_columns
from ._objective import work_bytes_per_sample

# Float64 vectors of the size of the weights alive at a fit's peak: theta0,
# SciPy's x, gradient and L-BFGS's 2 * 10 correction pairs and work arrays,
# penalty mask, penalised copy, scaled copies, best iterate, coefs_.
_FIT_WEIGHT_COPIES = 32
_PREDICT_WEIGHT_COPIES = 4
# Float64-sized copies of X alive in fit: the validated array (a converted
# copy, for integer input), canonical_rows' selection of rows, and a clipped
# copy when some value is far outside the training range.
_FIT_X_COPIES = 3
_PREDICT_X_COPIES = 2
_GB = 2.0**30
# Below this, a request is let through without asking the system (predict may
# be called in a loop on single samples).
_SMALL = 256 * 2**20


def n_weights(cell, n_features, hidden, n_outputs, n_directions):
    """Length of the flat weight vector (as :func:`_params.make_layout`)."""
    total, width = 0, n_features
    for h in hidden:
        total += n_directions * (width * 4 * h + h * n_recurrent_columns(cell, h) + 4 * h)
        width = n_directions * h
    return total + width * n_outputs + n_outputs


def _work_bytes(n_samples, n_steps, n_features, hidden, n_directions, cell,
                itemsize, chunk_rows, backward):
    """One chunk's work arrays, from the objective's own exact model, plus
    the chunk's time-major copy of the input."""
    per_sample = work_bytes_per_sample(
        cell, n_steps, n_features, hidden, n_directions, itemsize, backward
    ) + n_steps * n_features * itemsize
    return float(min(n_samples, chunk_rows)) * per_sample


def fit_bytes(
    n_samples, n_steps, n_features, hidden, n_outputs, n_directions, cell,
    itemsize, chunk_rows,
):
    """Peak bytes of a fit, by part.

    Parameters
    ----------
    n_samples, n_steps, n_features : int
        Shape of the training sequences.
    hidden : tuple of int
    n_outputs : int
        Width of the head (at least 1).
    n_directions : {1, 2}
    cell : str
    itemsize : int
        Bytes per element of the compute dtype.
    chunk_rows : int
        Samples per chunk of the objective.

    Returns
    -------
    parts : dict of str to float
        ``{"weights": ..., "copies of X": ..., "work arrays": ...}`` in bytes.
    """
    n_params = n_weights(cell, n_features, hidden, n_outputs, n_directions)
    return {
        "weights": 8.0 * n_params * _FIT_WEIGHT_COPIES,
        "copies of X": 8.0 * n_samples * n_steps * n_features * _FIT_X_COPIES,
        "work arrays": _work_bytes(
            n_samples, n_steps, n_features, hidden, n_directions, cell,
            itemsize, chunk_rows, backward=True,
        ),
    }


def predict_bytes(
    n_samples, n_steps, n_features, hidden, n_outputs, n_directions, cell,
    itemsize, chunk_rows,
):
    """Peak bytes of a prediction, by part; parameters as :func:`fit_bytes`."""
    n_params = n_weights(cell, n_features, hidden, n_outputs, n_directions)
    return {
        "weights": 8.0 * n_params * _PREDICT_WEIGHT_COPIES,
        "copies of X": (
            float(itemsize) * n_samples * n_steps * n_features * _PREDICT_X_COPIES
        ),
        "work arrays": _work_bytes(
            n_samples, n_steps, n_features, hidden, n_directions, cell,
            itemsize, chunk_rows, backward=False,
        ),
    }


def available_bytes():
    """Memory this process may still take, in bytes, or None when unknown.

    ``MemAvailable`` plus ``SwapFree`` from ``/proc/meminfo`` (physical memory
    where there is no ``/proc``), capped by the free part of a cgroup limit.
    """
    available = None
    try:
        with open("/proc/meminfo") as f:
            info = {
                line.split(":")[0]: int(line.split()[1]) * 1024 for line in f
            }
        available = info["MemAvailable"] + info.get("SwapFree", 0)
    except (OSError, KeyError, ValueError, IndexError):
        try:
            available = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            pass
    for limit_file, usage_file in (
        ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
        (
            "/sys/fs/cgroup/memory/memory.limit_in_bytes",
            "/sys/fs/cgroup/memory/memory.usage_in_bytes",
        ),
    ):
        try:
            with open(limit_file) as f:
                limit = int(f.read().strip())  # "max" (no limit) raises
            with open(usage_file) as f:
                free = limit - int(f.read().strip())
        except (OSError, ValueError):
            continue
        available = free if available is None else min(available, free)
        break
    return available


def check_memory(parts, action, hint, available=None):
    """Raise a ValueError when ``parts`` add up to more than is available.

    Parameters
    ----------
    parts : dict of str to float
        From :func:`fit_bytes` or :func:`predict_bytes`.
    action : str
        What would need it, e.g. ``"fit"``.
    hint : str
        What the user can change.
    available : int, default=None
        Bytes available; :func:`available_bytes` when None (and only asked
        for requests above 256 MB). Unknown memory lets everything through.
    """
    needed = sum(parts.values())
    if available is None:
        if needed <= _SMALL:
            return
        available = available_bytes()
    if available is None or needed <= available:
        return
    detail = ", ".join(f"{name} {size / _GB:.3g} GB" for name, size in parts.items())
    raise ValueError(
        f"This {action} would need about {needed / _GB:.3g} GB of memory "
        f"({detail}), but only {available / _GB:.3g} GB is available. {hint}"
    )
