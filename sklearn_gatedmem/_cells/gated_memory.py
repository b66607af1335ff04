"""The ``"gated_memory"`` cell: only the memory is carried.

Gate blocks ``(z, r, f, o)`` in ``W`` and ``b`` (the same internally),
recurrent weights ``U`` of shape ``(n_hidden, 3 * n_hidden)`` acting on the
three gates ``(r, f, o)`` only: the transformed input ``z_t`` sees the input
alone, so it is computed for all steps at once before the time loop::

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
the ``m`` columns of ``[M_R, M_F, M_out]``. The forget gate's bias starts at
1. The output gate needs no recurrence, so backward's factors ``K`` are
computed for all steps at once. No ``torch.nn`` class holds this cell:
``torch_state_dict`` refuses it, ``to_torch`` builds it.
"""

import numpy as np

from . import register_module, step_gradient


def work_shapes(n_steps, n_hidden, n_samples, backward):
    T, H, n = n_steps, n_hidden, n_samples
    step = (H, n)
    shapes = {"gates": (T, 4 * H, n), "tmp": step, "out": (T, H, n)}
    if backward:
        shapes.update(K=(T, 4 * H, n), dA=(T, 4 * H, n), E=(T, H, n), dm=(2,) + step)
    return shapes


def forward(steps, cache, act):
    S, out, tmp = cache["gates"], cache["out"], cache["tmp"]
    Z, first_h = steps.Z, steps.first_h
    n_steps, width, n_samples = S.shape
    H = width // 4
    S4 = S.reshape(n_steps, 4, H, n_samples)
    # z_t sees the input alone: all steps at once, and one tanh
    z_all = S[:, :H]
    steps.inputs(slice(0, H), z_all)
    act["gates"](z_all, z_all[:, :0], z_all)
    for t in range(n_steps):
        gates = S[t, H:]  # r, f, o
        steps.step(t, gates, slice(H, None))
        act["gates"](gates, gates, gates[:0])
        z, r, f, _ = S4[t]
        m = Z[first_h:, t + 1]
        np.multiply(r, z, out=m)  # m_t = r_t * z_t ...
        if t:
            np.multiply(f, Z[first_h:, t], out=tmp)
            m += tmp  # ... + f_t * m_{t-1}
    np.multiply(S4[:, 3], Z[first_h:, 1:].transpose(1, 0, 2), out=out)  # out_t = o_t m_t
    return out


def backward(dout, R, cache, live):
    S, Z, K, dA, E, dm = (cache[k] for k in ("gates", "Z", "K", "dA", "E", "dm"))
    n_steps, width, n_samples = S.shape
    H = width // 4
    first_h = Z.shape[0] - H
    S4 = S.reshape(n_steps, 4, H, n_samples)
    K4 = K.reshape(n_steps, 4, H, n_samples)
    dA4 = dA.reshape(n_steps, 4, H, n_samples)
    z, r, o = S4[:, 0], S4[:, 1], S4[:, 3]
    m = Z[first_h:].transpose(1, 0, 2)  # m_{t-1} at t
    m_prev, m = m[:n_steps], m[1:]
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
            step_gradient(new, E[t], live[t], R, None)
        else:  # from m_t into step t+1, and dm_{t+1} f_{t+1}
            step_gradient(new, E[t], live[t], R, dA[t + 1, H:], old, S4[t + 1, 2])
        np.multiply(new, K4[t, :3], out=dA4[t, :3])  # dA_z, dA_r, dA_f
    return dA


def state(cache):
    """``m_t`` after every step."""
    Z, gates = cache["Z"], cache["gates"]
    return Z[Z.shape[0] - gates.shape[1] // 4 :, 1:].transpose(1, 0, 2)


def torch_input(x, W, b):
    return x @ W + b


def torch_step(xw_t, state, U, b, n_hidden):
    """One step in PyTorch: ``xw_t = x_t W + b`` of shape (n, 4H); state ``(m,)``."""
    import torch

    (m,) = state
    H = n_hidden
    z = torch.tanh(xw_t[:, :H])
    gates = torch.sigmoid(xw_t[:, H:] + m @ U)
    r, f, o = gates[:, :H], gates[:, H : 2 * H], gates[:, 2 * H :]
    m = f * m + r * z
    return o * m, (m,)


GATED_MEMORY = register_module(
    globals(),
    name="gated_memory",
    W_blocks=("z", "r", "f", "o"),
    U_blocks=("r", "f", "o"),
    b_blocks=("z", "r", "f", "o"),
    rows=(("z", "z", None), ("r", "r", "r"), ("f", "f", "f"), ("o", "o", "o")),
    row_kinds=("tanh", "sigmoid", "sigmoid", "sigmoid"),
    bias_init={"f": 1.0},
    n_states=1,
)
