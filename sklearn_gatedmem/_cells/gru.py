"""The ``"gru"`` cell: the gated recurrent unit, as ``torch.nn.GRU``.

Gate blocks ``(r, z, n)`` in PyTorch's order in ``W`` and ``U``; the bias
``b`` has four blocks ``(r, z, n, hn)``: one per gate for ``r`` and ``z``
(PyTorch's two biases summed), and for the candidate ``n`` both ``b_in`` and
``b_hn``, which sits inside ``r_t * (...)`` and so is a parameter of its own::

    r_t = sigmoid(W_r x_t + U_r h_{t-1} + b_r)
    z_t = sigmoid(W_z x_t + U_z h_{t-1} + b_z)
    n_t = tanh(W_n x_t + b_in + r_t * (U_n h_{t-1} + b_hn))
    h_t = (1 - z_t) * n_t + z_t * h_{t-1}        (h_t is the output)

    backward, with dh_t = dout_t + U dA_{t+1} + dh_{t+1} z_{t+1}:
    dA_nx = dh_t (1 - z_t) (1 - n_t^2)          (W_n x_t + b_in)
    dA_nh = dA_nx * r_t                         (U_n h_{t-1} + b_hn)
    dA_r  = dA_nx * (U_n h_{t-1} + b_hn) r_t (1 - r_t)
    dA_z  = dh_t (h_{t-1} - n_t) z_t (1 - z_t)

The row blocks of ``M`` are ``(n_x, r, z, n_h)``: ``n_x`` holds the ``x``
columns and ``b_in`` (zero ``h`` columns), ``n_h`` the ``h`` columns and
``b_hn`` in the ones column (zero ``x`` columns); the zero blocks are no
parameters. So each step is still one GEMM, over the three recurrent row
blocks ``(r, z, n_h)``, and ``n_x``, which sees the input alone, is computed
for all steps at once before the loop. The ``n`` rows are not scaled for the
activation method: their tanh is taken of ``n_x + r * n_h``, as a state's.

Work arrays: a step's block of ``"gates"`` holds ``n_t, r_t, z_t`` and
``U_n h_{t-1} + b_hn`` (the pre-activation ``n_x`` is overwritten by
``n_t``), all that backward needs besides ``h_{t-1}``, which ``Z`` holds.
The update gate's bias starts at 1, the analogue of the lstm's forget bias:
``h_t`` keeps most of ``h_{t-1}`` early in training.
"""

import numpy as np

from . import register_module, step_gradient


def work_shapes(n_steps, n_hidden, n_samples, backward):
    T, H, n = n_steps, n_hidden, n_samples
    step = (H, n)
    shapes = {"gates": (T, 4 * H, n), "tmp": step}
    if backward:
        shapes.update(dA=(T, 4 * H, n), dh=(2,) + step, K=step)
    return shapes


def forward(steps, cache, act, initial=None):
    S, tmp = cache["gates"], cache["tmp"]
    Z, first_h = steps.Z, steps.first_h
    n_steps, width, n_samples = S.shape
    H = width // 4
    S4 = S.reshape(n_steps, 4, H, n_samples)
    # n_x = W_n x_t + b_in sees the input alone: all steps at once
    steps.inputs(slice(0, H), S[:, :H])
    for t in range(n_steps):
        gates = S[t, H:]  # r, z, U_n h_{t-1} + b_hn
        steps.step(t, gates, slice(H, None))
        rz = gates[: 2 * H]
        act["gates"](rz, rz, rz[:0])  # r_t, z_t
        n, r, z, a = S4[t]
        np.multiply(r, a, out=tmp)
        n += tmp  # W_n x_t + b_in + r_t * (U_n h_{t-1} + b_hn)
        act["state"](n, n)  # n_t
        h = Z[first_h:, t + 1]
        if t or initial is not None:  # h_t = n_t + z_t * (h_{t-1} - n_t)
            np.subtract(Z[first_h:, t], n, out=tmp)
            tmp *= z
            np.add(n, tmp, out=h)
        else:
            np.multiply(z, n, out=tmp)
            np.subtract(n, tmp, out=h)
    return Z[first_h:, 1:].transpose(1, 0, 2)


def backward(dout, R, cache, live):
    S, Z, dA, dh, K = (cache[k] for k in ("gates", "Z", "dA", "dh", "K"))
    n_steps, width, n_samples = S.shape
    H = width // 4
    first_h = Z.shape[0] - H
    S4 = S.reshape(n_steps, 4, H, n_samples)
    dA4 = dA.reshape(n_steps, 4, H, n_samples)
    last = n_steps - 1
    for t in range(last, -1, -1):
        new, old = dh[t % 2], dh[(t + 1) % 2]
        if t == last:
            step_gradient(new, dout[t], live[t], R, None)
        else:  # from h_t into step t+1's gates, and dh_{t+1} z_{t+1}
            step_gradient(new, dout[t], live[t], R, dA[t + 1, H:], old, S4[t + 1, 2])
        n, r, z, a = S4[t]
        dA_nx, dA_r, dA_z, dA_nh = dA4[t]
        np.multiply(n, n, out=dA_nx)
        np.subtract(1, dA_nx, out=dA_nx)
        np.subtract(1, z, out=K)
        K *= new
        dA_nx *= K  # dh_t (1 - z_t) (1 - n_t^2)
        np.multiply(dA_nx, r, out=dA_nh)
        np.subtract(1, r, out=K)
        K *= r
        K *= a
        np.multiply(dA_nx, K, out=dA_r)
        np.subtract(Z[first_h:, t], n, out=K)  # h_{t-1} - n_t (h_{-1} = 0)
        K *= new
        np.subtract(1, z, out=dA_z)
        dA_z *= z
        dA_z *= K
    return dA


def initial_gradient(R, cache):
    """``(dh_{-1},)``: ``R dA_0`` (the recurrent rows) ``+ dh_0 z_0``
    (backward leaves ``dh_0`` in ``cache["dh"][0]``)."""
    dA, S, dh = cache["dA"], cache["gates"], cache["dh"]
    H = R.shape[0]
    return (R @ dA[0, H:] + dh[0] * S[0, 2 * H : 3 * H],)


def state(cache):
    """``h_t`` after every step (the output is the memory)."""
    Z, gates = cache["Z"], cache["gates"]
    return Z[Z.shape[0] - gates.shape[1] // 4 :, 1:].transpose(1, 0, 2)


def torch_weights(W, U, b):
    # nn.GRU's gate order is ours; b_r and b_z go in bias_ih, b_hn in bias_hh
    H = U.shape[0]
    b_hh = np.concatenate([np.zeros(2 * H, dtype=b.dtype), b[3 * H :]])
    return W, U, b[: 3 * H], b_hh


def torch_input(x, W, b):
    return x @ W + b[: W.shape[1]]  # b_r, b_z, b_in


def torch_step(xw_t, state, U, b, n_hidden):
    """One step in PyTorch: ``xw_t = x_t W + (b_r, b_z, b_in)`` of shape (n, 3H); state ``(h,)``."""
    import torch

    (h,) = state
    H = n_hidden
    a = h @ U
    r = torch.sigmoid(xw_t[:, :H] + a[:, :H])
    z = torch.sigmoid(xw_t[:, H : 2 * H] + a[:, H : 2 * H])
    n = torch.tanh(xw_t[:, 2 * H :] + r * (a[:, 2 * H :] + b[3 * H :]))
    h = (1 - z) * n + z * h
    return h, (h,)


GRU = register_module(
    globals(),
    name="gru",
    W_blocks=("r", "z", "n"),
    U_blocks=("r", "z", "n"),
    b_blocks=("r", "z", "n", "hn"),
    rows=(("n", "n", None), ("r", "r", "r"), ("z", "z", "z"), (None, "hn", "n")),
    row_kinds=(None, "sigmoid", "sigmoid", None),
    bias_init={"z": 1.0},
    n_states=1,
    torch_module="GRU",
)
