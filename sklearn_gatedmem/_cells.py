"""Gated recurrent cells unrolled over whole sequences: forward and backward.

NumPy (and SciPy's ``expit``) only: no scikit-learn, no classes.

Layout: one contiguous block per time step, units by samples
-------------------------------------------------------------
Every array is ``(n_steps, width, n_samples)``: step ``t`` is one contiguous
``(width, n_samples)`` block, a row per unit and a column per sample, so that
each gate's ``n_hidden`` rows are contiguous too. Every elementwise operation
of the time loop is then a pass over contiguous memory (a slice of gate
columns out of ``(n_samples, 4 * n_hidden)`` would cost 3 to 4 times as much
per element), and each step's gate pre-activations are one GEMM::

    A_t = M Z_t,    Z_t = [x_t; 1; h_{t-1}]  of shape (n_features + 1 + n_hidden, n_samples)

with the input weights, the bias and the recurrent weights side by side in
``M`` (see :func:`fused_weights`), so that no separate input projection or
bias pass is made. The caller writes ``x_t`` and the row of ones into ``Z``;
:func:`forward` writes each recurrent input ``h_t`` into ``Z_{t+1}``, where
the next step's GEMM reads it. After backward, the weight gradient is
``sum_t Z_t dA_t^T`` (one batched GEMM), and the bias gradient is its row of
ones.

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
  reciprocal, then ``2 s - 1`` on the tanh rows (the lstm's ``tanh(c_t)``
  likewise, from ``e^(-2 c_t)``). ``e^-a`` overflows to
  ``inf`` for ``a < -709`` (float64; -88 in float32) and the gate is then
  exactly 0: the loop runs with overflow (and underflow) ignored, so that
  saturation at any argument is exact and silent, as ``np.tanh``'s.
* ``"expit"``: ``scipy.special.expit`` with the tanh rows scaled by 2.

Which is fastest depends on the machine: NumPy vectorises float64 ``tanh``
only with AVX-512 (measured on an AVX2 machine of this project's kind, per
element: float64 tanh 15 ns, exp 5.6 ns). So the method is measured once per
process and per dtype (:func:`activation_method`, a few ms), unless the
environment variable ``SKLEARN_GATEDMEM_ACTIVATION`` names one. Methods agree
to rounding (1e-12 in float64 over whole sequences). Backward uses the
derivatives written in terms of the forward outputs, ``s (1 - s)`` and
``1 - tanh^2``: no transcendental function, whatever the method.

Few passes per step
-------------------
Python's cost per NumPy call and each pass over memory are what remain once
the GEMMs are as large as they can be, so the time loops pair whole runs of
blocks in one call wherever the equations allow (for the lstm, a step's block
holds ``i, f, o, g, c_{t-1}, tanh(c_t)``: ``[i, f] * [g, c_{t-1}]`` is one
call). Backward's factors (``K``: for the lstm ``g i (1-i)`` and the like) are
recomputed per step from the forward's block, while it is in cache, rather
than stored for all steps; for gated_memory, whose output gate needs no
recurrence, they are computed for all steps at once. Without backward
(prediction), the lstm keeps two step blocks, which the steps take in turn,
instead of one per step: nothing that only backward needs is stored.

The two cells
-------------
``"lstm"``, gate blocks ``(i, f, g, o)`` in PyTorch's order (internally
``(i, f, o, g)``), recurrent weights ``U`` of shape ``(n_hidden, 4 * n_hidden)``::

    i_t = sigmoid(W_i x_t + U_i h_{t-1} + b_i)
    f_t = sigmoid(W_f x_t + U_f h_{t-1} + b_f)
    g_t = tanh(W_g x_t + U_g h_{t-1} + b_g)
    o_t = sigmoid(W_o x_t + U_o h_{t-1} + b_o)
    c_t = f_t * c_{t-1} + i_t * g_t
    h_t = o_t * tanh(c_t)                       (h_t is the output)

    backward, with dh_t = dout_t + U dA_{t+1}:
    dA_o = dh_t * tanh(c_t) o_t (1 - o_t)
    dc_t = dc_{t+1} f_{t+1} + dh_t * o_t (1 - tanh(c_t)^2)
    dA_i = dc_t * g_t i_t (1 - i_t)
    dA_f = dc_t * c_{t-1} f_t (1 - f_t)
    dA_g = dc_t * i_t (1 - g_t^2)

``"gated_memory"``, the cell of the design notes, gate blocks
``(z, r, f, o)`` (the same internally), recurrent weights of shape
``(n_hidden, 3 * n_hidden)`` acting on the three gates only (the transformed
input ``z_t`` sees the input alone, so it is computed for all steps at once
before the time loop)::

    z_t   = tanh(M_in x_t + b_in)
    r_t   = sigmoid(M_R   [x_t, m_{t-1}] + b_R)
    f_t   = sigmoid(M_F   [x_t, m_{t-1}] + b_F)
    o_t   = sigmoid(M_out [x_t, m_{t-1}] + b_out)
    m_t   = f_t * m_{t-1} + r_t * z_t           (only m is carried)
    out_t = o_t * m_t                           (out_t is the output)

    backward, with dm_t = dout_t o_t + dm_{t+1} f_{t+1} + U dA_{t+1}:
    dA_o = dout_t * m_t o_t (1 - o_t)
    dA_z = dm_t * r_t (1 - z_t^2)
    dA_r = dm_t * z_t r_t (1 - r_t)
    dA_f = dm_t * m_{t-1} f_t (1 - f_t)

Here ``W`` holds the ``x`` columns of ``[M_in, M_R, M_F, M_out]`` and ``U``
the ``m`` columns of ``[M_R, M_F, M_out]``. Initial states are zero.
"""

import functools
import os
import time

import numpy as np
from scipy.special import expit

# Per cell, in the parameter layout's gate order: which gate block is a tanh,
# which is the forget gate (its bias starts at 1), the first gate block that
# the recurrent product feeds, and what the recurrent product reads (h for
# the lstm, m for gated_memory). ``order`` is the internal block order: the
# internal block k is the parameter block order[k]; the sigmoid blocks are
# contiguous (rows H:4H for gated_memory, 0:3H for the lstm).
CELLS = {
    "lstm": {
        "tanh_block": 2,
        "forget_block": 1,
        "first_recurrent_block": 0,
        "recurrent_input": "out",
        "order": (0, 1, 3, 2),  # i, f, o, g
    },
    "gated_memory": {
        "tanh_block": 0,
        "forget_block": 2,
        "first_recurrent_block": 1,
        "recurrent_input": "state",
        "order": (0, 1, 2, 3),  # z, r, f, o
    },
}


def n_recurrent_columns(cell, n_hidden):
    """Width of the recurrent weight matrix ``U`` of ``cell``."""
    return (4 - CELLS[cell]["first_recurrent_block"]) * n_hidden


@functools.lru_cache(maxsize=None)
def _gate_columns(cell, n_hidden):
    """Parameter-layout columns of the internal gate rows, in order, and the
    internal rows that the recurrent weights feed (read-only arrays)."""
    H = n_hidden
    cols = np.concatenate([np.arange(k * H, (k + 1) * H) for k in CELLS[cell]["order"]])
    recurrent = cols >= CELLS[cell]["first_recurrent_block"] * H
    cols.flags.writeable = recurrent.flags.writeable = False
    return cols, recurrent


def _sigmoid_rows(cell, n_hidden):
    """The contiguous internal rows that hold sigmoid gates."""
    H = n_hidden
    return slice(0, 3 * H) if cell == "lstm" else slice(H, 4 * H)


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
_forced = None  # set by _force_activation (tests)


def activation_method(dtype):
    """The activation method for ``dtype`` on this machine: the one forced by
    :func:`_force_activation` or by ``$SKLEARN_GATEDMEM_ACTIVATION``, else
    the fastest by :func:`_measure_activations`, measured once per process."""
    forced = _forced or os.environ.get(ACTIVATION_ENV) or None
    if forced is not None:
        if forced not in ACTIVATIONS:
            raise ValueError(
                f"{ACTIVATION_ENV}={forced!r}: expected one of {sorted(ACTIVATIONS)}"
            )
        return forced
    key = np.dtype(dtype).name
    if key not in _measured:  # a race measures twice; either answer is right
        times = _measure_activations(np.dtype(dtype))
        _measured[key] = min(times, key=times.get)
    return _measured[key]


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


def _force_activation(method):
    """Force ``method`` (None: back to measuring) for the whole process;
    returns the previous forced method. For tests and benchmarks."""
    global _forced
    if method is not None and method not in ACTIVATIONS:
        raise ValueError(f"unknown activation method {method!r}")
    previous, _forced = _forced, method
    return previous


def fused_weights(cell, W, U, b, dtype, activation=None):
    """The arrays the time loop multiplies by, from the parameter layout.

    Parameters
    ----------
    cell : {"lstm", "gated_memory"}
    W : ndarray of shape (n_features, 4 * n_hidden)
    U : ndarray of shape (n_hidden, n_recurrent_columns)
    b : ndarray of shape (4 * n_hidden,)
    dtype : dtype
        Compute dtype.
    activation : str, default=None
        A key of ``ACTIVATIONS``; None means :func:`activation_method` of ``dtype``.

    Returns
    -------
    weights : dict
        ``"M"``, shape (4 * n_hidden, n_features + 1 + n_hidden): ``[W^T, b,
        U^T]``, gate rows in the internal order, scaled for the activation
        method (forward). ``"R"``, shape (n_hidden, n_recurrent_columns):
        ``U`` unscaled (backward, ``dh = R dA``). ``"Wx"``, shape
        (n_features, 4 * n_hidden): ``W`` unscaled (gradient of the layer's
        input, ``dx = Wx dA``). All in ``dtype``. ``"activation"``: the
        method ``M`` is scaled for, to hand to :func:`forward`.
    """
    activation = activation_method(dtype) if activation is None else activation
    sigmoid_scale, tanh_scale = ACTIVATIONS[activation]["scales"]
    D, H = W.shape[0], U.shape[0]
    cols, recurrent = _gate_columns(cell, H)
    first = CELLS[cell]["first_recurrent_block"] * H
    R = U[:, cols[recurrent] - first]
    scale = np.full((4 * H, 1), tanh_scale)
    scale[_sigmoid_rows(cell, H)] = sigmoid_scale
    M = np.zeros((4 * H, D + 1 + H), dtype=dtype)
    M[:, :D] = W[:, cols].T * scale
    M[:, D] = b[cols] * scale[:, 0]
    M[recurrent, D + 1 :] = R.T * scale[recurrent]
    return {
        "M": M,
        "R": np.ascontiguousarray(R, dtype=dtype),
        "Wx": np.ascontiguousarray(W[:, cols], dtype=dtype),
        "activation": activation,
    }


def add_weight_gradient(cell, G, dW, dU, db):
    """Add ``G = sum_t Z_t dA_t^T`` (internal columns) into the parameter layout.

    Parameters
    ----------
    G : ndarray of shape (n_features + 1 + n_hidden, 4 * n_hidden)
    dW, dU, db : ndarray
        Gradient views of ``W``, ``U`` and ``b``, added to in place.
    """
    D, H = dW.shape[0], dU.shape[0]
    first = CELLS[cell]["first_recurrent_block"]
    for k, block in enumerate(CELLS[cell]["order"]):  # block slices: no gather
        internal, param = slice(k * H, (k + 1) * H), slice(block * H, (block + 1) * H)
        dW[:, param] += G[:D, internal]
        db[param] += G[D, internal]
        if block >= first:
            dU[:, (block - first) * H : (block - first + 1) * H] += G[D + 1 :, internal]


def work_shapes(cell, n_steps, n_features, n_hidden, n_samples, backward=True):
    """Shapes of the work arrays of :func:`forward` and :func:`backward`.

    Returns
    -------
    shapes : dict of str to tuple
        ``"Z"``, the step inputs (see the module docstring), and the cache:
        ``"gates"`` (for the lstm, per step the gates, ``c_{t-1}`` and
        ``tanh(c_t)``; without ``backward``, two such blocks that the steps
        take in turn), ``"tmp"``, for gated_memory ``"out"``; with
        ``backward``, also ``"K"`` (backward's factors), ``"dA"`` and the
        loop's small arrays.
    """
    T, H, n = n_steps, n_hidden, n_samples
    step = (H, n)
    if cell == "lstm":
        # without backward, two step blocks, alternating, are all it needs
        shapes = {"Z": (T + 1, n_features + 1 + H, n),
                  "gates": (T + 1 if backward else 2, 6 * H, n), "tmp": (2,) + step}
        if backward:
            shapes.update(K=(5, H, n), dA=(T, 5 * H, n), dh=step, dc=step)
    else:
        shapes = {"Z": (T + 1, n_features + 1 + H, n), "gates": (T, 4 * H, n),
                  "tmp": step, "out": (T, H, n)}
        if backward:
            shapes.update(K=(T, 4 * H, n), dA=(T, 4 * H, n), E=(T, H, n), dm=(2,) + step)
    return shapes


def forward(cell, Z, M, cache, activation=None):
    """Unroll ``cell`` over all time steps.

    Parameters
    ----------
    cell : {"lstm", "gated_memory"}
    Z : ndarray of shape (n_steps + 1, n_features + 1 + n_hidden, n_samples)
        Rows ``[x_t; 1; h_{t-1}]`` per step: the caller fills ``x_t`` and the
        ones for ``t < n_steps``; the recurrent rows are written here (those
        of ``Z[0]`` are set to 0, the initial state).
    M : ndarray of shape (4 * n_hidden, n_features + 1 + n_hidden)
        ``fused_weights(...)["M"]``.
    cache : dict of ndarray
        Work arrays of the shapes :func:`work_shapes` gives (``Z`` aside);
        filled in place; backward reads them.
    activation : str, default=None
        The method ``M`` was scaled for, ``fused_weights(...)["activation"]``;
        None means :func:`activation_method` of ``M.dtype``.

    Returns
    -------
    out : ndarray of shape (n_steps, n_hidden, n_samples)
        The cell's output at every step (a view into ``Z`` for the lstm).
    """
    H = M.shape[0] // 4
    first_h = M.shape[1] - H
    Z[0, first_h:] = 0
    cache["Z"] = Z
    act = ACTIVATIONS[activation_method(M.dtype) if activation is None else activation]
    with np.errstate(**act["errstate"]):
        return _FORWARD[cell](Z, M, cache, first_h, act)


def backward(cell, dout, R, cache, live=None):
    """Backpropagate through the unrolled cell.

    Parameters
    ----------
    cell : {"lstm", "gated_memory"}
    dout : ndarray of shape (n_steps, n_hidden, n_samples)
        Gradient of the loss with respect to every step's output. Not modified.
    R : ndarray of shape (n_hidden, n_recurrent_columns)
        ``fused_weights(...)["R"]``.
    cache : dict of ndarray
        As filled by :func:`forward`, with the backward work arrays.
    live : ndarray of bool of shape (n_steps,), default=None
        Steps where ``dout`` may be nonzero; None means all. Elsewhere
        ``dout`` must still be 0, but the time loop skips adding it.

    Returns
    -------
    dA : ndarray of shape (n_steps, 4 * n_hidden, n_samples)
        Gradient with respect to the gate pre-activations ``M Z_t`` (unscaled,
        internal gate order); the weight gradient is ``sum_t Z_t dA_t^T``.
    """
    if live is None:
        live = np.ones(dout.shape[0], dtype=bool)
    return _BACKWARD[cell](dout, R, cache, live)


def state(cell, cache):
    """The carried state after every step, as filled by :func:`forward`.

    Returns
    -------
    state : ndarray of shape (n_steps, n_hidden, n_samples)
        ``c_t`` for the lstm, ``m_t`` for gated_memory (a view). For the
        lstm without backward's work arrays, only the last step's: shape
        (1, n_hidden, n_samples).
    """
    Z, gates = cache["Z"], cache["gates"]
    if cell == "lstm":
        n_steps, n_blocks, H = Z.shape[0] - 1, gates.shape[0], gates.shape[1] // 6
        Q6 = gates.reshape(n_blocks, 6, H, gates.shape[2])
        if n_blocks == n_steps + 1:
            return Q6[1:, 4]
        return Q6[n_steps % n_blocks, 4][None]
    return Z[1:, Z.shape[1] - gates.shape[1] // 4 :]


def _lstm_forward(Z, M, cache, first_h, act):
    # Q[t] blocks: i, f, o, g (the gates), c_{t-1}, tanh(c_t); so that every
    # product below pairs two uniformly strided runs of blocks. Without
    # backward, Q has two blocks and step t uses block t % 2.
    Q, P = cache["gates"], cache["tmp"]
    n_steps, n_blocks = Z.shape[0] - 1, Q.shape[0]
    H, n_samples = Q.shape[1] // 6, Q.shape[2]
    Q6 = Q.reshape(n_blocks, 6, H, n_samples)
    Q6[0, 4] = 0  # c_{-1}
    gates_of, tanh_of = act["gates"], act["state"]
    for t in range(n_steps):
        b = t % n_blocks
        gates, q = Q[b, : 4 * H], Q6[b]
        if t:
            np.matmul(M, Z[t], out=gates)
        else:  # h_{-1} = 0
            np.matmul(M[:, :first_h], Z[0, :first_h], out=gates)
        gates_of(gates, gates[: 3 * H], gates[3 * H :])  # i, f, o; g
        np.multiply(q[0:2], q[3:5], out=P)  # i_t g_t, f_t c_{t-1}
        c = Q6[(t + 1) % n_blocks, 4]
        np.add(P[0], P[1], out=c)  # c_t
        tanh_of(c, q[5])  # tanh(c_t)
        np.multiply(q[2], q[5], out=Z[t + 1, first_h:])  # h_t = o_t tanh(c_t)
    return Z[1:, first_h:]


def _lstm_backward(dout, R, cache, live):
    Q, k, P, dA, dh, dc = (cache[k] for k in ("gates", "K", "tmp", "dA", "dh", "dc"))
    n_steps, _, n_samples = dA.shape
    H = dA.shape[1] // 5
    Q6 = Q.reshape(n_steps + 1, 6, H, n_samples)
    dA5 = dA.reshape(n_steps, 5, H, n_samples)
    # K[t] blocks: K_i, K_f, K_o, K_g, K_c; dA[t] blocks: dA_i, dA_f, dA_o,
    # dA_g and the scratch dh_t o_t (1 - tanh^2 c_t)
    last = n_steps - 1
    for t in range(last, -1, -1):
        q = Q6[t]
        np.subtract(1, q[0:3], out=k[0:3])
        k[0:3] *= q[0:3]
        k[0:3] *= q[3:6]  # g i (1-i), c_{t-1} f (1-f), tanh(c) o (1-o)
        np.multiply(q[3:6:2], q[3:6:2], out=P)
        np.subtract(1, P, out=P)
        np.multiply(q[0:3:2], P, out=k[3:5])  # i (1-g^2), o (1-tanh^2 c)
        if t == last:
            if live[t]:
                dh[...] = dout[t]
            else:
                dh.fill(0)
        else:
            np.matmul(R, dA[t + 1, : 4 * H], out=dh)  # from h_t into step t+1
            if live[t]:
                dh += dout[t]
        np.multiply(dh, k[2::2], out=dA5[t, 2::2])  # dA_o, dh o (1 - tanh^2 c)
        if t == last:
            dc[...] = dA5[t, 4]
        else:
            dc *= Q6[t + 1, 1]  # dc_{t+1} f_{t+1} ...
            dc += dA5[t, 4]  # ... + dh_t o_t (1 - tanh^2 c_t)
        np.multiply(dc, k[0:2], out=dA5[t, 0:2])  # dA_i, dA_f
        np.multiply(dc, k[3], out=dA5[t, 3])  # dA_g
    return dA[:, : 4 * H]


def _gm_forward(Z, M, cache, first_h, act):
    S, out, tmp = cache["gates"], cache["out"], cache["tmp"]
    n_steps, width, n_samples = S.shape
    H = width // 4
    S4 = S.reshape(n_steps, 4, H, n_samples)
    # z_t sees the input alone: all steps in one batched GEMM and one tanh
    z_all = S[:, :H]
    np.matmul(M[:H, :first_h], Z[:n_steps, :first_h], out=z_all)
    act["gates"](z_all, z_all[:, :0], z_all)
    for t in range(n_steps):
        gates = S[t, H:]  # r, f, o
        if t:
            np.matmul(M[H:], Z[t], out=gates)
        else:  # m_{-1} = 0
            np.matmul(M[H:, :first_h], Z[0, :first_h], out=gates)
        act["gates"](gates, gates, gates[:0])
        z, r, f, _ = S4[t]
        m = Z[t + 1, first_h:]
        np.multiply(r, z, out=m)  # m_t = r_t * z_t ...
        if t:
            np.multiply(f, Z[t, first_h:], out=tmp)
            m += tmp  # ... + f_t * m_{t-1}
    np.multiply(S4[:, 3], Z[1:, first_h:], out=out)  # out_t = o_t * m_t
    return out


def _gm_backward(dout, R, cache, live):
    S, Z, K, dA, E, dm = (cache[k] for k in ("gates", "Z", "K", "dA", "E", "dm"))
    n_steps, width, n_samples = S.shape
    H = width // 4
    first_h = Z.shape[1] - H
    S4 = S.reshape(n_steps, 4, H, n_samples)
    K4 = K.reshape(n_steps, 4, H, n_samples)
    dA4 = dA.reshape(n_steps, 4, H, n_samples)
    z, r, o = S4[:, 0], S4[:, 1], S4[:, 3]
    m_prev, m = Z[:n_steps, first_h:], Z[1:, first_h:]
    # K = [r (1 - z^2), z r (1-r), m_{t-1} f (1-f), m o (1-o)]
    np.subtract(1, S[:, H:], out=K[:, H:])
    K[:, H:] *= S[:, H:]
    K4[:, 1] *= z
    K4[:, 2] *= m_prev
    K4[:, 3] *= m
    np.multiply(z, z, out=K4[:, 0])
    np.subtract(1, K4[:, 0], out=K4[:, 0])
    K4[:, 0] *= r
    # the output gate and dout_t o_t need no recurrence: all steps at once
    np.multiply(dout, K4[:, 3], out=dA4[:, 3])
    np.multiply(dout, o, out=E)
    last = n_steps - 1
    for t in range(last, -1, -1):
        new, old = dm[t % 2], dm[(t + 1) % 2]
        if t == last:
            if live[t]:
                new[...] = E[t]
            else:
                new.fill(0)
        else:
            np.matmul(R, dA[t + 1, H:], out=new)  # from m_t into step t+1
            if live[t]:
                new += E[t]
            old *= S4[t + 1, 2]  # dm_{t+1} f_{t+1}
            new += old
        np.multiply(new, K4[t, :3], out=dA4[t, :3])  # dA_z, dA_r, dA_f
    return dA


_FORWARD = {"lstm": _lstm_forward, "gated_memory": _gm_forward}
_BACKWARD = {"lstm": _lstm_backward, "gated_memory": _gm_backward}
