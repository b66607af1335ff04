"""The ``"lstm"`` cell: the standard LSTM with a forget gate, as ``torch.nn.LSTM``.

Gate blocks ``(i, f, g, o)`` in PyTorch's order in ``W``, ``U`` and ``b``
(internally, the row blocks of ``M`` are ``(i, f, o, g)``, so that the
sigmoid rows are contiguous); recurrent weights ``U`` of shape
``(n_hidden, 4 * n_hidden)``::

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

PyTorch's two biases ``b_ih + b_hh`` are one parameter ``b`` here. The
forget gate's bias starts at 1, so that memory is kept early in training.

Work arrays: a step's block of ``"gates"`` holds ``i, f, o, g, c_{t-1},
tanh(c_t)``, so that ``[i, f] * [g, c_{t-1}]`` is one call. Backward's
factors (``K``: ``g i (1-i)`` and the like) are recomputed per step from the
forward's block, while it is in cache, rather than stored for all steps.
Without backward (prediction), two step blocks, which the steps take in
turn, instead of one per step: nothing that only backward needs is stored.
"""

import numpy as np

from . import register_module, step_gradient


def work_shapes(n_steps, n_hidden, n_samples, backward):
    T, H, n = n_steps, n_hidden, n_samples
    step = (H, n)
    # without backward, two step blocks, alternating, are all it needs
    shapes = {"gates": (T + 1 if backward else 2, 6 * H, n), "tmp": (2,) + step}
    if backward:
        shapes.update(K=(5, H, n), dA=(T, 5 * H, n), dh=step, dc=step)
    return shapes


def forward(steps, cache, act, initial=None):
    # Q[t] blocks: i, f, o, g (the gates), c_{t-1}, tanh(c_t); so that every
    # product below pairs two uniformly strided runs of blocks. Without
    # backward, Q has two blocks and step t uses block t % 2.
    Q, tmp = cache["gates"], cache["tmp"]
    Z, first_h, n_steps = steps.Z, steps.first_h, steps.n_steps
    n_blocks, H, n_samples = Q.shape[0], Q.shape[1] // 6, Q.shape[2]
    Q6 = Q.reshape(n_blocks, 6, H, n_samples)
    Q6[0, 4] = 0 if initial is None else initial[1]  # c_{-1}
    gates_of, tanh_of = act["gates"], act["state"]
    for t in range(n_steps):
        b = t % n_blocks
        gates, q = Q[b, : 4 * H], Q6[b]
        steps.step(t, gates)
        gates_of(gates, gates[: 3 * H], gates[3 * H :])  # i, f, o; g
        np.multiply(q[0:2], q[3:5], out=tmp)  # i_t g_t, f_t c_{t-1}
        c = Q6[(t + 1) % n_blocks, 4]
        np.add(tmp[0], tmp[1], out=c)  # c_t
        tanh_of(c, q[5])  # tanh(c_t)
        np.multiply(q[2], q[5], out=Z[first_h:, t + 1])  # h_t = o_t tanh(c_t)
    return Z[first_h:, 1:].transpose(1, 0, 2)


def backward(dout, R, cache, live):
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
        # from h_t into step t+1
        step_gradient(dh, dout[t], live[t], R, None if t == last else dA[t + 1, : 4 * H])
        np.multiply(dh, k[2::2], out=dA5[t, 2::2])  # dA_o, dh o (1 - tanh^2 c)
        if t == last:
            dc[...] = dA5[t, 4]
        else:
            dc *= Q6[t + 1, 1]  # dc_{t+1} f_{t+1} ...
            dc += dA5[t, 4]  # ... + dh_t o_t (1 - tanh^2 c_t)
        np.multiply(dc, k[0:2], out=dA5[t, 0:2])  # dA_i, dA_f
        np.multiply(dc, k[3], out=dA5[t, 3])  # dA_g
    return dA[:, : 4 * H]


def initial_gradient(R, cache):
    """``(dh_{-1}, dc_{-1})``: ``R dA_0`` and ``dc_0 f_0`` (backward leaves
    ``dc_0`` in ``cache["dc"]``)."""
    dA, Q = cache["dA"], cache["gates"]
    H = R.shape[0]
    Q6 = Q.reshape(Q.shape[0], 6, H, Q.shape[2])
    return R @ dA[0, : 4 * H], cache["dc"] * Q6[0, 1]


def state(cache):
    """``c_t`` after every step (only the last, without backward's arrays)."""
    Z, gates = cache["Z"], cache["gates"]
    n_steps, n_blocks, H = Z.shape[1] - 1, gates.shape[0], gates.shape[1] // 6
    Q6 = gates.reshape(n_blocks, 6, H, gates.shape[2])
    if n_blocks == n_steps + 1:
        return Q6[1:, 4]
    return Q6[n_steps % n_blocks, 4][None]


def torch_weights(W, U, b):
    # the layout is PyTorch's gate order already; its bias_hh is zero here
    return W, U, b, np.zeros_like(b)


def torch_input(x, W, b):
    return x @ W + b


def torch_step(xw_t, state, U, b, n_hidden):
    """One step in PyTorch: ``xw_t = x_t W + b`` of shape (n, 4H); state ``(h, c)``."""
    import torch

    h, c = state
    a = xw_t + h @ U
    H = n_hidden
    i = torch.sigmoid(a[:, :H])
    f = torch.sigmoid(a[:, H : 2 * H])
    g = torch.tanh(a[:, 2 * H : 3 * H])
    o = torch.sigmoid(a[:, 3 * H :])
    c = f * c + i * g
    h = o * torch.tanh(c)
    return h, (h, c)


LSTM = register_module(
    globals(),
    name="lstm",
    W_blocks=("i", "f", "g", "o"),
    U_blocks=("i", "f", "g", "o"),
    b_blocks=("i", "f", "g", "o"),
    rows=(("i", "i", "i"), ("f", "f", "f"), ("o", "o", "o"), ("g", "g", "g")),
    row_kinds=("sigmoid", "sigmoid", "sigmoid", "tanh"),
    bias_init={"f": 1.0},
    n_states=2,
    torch_module="LSTM",
)
