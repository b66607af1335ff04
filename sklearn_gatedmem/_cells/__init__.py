"""Gated recurrent cells unrolled over whole sequences: the registry.

NumPy (and SciPy's ``expit``) only: no scikit-learn. Each cell is one
:class:`Cell` in :data:`CELLS`, defined in its own module (:mod:`.lstm`,
:mod:`.gated_memory`, :mod:`.gru`), whose docstring holds its equations,
named as in its code. This module holds what they share: the step layout,
the activation methods, and the functions the rest of the package calls
(:func:`fused_weights`, :func:`work_shapes`, :func:`forward`,
:func:`backward`, :func:`weight_gradient`, :func:`add_weight_gradient`,
:func:`state`), which ask the
cell's object for everything that differs between cells.

Layout: one contiguous block per time step, units by samples
-------------------------------------------------------------
Every array of the time loop is ``(n_steps, width, n_samples)``: step ``t``
is one contiguous ``(width, n_samples)`` block, a row per unit and a column
per sample, so that each gate's ``n_hidden`` rows are contiguous too. Every
elementwise operation of the time loop is then a pass over contiguous memory
(a slice of gate columns out of ``(n_samples, 4 * n_hidden)`` would cost 3
to 4 times as much per element). The gate pre-activations of a step are::

    A_t = M Z_t,    Z_t = [x_t; 1; h_{t-1}]  of shape (n_features + 1 + n_hidden, n_samples)

with the input weights, the bias and the recurrent weights side by side in
``M`` (see :func:`fused_weights`), so that no separate bias pass is made.
``M`` has one row block of ``n_hidden`` rows per entry of the cell's
``rows``, each naming the column blocks of the parameters ``W``, ``b`` and
``U`` it holds (a block that a row does not have is zero in ``M`` and no
parameter at all).

The step inputs are held feature major: ``Z`` of shape ``(n_features + 1 +
n_hidden, n_steps + 1, n_samples)``, ``Z[:, t]`` being ``Z_t`` (a matrix
whose rows are ``(n_steps + 1) * n_samples`` apart, which BLAS reads as it
is). The caller writes ``x_t`` and the row of ones; the time loop writes
each ``h_t`` into ``Z[first_h:, t + 1]``, where the next step's GEMM reads
it. Feature major, the steps of ``Z`` side by side are one matrix too, of
``n_steps * n_samples`` columns, so that:

* a wide input (:func:`projects_input`: more than twice ``n_hidden``, as
  the default's patches of long series) is projected for all steps in one
  GEMM before the time loop, ``P = M_x [x; 1]`` (as cuDNN and PyTorch do),
  and each step's GEMM is then only the recurrent ``M_h h_{t-1}``, added to
  ``P[:, t]``; a narrow input stays in each step's GEMM (projecting it
  would cost a pass over memory more than it saves);
* after backward, the weight gradient ``sum_t Z_t dA_t^T`` is a GEMM per
  block of steps over all their samples (:func:`weight_gradient`), not a
  GEMM per step of ``n_samples`` products; the bias gradient is its row of
  ones (:func:`add_weight_gradient`).

:class:`Steps` gives the cells' time loops their pre-activations either
way, so that each cell has one forward.

Activation methods: one transcendental pass per element, chosen per machine
---------------------------------------------------------------------------
Every gate of a step comes from one pass of one function over the step's
contiguous gate block, the gate rows of ``M`` being scaled so that the same
function serves sigmoid and tanh rows (see ``ACTIVATIONS``):

* ``"tanh"``: ``sigmoid(a) = (1 + tanh(a / 2)) / 2``, the 1/2 inside folded
  into the sigmoid rows of ``M``; one ``np.tanh``, then ``s = 0.5 s + 0.5``
  on the sigmoid rows.
* ``"exp"``: ``sigmoid(a) = 1 / (1 + e^-a)`` and ``tanh(a) = 2 sigmoid(2a) -
  1``, the -1 and -2 folded into ``M``; one ``np.exp``, ``+ 1``, one
  reciprocal, then ``2 s - 1`` on the tanh rows (the tanh of a state, such as
  the lstm's ``tanh(c_t)``, likewise from ``e^(-2 c_t)``). ``e^-a`` overflows
  to ``inf`` for ``a < -709`` (float64; -88 in float32) and the gate is then
  exactly 0: the loop runs with overflow (and underflow) ignored, so that
  saturation at any argument is exact and silent, as ``np.tanh``'s.
* ``"expit"``: ``scipy.special.expit`` with the tanh rows scaled by 2.

Which is fastest depends on the machine: NumPy vectorises float64 ``tanh``
only with AVX-512 (measured on an AVX2 machine of this project's kind, per
element: float64 tanh 15 ns, exp 5.6 ns). So the method is measured once per
process and per dtype (:func:`activation_method`, a few ms), unless the
environment variable ``SKLEARN_GATEDMEM_ACTIVATION`` names one; ``"tanh"``
is kept unless another is clearly faster, so that a near tie does not make
the fitted model change from one process to the next. Methods agree
to rounding (1e-12 in float64 over whole sequences). Backward uses the
derivatives written in terms of the forward outputs, ``s (1 - s)`` and
``1 - tanh^2``: no transcendental function, whatever the method.

Few passes per step
-------------------
Python's cost per NumPy call and each pass over memory are what remain once
the GEMMs are as large as they can be, so the time loops pair whole runs of
blocks in one call wherever the equations allow, and rows that need no
recurrence (gated_memory's ``z_t``, the gru's input part of ``n_t``) are
computed for all steps at once before the loop. Initial states are zero
unless :func:`forward` is given others (``initial``, for the lstm and the
gru); :func:`initial_gradient` then gives the gradient with respect to them.
"""

import contextlib
import dataclasses
import functools
import os
import threading
import time
from typing import Callable, Optional

import numpy as np
from scipy.special import expit


@dataclasses.dataclass(frozen=True)
class Cell:
    """Everything the package knows of one recurrent cell.

    Attributes
    ----------
    name : str
        The ``cell`` parameter's value.
    W_blocks, U_blocks, b_blocks : tuple of str
        Names of the column blocks (``n_hidden`` wide each) of the input
        weights ``W``, the recurrent weights ``U`` and the bias ``b``, in the
        order of the parameter layout (:mod:`sklearn_gatedmem._params`).
        The gates that recur are those of ``U_blocks``.
    rows : tuple of (str or None, str, str or None)
        The row blocks of ``M`` in the time loop's internal order: for each,
        the ``W``, ``b`` and ``U`` block it holds (None: zero there).
    row_kinds : tuple of {"sigmoid", "tanh", None}
        What each row block's pre-activation goes through, and so how the
        activation method scales it (None: not scaled; the cell applies
        :func:`activation_method`'s ``state`` function itself).
    bias_init : dict of str to float
        Starting value of bias blocks other than 0 (the forget gate's 1).
    forward, backward, state, work_shapes : callable
        The cell's time loops and the shapes of their work arrays (see the
        generic functions of this module, which call them).
    torch_module : str or None
        The ``torch.nn`` class that holds this cell (``"LSTM"``, ``"GRU"``),
        None when there is none; then ``torch_state_dict`` refuses it.
    torch_weights : callable or None
        ``(W, U, b) -> (W_ih, W_hh, b_ih, b_hh)``, the parameters in that
        class's gate order, columns still per gate (``W_ih`` of shape
        ``(n_inputs, n_gates * n_hidden)``); transposed by the caller.
    torch_input, torch_step : callable
        The cell in PyTorch, for :mod:`sklearn_gatedmem._torch`:
        ``torch_input(x, W, b)`` the input part of all steps at once,
        ``torch_step(xw_t, state, U, b, n_hidden) -> (out_t, state)``.
    n_states : int
        Tensors the PyTorch step carries, and states :func:`forward` may
        start from (``initial``).
    initial_gradient : callable or None
        ``(R, cache) -> tuple`` of the gradients with respect to the initial
        states, after backward; None when the cell only starts from zero.
    """

    name: str
    W_blocks: tuple
    U_blocks: tuple
    b_blocks: tuple
    rows: tuple
    row_kinds: tuple
    bias_init: dict
    forward: Callable
    backward: Callable
    state: Callable
    work_shapes: Callable
    torch_input: Callable
    torch_step: Callable
    n_states: int
    torch_module: Optional[str] = None
    torch_weights: Optional[Callable] = None
    initial_gradient: Optional[Callable] = None

    @property
    def n_rows(self):
        """Row blocks of ``M`` (gate pre-activations per step)."""
        return len(self.rows)

    def param_shapes(self, n_inputs, n_hidden):
        """Shapes of ``W``, ``U`` and ``b`` for one direction of one layer."""
        H = n_hidden
        return {
            "W": (n_inputs, len(self.W_blocks) * H),
            "U": (H, len(self.U_blocks) * H),
            "b": (len(self.b_blocks) * H,),
        }

    def block(self, kind, name, n_hidden):
        """The column slice of block ``name`` of parameter ``kind`` ("W", "U", "b")."""
        k = getattr(self, f"{kind}_blocks").index(name)
        return slice(k * n_hidden, (k + 1) * n_hidden)

    @functools.cached_property
    def recurrent_rows(self):
        """The contiguous run of row blocks that the recurrent weights feed,
        ``(first, stop)`` in blocks: backward's ``dh = R dA[first:stop]``."""
        recurrent = [k for k, (_, _, u) in enumerate(self.rows) if u is not None]
        first, stop = recurrent[0], recurrent[-1] + 1
        assert recurrent == list(range(first, stop)), "recurrent rows must be contiguous"
        return first, stop


CELLS = {}  # name -> Cell, filled by register()


def register(cell):
    """Add ``cell`` to :data:`CELLS`; returns it."""
    CELLS[cell.name] = cell
    return cell


# the functions a cell's module defines under these names (torch_weights only
# when the cell has a torch_module)
_MODULE_FUNCTIONS = ("forward", "backward", "state", "work_shapes", "torch_input",
                     "torch_step", "torch_weights", "initial_gradient")


def register_module(namespace, **spec):
    """Register the cell of a module: ``spec`` (the :class:`Cell` fields that
    are data) with the module's functions of the same names, taken from its
    ``namespace`` (``globals()``)."""
    functions = {name: namespace[name] for name in _MODULE_FUNCTIONS if name in namespace}
    return register(Cell(**spec, **functions))


def get(cell):
    """The :class:`Cell` of ``cell``, a name or a Cell."""
    return cell if isinstance(cell, Cell) else CELLS[cell]


# -- activation methods (see the module docstring) ---------------------------
# Each gives, in place, every gate of a block whose rows were scaled by its
# ``scales`` (sigmoid rows, tanh rows), and the tanh of an unscaled state.


def _tanh_gates(block, sigmoid, tanh):
    np.tanh(block, out=block)
    sigmoid *= 0.5  # (1 + tanh(a / 2)) / 2
    sigmoid += 0.5


def _tanh_state(c, out):
    np.tanh(c, out=out)


def _exp_gates(block, sigmoid, tanh):
    np.exp(block, out=block)  # e^-a, e^-2a
    block += 1
    np.reciprocal(block, out=block)  # sigmoid(a), sigmoid(2a)
    if tanh.size:
        tanh *= 2  # tanh(a) = 2 sigmoid(2a) - 1
        tanh -= 1


def _exp_state(c, out):
    np.multiply(c, -2, out=out)
    np.exp(out, out=out)
    out += 1
    np.divide(2, out, out=out)
    out -= 1


def _expit_gates(block, sigmoid, tanh):
    expit(block, out=block)
    if tanh.size:
        tanh *= 2
        tanh -= 1


def _expit_state(c, out):
    np.multiply(c, 2, out=out)
    expit(out, out=out)
    out *= 2
    out -= 1


ACTIVATIONS = {
    "tanh": {"scales": (0.5, 1.0), "gates": _tanh_gates, "state": _tanh_state,
             "errstate": {}},
    # e^-a overflows to inf where the gate saturates to exactly 0: IEEE's
    # correct answer, so the time loop ignores overflow (and underflow)
    "exp": {"scales": (-1.0, -2.0), "gates": _exp_gates, "state": _exp_state,
            "errstate": {"over": "ignore", "under": "ignore"}},
    "expit": {"scales": (1.0, 2.0), "gates": _expit_gates, "state": _expit_state,
              "errstate": {}},
}
ACTIVATION_ENV = "SKLEARN_GATEDMEM_ACTIVATION"
_measured = {}  # dtype name -> method, once per process
_MEASURING = threading.Lock()
_forced = None  # set by _force_activation (tests)
_pinned = {}  # dtype name -> method, set by pinned_activations (worker processes)


# The methods round differently (by 1e-12), and 100 L-BFGS iterations can
# grow that into a different prediction, so a fit's result depends on the
# method chosen. Where two are within a few per cent (float64 on this
# project's AMD machines: tanh and exp 4 to 10 % apart, the faster one
# changing from run to run), the fastest would change between processes and
# so would the model fitted from the same random_state. So "tanh" is kept
# unless another method takes at most this share of its time: a large gain
# is still taken (an AVX2 machine of this kind once measured float64 exp at
# 5.6 ns an element against tanh's 15), a small one is given up (AVX2
# emulated on AMD EPYC: the float64 exp method in 0.89 of tanh's time).
_SWITCH_BELOW = 0.8
_PREFERRED = "tanh"


def activation_method(dtype):
    """The activation method for ``dtype`` on this machine: the one pinned by
    :func:`pinned_activations`, or forced by
    :func:`_force_activation` or by ``$SKLEARN_GATEDMEM_ACTIVATION``, else
    ``"tanh"`` unless :func:`_measure_activations` finds another method
    clearly faster (in at most ``_SWITCH_BELOW`` of tanh's time), measured
    once per process."""
    key = np.dtype(dtype).name
    if key in _pinned:
        return _pinned[key]
    forced = _forced or os.environ.get(ACTIVATION_ENV) or None
    if forced is not None:
        if forced not in ACTIVATIONS:
            raise ValueError(
                f"{ACTIVATION_ENV}={forced!r}: expected one of {sorted(ACTIVATIONS)}"
            )
        return forced
    with _MEASURING:  # once: networks fitted side by side use the same method
        if key not in _measured:
            _measured[key] = _choose(_measure_activations(np.dtype(dtype)))
    return _measured[key]


def _choose(times):
    """The method of ``times`` (method -> seconds) to use: the fastest if it
    takes at most ``_SWITCH_BELOW`` of the preferred method's time, else the
    preferred one (see ``_SWITCH_BELOW``)."""
    fastest = min(times, key=times.get)
    return fastest if times[fastest] <= _SWITCH_BELOW * times[_PREFERRED] else _PREFERRED


def _measure_activations(dtype, n_hidden=32, n_samples=256, repeats=7):
    """Best time of each method over one lstm step's activations (a gate
    block of ``4 n_hidden`` rows, then the tanh of the state), the methods
    taking turns so that a burst of other load hits them alike."""
    H = n_hidden
    a = np.random.RandomState(0).normal(scale=2.0, size=(4 * H, n_samples)).astype(dtype)
    block, out = np.empty_like(a), np.empty_like(a[:H])
    best = dict.fromkeys(ACTIVATIONS, np.inf)
    for _ in range(repeats):
        for name, act in ACTIVATIONS.items():
            np.copyto(block, a)
            with np.errstate(**act["errstate"]):
                start = time.perf_counter()
                act["gates"](block, block[: 3 * H], block[3 * H :])
                act["state"](block[:H], out)
                best[name] = min(best[name], time.perf_counter() - start)
    return best


def activation_methods():
    """The method of each compute dtype in this process, ``{dtype name:
    method}``: what :func:`pinned_activations` gives a worker process, so
    that its fits compute as this process's would (the measured choice can
    differ between processes)."""
    return {np.dtype(dtype).name: activation_method(dtype)
            for dtype in (np.float32, np.float64)}


@contextlib.contextmanager
def pinned_activations(methods):
    """Inside, :func:`activation_method` gives ``methods`` (from
    :func:`activation_methods` of another process) whatever is forced or
    measured here; for the worker processes of a fit (``_processes``)."""
    previous = dict(_pinned)
    _pinned.update(methods)
    try:
        yield
    finally:
        _pinned.clear()
        _pinned.update(previous)


def _force_activation(method):
    """Force ``method`` (None: back to measuring) for the whole process;
    returns the previous forced method. For tests and benchmarks."""
    global _forced
    if method is not None and method not in ACTIVATIONS:
        raise ValueError(f"unknown activation method {method!r}")
    previous, _forced = _forced, method
    return previous


def step_gradient(out, dout_t, live_t, R, dA_next, carried=None, gate=None):
    """Backward's gradient into a step's carried output, in place.

    ``out = dout_t + R dA_{t+1} + carried * gate`` (``dA_next`` None at the
    last step, where only ``dout_t`` counts), the ``dout_t`` term skipped
    where the step is not live (it is 0 there). ``carried * gate`` is the
    path around the gates (gated_memory's ``dm_{t+1} f_{t+1}``, the gru's
    ``dh_{t+1} z_{t+1}``); ``carried`` is overwritten.
    """
    if dA_next is None:
        if live_t:
            out[...] = dout_t
        else:
            out.fill(0)
        return
    np.matmul(R, dA_next, out=out)
    if live_t:
        out += dout_t
    if carried is not None:
        carried *= gate
        out += carried


# -- the generic functions: the cell's object says what differs ---------------


def fused_weights(cell, W, U, b, dtype, activation=None):
    """The arrays the time loop multiplies by, from the parameter layout.

    Parameters
    ----------
    cell : str or Cell
    W : ndarray of shape (n_features, len(W_blocks) * n_hidden)
    U : ndarray of shape (n_hidden, len(U_blocks) * n_hidden)
    b : ndarray of shape (len(b_blocks) * n_hidden,)
    dtype : dtype
        Compute dtype.
    activation : str, default=None
        A key of ``ACTIVATIONS``; None means :func:`activation_method` of ``dtype``.

    Returns
    -------
    weights : dict
        ``"M"``, shape (n_rows * n_hidden, n_features + 1 + n_hidden): ``[W^T,
        b, U^T]`` by the cell's row blocks, scaled for the activation method
        (forward). ``"R"``, shape (n_hidden, n_recurrent_rows * n_hidden):
        the recurrent columns of ``M``, unscaled and transposed (backward,
        ``dh = R dA``). ``"Wx"``, shape (n_features, n_rows * n_hidden): the
        input columns of ``M``, unscaled and transposed (gradient of the
        layer's input, ``dx = Wx dA``). All in ``dtype``. ``"activation"``:
        the method ``M`` is scaled for, to hand to :func:`forward`.
    """
    cell = get(cell)
    activation = activation_method(dtype) if activation is None else activation
    scales = dict(zip(("sigmoid", "tanh"), ACTIVATIONS[activation]["scales"]))
    D, H = W.shape[0], U.shape[0]
    M = np.zeros((cell.n_rows * H, D + 1 + H), dtype=dtype)
    Wx = np.zeros((D, cell.n_rows * H), dtype=dtype)
    recurrent = []
    for k, ((w, bias, u), kind) in enumerate(zip(cell.rows, cell.row_kinds)):
        rows, scale = slice(k * H, (k + 1) * H), scales.get(kind, 1.0)
        if w is not None:
            W_k = W[:, cell.block("W", w, H)]
            M[rows, :D] = W_k.T * scale
            Wx[:, rows] = W_k
        M[rows, D] = b[cell.block("b", bias, H)] * scale
        if u is not None:
            U_k = U[:, cell.block("U", u, H)]
            M[rows, D + 1 :] = U_k.T * scale
            recurrent.append(U_k)
    return {
        "M": M,
        "R": np.ascontiguousarray(np.hstack(recurrent), dtype=dtype),
        "Wx": Wx,
        "activation": activation,
    }


def add_weight_gradient(cell, G, dW, dU, db):
    """Add ``G = sum_t [x_t; 1; h_{t-1}] dA_t^T`` (internal rows, from
    :func:`weight_gradient`) into the parameter layout.

    Parameters
    ----------
    cell : str or Cell
    G : ndarray of shape (n_features + 1 + n_hidden, n_rows * n_hidden)
    dW, dU, db : ndarray
        Gradient views of ``W``, ``U`` and ``b``, added to in place; the zero
        blocks of ``M`` are no parameters and get nothing.
    """
    cell = get(cell)
    D, H = dW.shape[0], dU.shape[0]
    for k, (w, bias, u) in enumerate(cell.rows):  # block slices: no gather
        internal = slice(k * H, (k + 1) * H)
        if w is not None:
            dW[:, cell.block("W", w, H)] += G[:D, internal]
        db[cell.block("b", bias, H)] += G[D, internal]
        if u is not None:
            dU[:, cell.block("U", u, H)] += G[D + 1 :, internal]


def work_shapes(cell, n_steps, n_features, n_hidden, n_samples, backward=True):
    """Shapes of the work arrays of :func:`forward` and :func:`backward`.

    Returns
    -------
    shapes : dict of str to tuple
        ``"Z"``, the step inputs, feature major (see the module docstring);
        ``"P"``, the input part of the pre-activations of all steps, when
        :func:`projects_input`; with ``backward``, ``"dA_block"``, the
        blocks of :func:`weight_gradient`, when they span several steps;
        and the cell's cache (its module says what each holds), with
        ``backward`` also backward's arrays (``"dA"`` among them).
    """
    cell = get(cell)
    T, H, n = n_steps, n_hidden, n_samples
    shapes = {"Z": (n_features + 1 + H, T + 1, n)}
    if projects_input(n_features, n_hidden):
        shapes["P"] = (cell.n_rows * H, T, n)
    block = _gradient_block(n, "P" in shapes)
    if backward and block == 1:
        shapes["G"] = (T, n_features + 1 + H, cell.n_rows * H)
    elif backward and min(block, T) > 1:
        shapes["dA_block"] = (cell.n_rows * H, min(block, T), n)
    shapes.update(cell.work_shapes(T, H, n, backward))
    return shapes


# An input wider than this many times n_hidden (its row of ones counted) is
# projected for all steps in one GEMM before the time loop; a narrower one
# goes into each step's GEMM with h_{t-1}. Measured with one BLAS thread on
# this project's AVX2 machine (AMD EPYC), n_hidden=32: 30 samples of 32
# steps of 500 inputs, the step GEMMs of the forward take 10 ms, one GEMM
# 7 ms and the steps' recurrent GEMMs 1 ms; 600 samples of 60 steps of 4
# inputs, the step GEMMs 22 ms, one GEMM and the steps 37 ms (for narrow
# inputs the projection is a pass over memory more, not a better GEMM); at
# 64 inputs a tie.
_PROJECT_WIDER_THAN = 2


def projects_input(n_features, n_hidden):
    """Whether the input columns of ``M`` (the inputs and the bias) are
    applied to all steps in one GEMM before the time loop (wide inputs),
    rather than in each step's GEMM with the recurrent ones."""
    return n_features + 1 > _PROJECT_WIDER_THAN * n_hidden


@dataclasses.dataclass
class Steps:
    """What a cell's time loop asks for its pre-activations (built by
    :func:`forward`).

    Attributes
    ----------
    Z : ndarray of shape (n_features + 1 + n_hidden, n_steps + 1, n_samples)
        The step inputs: the cell reads ``h_{t-1}`` in ``Z[first_h:, t]``
        and writes ``h_t`` into ``Z[first_h:, t + 1]``.
    first_h : int
        The first recurrent row of ``Z``.
    n_steps : int
    M_step : ndarray
        The columns of ``M`` applied in each step's GEMM: the recurrent ones,
        and the input ones unless ``P`` holds their products.
    P : ndarray of shape (n_rows * n_hidden, n_steps, n_samples) or None
        The input columns applied to every step, :func:`projects_input`.
    M_input : ndarray of shape (n_rows * n_hidden, first_h)
        The input columns of ``M``.
    zero_start : bool
        ``h_{-1} = 0``: the first step skips the recurrent columns.
    """

    Z: np.ndarray
    first_h: int
    n_steps: int
    M_step: np.ndarray
    P: Optional[np.ndarray]
    M_input: np.ndarray
    zero_start: bool

    def step(self, t, out, rows=slice(None)):
        """The pre-activations ``A_t`` of the row blocks ``rows`` into ``out``
        of shape (len(rows), n_samples)."""
        P = self.P
        if t == 0 and self.zero_start:  # h_{-1} = 0: the input part alone
            if P is None:
                np.matmul(self.M_input[rows], self.Z[: self.first_h, 0], out=out)
            else:
                np.copyto(out, P[rows, 0])
        elif P is None:
            np.matmul(self.M_step[rows], self.Z[:, t], out=out)
        else:
            np.matmul(self.M_step[rows], self.Z[self.first_h :, t], out=out)
            out += P[rows, t]

    def inputs(self, rows, out):
        """The pre-activations of row blocks without recurrent columns (the
        gru's ``n_x``, gated_memory's ``z``) for all steps at once, into
        ``out`` of shape (n_steps, len(rows), n_samples)."""
        first_h, n_steps = self.first_h, self.n_steps
        if self.P is None:
            np.matmul(self.M_input[rows], self.Z[:first_h, :n_steps].transpose(1, 0, 2),
                      out=out)
        else:
            np.copyto(out, self.P[rows].transpose(1, 0, 2))


def forward(cell, Z, M, cache, activation=None, initial=None):
    """Unroll ``cell`` over all time steps.

    Parameters
    ----------
    cell : str or Cell
    Z : ndarray of shape (n_features + 1 + n_hidden, n_steps + 1, n_samples)
        The step inputs ``[x_t; 1; h_{t-1}]``, feature major: the caller
        fills ``x_t`` and the ones for ``t < n_steps``; the recurrent rows
        are written here (those of ``Z[:, 0]`` are the initial state).
    M : ndarray of shape (n_rows * n_hidden, n_features + 1 + n_hidden)
        ``fused_weights(...)["M"]``.
    cache : dict of ndarray
        Work arrays of the shapes :func:`work_shapes` gives (``Z`` aside);
        filled in place; backward reads them.
    activation : str, default=None
        The method ``M`` was scaled for, ``fused_weights(...)["activation"]``;
        None means :func:`activation_method` of ``M.dtype``.
    initial : tuple of ndarray of shape (n_hidden, n_samples), default=None
        The states before the first step, ``cell.n_states`` of them (the
        lstm's ``(h_{-1}, c_{-1})``, the gru's ``(h_{-1},)``), in ``M``'s
        dtype; None: zero, and the first step skips the recurrent GEMM.

    Returns
    -------
    out : ndarray of shape (n_steps, n_hidden, n_samples)
        The cell's output at every step (a view into ``Z`` when the output
        is the recurrent input).
    """
    cell = get(cell)
    H = M.shape[0] // cell.n_rows
    first_h = M.shape[1] - H
    n_steps = Z.shape[1] - 1
    cache["Z"] = Z
    P = cache.get("P")
    if P is not None:  # the input part of every step: one GEMM
        np.matmul(M[:, :first_h], Z[:first_h, :n_steps].reshape(first_h, -1),
                  out=P.reshape(P.shape[0], -1))
    steps = Steps(Z, first_h, n_steps, np.ascontiguousarray(M[:, 0 if P is None else first_h:]),
                  P, M[:, :first_h], initial is None)
    act = ACTIVATIONS[activation_method(M.dtype) if activation is None else activation]
    if initial is None:
        Z[first_h:, 0] = 0
        with np.errstate(**act["errstate"]):
            return cell.forward(steps, cache, act)
    if cell.initial_gradient is None or len(initial) != cell.n_states:
        raise ValueError(f"The {cell.name!r} cell starts from zero states only.")
    Z[first_h:, 0] = initial[0]
    with np.errstate(**act["errstate"]):
        return cell.forward(steps, cache, act, initial)


# The weight gradient sums products over steps and samples. Steps of few
# samples make skinny per-step GEMMs, so a GEMM then spans enough steps for
# about _GEMM_DEPTH products, at the cost of laying dA's steps out side by
# side first; the GEMMs' results are added in float64 (float32 sums stay as
# short as the per-step products of chunks of this many samples). A narrow
# input with at least _PER_STEP_SAMPLES samples keeps a GEMM per step, all
# in one batched call: that copy of dA would cost more than it saves (it
# grows with n_rows * n_hidden, the GEMM with the input's width too).
# Measured with one BLAS thread on this project's AMD EPYC (AVX2) machine,
# n_hidden=32, per evaluation: 30 samples x 32 steps x 500 inputs, float64
# 8.4 ms in blocks against 12.9 per step, float32 4.6 against 7.1; 20 x 24
# x 1, float32 0.22 against 0.31; 100 x 50 x 3, float32 3.9 in blocks
# against 2.2 per step; 200 x 32 x 8 bidirectional, float64 11.6 against
# 10.0; 600 x 60 x 4 alike either way.
_GEMM_DEPTH = 512
_PER_STEP_SAMPLES = 64


def _gradient_block(n_samples, projected):
    """Steps per GEMM of :func:`weight_gradient` (1: a GEMM per step, in one
    batched call), for an input projected before the time loop or not
    (:func:`projects_input`)."""
    if n_samples >= _PER_STEP_SAMPLES and not projected:
        return 1
    return max(1, _GEMM_DEPTH // n_samples)


def weight_gradient(cache, dA):
    """``G = sum_t Z_t dA_t^T``, ``Z_t = [x_t; 1; h_{t-1}]``, in float64,
    after :func:`backward`.

    A GEMM per block of steps over all their samples, ``Z``'s steps being
    one matrix as they are and ``dA``'s laid out side by side in
    ``cache["dA_block"]`` first; or, for steps of many samples and a narrow
    input, a GEMM per step in one batched call into ``cache["G"]`` (see
    :func:`_gradient_block`).

    Parameters
    ----------
    cache : dict of ndarray
        As filled by :func:`forward` and :func:`backward`.
    dA : ndarray of shape (n_steps, n_rows * n_hidden, n_samples)
        From :func:`backward`.

    Returns
    -------
    G : ndarray of shape (n_features + 1 + n_hidden, n_rows * n_hidden), float64
        For :func:`add_weight_gradient`.
    """
    Z = cache["Z"]
    n_steps, n_rows, n_samples = dA.shape
    width = Z.shape[0]
    block = _gradient_block(n_samples, "P" in cache)
    if "G" in cache:  # block == 1, narrow input
        products = np.matmul(Z[:, :n_steps].transpose(1, 0, 2), dA.transpose(0, 2, 1),
                             out=cache["G"])
        return products.sum(axis=0, dtype=np.float64)
    G = None
    for start in range(0, n_steps, block):
        stop = min(start + block, n_steps)
        if stop - start == 1:
            A = dA[start]
        else:
            A = cache["dA_block"][:, : stop - start]
            np.copyto(A, dA[start:stop].transpose(1, 0, 2))
            A = A.reshape(n_rows, -1)
        product = A @ Z[:, start:stop].reshape(width, -1).T
        if G is None:
            G = product.astype(np.float64)  # a copy: the sum is float64
        else:
            G += product
    return G.T


def initial_gradient(cell, R, cache):
    """The gradient with respect to the initial states given to
    :func:`forward`, once :func:`backward` has run on ``cache``.

    Returns
    -------
    grads : tuple of ndarray of shape (n_hidden, n_samples)
        One per state of ``initial``, in its order.
    """
    return get(cell).initial_gradient(R, cache)


def backward(cell, dout, R, cache, live=None):
    """Backpropagate through the unrolled cell.

    Parameters
    ----------
    cell : str or Cell
    dout : ndarray of shape (n_steps, n_hidden, n_samples)
        Gradient of the loss with respect to every step's output. Not modified.
    R : ndarray of shape (n_hidden, n_recurrent_rows * n_hidden)
        ``fused_weights(...)["R"]``.
    cache : dict of ndarray
        As filled by :func:`forward`, with the backward work arrays.
    live : ndarray of bool of shape (n_steps,), default=None
        Steps where ``dout`` may be nonzero; None means all. Elsewhere
        ``dout`` must still be 0, but the time loop skips adding it.

    Returns
    -------
    dA : ndarray of shape (n_steps, n_rows * n_hidden, n_samples)
        Gradient with respect to the gate pre-activations ``A_t`` (unscaled,
        internal row order); :func:`weight_gradient` turns it into the
        weight gradient.
    """
    if live is None:
        live = np.ones(dout.shape[0], dtype=bool)
    return get(cell).backward(dout, R, cache, live)


def state(cell, cache):
    """The carried state after every step, as filled by :func:`forward`.

    Returns
    -------
    state : ndarray of shape (n_steps, n_hidden, n_samples)
        The cell's memory (a view; see its module). For the lstm without
        backward's work arrays, only the last step's: shape (1, n_hidden,
        n_samples).
    """
    return get(cell).state(cache)


# registered in this order, the order of the docs
from . import lstm, gated_memory, gru  # noqa: E402,F401,I001
