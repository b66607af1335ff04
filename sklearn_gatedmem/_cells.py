"""Gated recurrent cells unrolled over whole sequences: forward and backward.

NumPy only: no scikit-learn, no classes. Every array is time-major,
``(n_steps, n_samples, width)``, so that one time step is a contiguous block.

Both cells have four gate blocks of ``n_hidden`` columns each, side by side in
one pre-activation array ``A`` of width ``4 * n_hidden``. The input projection
``X_t W + b`` of all time steps is one GEMM done by the caller before the time
loop; inside the loop only the recurrent product is added.

One ``exp`` per element gives every gate
-----------------------------------------
Three blocks are sigmoids and one is a tanh. Since
``tanh(a) = 2 * sigmoid(2 * a) - 1``, the tanh block's columns of ``W``, ``U``
and ``b`` are multiplied by 2 before the forward pass (see
:func:`gate_scale`), so that a single sigmoid over the whole contiguous
``(n_samples, 4 * n_hidden)`` block yields ``S``; the tanh block is then
``2 * S - 1``. The cache keeps ``S`` for all four blocks, so that backward is a
single ``dA = dS * S * (1 - S)`` over the whole block, where the tanh block's
``dS`` carries a factor 4 (``d(2 sigmoid(2a) - 1)/da = 4 S (1 - S)``).
No transcendental function is evaluated in backward.

The two cells
-------------
``"lstm"``, gate blocks ``(i, f, g, o)`` in PyTorch's order, tanh block 2,
recurrent weights ``U`` of shape ``(n_hidden, 4 * n_hidden)``::

    i_t = sigmoid(W_i x_t + U_i h_{t-1} + b_i)
    f_t = sigmoid(W_f x_t + U_f h_{t-1} + b_f)
    g_t = tanh(W_g x_t + U_g h_{t-1} + b_g)
    o_t = sigmoid(W_o x_t + U_o h_{t-1} + b_o)
    c_t = f_t * c_{t-1} + i_t * g_t
    h_t = o_t * tanh(c_t)                       (h_t is the output)

``"gated_memory"``, the cell of the design notes, gate blocks
``(z, r, f, o)``, tanh block 0, recurrent weights of shape
``(n_hidden, 3 * n_hidden)`` acting on the three gates only (the transformed
input ``z_t`` sees the input alone)::

    z_t   = tanh(M_in x_t + b_in)
    r_t   = sigmoid(M_R   [x_t, m_{t-1}] + b_R)
    f_t   = sigmoid(M_F   [x_t, m_{t-1}] + b_F)
    o_t   = sigmoid(M_out [x_t, m_{t-1}] + b_out)
    m_t   = f_t * m_{t-1} + r_t * z_t           (only m is carried)
    out_t = o_t * m_t                           (out_t is the output)

Here ``W`` holds the ``x`` columns of ``[M_in, M_R, M_F, M_out]`` and ``U``
the ``m`` columns of ``[M_R, M_F, M_out]``. Initial states are zero.
"""

import numpy as np

# Per cell: which gate block is a tanh, which is the forget gate (its bias
# starts at 1), the first gate block that the recurrent product feeds, and
# which cache array that product reads (h for the lstm, m for gated_memory).
CELLS = {
    "lstm": {
        "tanh_block": 2,
        "forget_block": 1,
        "first_recurrent_block": 0,
        "recurrent_input": "out",
    },
    "gated_memory": {
        "tanh_block": 0,
        "forget_block": 2,
        "first_recurrent_block": 1,
        "recurrent_input": "state",
    },
}


def n_recurrent_columns(cell, n_hidden):
    """Width of the recurrent weight matrix ``U`` of ``cell``."""
    return (4 - CELLS[cell]["first_recurrent_block"]) * n_hidden


def gate_scale(cell, n_hidden, dtype):
    """Column scale folding ``tanh(a) = 2 sigmoid(2a) - 1`` into the weights.

    Returns
    -------
    scale : ndarray of shape (4 * n_hidden,)
        1 on sigmoid blocks, 2 on the tanh block. Multiply the columns of
        ``W`` and ``b`` by it (and ``U`` by its recurrent part) before
        :func:`forward`.
    """
    scale = np.ones(4 * n_hidden, dtype=dtype)
    k = CELLS[cell]["tanh_block"]
    scale[k * n_hidden : (k + 1) * n_hidden] = 2
    return scale


def sigmoid_(a):
    """In-place logistic sigmoid ``1 / (1 + exp(-a))`` with one ``exp``.

    ``exp(-a)`` overflows to ``inf`` for very negative ``a``, and
    ``1 / (1 + inf)`` is exactly the limit 0, so the overflow is silenced.
    """
    np.negative(a, out=a)
    with np.errstate(over="ignore"):
        np.exp(a, out=a)
    a += 1
    np.reciprocal(a, out=a)
    return a


def tanh_(a, out):
    """``out = tanh(a) = 2 sigmoid(2a) - 1`` using the same one-``exp`` path."""
    np.multiply(a, 2, out=out)
    sigmoid_(out)
    out *= 2
    out -= 1
    return out


def forward(cell, A, U, cache):
    """Unroll ``cell`` over all time steps.

    Parameters
    ----------
    cell : {"lstm", "gated_memory"}
    A : ndarray of shape (n_steps, n_samples, 4 * n_hidden)
        Scaled input projections ``X_t W + b`` (see :func:`gate_scale`).
        Overwritten in place by the gate activations ``S``.
    U : ndarray of shape (n_hidden, n_recurrent_columns)
        Scaled recurrent weights.
    cache : dict of ndarray
        Work arrays, each of shape (n_steps, n_samples, n_hidden): ``"state"``
        (``c`` or ``m``), ``"out"`` (``h`` or ``out``), and for the lstm cell
        ``"tanh_state"``; plus ``"tmp"`` and ``"deriv"`` of shape
        (n_samples, 4 * n_hidden). Filled in place; ``cache["gates"]`` is set
        to ``A``. Backward reads them.

    Returns
    -------
    out : ndarray of shape (n_steps, n_samples, n_hidden)
        The cell's output at every step, ``cache["out"]``.
    """
    cache["gates"] = A
    return _FORWARD[cell](A, U, cache)


def backward(cell, dout, U, cache, dA):
    """Backpropagate through the unrolled cell.

    Parameters
    ----------
    cell : {"lstm", "gated_memory"}
    dout : ndarray of shape (n_steps, n_samples, n_hidden)
        Gradient of the loss with respect to every step's output. Not modified.
    U : ndarray of shape (n_hidden, n_recurrent_columns)
        Unscaled recurrent weights.
    cache : dict of ndarray
        As filled by :func:`forward`.
    dA : ndarray of shape (n_steps, n_samples, 4 * n_hidden)
        Filled with the gradient with respect to the unscaled pre-activations
        ``A``; the weight gradients follow from it by GEMMs over all steps.

    Returns
    -------
    dA : ndarray of shape (n_steps, n_samples, 4 * n_hidden)
    """
    return _BACKWARD[cell](dout, U, cache, dA)


def _recurrent(A_t, prev, U, first, tmp):
    """``A_t[:, first:] += prev @ U`` without allocating."""
    part = tmp[:, first:]
    np.matmul(prev, U, out=part)
    A_t[:, first:] += part


def _lstm_forward(A, U, cache):
    S, c, tc, h = A, cache["state"], cache["tanh_state"], cache["out"]
    tmp = cache["tmp"]
    n_steps, _, width = A.shape
    H = width // 4
    for t in range(n_steps):
        if t:
            _recurrent(A[t], h[t - 1], U, 0, tmp)
        sigmoid_(S[t])
        i, f, s_g, o = (S[t][:, k * H : (k + 1) * H] for k in range(4))
        g = tmp[:, :H]
        np.multiply(s_g, 2, out=g)
        g -= 1
        np.multiply(i, g, out=c[t])  # c_t = i_t * g_t ...
        if t:
            np.multiply(f, c[t - 1], out=g)
            c[t] += g  # ... + f_t * c_{t-1}
        tanh_(c[t], tc[t])
        np.multiply(o, tc[t], out=h[t])  # h_t = o_t * tanh(c_t)
    return h


def _lstm_backward(dout, U, cache, dA):
    S, c, tc = cache["gates"], cache["state"], cache["tanh_state"]
    n_steps, n_samples, width = S.shape
    H = width // 4
    dh = cache["tmp"][:, :H]
    dc = cache["tmp"][:, H : 2 * H]
    scratch = cache["tmp"][:, 2 * H : 3 * H]
    dc.fill(0)
    for t in range(n_steps - 1, -1, -1):
        if t == n_steps - 1:
            dh[...] = dout[t]
        else:
            np.matmul(dA[t + 1], U.T, out=dh)  # from h_t into step t+1
            dh += dout[t]
        i, f, s_g, o = (S[t][:, k * H : (k + 1) * H] for k in range(4))
        dS_i, dS_f, dS_g, dS_o = (dA[t][:, k * H : (k + 1) * H] for k in range(4))
        np.multiply(dh, tc[t], out=dS_o)  # dL/do_t
        # dL/dc_t = dc_{t+1} f_{t+1} + dh_t o_t (1 - tanh(c_t)^2)
        np.multiply(tc[t], tc[t], out=scratch)
        np.subtract(1, scratch, out=scratch)
        scratch *= o
        scratch *= dh
        dc += scratch
        np.multiply(s_g, 2, out=dS_i)  # g_t
        dS_i -= 1
        dS_i *= dc  # dL/di_t = dc_t g_t
        np.multiply(dc, i, out=dS_g)
        dS_g *= 4  # dL/dg_t times d(2 s - 1)/d(s) times the folded scale 2
        if t:
            np.multiply(dc, c[t - 1], out=dS_f)  # dL/df_t = dc_t c_{t-1}
        else:
            dS_f.fill(0)
        dc *= f  # carried to step t-1
        _sigmoid_backward_(dA[t], S[t], cache["deriv"])
    return dA


def _gm_forward(A, U, cache):
    S, m, out = A, cache["state"], cache["out"]
    tmp = cache["tmp"]
    n_steps, _, width = A.shape
    H = width // 4
    for t in range(n_steps):
        if t:
            _recurrent(A[t], m[t - 1], U, H, tmp)
        sigmoid_(S[t])
        s_z, r, f, o = (S[t][:, k * H : (k + 1) * H] for k in range(4))
        z = tmp[:, :H]
        np.multiply(s_z, 2, out=z)
        z -= 1
        np.multiply(r, z, out=m[t])  # m_t = r_t * z_t ...
        if t:
            np.multiply(f, m[t - 1], out=z)
            m[t] += z  # ... + f_t * m_{t-1}
        np.multiply(o, m[t], out=out[t])  # out_t = o_t * m_t
    return out


def _gm_backward(dout, U, cache, dA):
    S, m = cache["gates"], cache["state"]
    n_steps, n_samples, width = S.shape
    H = width // 4
    dm = cache["tmp"][:, :H]
    carry = cache["tmp"][:, H : 2 * H]
    scratch = cache["tmp"][:, 2 * H : 3 * H]
    carry.fill(0)
    for t in range(n_steps - 1, -1, -1):
        s_z, r, f, o = (S[t][:, k * H : (k + 1) * H] for k in range(4))
        dS_z, dS_r, dS_f, dS_o = (dA[t][:, k * H : (k + 1) * H] for k in range(4))
        # dL/dm_t = dout_t o_t + dm_{t+1} f_{t+1} + dA_{t+1}[gates] U^T
        np.multiply(dout[t], o, out=dm)
        dm += carry
        if t < n_steps - 1:
            np.matmul(dA[t + 1][:, H:], U.T, out=scratch)
            dm += scratch
        np.multiply(dout[t], m[t], out=dS_o)  # dL/do_t = dout_t m_t
        np.multiply(s_z, 2, out=dS_r)  # z_t
        dS_r -= 1
        dS_r *= dm  # dL/dr_t = dm_t z_t
        np.multiply(dm, r, out=dS_z)
        dS_z *= 4  # dL/dz_t times d(2 s - 1)/d(s) times the folded scale 2
        if t:
            np.multiply(dm, m[t - 1], out=dS_f)  # dL/df_t = dm_t m_{t-1}
        else:
            dS_f.fill(0)
        np.multiply(dm, f, out=carry)
        _sigmoid_backward_(dA[t], S[t], cache["deriv"])
    return dA


def _sigmoid_backward_(dS, S, scratch):
    """``dS *= S * (1 - S)`` in place, over the whole gate block."""
    np.subtract(1, S, out=scratch)
    scratch *= S
    dS *= scratch


_FORWARD = {"lstm": _lstm_forward, "gated_memory": _gm_forward}
_BACKWARD = {"lstm": _lstm_backward, "gated_memory": _gm_backward}
