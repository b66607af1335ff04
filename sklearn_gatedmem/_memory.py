"""The resource plan of a fit or prediction: chunk size and peak memory.

:func:`plan` is the one place that sizes the objective's chunks and
estimates what a call holds at its peak; the fit and predict paths take
their chunk size from it, and the memory guard (:func:`check_memory`) its
estimate, so that the two cannot disagree. Before anything large is
allocated, the estimators turn a request beyond the memory available into a
``ValueError`` that gives the estimate in GB, instead of a ``MemoryError``
(or the kernel's OOM killer) part-way through.

The estimate follows what the code allocates (the tests compare it with the
peak that ``tracemalloc`` measures, within a factor of 1.5 either way):

* the weights: the flat vector and its copies (gradient, L-BFGS's history of
  10 pairs, penalty mask, work copies, the fitted ``coefs_``);
* copies of ``X`` that live through the call: the validated array when
  validation converts the input's dtype, in fit the canonical rows, and the
  patches the network reads when there are patches or differences;
* the larger of two phases that do not overlap: the standardisation's
  statistics (in fit; float64 temporaries over row chunks of at most
  ``_STATS_ROWS``), and one chunk's work arrays, exactly as the objective
  allocates them (:func:`work_bytes_per_sample`), with the weight
  gradient's GEMM output.
"""

import dataclasses
import math
import os

from . import _cells
from ._params import n_params

# Work arrays per chunk are bounded by this many bytes (the BPTT cache grows
# as n_samples * n_steps * n_hidden; the objective is summed over chunks).
# Measured: time per sample falls until chunks of about 500 sequences and is
# flat from there to several thousand; this budget gives 500 or more for
# networks up to 64 hidden units over 64 steps, and bounds fit's memory.
CHUNK_BYTES = 256 * 2**20

# Float64 vectors of the size of the weights alive at a fit's peak: theta0,
# SciPy's x, gradient and L-BFGS's 2 * 10 correction pairs and work arrays,
# penalty mask, penalised copy, scaled copies, best iterate, coefs_.
_FIT_WEIGHT_COPIES = 32
_PREDICT_WEIGHT_COPIES = 4
# weighted_mean_scale works over chunks of this many rows, and holds about
# this many float64 temporaries of a chunk's size (the chunk in float64, the
# weights broadcast over it, the scaled values, their function, NaN to 0).
_STATS_ROWS = 4096
_STATS_COPIES = 5
_GB = 2.0**30
# Below this, a request is let through without asking the system (predict may
# be called in a loop on single samples).
_SMALL = 256 * 2**20


@dataclasses.dataclass(frozen=True)
class ResourcePlan:
    """What one fit or prediction will use.

    Attributes
    ----------
    chunk_rows : int
        Samples per chunk of the objective (or of the prediction).
    parts : dict of str to float
        Peak bytes by part: ``"weights"``, ``"copies of X"``, ``"work arrays"``.
    """

    chunk_rows: int
    parts: dict

    @property
    def total(self):
        """Peak bytes, all parts."""
        return sum(self.parts.values())


def work_bytes_per_sample(network, n_steps, itemsize, backward=True):
    """Bytes of the work arrays of one chunk, per sample in the chunk.

    What :func:`sklearn_gatedmem._objective.loss_grad` (``backward``) or
    :func:`~sklearn_gatedmem._objective.decision` allocates per chunk, from
    :func:`sklearn_gatedmem._cells.work_shapes`, plus the outputs'
    gradients; the rest (weights, the weight-gradient GEMM's output) does not
    grow with the chunk.

    Parameters
    ----------
    network : Network
    n_steps : int
        Steps that the network reads (after patching).
    itemsize : int
        Bytes per element of the compute dtype.
    backward : bool
    """
    total, width = 0, network.n_features
    for layer, n_hidden in enumerate(network.hidden):
        shapes = _cells.work_shapes(network.cell, n_steps, width, n_hidden, 1, backward)
        per_direction = sum(math.prod(shape) for shape in shapes.values())
        if backward:  # dout, and above the first layer dx (the layer's input)
            per_direction += n_steps * (n_hidden + (width if layer else 0))
        total += network.n_directions * per_direction
        width = network.n_directions * n_hidden
    return total * itemsize


def _gradient_gemm_bytes(network, n_steps, itemsize):
    """The weight gradient's per-step products, ``(n_steps, width + 1 +
    n_hidden, n_rows * n_hidden)``, the largest over the layers (one buffer,
    whatever the chunk; :func:`sklearn_gatedmem._cells.weight_gradient`
    uses it for narrow inputs of many samples), and its float64 sum."""
    n_rows, largest, width = network.cell_spec.n_rows, 0, network.n_features
    for n_hidden in network.hidden:
        size = (width + 1 + n_hidden) * n_rows * n_hidden
        largest = max(largest, n_steps * size * itemsize + 8 * size)
        width = network.n_directions * n_hidden
    return largest


def plan(network, n_samples, n_steps, itemsize, chunk_size="auto", fit=True,
         n_raw_values=None, converts=False):
    """The chunk size and the peak memory of a fit or prediction.

    Parameters
    ----------
    network : Network
        What will be fitted or predicted with (its ``n_features``: the inputs
        per step that the network reads).
    n_samples : int
    n_steps : int
        Steps that the network reads (after patching).
    itemsize : int
        Bytes per element of the compute dtype.
    chunk_size : int or "auto"
        The estimator's parameter: "auto" takes as many samples as keep a
        fit's work arrays within ``CHUNK_BYTES`` (predictions chunk alike).
    fit : bool
        A fit (with backward's work arrays) or a prediction.
    n_raw_values : int, default=None
        Values per sample of the raw sequences (steps times features) when
        the network reads patches or differences of them; None when it reads
        them as they are.
    converts : bool, default=False
        Whether validation converts the input to the compute dtype (a copy).

    Returns
    -------
    plan : ResourcePlan
    """
    if chunk_size == "auto":
        per_fit_sample = work_bytes_per_sample(network, n_steps, itemsize, backward=True)
        chunk = max(1, CHUNK_BYTES // per_fit_sample)
    else:
        chunk = int(chunk_size)
    n_values = n_steps * network.n_features  # per sample, what the network reads
    raw = n_values if n_raw_values is None else n_raw_values
    copies = (converts + fit) * raw + (n_raw_values is not None) * n_values
    work = float(min(n_samples, chunk)) * work_bytes_per_sample(
        network, n_steps, itemsize, backward=fit
    )
    if fit:
        work += _gradient_gemm_bytes(network, n_steps, itemsize)
        stats = 8.0 * _STATS_COPIES * min(n_samples, _STATS_ROWS) * n_values
        work = max(work, stats)
    parts = {
        "weights": 8.0 * n_params(network.layout)
        * (_FIT_WEIGHT_COPIES if fit else _PREDICT_WEIGHT_COPIES),
        "copies of X": float(itemsize) * n_samples * copies,
        "work arrays": work,
    }
    return ResourcePlan(chunk_rows=chunk, parts=parts)


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
        ``ResourcePlan.parts`` of :func:`plan`.
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
