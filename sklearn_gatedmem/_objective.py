"""The network around the cells, its losses, and the loss+gradient for L-BFGS.

The network: stacked recurrent layers (each layer's per-step outputs are the
next layer's inputs), then a dense head on what it reads of the last layer::

    r = h_T  |  mean_t h_t  |  max_t h_t        (pooling "last", "mean", "max")
    z = r W_head + s W_static + b_head          (s: standardised static values)
    p = identity(z) | logistic(z) | softmax(z)

and, when the static values also (or only) enter the initial states of the
first layer (``network.static_into``), per direction::

    (h_{-1}, c_{-1}) = tanh(s W_h0 + b_h0)      (the gru: h_{-1} alone)

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

import math

import numpy as np
from scipy.special import expit, log_softmax, logsumexp

from . import _cells
from ._params import unpack

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
    size = math.prod(shape)
    buf = ws.get(key)
    if buf is None or buf.size < size or buf.dtype != dtype:
        buf = ws[key] = np.empty(size, dtype=dtype)
    return buf[:size].reshape(shape)


def _layer_weights(params, network, dtype):
    """Per layer, per direction: the cells' fused weights in the compute dtype
    (see :func:`sklearn_gatedmem._cells.fused_weights`)."""
    cell = network.cell_spec
    return [
        [
            _cells.fused_weights(
                cell, params[f"W{layer}.{d}"], params[f"U{layer}.{d}"],
                params[f"b{layer}.{d}"], dtype, network.activation,
            )
            for d in range(network.n_directions)
        ]
        for layer in range(len(network.hidden))
    ]


def _reverse_index(lengths, n_steps):
    """Time index that reverses each sequence within its own length.

    ``rev[t, n] = T_n - 1 - t`` for real steps and ``t`` on padding, so real
    steps stay first and padding last; applying it twice is the identity.
    """
    t = np.arange(n_steps)[:, None]
    return np.where(t < lengths, lengths - 1 - t, t)


def _reverse(seq, rev, axis=0):
    """``seq`` with each sequence reversed along its time ``axis``: 0 for
    the time-major ``(n_steps, width, n_samples)``, 1 for the feature-major
    layer inputs ``(width, n_steps, n_samples)``.

    ``rev`` None means that every sequence has all the steps: then it is a
    view, reversed along ``axis``; else a copy gathered by
    :func:`_reverse_index`.
    """
    if rev is None:
        return np.flip(seq, axis)
    return np.take_along_axis(seq, np.expand_dims(rev, 1 - axis), axis=axis)


def _standardise(X, network, lengths, out):
    """Write a batch-first chunk, standardised, into ``out`` (feature major
    ``(n_features, n_steps, n_samples)``, the input rows of the step inputs
    ``Z`` of :func:`_cells.forward`).

    Padding (NaN, or anything beyond each length) becomes 0; it never reaches
    a result, and 0 keeps every product finite.
    """
    # the transposing copy, by blocks of samples that stay in cache while
    # they are spread over the rows of ``out``
    for start in range(0, X.shape[0], 64):
        block = slice(start, start + 64)
        out[:, :, block] = X[block].transpose(2, 1, 0)
    out -= np.asarray(network.x_mean, dtype=out.dtype)[:, None, None]
    out /= np.asarray(network.x_scale, dtype=out.dtype)[:, None, None]
    if lengths is not None:
        pad = np.arange(X.shape[1])[:, None] >= lengths
        np.copyto(out, 0, where=pad[None])


def _first_input(X, network, lengths, x, d, rev, forward_input, ws, source):
    """Fill ``x``, direction ``d``'s part of the first layer's input (see
    :func:`_forward`), unless it still holds it.

    The first layer reads the same standardised chunk at every evaluation of
    a fit: when ``source`` (what the chunk is, from :func:`weighted_sums`)
    is that of the chunk that ``x``'s buffer was last filled with, it is
    kept, so that a fit of a single chunk standardises its input once.
    """
    buffer, filled = ws[(0, d, "Z")], ws.setdefault("sources", {})
    last = filled.pop(d, (None, None))
    if source is not None and last[0] == source and last[1] is buffer:
        filled[d] = last
        return
    if d == 0:
        _standardise(X, network, lengths, x)
    else:  # the backward direction reads it reversed within each length
        np.copyto(x, _reverse(forward_input, rev, axis=1))
    if source is not None:
        filled[d] = (source, buffer)


def _forward(X, lengths, weights, network, ws, backward=True, initial=None, source=None):
    """Run the recurrent layers over one chunk.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_steps, n_features)
        The raw chunk, batch first.
    lengths : ndarray of shape (n_samples,) or None
        Real steps of each sequence; None when all have ``n_steps``.
    weights : list
        From :func:`_layer_weights`.
    network : Network
    ws : dict
        Work buffers (see :func:`_buffer`).
    backward : bool
        Also allocate what :func:`_cells.backward` needs.
    initial : list or None
        Per direction, the first layer's initial states
        (:func:`_initial_states`); None: zero.
    source : hashable, default=None
        What the chunk is, the same at every evaluation of a fit (see
        :func:`_first_input`); None: standardise it.

    Returns
    -------
    layers : list, per layer, of a list per direction of ``(Z, cache, out)``,
        each in that direction's own time order (see :func:`_cells.forward`).
    rev : ndarray or None
        The reversing index (bidirectional, unequal lengths only).
    """
    n_samples, n_steps, n_features = X.shape
    cell, dtype = network.cell_spec, X.dtype
    rev = None
    if network.n_directions == 2 and lengths is not None:
        rev = _reverse_index(lengths, n_steps)
    layers, width = [], n_features
    for layer, n_hidden in enumerate(network.hidden):
        shapes = _cells.work_shapes(cell, n_steps, width, n_hidden, n_samples, backward)
        directions = []
        for d, w in enumerate(weights[layer]):
            # the weight gradient's per-step products are summed at once: one
            # buffer serves every layer and direction
            cache = {
                name: _buffer(ws, name if name == "G" else (layer, d, name), shape, dtype)
                for name, shape in shapes.items()
            }
            Z = cache.pop("Z")
            x = Z[:width, :n_steps]
            if layer == 0:
                forward_input = directions[0][0][:width, :n_steps] if d else None
                _first_input(X, network, lengths, x, d, rev, forward_input, ws, source)
            else:  # direction d reads the outputs below in its own time order
                below = [out.transpose(1, 0, 2) for _, _, out in layers[-1]]
                n_below = below[0].shape[0]
                for e, top in enumerate(below):
                    part = x[e * n_below : (e + 1) * n_below]
                    np.copyto(part, top if e == d else _reverse(top, rev, axis=1))
            Z[width, :n_steps] = 1
            start = initial[d] if initial is not None and layer == 0 else None
            out = _cells.forward(cell, Z, w["M"], cache, w["activation"], start)
            directions.append((Z, cache, out))
        layers.append(directions)
        width = network.n_directions * n_hidden
    return layers, rev


def _readout(tops, lengths, pooling):
    """What the head reads: per direction ``last``, ``mean`` or ``max`` over
    each sequence's real steps, concatenated.

    Parameters
    ----------
    tops : list, per direction, of ndarray of shape (n_steps, n_hidden, n_samples)
        The last layer's outputs, each in its direction's own time order.

    Returns
    -------
    R : ndarray of shape (n_samples, n_directions * n_hidden)
    where : list of ndarray or None
        For ``max``, the time index of each maximum (needed by backward).
    """
    n_steps, _, n_samples = tops[0].shape
    if pooling == "last":
        if lengths is None:
            return np.hstack([top[-1].T for top in tops]), None
        samples = np.arange(n_samples)
        return np.hstack([top[lengths - 1, :, samples] for top in tops]), None
    real = None if lengths is None else (np.arange(n_steps)[:, None] < lengths)[:, None]
    if pooling == "mean":
        if real is None:
            sums, count = [top.sum(axis=0) for top in tops], n_steps
        else:
            sums = [np.add.reduce(top, axis=0, where=real) for top in tops]
            count = lengths
        return np.vstack(sums).T / np.reshape(count, (-1, 1)), None
    where = [
        (top if real is None else np.where(real, top, -np.inf)).argmax(axis=0)
        for top in tops
    ]
    R = [np.take_along_axis(top, w[None], axis=0)[0] for top, w in zip(tops, where)]
    return np.vstack(R).T, where


def _readout_backward(dR, tops, lengths, pooling, where, ws):
    """Spread ``dR`` back onto each direction's per-step outputs.

    Returns
    -------
    douts : list, per direction, of ndarray of shape (n_steps, n_hidden, n_samples)
    live : ndarray of bool of shape (n_steps,) or None
        The steps where some ``dout`` is nonzero, for ``last``; else None.
    """
    n_steps, n_hidden, n_samples = tops[0].shape
    samples = np.arange(n_samples)
    live = None
    if pooling == "last":
        live = np.zeros(n_steps, dtype=bool)
        live[-1 if lengths is None else lengths - 1] = True
    elif pooling == "mean":
        count = n_steps if lengths is None else lengths
        real = 1 if lengths is None else (np.arange(n_steps)[:, None] < lengths)[:, None]
    douts = []
    for d in range(len(tops)):
        dR_d = dR[:, d * n_hidden : (d + 1) * n_hidden]
        dout = _buffer(ws, ("dout", d), tops[0].shape, tops[0].dtype)
        if pooling == "mean":
            np.multiply(real, (dR_d / np.reshape(count, (-1, 1))).T, out=dout)
        else:
            dout.fill(0)
            if pooling == "last" and lengths is None:
                dout[-1] = dR_d.T
            elif pooling == "last":
                dout[lengths - 1, :, samples] = dR_d
            else:
                np.put_along_axis(dout, where[d][None], dR_d.T[None], axis=0)
        douts.append(dout)
    return douts, live


def _static_inputs(static, network):
    """The standardised static values ``s`` of a chunk (float64), or None."""
    if not network.n_static:
        return None
    return (np.asarray(static, dtype=np.float64) - network.s_mean) / network.s_scale


def _head(R, params, S=None):
    """Head outputs ``R W_head + s W_static + b_head`` in float64: the static
    values, when the head reads them, enter beside the pooled state."""
    Z = R.astype(np.float64) @ params["head.W"] + params["head.b"]
    if S is not None and "head.W_static" in params:
        Z += S @ params["head.W_static"]
    return Z


def _initial_states(S, params, network, dtype):
    """The first layer's initial states ``tanh(s W_h0 + b_h0)``, when the
    static values enter there (``"h0.W"`` in the layout).

    Returns
    -------
    initial : list or None
        Per direction, a tuple of the cell's ``n_states`` states, each of
        shape (n_hidden_0, n_samples) in ``dtype`` (time-major, as the cells
        read them); None when the states start from zero.
    T : ndarray of shape (n_samples, n_directions * n_states * n_hidden_0) or None
        The same values in float64, as backward needs them.
    """
    if S is None or "h0.W" not in params:
        return None, None
    T = np.tanh(S @ params["h0.W"] + params["h0.b"])
    H, k = network.hidden[0], network.cell_spec.n_states
    blocks = [np.ascontiguousarray(T[:, j * H : (j + 1) * H].T, dtype=dtype)
              for j in range(network.n_directions * k)]
    return [tuple(blocks[d * k : (d + 1) * k]) for d in range(network.n_directions)], T


def _initial_backward(layer0, weights0, network, S, T, grads):
    """Add the gradient of ``h0.W`` and ``h0.b`` into ``grads``, from the
    first layer's gradient with respect to its initial states (after
    :func:`_cells.backward` ran on each direction's cache)."""
    dT = _initial_input_gradient(layer0, weights0, network, T)
    grads["h0.W"] += S.T @ dT
    grads["h0.b"] += dT.sum(axis=0)


def _initial_input_gradient(layer0, weights0, network, T):
    """The gradient with respect to ``s W_h0 + b_h0``, the initial states
    before their tanh, of shape (n_samples, n_directions * n_states *
    n_hidden_0), after :func:`_cells.backward` ran on the first layer."""
    cell = network.cell_spec
    dT = np.hstack([
        g.T for (_, cache, _), w in zip(layer0, weights0)
        for g in _cells.initial_gradient(cell, w["R"], cache)
    ]).astype(np.float64)
    dT *= 1 - T * T  # through the tanh
    return dT


def _chunk_loss_grad(X, lengths, Y, sw, params, weights, network, grads, ws, static=None,
                     source=None):
    """Add one chunk's weighted loss sum and gradient (into ``grads``);
    ``source`` as for :func:`_forward`."""
    S = _static_inputs(static, network)
    initial, T = _initial_states(S, params, network, X.dtype)
    layers, rev = _forward(X, lengths, weights, network, ws, initial=initial, source=source)
    tops = [out for _, _, out in layers[-1]]
    R, where = _readout(tops, lengths, network.pooling)
    loss, delta = _loss_and_delta(_head(R, params, S), Y, sw, network.out_activation)
    _backward(delta, R, where, layers, rev, lengths, params, weights, network, ws, grads, S,
              T)
    return loss


def _backward(delta, R, where, layers, rev, lengths, params, weights, network, ws,
              grads=None, S=None, T=None):
    """Backpropagate ``delta``, the gradient of a sum over samples with
    respect to the head outputs ``Z``, through the head and every layer.

    The one backward path: with ``grads`` (the loss's gradient views), it adds
    the weight gradients; with ``grads=None``, it skips them and returns the
    gradient with respect to the standardised input instead (what
    :func:`input_gradient` needs). Layer 0's ``dx = Wx dA`` is computed only
    then, so that a fit does not pay for it.

    Parameters
    ----------
    delta : ndarray of shape (n_samples, n_outputs), float64
    R, where : from :func:`_readout`.
    layers, rev : from :func:`_forward`.
    S : ndarray of shape (n_samples, network.n_static) or None
        The standardised static values (:func:`_static_inputs`), when any.
    T : ndarray or None
        The initial states in float64 (:func:`_initial_states`), when the
        static values enter there.

    Returns
    -------
    dX : ndarray of shape (n_steps, n_features, n_samples) or None
        Time-major, in the compute dtype; None when ``grads`` is given.
    """
    dtype = layers[0][0][0].dtype
    tops = [out for _, _, out in layers[-1]]
    if grads is not None:
        grads["head.W"] += R.T.astype(np.float64) @ delta
        if S is not None and "head.W_static" in grads:
            grads["head.W_static"] += S.T @ delta
        grads["head.b"] += delta.sum(axis=0)
    dR = (delta @ params["head.W"].T).astype(dtype)
    douts, live = _readout_backward(dR, tops, lengths, network.pooling, where, ws)
    return _layers_backward(douts, live, layers, rev, weights, network, ws, grads, S, T)


def _layers_backward(douts, live, layers, rev, weights, network, ws, grads=None, S=None,
                     T=None):
    """The part of :func:`_backward` below the readout: from ``douts``, the
    gradient with respect to each direction's per-step outputs of the last
    layer (:func:`_readout_backward`), down through every layer."""
    cell, dtype = network.cell_spec, layers[0][0][0].dtype
    n_steps, _, n_samples = douts[0].shape
    for layer in range(len(network.hidden) - 1, -1, -1):
        dxs = []
        for d, (_, cache, _) in enumerate(layers[layer]):
            w, name = weights[layer][d], f"{layer}.{d}"
            dA = _cells.backward(cell, douts[d], w["R"], cache, live)
            if grads is not None:
                _cells.add_weight_gradient(
                    cell, _cells.weight_gradient(cache, dA),
                    grads["W" + name], grads["U" + name], grads["b" + name],
                )
            if layer or grads is None:
                dx = _buffer(ws, ("dx", d), (n_steps, w["Wx"].shape[0], n_samples), dtype)
                dxs.append(np.matmul(w["Wx"], dA, out=dx))
        if not layer:
            if T is not None and grads is not None:
                _initial_backward(layers[0], weights[0], network, S, T, grads)
            break
        # each direction below gets its part from both directions above
        n_below = network.hidden[layer - 1]
        douts = []
        for d in range(len(dxs)):
            dout = _buffer(ws, ("dout", layer - 1, d), (n_steps, n_below, n_samples), dtype)
            for e, dx in enumerate(dxs):
                part = dx[:, d * n_below : (d + 1) * n_below]
                part = part if e == d else _reverse(part, rev)
                if e:
                    dout += part
                else:
                    np.copyto(dout, part)
            douts.append(dout)
        live = None
    if grads is not None:
        return None
    # the backward direction read the input reversed within each length
    dX = dxs[0].copy()
    for dx in dxs[1:]:
        dX += _reverse(dx, rev)
    return dX


def loss_grad(
    theta, X, Y, sample_weight, alpha, network, chunk_size, ws=None, lengths=None,
    static=None,
):
    """The objective and its gradient, as handed to ``scipy.optimize.minimize``.

    Parameters
    ----------
    theta : ndarray of shape (n_params,), float64
    X : ndarray of shape (n_samples, n_steps, n_features)
        What the network reads (after patching), unstandardised, in the
        compute dtype (float32 or float64); NaN on padding.
    Y : ndarray of shape (n_samples, n_outputs), float64
    sample_weight : ndarray of shape (n_samples,), float64
    alpha : float
        L2 penalty.
    network : Network
        The network's shape, output activation and input standardisation
        (:class:`sklearn_gatedmem._network.Network`).
    chunk_size : int
        Samples per chunk; the result does not depend on it beyond rounding.
    ws : dict, default=None
        Work buffers reused across calls; pass the same dict for a whole fit.
        Its ``"sources"`` entry remembers which chunk of which ``X`` (the
        same objects ``X``, ``lengths`` and ``network``) the first layer's
        standardised input came from, and calls on that ``X`` reuse it:
        ``X`` must not be changed in place between calls that share ``ws``.
    lengths : ndarray of shape (n_samples,), default=None
        Real steps of each sequence; None means all ``n_steps``.
    static : ndarray of shape (n_samples, network.n_static), default=None
        The raw static values of each case (needed when ``network.n_static``).

    Returns
    -------
    loss : float
    grad : ndarray of shape (n_params,), float64
    """
    loss, grad = weighted_sums(
        theta, X, Y, sample_weight, network, chunk_size, ws, lengths, static
    )
    return penalised_mean(theta, loss, grad, sample_weight.sum(), alpha, network)


def weighted_sums(theta, X, Y, sample_weight, network, chunk_size, ws=None, lengths=None,
                  static=None):
    """The data part of the objective, not yet penalised nor divided by ``S``.

    Sums over samples, so that the sums of disjoint blocks of samples add up
    to those of all of them (a fit on a Dask cluster adds its blocks' sums).
    Parameters as :func:`loss_grad`.

    Returns
    -------
    loss : float
        ``sum_n s_n loss_n``.
    grad : ndarray of shape (n_params,), float64
        Its gradient.
    """
    ws = {} if ws is None else ws
    grad = np.zeros_like(theta)
    params, grads = unpack(theta, network.layout), unpack(grad, network.layout)
    weights = _layer_weights(params, network, X.dtype)
    loss = 0.0
    # a chunk is known again (by _first_input) by its place in the plan, while
    # the same X, lengths and standardisation are evaluated: ws holds them, so
    # that they stay alive and the identity test is sound
    sources = ws.setdefault("sources", {})
    if any(sources.get(k) is not v for k, v in
           (("X", X), ("lengths", lengths), ("network", network))):
        sources.clear()
        sources.update(X=X, lengths=lengths, network=network, token=object())
    for k, (rows, n_steps) in enumerate(chunk_plan(X.shape[0], X.shape[1], chunk_size,
                                                   lengths)):
        loss += _chunk_loss_grad(
            X[rows, :n_steps], _chunk_lengths(lengths, rows, n_steps), Y[rows],
            sample_weight[rows], params, weights, network, grads, ws,
            None if static is None else static[rows], (sources["token"], chunk_size, k),
        )
    return loss, grad


def penalised_mean(theta, loss, grad, sw_sum, alpha, network):
    """The objective from :func:`weighted_sums`' ``loss`` and ``grad`` (the
    latter updated in place): the L2 penalty added, divided by ``sw_sum = S``.
    """
    penalised = theta * network.mask
    loss = (loss + 0.5 * alpha * (penalised @ penalised)) / sw_sum
    grad += alpha * penalised
    grad /= sw_sum
    return loss, grad


def decision(theta, X, network, chunk_size, lengths=None, static=None):
    """Head outputs before the output activation, chunk by chunk.

    The forward pass of :func:`loss_grad`, without backward's work arrays.

    Parameters
    ----------
    theta : ndarray of shape (n_params,)
    X : ndarray of shape (n_samples, n_steps, n_features)
        As for :func:`loss_grad`.
    network : Network
    chunk_size : int
    lengths : ndarray of shape (n_samples,), default=None
    static : ndarray of shape (n_samples, network.n_static), default=None

    Returns
    -------
    Z : ndarray of shape (n_samples, n_outputs), float64
    """
    params = unpack(theta, network.layout)
    weights = _layer_weights(params, network, X.dtype)
    Z = np.empty((X.shape[0], params["head.b"].shape[0]))
    ws = {}  # per call: concurrent predictions never share buffers
    for rows, n_steps in chunk_plan(X.shape[0], X.shape[1], chunk_size, lengths):
        chunk_lengths = _chunk_lengths(lengths, rows, n_steps)
        S = None if static is None else _static_inputs(static[rows], network)
        layers, _ = _forward(
            X[rows, :n_steps], chunk_lengths, weights, network, ws, backward=False,
            initial=_initial_states(S, params, network, X.dtype)[0],
        )
        tops = [out for _, _, out in layers[-1]]
        Z[rows] = _head(_readout(tops, chunk_lengths, network.pooling)[0], params, S)
    return Z


def input_gradient(theta, X, network, chunk_size, output, lengths=None, static=None,
                   readout=None, static_gradient=False):
    """An output of the network and its gradient with respect to the input.

    The forward pass of :func:`loss_grad` and its backward pass
    (:func:`_backward`), seeded with the gradient of ``output`` instead of
    the loss's, and carried down to the input instead of the weights.

    Parameters
    ----------
    theta : ndarray of shape (n_params,)
    X : ndarray of shape (n_samples, n_steps, n_features)
        What the network reads, unstandardised, as for :func:`loss_grad`.
    network : Network
    chunk_size : int
    output : callable
        ``output(Z, rows) -> (f, df_dZ)``: for head outputs ``Z`` of shape
        (n_rows, n_outputs) of the samples ``rows`` (an index or slice into
        ``X``), the explained output ``f`` of shape (n_rows,) and its
        gradient ``df_dZ`` of shape (n_rows, n_outputs).
    lengths : ndarray of shape (n_samples,), default=None
    static : ndarray of shape (n_samples, network.n_static), default=None
        The raw static values of each case.
    readout : callable, default=None
        ``readout(tops, lengths, pooled) -> (f, douts, dZ)``, in place of the
        readout, the head and ``output`` and their backward: for the last
        layer's outputs ``tops`` (per direction, time-major, of shape
        (n_steps, n_hidden, n_samples), each in its direction's own time
        order) and ``lengths`` (or None), the output ``f`` of each sample and
        the gradient ``douts`` to carry down (same shapes as ``tops``), and
        ``dZ`` of shape (n_samples, n_outputs), the head outputs' gradients
        that went into ``douts``, in the same sums (for the static values
        the head reads). ``pooled(R, rows) -> (f, dR, dZ)`` gives ``output``
        and its gradients for
        pooled states ``R`` of shape (n, n_directions * n_hidden) of the
        samples ``rows`` (ndarray of int, indices into ``X``, repeats
        allowed). With a readout, all samples run in one pass, unchunked
        (the caller bounds their number), so that it sees them together.
    static_gradient : bool, default=False
        Also return the gradient with respect to the static values.

    Returns
    -------
    f : ndarray of shape (n_samples,), float64
    grad : ndarray of shape (n_samples, n_steps, n_features), float64
        ``df / dX``, with respect to the unstandardised input; 0 on padding.
    grad_static : ndarray of shape (n_samples, network.n_static), float64
        ``df / ds`` for the raw static values, through the head and the
        initial states; only with ``static_gradient``.
    """
    params = unpack(theta, network.layout)
    weights = _layer_weights(params, network, X.dtype)
    f = np.empty(X.shape[0])
    grad = np.zeros(X.shape, dtype=np.float64)
    grad_static = np.zeros((X.shape[0], network.n_static)) if static_gradient else None
    ws = {}
    if readout is None:
        chunks = chunk_plan(X.shape[0], X.shape[1], chunk_size, lengths)
    else:
        chunks = [(slice(0, X.shape[0]), X.shape[1])]
    for rows, n_steps in chunks:
        chunk_lengths = _chunk_lengths(lengths, rows, n_steps)
        S = None if static is None else _static_inputs(static[rows], network)
        initial, T = _initial_states(S, params, network, X.dtype)
        layers, rev = _forward(X[rows, :n_steps], chunk_lengths, weights, network, ws,
                               initial=initial)
        tops = [out for _, _, out in layers[-1]]
        if readout is None:
            R, where = _readout(tops, chunk_lengths, network.pooling)
            f[rows], delta = output(_head(R, params, S), rows)
            dX = _backward(delta, R, where, layers, rev, chunk_lengths, params, weights,
                           network, ws)
        else:
            def pooled(R, at):
                S_at = None if S is None else S[at]
                f_at, dZ = output(_head(R, params, S_at), np.arange(X.shape[0])[rows][at])
                return f_at, dZ @ params["head.W"].T, dZ

            f[rows], douts, delta = readout(tops, chunk_lengths, pooled)
            douts = [np.asarray(dout, dtype=X.dtype) for dout in douts]
            dX = _layers_backward(douts, None, layers, rev, weights, network, ws)
        if static_gradient:
            dS = np.zeros((delta.shape[0], network.n_static))
            if "head.W_static" in params:
                dS += delta @ params["head.W_static"].T
            if T is not None:
                dS += _initial_input_gradient(layers[0], weights[0], network, T) @ (
                    params["h0.W"].T)
            grad_static[rows] = dS / network.s_scale
        # the network reads (x - mean) / scale, and nothing of the padding
        dX = dX.transpose(2, 0, 1) / np.asarray(network.x_scale)
        if chunk_lengths is not None:
            dX[np.arange(n_steps) >= chunk_lengths[:, None]] = 0
        grad[rows, :n_steps] = dX
    if static_gradient:
        return f, grad, grad_static
    return f, grad


def _chunk_lengths(lengths, rows, n_steps):
    """The chunk's lengths, or None when all its sequences have every step."""
    if lengths is None:
        return None
    chunk = np.asarray(lengths)[rows]
    return None if np.all(chunk == n_steps) else chunk


# Sequences of unequal lengths are evaluated in chunks of similar lengths,
# each run over its own longest sequence only: a chunk's longest is at most
# twice its shortest (padding then costs at most as much as the real steps),
# and a chunk holds at least _MIN_CHUNK_ROWS sequences unless fewer are left,
# since each chunk's time loop has a fixed cost per step in Python calls.
# Measured on the development set of 100- to 1,344-step series (PLAID, in
# patches; benchmarks/unequal_lengths.py): one evaluation in 0.45 of the time
# of all sequences in one chunk with NumPy's AVX-512 paths, 0.50 with AVX2's.
_MIN_CHUNK_ROWS = 64


def chunk_plan(n_samples, n_steps, chunk_size, lengths=None):
    """The chunks an evaluation runs: ``(rows, n_steps)`` pairs.

    Parameters
    ----------
    n_samples, n_steps : int
        The batch's shape.
    chunk_size : int
        At most this many sequences per chunk.
    lengths : ndarray of shape (n_samples,), default=None
        Real steps of each sequence; None means all ``n_steps``.

    Returns
    -------
    plan : list of (slice or ndarray, int)
        Each chunk's rows (a slice when they are contiguous, which they are
        for rows sorted by decreasing length, as ``fit`` sorts them) and the
        steps it runs, its longest sequence's length. Every row is in exactly
        one chunk.
    """
    if lengths is None or np.all(lengths == n_steps):
        return [(rows, n_steps) for rows in _chunks(n_samples, chunk_size)]
    order = np.argsort(-np.asarray(lengths), kind="stable")
    contiguous = np.array_equal(order, np.arange(n_samples))
    ordered = np.asarray(lengths)[order]
    plan, start = [], 0
    while start < n_samples:
        longest = int(ordered[start])
        # the first row whose length is less than half the chunk's longest
        end = start + int(np.searchsorted(-ordered[start:], -(longest / 2), side="right"))
        end = min(max(end, start + _MIN_CHUNK_ROWS), n_samples)
        if n_samples - end < _MIN_CHUNK_ROWS:  # no small chunk left at the end
            end = n_samples
        for rows in _chunks(end - start, chunk_size):
            rows = slice(start + rows.start, start + rows.stop)
            plan.append((rows if contiguous else order[rows], int(ordered[rows.start])))
        start = end
    return plan


def _chunks(n_samples, chunk_size):
    """Row slices of at most ``chunk_size`` rows, as equal as possible (a
    small remainder chunk would cost almost as much as a full one)."""
    n_chunks = -(-n_samples // max(1, chunk_size))
    if not n_chunks:
        return []
    bounds = [k * n_samples // n_chunks for k in range(n_chunks + 1)]
    return [slice(start, stop) for start, stop in zip(bounds[:-1], bounds[1:])]
