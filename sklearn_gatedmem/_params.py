"""The one parameter layout: every weight in one flat float64 vector.

SciPy's L-BFGS sees a single vector ``theta``. :func:`make_layout` fixes, once
per fit, where each named array lives in it; :func:`unpack` returns views into
``theta`` (no copies), so that a gradient written through the views of a
zero vector is already packed; :func:`pack` is its inverse.

Names, for recurrent layer ``l`` (0 is nearest the input) and direction ``d``
(0 forwards, 1 backwards when bidirectional); the widths are those of the
cell's blocks (:class:`sklearn_gatedmem._cells.Cell`, e.g. 4 of ``n_hidden``
each for the lstm)::

    "W{l}.{d}"  input weights      (n_inputs_l, len(W_blocks) * n_hidden_l)
    "U{l}.{d}"  recurrent weights  (n_hidden_l, len(U_blocks) * n_hidden_l)
    "b{l}.{d}"  bias               (len(b_blocks) * n_hidden_l,)
    "head.W"    output weights     (n_directions * n_hidden_last, n_outputs)
    "head.W_static"  static weights (n_static, n_outputs), only with static features
    "head.b"    output bias        (n_outputs,)
    "h0.W"      static -> initial states  (n_static, n_directions * n_states * n_hidden_0)
    "h0.b"      their bias         (n_directions * n_states * n_hidden_0,)

The ``h0`` blocks exist only when the static values also enter the first
layer's initial states (the estimators' ``static_into``); they
come last, so that every other block is drawn as without them.
"""

import math

import numpy as np

from . import _cells


def make_layout(cell, n_inputs, hidden_layer_sizes, n_outputs, n_directions=1,
                n_static=0, static_into="head"):
    """Fix where every parameter array lives in the flat vector.

    Parameters
    ----------
    cell : str or Cell
        A key of :data:`sklearn_gatedmem._cells.CELLS`.
    n_inputs : int
        Features per time step of the input sequences.
    hidden_layer_sizes : tuple of int
        Hidden units of each stacked recurrent layer.
    n_outputs : int
        Width of the dense head.
    n_directions : {1, 2}
        2 for bidirectional layers.
    n_static : int, default=0
        Static values per case, read by the head beside the pooled state.
    static_into : {"head", "initial_state", "both"}, default="head"
        Where the static values enter: the head (``head.W_static``), the
        first layer's initial states (``h0.W``, ``h0.b``: ``tanh(s W + b)``
        per direction and state of the cell), or both.

    Returns
    -------
    layout : dict
        ``{name: (start, stop, shape)}`` in packing order.
    """
    cell = _cells.get(cell)
    shapes = []
    width = n_inputs
    for layer, n_hidden in enumerate(hidden_layer_sizes):
        for d in range(n_directions):
            for kind, shape in cell.param_shapes(width, n_hidden).items():
                shapes.append((f"{kind}{layer}.{d}", shape))
        width = n_directions * n_hidden
    shapes.append(("head.W", (width, n_outputs)))
    if n_static and static_into != "initial_state":
        shapes.append(("head.W_static", (n_static, n_outputs)))
    shapes.append(("head.b", (n_outputs,)))
    if n_static and static_into != "head":
        width = n_directions * cell.n_states * hidden_layer_sizes[0]
        shapes += [("h0.W", (n_static, width)), ("h0.b", (width,))]

    layout, start = {}, 0
    for name, shape in shapes:
        stop = start + math.prod(shape)  # Python ints: no wrap-around
        layout[name] = (start, stop, shape)
        start = stop
    return layout


def n_params(layout):
    """Length of the flat vector."""
    return max(stop for _, stop, _ in layout.values())


def unpack(theta, layout):
    """Views of ``theta`` as named arrays, ``{name: ndarray}``."""
    return {
        name: theta[start:stop].reshape(shape)
        for name, (start, stop, shape) in layout.items()
    }


def pack(params, layout):
    """The flat vector of named arrays ``params`` (a copy), as :func:`unpack`
    reads it."""
    return np.concatenate([params[name].ravel() for name in layout])


def penalty_mask(layout):
    """1.0 where a parameter is a weight (L2-penalised), 0.0 on biases."""
    mask = np.zeros(n_params(layout))
    for name, (start, stop, _) in layout.items():
        if name.startswith(("W", "U", "head.W", "h0.W")):
            mask[start:stop] = 1.0
    return mask


def initialize(layout, cell, random_state):
    """Draw a starting vector from ``random_state``, depending on shapes only.

    Glorot-uniform input and head weights, an orthogonal block per gate for
    the recurrent weights, zero biases except those of the cell's
    ``bias_init`` (the forget gate's 1, so that memory is kept by default
    early in training).

    Parameters
    ----------
    layout : dict
        From :func:`make_layout`.
    cell : str or Cell
    random_state : numpy.random.RandomState

    Returns
    -------
    theta : ndarray of shape (n_params,), float64
    """
    cell = _cells.get(cell)
    theta = np.zeros(n_params(layout))
    params = unpack(theta, layout)
    for name, array in params.items():
        if name.startswith(("W", "head.W", "h0.W")):
            fan_in, fan_out = array.shape
            limit = np.sqrt(6.0 / (fan_in + fan_out))
            array[...] = random_state.uniform(-limit, limit, size=array.shape)
        elif name.startswith("U"):
            n_hidden = array.shape[0]
            for k in range(array.shape[1] // n_hidden):
                block = slice(k * n_hidden, (k + 1) * n_hidden)
                array[:, block] = _orthogonal(n_hidden, random_state)
        elif name.startswith("b"):
            n_hidden = array.shape[0] // len(cell.b_blocks)
            for block, value in cell.bias_init.items():
                array[cell.block("b", block, n_hidden)] = value
    return theta


def _orthogonal(n, random_state):
    """A random ``n x n`` orthogonal matrix (QR of a Gaussian, signs fixed)."""
    q, r = np.linalg.qr(random_state.standard_normal((n, n)))
    return q * np.sign(np.diag(r))
