"""Integrated gradients of a fitted network: which input values moved an output.

Integrated gradients (Sundararajan, Taly and Yan 2017) attribute the change
of an output ``F`` between a baseline ``b`` and the input ``x`` to each input
value ``i``::

    A_i = (x_i - b_i) * int_0^1 dF/dx_i (b + a (x - b)) da

and they are *complete*: ``sum_i A_i = F(x) - F(b)``, for any ``F`` that is
differentiable along the straight path, since the integral of a derivative
along a path is the change of the function along it. The integral is taken by
Gauss-Legendre quadrature (:func:`quadrature`) over pieces of the path, and
completeness is checked on every piece: a piece that misses the change of
``F`` over it is split (:func:`integrated_gradients`), so the sum misses
``F(x) - F(b)`` only by what the pieces left over, at most a stated
tolerance unless the splits run out.

Which space the path runs in
----------------------------
The network reads :func:`~sklearn_gatedmem.make_patches` of the raw series,
standardised. That map is linear but for ``instance_norm``, whose z-scores do
not change when a series is scaled: no path of raw series moves them
continuously from the baseline's to the input's, and integrated gradients
along a straight raw path would miss the jump and lose completeness. So the
path runs in the *channels* that the linear part reads
(:func:`source_channels`): the raw values and, with ``instance_norm``, the
z-scores as channels of their own. Both run straight from the baseline to the
input; the linear part (differences and patches, then the standardisation)
keeps the path straight for the network, and its transpose
(:func:`~sklearn_gatedmem._input.patch_channels_adjoint`) carries the
gradient back to every raw step: the chain rule. A z-score's attribution
goes to the raw value it normalises (same step, same feature), so each raw
value gets what it moved through both readings.

The baseline is the series constant at each feature's training mean, the
mean the network's standardisation subtracts: the network reads it as zeros,
the "zero baseline in the standardised space" of the paper, with differences
of 0 and z-scores of 0 (a constant feature reads 0, see
:func:`~sklearn_gatedmem.make_patches`). It is a real series, so
``F(b)`` is the model's output on it: completeness can be checked with
``predict`` or ``predict_proba``.
"""

import numpy as np
from scipy.special import expit, softmax

from ._input import _with_instance_norm, patch_channels, patch_channels_adjoint
from ._objective import chunk_plan, input_gradient


def quadrature(n_points):
    """Gauss-Legendre nodes and weights on [0, 1].

    Why not the Riemann or trapezoid sums of the paper: Gauss-Legendre on
    ``m`` nodes integrates polynomials of degree ``2m - 1`` exactly, so on a
    smooth piece of the path its error falls much faster than the
    trapezoid's ``1 / m^2``. On whole paths of fitted networks neither rule
    converged fast (largest error over 20 series at 32 points: 1.6e-2 and
    8.9e-3 under max pooling, 1.9e-1 and 1.2e-1 under "last"), because of
    steep switches and kinks; hence the pieces of
    :func:`integrated_gradients`, on which the smooth rule pays.

    Parameters
    ----------
    n_points : int
        At least 1.

    Returns
    -------
    alphas, weights : ndarray of shape (n_points,)
        The nodes in (0, 1) and their weights, which sum to 1.
    """
    nodes, weights = np.polynomial.legendre.leggauss(n_points)
    return (nodes + 1) / 2, weights / 2


def explained_output(Z, column, kind, scale=None, offset=None):
    """The output explained, per sample, and its gradient with respect to ``Z``.

    Parameters
    ----------
    Z : ndarray of shape (n_samples, n_outputs), float64
        Head outputs.
    column : ndarray of int of shape (n_samples,)
        Per sample, the column of ``predict_proba`` (classifiers) or of the
        prediction (regressor) explained.
    kind : {"softmax", "binary", "multilabel", "identity"}
        ``"softmax"``: the class probability ``softmax(Z)[column]``;
        ``"binary"``: one logistic output, column 1 is ``sigmoid(z)`` and
        column 0 ``1 - sigmoid(z)``; ``"multilabel"``: ``sigmoid(Z[column])``;
        ``"identity"``: the prediction ``Z[column] * scale + offset``.
    scale, offset : ndarray of shape (n_outputs,), default=None
        The regressor's target standardisation (``"identity"`` only).

    Returns
    -------
    f : ndarray of shape (n_samples,)
    df_dZ : ndarray of shape (n_samples, n_outputs)
    """
    samples = np.arange(Z.shape[0])
    df = np.zeros_like(Z, dtype=np.float64)
    if kind == "softmax":
        P = softmax(Z, axis=1)
        f = P[samples, column]
        df -= f[:, None] * P  # dp_c / dz_k = p_c (1[k = c] - p_k)
        df[samples, column] += f
    elif kind == "binary":
        s = expit(Z[:, 0])
        f = np.where(column == 1, s, 1 - s)
        df[:, 0] = np.where(column == 1, 1, -1) * s * (1 - s)
    elif kind == "multilabel":
        f = expit(Z[samples, column])
        df[samples, column] = f * (1 - f)
    else:
        f = Z[samples, column] * scale[column] + offset[column]
        df[samples, column] = scale[column]
    return f, df


def source_channels(X, network):
    """The channels the linear part of the network's input map reads, and
    the baseline's value of each.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_steps, n_features), float64
        Raw sequences, NaN steps at the end as padding.
    network : Network
        The fitted network (its ``instance_norm``, ``patch_size``,
        ``differences`` and standardisation).

    Returns
    -------
    C : ndarray of shape (n_samples, n_steps, n_channels)
        ``X``; ``[X, z-scores]`` with ``instance_norm="append"``; the
        z-scores with ``"replace"``. So that ``make_patches(X, ...) ==
        patch_channels(C, ...)``.
    baseline : ndarray of shape (n_channels,)
        Each raw feature's training mean (the standardisation's mean of the
        feature, averaged over the steps of a patch), and 0 for z-scores.
    """
    n_features = X.shape[2]
    C = X if network.instance_norm is None else _with_instance_norm(X, network.instance_norm)
    n_channels = C.shape[2]
    per_step = n_channels * (1 + network.differences)
    means = np.asarray(network.x_mean, dtype=np.float64).reshape(network.patch_size, per_step)
    baseline = np.zeros(n_channels)
    if network.instance_norm != "replace":  # the raw values come first
        baseline[:n_features] = means[:, :n_features].mean(axis=0)
    return C, baseline


def to_raw_steps(A, n_features):
    """Attributions of the channels of :func:`source_channels` summed per raw
    value: a z-score's goes to the value it normalises.

    Parameters
    ----------
    A : ndarray of shape (n_samples, n_steps, n_channels)

    Returns
    -------
    A : ndarray of shape (n_samples, n_steps, n_features)
    """
    return A.reshape(A.shape[0], A.shape[1], -1, n_features).sum(axis=2)


# Completeness is checked on every piece of the path: a piece whose
# attributions miss the output's change over it by more than COMPLETENESS_TOL
# times its length (in the explained output's units: probability, or the
# regressor's y_scale_) is split in two. Why: a recurrent network can switch
# state within a short stretch of the path (measured: a probability going
# from 0.53 to 0.76 within 1/40 of it), and no fixed rule of a few dozen
# points integrates that; bisection spends points there only. The halves
# take REFINE_POINTS nodes each: they are short, and the smooth part of the
# integrand is nearly a polynomial on them. Max pooling's kinks (the step of
# a unit's maximum changing along the path) are continuous but not smooth,
# and there may be hundreds of them: their error only halves per split, so
# each sequence splits at most MAX_SPLITS pieces, the worst first (measured
# on the default classifier, 32 units and 3 networks, 50 steps: splitting
# to 1/1024 of the path cost 9,000 points per sequence and network; with
# these limits 660, a completeness error of 7e-4 at the median and 1.7e-2 at
# worst, and about 270 times the time of predict. The default regressor
# ("last" pooling) took 150 points and stayed within 1e-6).
COMPLETENESS_TOL = 1e-6
REFINE_POINTS = 8
MAX_SPLITS = 32
MAX_DEPTH = 12


def integrated_gradients(C, baseline, lengths, network, thetas, output, n_points,
                         chunk_rows, tol=COMPLETENESS_TOL, max_splits=MAX_SPLITS,
                         static=None):
    """Integrated gradients of ``output`` with respect to every channel value.

    The path from the baseline to each sequence is integrated piece by piece
    by Gauss-Legendre quadrature (:func:`quadrature`), from one piece of
    ``n_points`` nodes; a piece whose attributions miss the change of the
    output over it by more than ``tol`` times its length is split in two
    halves of ``REFINE_POINTS`` nodes, the worst pieces first, at most
    ``max_splits`` times per sequence (see ``COMPLETENESS_TOL``).

    Parameters
    ----------
    C, baseline : from :func:`source_channels`.
    lengths : ndarray of shape (n_samples,)
        Real steps of each sequence.
    network : Network
    thetas : list of ndarray of shape (n_params,)
        The weights of each network of an ensemble (one for a single
        network); the output explained is their average, as the ensemble's
        prediction is.
    output : callable
        ``output(Z, samples) -> (f, df_dZ)`` for head outputs ``Z`` of the
        ``samples`` (indices into ``C``), as :func:`explained_output` gives.
    n_points : int
        Quadrature nodes on the whole path, before any split.
    chunk_rows : int
        Sequences per evaluation, nodes counted: memory stays bounded by it.
    tol : float or ndarray of shape (n_samples,), default=COMPLETENESS_TOL
        Completeness tolerance per sequence, in the output's units.
    max_splits : int, default=MAX_SPLITS
    static : ndarray of shape (n_samples, network.n_static), default=None
        The static values of each sequence, held fixed along its path (they
        get no attribution: only the series is explained).

    Returns
    -------
    A : ndarray of shape (n_samples, n_steps, n_channels), float64
        NaN on padding. Per sample, ``A`` sums to ``F(x) - F(baseline)``
        within ``tol`` unless the splits ran out.
    n_evaluations : int
        Points of the path evaluated (forward and backward), over all
        samples and networks.
    """
    n_samples, n_steps, n_channels = C.shape
    tol = np.broadcast_to(np.asarray(tol, dtype=np.float64), (n_samples,))
    p, differences = network.patch_size, network.differences
    pad = np.arange(n_steps) >= lengths[:, None]
    delta = np.where(pad[:, :, None], 0.0, C - baseline)
    A = np.zeros(C.shape)
    patch_lengths = -(-lengths // p)
    per_chunk = max(1, chunk_rows // (n_points + 2))
    n_evaluations = 0
    for rows, n_patches in chunk_plan(n_samples, -(-n_steps // p), per_chunk, patch_lengths):
        steps = min(n_steps, n_patches * p)
        samples = np.arange(n_samples)[rows]
        splits_left = np.full(n_samples, max_splits)
        # the pieces still to integrate: whose sample, from where to where
        owner, lo, hi = samples, np.zeros(len(samples)), np.ones(len(samples))
        m = n_points
        for depth in range(MAX_DEPTH + 1):
            if not owner.size:
                break
            alphas, weights = quadrature(m)
            points = np.r_[alphas, 0.0, 1.0]  # the nodes, then the piece's two ends
            batch = max(1, chunk_rows // len(points))
            errors, contributions = [], []
            for start in range(0, owner.size, batch):
                piece = slice(start, start + batch)
                o, a, b = owner[piece], lo[piece], hi[piece]
                f, G = _path_gradients(
                    C, delta, baseline, pad, o, a[:, None] + (b - a)[:, None] * points,
                    steps, network, thetas, output, patch_lengths, chunk_rows, static,
                )
                n_evaluations += f.size * len(thetas)
                G = np.einsum("k,nk...->n...", weights, G[:, :m]) * (b - a)[:, None, None]
                contribution = delta[o, :steps] * patch_channels_adjoint(
                    G, steps, p, differences, lengths[o]
                )
                errors.append(contribution.sum(axis=(1, 2)) - (f[:, -1] - f[:, -2]))
                contributions.append(contribution)
            error, contribution = np.concatenate(errors), np.concatenate(contributions)
            split = _pieces_to_split(np.abs(error), tol[owner] * (hi - lo), owner, splits_left)
            if depth == MAX_DEPTH:
                split[:] = False
            np.add.at(A, (owner[~split], slice(None, steps)), contribution[~split])
            mid = (lo[split] + hi[split]) / 2
            owner = np.repeat(owner[split], 2)
            lo = np.column_stack([lo[split], mid]).ravel()
            hi = np.column_stack([mid, hi[split]]).ravel()
            m = REFINE_POINTS
    A[pad] = np.nan
    return A, n_evaluations


def _pieces_to_split(error, allowed, owner, splits_left):
    """Which pieces to split: those whose ``error`` exceeds ``allowed``, the
    worst of each sequence first, while its ``splits_left`` (updated in
    place) last."""
    failing = np.flatnonzero(error > allowed)
    order = failing[np.lexsort((-error[failing], owner[failing]))]
    # rank of each failing piece among its sequence's, worst first
    first = np.r_[0, np.flatnonzero(np.diff(owner[order])) + 1]
    rank = np.arange(order.size) - np.repeat(first, np.diff(np.r_[first, order.size]))
    chosen = order[rank < splits_left[owner[order]]]
    np.subtract.at(splits_left, owner[chosen], 1)
    split = np.zeros(error.size, dtype=bool)
    split[chosen] = True
    return split


def _path_gradients(C, delta, baseline, pad, owner, alphas, steps, network, thetas,
                    output, patch_lengths, chunk_rows, static=None):
    """The output and its gradient with respect to the network's input at
    the points ``baseline + alphas * delta`` of the paths of ``owner``,
    averaged over ``thetas``.

    Returns
    -------
    f : ndarray of shape (n_pieces, n_points)
    grad : ndarray of shape (n_pieces, n_points, n_patches, n_inputs)
    """
    n_pieces, n_points = alphas.shape
    n_channels = C.shape[2]
    path = baseline + alphas[:, :, None, None] * delta[owner, None, :steps]
    path[np.broadcast_to(pad[owner, None, :steps], path.shape[:3])] = np.nan
    U = patch_channels(path.reshape(n_pieces * n_points, steps, n_channels),
                       network.patch_size, network.differences)
    who = np.repeat(owner, n_points)

    def node_output(Z, r):
        return output(Z, who[r])

    node_static = None if static is None else np.repeat(static[owner], n_points, axis=0)
    f, grad = 0.0, 0.0
    for theta in thetas:
        f_k, grad_k = input_gradient(theta, U, network, chunk_rows, node_output,
                                     np.repeat(patch_lengths[owner], n_points), node_static)
        f, grad = f + f_k, grad + grad_k
    f, grad = f / len(thetas), grad / len(thetas)
    return f.reshape(n_pieces, n_points), grad.reshape(n_pieces, n_points, *U.shape[1:])
