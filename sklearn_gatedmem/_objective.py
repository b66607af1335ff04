"""The network around the cells, its losses, and the loss+gradient for L-BFGS.

The network: stacked recurrent layers (each layer's per-step outputs are the
next layer's inputs), then a dense head on the last layer's output at the final
step::

    z = h_T W_head + b_head
    p = identity(z) | logistic(z) | softmax(z)

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


def make_spec(cell, hidden_layer_sizes, out_activation, layout, dtype, x_mean, x_scale):
    """Everything the objective needs to know besides data and weights.

    ``x_mean`` and ``x_scale``, of shape (n_features,), standardise each chunk
    of ``X`` as it is copied to time-major order, so no standardised copy of
    the whole ``X`` is ever made.
    """
    dtype = np.dtype(dtype)
    return {
        "cell": cell,
        "hidden": tuple(hidden_layer_sizes),
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
    """Per layer, ``(W, U, b)`` in the compute dtype with the tanh block
    scaled by 2 (see :func:`sklearn_gatedmem._cells.gate_scale`)."""
    dtype, cell = spec["dtype"], spec["cell"]
    scaled = []
    for layer, n_hidden in enumerate(spec["hidden"]):
        scale = _cells.gate_scale(cell, n_hidden, dtype)
        first = _cells.CELLS[cell]["first_recurrent_block"] * n_hidden
        scaled.append(
            (
                (params[f"W{layer}.0"] * scale).astype(dtype, copy=False),
                (params[f"U{layer}.0"] * scale[first:]).astype(dtype, copy=False),
                (params[f"b{layer}.0"] * scale).astype(dtype, copy=False),
            )
        )
    return scaled


def _forward(X, scaled, spec, ws):
    """Run the recurrent layers over one chunk.

    Parameters
    ----------
    X : ndarray of shape (n_steps, n_samples, n_features)
        Time-major input in the compute dtype.

    Returns
    -------
    caches : list of (layer input, cell cache), one per layer.
    top : ndarray of shape (n_steps, n_samples, n_hidden_last)
    """
    n_steps, n_samples, _ = X.shape
    dtype, cell = spec["dtype"], spec["cell"]
    caches, inputs = [], X
    for layer, (n_hidden, (W, U, b)) in enumerate(zip(spec["hidden"], scaled)):
        seq = (n_steps, n_samples, n_hidden)
        wide = (n_steps, n_samples, 4 * n_hidden)
        cache = {
            name: _buffer(ws, (layer, name), seq, dtype)
            for name in ("state", "out", "tanh_state")
        }
        for name in ("tmp", "deriv"):
            cache[name] = _buffer(ws, (layer, name), wide[1:], dtype)
        A = _buffer(ws, (layer, "A"), wide, dtype)
        # one GEMM: the input projection of every time step
        np.matmul(inputs.reshape(-1, inputs.shape[2]), W, out=A.reshape(-1, wide[2]))
        A += b
        caches.append((inputs, cache))
        inputs = _cells.forward(cell, A, U, cache)
    return caches, inputs


def _chunk_loss_grad(X, Y, sw, params, scaled, spec, grads, ws):
    """Add one chunk's weighted loss sum and gradient (into ``grads``)."""
    caches, top = _forward(X, scaled, spec, ws)
    readout = top[-1]
    Z = readout @ params["head.W"].astype(spec["dtype"], copy=False)
    Z = Z.astype(np.float64) + params["head.b"]
    loss, delta = _loss_and_delta(Z, Y, sw, spec["out_activation"])

    grads["head.W"] += readout.T.astype(np.float64) @ delta
    grads["head.b"] += delta.sum(axis=0)
    dtype, cell = spec["dtype"], spec["cell"]
    dout = _buffer(ws, "dout", top.shape, dtype)
    dout[:-1] = 0
    np.matmul(delta.astype(dtype), params["head.W"].T.astype(dtype), out=dout[-1])

    for layer in range(len(spec["hidden"]) - 1, -1, -1):
        inputs, cache = caches[layer]
        n_hidden = spec["hidden"][layer]
        W = params[f"W{layer}.0"].astype(dtype, copy=False)
        U = params[f"U{layer}.0"].astype(dtype, copy=False)
        dA = _buffer(ws, (layer, "dA"), cache["gates"].shape, dtype)
        _cells.backward(cell, dout, U, cache, dA)
        first = _cells.CELLS[cell]["first_recurrent_block"] * n_hidden
        dA2 = dA.reshape(-1, 4 * n_hidden)
        # one GEMM each over all time steps for the weight gradients
        grads[f"W{layer}.0"] += inputs.reshape(-1, inputs.shape[2]).T @ dA2
        grads[f"b{layer}.0"] += dA2.sum(axis=0)
        prev = cache[_cells.CELLS[cell]["recurrent_input"]][:-1]
        grads[f"U{layer}.0"] += prev.reshape(-1, n_hidden).T @ dA[1:, :, first:].reshape(
            -1, 4 * n_hidden - first
        )
        if layer:
            below = caches[layer - 1][1]["out"].shape
            dout = _buffer(ws, "dout", below, dtype)
            np.matmul(dA2, W.T, out=dout.reshape(-1, below[2]))
    return loss


def loss_grad(theta, X, Y, sample_weight, alpha, spec, chunk_size, ws=None):
    """The objective and its gradient, as handed to ``scipy.optimize.minimize``.

    Parameters
    ----------
    theta : ndarray of shape (n_params,), float64
    X : ndarray of shape (n_samples, n_steps, n_features)
        In the compute dtype.
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

    Returns
    -------
    loss : float
    grad : ndarray of shape (n_params,), float64
    """
    ws = {} if ws is None else ws
    layout = spec["layout"]
    grad = np.zeros_like(theta)
    params, grads = unpack(theta, layout), unpack(grad, layout)
    scaled = _scaled_params(params, spec)
    loss = 0.0
    for start in range(0, X.shape[0], chunk_size):
        rows = slice(start, start + chunk_size)
        X_tm = _time_major(X[rows], spec, ws)
        loss += _chunk_loss_grad(
            X_tm, Y[rows], sample_weight[rows], params, scaled, spec, grads, ws
        )
    sw_sum = sample_weight.sum()
    weights = theta * spec["mask"]
    loss = (loss + 0.5 * alpha * (weights @ weights)) / sw_sum
    grad += alpha * weights
    grad /= sw_sum
    return loss, grad


def decision(theta, X, spec, chunk_size):
    """Head outputs before the output activation, chunk by chunk.

    Parameters
    ----------
    theta : ndarray of shape (n_params,)
    X : ndarray of shape (n_samples, n_steps, n_features)

    Returns
    -------
    Z : ndarray of shape (n_samples, n_outputs), float64
    """
    params = unpack(theta, spec["layout"])
    scaled = _scaled_params(params, spec)
    Z = np.empty((X.shape[0], params["head.b"].shape[0]))
    ws = {}  # per call: concurrent predictions never share buffers
    for start in range(0, X.shape[0], chunk_size):
        rows = slice(start, start + chunk_size)
        _, top = _forward(_time_major(X[rows], spec, ws), scaled, spec, ws)
        Z[rows] = top[-1] @ params["head.W"]
    Z += params["head.b"]
    return Z


def _time_major(X, spec, ws):
    """Copy a batch-first chunk, standardised, into a reused time-major buffer."""
    out = _buffer(ws, "X", (X.shape[1], X.shape[0], X.shape[2]), spec["dtype"])
    np.subtract(X.transpose(1, 0, 2), spec["x_mean"], out=out)
    out /= spec["x_scale"]
    return out
