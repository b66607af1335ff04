"""The network around the cells, its losses, and the loss+gradient for L-BFGS.

The network: stacked recurrent layers (each layer's per-step outputs are the
next layer's inputs), then a dense head on what it reads of the last layer::

    r = h_T  |  mean_t h_t  |  max_t h_t        (pooling "last", "mean", "max")
    z = r W_head + b_head
    p = identity(z) | logistic(z) | softmax(z)

Sequences may have their own lengths ``T_n`` (trailing padding): every
sequence is read at its own last real step, and padded steps cost nothing in
the gradient. A bidirectional layer runs a second cell over each sequence
reversed within its length, and concatenates both directions' outputs at each
step; its "last" output is each direction's final state (PyTorch's ``h_n``).

The objective, exactly as scikit-learn's MLP with L-BFGS, for sample weights
``s_n`` and ``S = sum_n s_n``::

    squared error:  L = 1/S sum_n s_n * 1/(2K) sum_k (p_nk - y_nk)^2
    logistic:       L = 1/S sum_n s_n sum_k [log(1 + e^z_nk) - y_nk z_nk]
    softmax:        L = 1/S sum_n s_n [log sum_k e^z_nk - sum_k y_nk z_nk]
    objective    =  L + alpha / (2 S) * ||weights||^2      (biases excluded)

Everything is evaluated over chunks of samples and summed, so that memory is
bounded by the chunk, not by the number of samples. Arithmetic runs in the
compute dtype of ``X`` (float32 or float64); loss and gradient are accumulated
in float64 for SciPy.
"""

import numpy as np
from scipy.special import expit, log_softmax, logsumexp, softmax

from . import _cells
from ._params import penalty_mask, unpack

OUT_ACTIVATIONS = ("identity", "logistic", "softmax")


def make_spec(
    cell,
    hidden_layer_sizes,
    out_activation,
    layout,
    dtype,
    x_mean,
    x_scale,
    n_directions=1,
    pooling="last",
):
    """Everything the objective needs to know besides data and weights.

    ``x_mean`` and ``x_scale``, of shape (n_features,), standardise each chunk
    of ``X`` as it is copied to time-major order, so no standardised copy of
    the whole ``X`` is ever made. ``n_directions=2`` makes every layer
    bidirectional; ``pooling`` is what the head reads (see :func:`_readout`).
    """
    dtype = np.dtype(dtype)
    return {
        "cell": cell,
        "hidden": tuple(hidden_layer_sizes),
        "n_directions": n_directions,
        "pooling": pooling,
        "out_activation": out_activation,
        "layout": layout,
        "mask": penalty_mask(layout),
        "dtype": dtype,
        "x_mean": np.asarray(x_mean, dtype=dtype),
        "x_scale": np.asarray(x_scale, dtype=dtype),
    }


def output_activation(Z, kind):
    """``identity``, ``logistic`` or ``softmax`` of the head's output ``Z``."""
    if kind == "logistic":
        return expit(Z)
    if kind == "softmax":
        return softmax(Z, axis=1)
    return Z


def _loss_and_delta(Z, Y, sample_weight, kind):
    """Weighted summed loss of a chunk, and its gradient with respect to ``Z``.

    Parameters
    ----------
    Z : ndarray of shape (n_samples, n_outputs), float64
        Head outputs before the output activation.
    Y : ndarray of shape (n_samples, n_outputs)
        Targets (one-hot or indicator for classification).
    sample_weight : ndarray of shape (n_samples,)
    kind : {"identity", "logistic", "softmax"}

    Returns
    -------
    loss : float
        ``sum_n s_n loss_n`` (not yet divided by ``S``).
    delta : ndarray of shape (n_samples, n_outputs)
        ``s_n dloss_n/dz_n``; the canonical link makes it ``s_n (p_n - y_n)``.
    """
    if kind == "identity":
        residual = Z - Y
        per_sample = 0.5 * np.einsum("nk,nk->n", residual, residual) / Y.shape[1]
        delta = residual / Y.shape[1]
    elif kind == "logistic":
        # log(1 + e^z) - y z, stable for any z
        per_sample = (np.logaddexp(0, Z) - Y * Z).sum(axis=1)
        delta = expit(Z) - Y
    else:
        per_sample = logsumexp(Z, axis=1) - (Y * Z).sum(axis=1)
        delta = np.exp(log_softmax(Z, axis=1)) - Y
    delta *= sample_weight[:, None]
    return float(per_sample @ sample_weight), delta


def _buffer(ws, key, shape, dtype):
    """A work array of ``shape`` from the flat buffer ``ws[key]``.

    Buffers are allocated once and then reused, by every chunk of every
    evaluation, as a contiguous prefix view; a smaller last chunk fits in it.
    """
    size = int(np.prod(shape))
    buf = ws.get(key)
    if buf is None or buf.size < size or buf.dtype != dtype:
        buf = ws[key] = np.empty(size, dtype=dtype)
    return buf[:size].reshape(shape)


def _scaled_params(params, spec):
    """Per layer and direction, ``(W, U, b)`` in the compute dtype with the
    tanh block scaled by 2 (see :func:`sklearn_gatedmem._cells.gate_scale`)."""
    dtype, cell = spec["dtype"], spec["cell"]
    scaled = []
    for layer, n_hidden in enumerate(spec["hidden"]):
        scale = _cells.gate_scale(cell, n_hidden, dtype)
        first = _cells.CELLS[cell]["first_recurrent_block"] * n_hidden
        scaled.append(
            [
                (
                    (params[f"W{layer}.{d}"] * scale).astype(dtype, copy=False),
                    (params[f"U{layer}.{d}"] * scale[first:]).astype(dtype, copy=False),
                    (params[f"b{layer}.{d}"] * scale).astype(dtype, copy=False),
                )
                for d in range(spec["n_directions"])
            ]
        )
    return scaled


def _reverse_index(lengths, n_steps):
    """Time index that reverses each sequence within its own length.

    ``rev[t, n] = T_n - 1 - t`` for real steps and ``t`` on padding, so real
    steps stay first and padding last; applying it twice is the identity.
    """
    t = np.arange(n_steps)[:, None]
    return np.where(t < lengths, lengths - 1 - t, t)


def _reverse(seq, rev):
    """``seq`` (n_steps, n_samples, width) with each sequence reversed."""
    return seq[rev, np.arange(seq.shape[1])]


def _forward(X, lengths, scaled, spec, ws):
    """Run the recurrent layers over one chunk.

    Parameters
    ----------
    X : ndarray of shape (n_steps, n_samples, n_features)
        Time-major standardised input in the compute dtype, zero on padding.
    lengths : ndarray of shape (n_samples,)
        Real steps of each sequence.

    Returns
    -------
    caches : list, per layer, of a list per direction of ``(input, cell cache)``,
        the input in that direction's own time order.
    tops : list, per direction, of ndarray of shape (n_steps, n_samples, n_hidden)
        The last layer's outputs, each in its direction's own time order.
    rev : ndarray or None
        The reversing index (bidirectional only).
    """
    n_steps, n_samples, _ = X.shape
    dtype, cell = spec["dtype"], spec["cell"]
    rev = _reverse_index(lengths, n_steps) if spec["n_directions"] == 2 else None
    caches, inputs = [], X
    for layer, n_hidden in enumerate(spec["hidden"]):
        seq = (n_steps, n_samples, n_hidden)
        wide = (n_steps, n_samples, 4 * n_hidden)
        layer_caches, tops = [], []
        for d, (W, U, b) in enumerate(scaled[layer]):
            key = (layer, d)
            cache = {
                name: _buffer(ws, key + (name,), seq, dtype)
                for name in ("state", "out", "tanh_state")
            }
            for name in ("tmp", "deriv"):
                cache[name] = _buffer(ws, key + (name,), wide[1:], dtype)
            own = inputs if d == 0 else _reverse(inputs, rev)
            A = _buffer(ws, key + ("A",), wide, dtype)
            # one GEMM: the input projection of every time step
            np.matmul(own.reshape(-1, own.shape[2]), W, out=A.reshape(-1, wide[2]))
            A += b
            layer_caches.append((own, cache))
            tops.append(_cells.forward(cell, A, U, cache))
        caches.append(layer_caches)
        if rev is None:
            inputs = tops[0]
        else:  # both directions side by side, in natural time order
            inputs = _buffer(ws, (layer, "both"), seq[:2] + (2 * n_hidden,), dtype)
            inputs[:, :, :n_hidden] = tops[0]
            inputs[:, :, n_hidden:] = _reverse(tops[1], rev)
    return caches, tops, rev


def _readout(tops, lengths, pooling):
    """What the head reads: per direction ``last``, ``mean`` or ``max`` over
    each sequence's real steps, concatenated.

    Returns
    -------
    R : ndarray of shape (n_samples, n_directions * n_hidden)
    where : ndarray or None
        For ``max``, the time index of each maximum (needed by backward).
    """
    n_steps, n_samples, _ = tops[0].shape
    samples = np.arange(n_samples)
    if pooling == "last":
        return np.hstack([top[lengths - 1, samples] for top in tops]), None
    real = (np.arange(n_steps)[:, None] < lengths)[:, :, None]
    if pooling == "mean":
        sums = [np.where(real, top, 0).sum(axis=0) for top in tops]
        return np.hstack(sums) / lengths[:, None], None
    where = [np.where(real, top, -np.inf).argmax(axis=0) for top in tops]
    columns = np.arange(tops[0].shape[2])
    R = [top[w, samples[:, None], columns] for top, w in zip(tops, where)]
    return np.hstack(R), where


def _readout_backward(dR, tops, lengths, pooling, where, ws):
    """Spread ``dR`` back onto each direction's per-step outputs."""
    n_steps, n_samples, n_hidden = tops[0].shape
    samples = np.arange(n_samples)
    douts = []
    for d in range(len(tops)):
        dR_d = dR[:, d * n_hidden : (d + 1) * n_hidden]
        dout = _buffer(ws, ("dout", d), tops[0].shape, tops[0].dtype)
        dout.fill(0)
        if pooling == "last":
            dout[lengths - 1, samples] = dR_d
        elif pooling == "mean":
            real = (np.arange(n_steps)[:, None] < lengths)[:, :, None]
            np.multiply(real, dR_d / lengths[:, None], out=dout)
        else:
            dout[where[d], samples[:, None], np.arange(n_hidden)] = dR_d
        douts.append(dout)
    return douts


def _chunk_loss_grad(X, lengths, Y, sw, params, scaled, spec, grads, ws):
    """Add one chunk's weighted loss sum and gradient (into ``grads``)."""
    dtype, cell = spec["dtype"], spec["cell"]
    caches, tops, rev = _forward(X, lengths, scaled, spec, ws)
    R, where = _readout(tops, lengths, spec["pooling"])
    Z = R @ params["head.W"].astype(dtype, copy=False)
    Z = Z.astype(np.float64) + params["head.b"]
    loss, delta = _loss_and_delta(Z, Y, sw, spec["out_activation"])

    grads["head.W"] += R.T.astype(np.float64) @ delta
    grads["head.b"] += delta.sum(axis=0)
    dR = (delta @ params["head.W"].T).astype(dtype)
    douts = _readout_backward(dR, tops, lengths, spec["pooling"], where, ws)

    for layer in range(len(spec["hidden"]) - 1, -1, -1):
        n_hidden = spec["hidden"][layer]
        first = _cells.CELLS[cell]["first_recurrent_block"] * n_hidden
        dinputs = None
        for d, (own, cache) in enumerate(caches[layer]):
            name = f"{layer}.{d}"
            W = params["W" + name].astype(dtype, copy=False)
            U = params["U" + name].astype(dtype, copy=False)
            dA = _buffer(ws, (layer, d, "dA"), cache["gates"].shape, dtype)
            _cells.backward(cell, douts[d], U, cache, dA)
            dA2 = dA.reshape(-1, 4 * n_hidden)
            # one GEMM each over all time steps for the weight gradients
            grads["W" + name] += own.reshape(-1, own.shape[2]).T @ dA2
            grads["b" + name] += dA2.sum(axis=0)
            prev = cache[_cells.CELLS[cell]["recurrent_input"]][:-1]
            grads["U" + name] += prev.reshape(-1, n_hidden).T @ dA[
                1:, :, first:
            ].reshape(-1, 4 * n_hidden - first)
            if layer:
                dx = (dA2 @ W.T).reshape(own.shape)
                dx = dx if d == 0 else _reverse(dx, rev)
                dinputs = dx if dinputs is None else dinputs + dx
        if layer:
            below = spec["hidden"][layer - 1]
            douts = [dinputs[:, :, :below]]
            if rev is not None:
                douts.append(_reverse(dinputs[:, :, below:], rev))
    return loss


def loss_grad(
    theta, X, Y, sample_weight, alpha, spec, chunk_size, ws=None, lengths=None
):
    """The objective and its gradient, as handed to ``scipy.optimize.minimize``.

    Parameters
    ----------
    theta : ndarray of shape (n_params,), float64
    X : ndarray of shape (n_samples, n_steps, n_features)
        Raw (unstandardised) sequences in the compute dtype; NaN on padding.
    Y : ndarray of shape (n_samples, n_outputs), float64
    sample_weight : ndarray of shape (n_samples,), float64
    alpha : float
        L2 penalty.
    spec : dict
        From :func:`make_spec`.
    chunk_size : int
        Samples per chunk; the result does not depend on it beyond rounding.
    ws : dict, default=None
        Work buffers reused across calls; pass the same dict for a whole fit.
    lengths : ndarray of shape (n_samples,), default=None
        Real steps of each sequence; None means all ``n_steps``.

    Returns
    -------
    loss : float
    grad : ndarray of shape (n_params,), float64
    """
    ws = {} if ws is None else ws
    grad = np.zeros_like(theta)
    params, grads = unpack(theta, spec["layout"]), unpack(grad, spec["layout"])
    scaled = _scaled_params(params, spec)
    lengths = _full_lengths(X, lengths)
    loss = 0.0
    for rows in _chunks(X.shape[0], chunk_size):
        X_tm = _time_major(X[rows], spec, ws)
        loss += _chunk_loss_grad(
            X_tm, lengths[rows], Y[rows], sample_weight[rows], params, scaled,
            spec, grads, ws,
        )
    sw_sum = sample_weight.sum()
    weights = theta * spec["mask"]
    loss = (loss + 0.5 * alpha * (weights @ weights)) / sw_sum
    grad += alpha * weights
    grad /= sw_sum
    return loss, grad


def decision(theta, X, spec, chunk_size, lengths=None):
    """Head outputs before the output activation, chunk by chunk.

    Parameters
    ----------
    theta : ndarray of shape (n_params,)
    X : ndarray of shape (n_samples, n_steps, n_features)
    lengths : ndarray of shape (n_samples,), default=None

    Returns
    -------
    Z : ndarray of shape (n_samples, n_outputs), float64
    """
    params = unpack(theta, spec["layout"])
    scaled = _scaled_params(params, spec)
    lengths = _full_lengths(X, lengths)
    Z = np.empty((X.shape[0], params["head.b"].shape[0]))
    ws = {}  # per call: concurrent predictions never share buffers
    for rows in _chunks(X.shape[0], chunk_size):
        X_tm = _time_major(X[rows], spec, ws)
        _, tops, _ = _forward(X_tm, lengths[rows], scaled, spec, ws)
        Z[rows] = _readout(tops, lengths[rows], spec["pooling"])[0] @ params["head.W"]
    Z += params["head.b"]
    return Z


def _full_lengths(X, lengths):
    if lengths is None:
        return np.full(X.shape[0], X.shape[1])
    return np.asarray(lengths)


def _chunks(n_samples, chunk_size):
    return (slice(i, i + chunk_size) for i in range(0, n_samples, chunk_size))


def _time_major(X, spec, ws):
    """Copy a batch-first chunk, standardised, into a reused time-major buffer.

    Padding (NaN) becomes 0; it is never read into a result.
    """
    out = _buffer(ws, "X", (X.shape[1], X.shape[0], X.shape[2]), spec["dtype"])
    np.subtract(X.transpose(1, 0, 2), spec["x_mean"], out=out)
    out /= spec["x_scale"]
    np.nan_to_num(out, copy=False, nan=0.0)
    return out
