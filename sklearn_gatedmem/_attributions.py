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
    :func:`integrated_gradients`, on which the smooth rule pays, and the
    kinks integrated across (:func:`max_pooling_readout`).

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


def piece_points(n_points):
    """The points at which a piece of the path is evaluated, on [0, 1]: the
    ``n_points`` Gauss-Legendre nodes (:func:`quadrature`), then both ends.

    Returns
    -------
    points : ndarray of shape (n_points + 2,)
    weights : ndarray of shape (n_points + 2,)
        The Gauss-Legendre weights, 0 at the ends.
    """
    alphas, weights = quadrature(n_points)
    return np.r_[alphas, 0.0, 1.0], np.r_[weights, 0.0, 0.0]


# The argmax of max pooling is located on a grid of this many points per
# point of a piece, on the pieces' interpolants, before bisection.
GRID_PER_POINT = 1
ROOT_ITERATIONS = 12
GRID_VALUES = 1 << 22  # values of the interpolants per block of the grid


def max_pooling_readout(n_points):
    """A readout for :func:`~sklearn_gatedmem._objective.input_gradient`
    that integrates max pooling's gradient over pieces of the path exactly
    across its kinks.

    Why: under max pooling, ``R_j = max_t h_tj`` and ``dF/dx`` jumps where
    the step of a unit's maximum changes along the path (a kink of ``F``):
    no quadrature rule integrates a jump better than ``O(h)``. But between
    two kinks, with the steps of every maximum fixed (a "configuration"
    ``w``), the integrand ``g_w(a) = dF/dR(h_w(a)) dh_w/dx(a)`` is smooth,
    and defined on the whole piece. So, per piece ``[0, 1]`` (in its own
    coordinate) evaluated at the points of :func:`piece_points`:

    1. each ``h_tj`` is interpolated by the polynomial through its values at
       the points (no new evaluation), and the kinks ``c`` are located on
       these interpolants: where their argmax changes on a grid, then by
       bisection of the difference of the two steps' polynomials;
    2. between consecutive kinks ``[c_s, c_s+1]`` the configuration ``w_s``
       is fixed, and ``int g_ws`` over it is the integral of the polynomial
       interpolating ``g_ws`` at the points: ``sum_k W_sk g_ws(a_k)`` with
       ``W_sk`` the integral of the ``k``-th Lagrange polynomial over
       ``[c_s, c_s+1]`` (exact for degree ``n_points + 1``);
    3. since backward is linear in what it carries down, each point's
       backward pass carries the weighted sum over the configurations at
       once: ``sum_s W_sk dF/dR(h_ws(a_k))`` placed at the steps ``w_s``.
       The cost stays one forward and one backward pass per point.

    A piece without kinks takes the Gauss-Legendre weights (exact for
    degree ``2 n_points - 1``). What the interpolants miss (a piece too long
    for its steep parts, or two kinks between grid points) shows in the
    piece's completeness, and :func:`integrated_gradients` splits it.

    Parameters
    ----------
    n_points : int
        Gauss-Legendre nodes per piece (the rows are pieces of
        ``n_points + 2`` consecutive points, as :func:`piece_points`).

    Returns
    -------
    readout : callable
        ``readout(tops, lengths, pooled) -> (f, douts)``, as
        ``input_gradient`` takes: ``f`` the output at each point, ``douts``
        and ``dZ`` already weighted (a piece's integral is the sum of its
        points' gradients, times its length).
    """
    u, gauss = piece_points(n_points)
    n_pts = u.size
    x = 2 * u - 1  # Legendre polynomials on [-1, 1]
    to_coef = np.linalg.inv(np.polynomial.legendre.legvander(x, n_pts - 1))
    # int_0^v L_k(u) du = 1/2 int_-1^(2v-1) L_k(x) dx, as Legendre series
    antiderivative = 0.5 * np.polynomial.legendre.legint(np.eye(n_pts), lbnd=-1, axis=0) @ to_coef
    grid = np.union1d(np.linspace(0, 1, GRID_PER_POINT * n_pts + 1), u)
    at_grid = np.polynomial.legendre.legvander(2 * grid - 1, n_pts - 1)

    def lagrange_integrals(v):  # int_0^v L_k, shape (len(v), n_pts)
        return np.polynomial.legendre.legvander(2 * v - 1, n_pts) @ antiderivative

    def readout(tops, lengths, pooled):
        n_dir, (n_steps, n_hidden, n_rows) = len(tops), tops[0].shape
        n_pieces, n_units = n_rows // n_pts, n_dir * n_hidden
        # values at the points, point-major: (point, piece, unit, step)
        Y = np.stack(tops).reshape(n_dir, n_steps, n_hidden, n_pieces, n_pts)
        Y = np.ascontiguousarray(Y.transpose(4, 3, 0, 2, 1)).reshape(
            n_pts, n_pieces, n_units, n_steps)
        pad = None
        if lengths is not None:  # the padded steps of each piece
            pad = (np.arange(n_steps) >= np.asarray(lengths)[::n_pts, None])[:, None, :]

        def argmax(V):  # over the real steps
            if pad is not None:
                np.copyto(V, -np.inf, where=pad)
            return V.argmax(axis=-1)

        pieces, units = np.arange(n_pieces)[:, None], np.arange(n_units)
        # the true maxima at the points: the output, and a kinkless piece's gradient
        true_w = argmax(Y.copy())  # (point, piece, unit)
        R = np.take_along_axis(Y, true_w[..., None], axis=-1)[..., 0]
        rows = np.arange(n_rows).reshape(n_pieces, n_pts)
        f, dR, dZ = pooled(R.transpose(1, 0, 2).reshape(n_rows, n_units), rows.ravel())

        # 1. the kinks, on the interpolants: where the argmax changes on the
        # grid, then by bisection of the two steps' difference
        coef = (to_coef @ Y.reshape(n_pts, -1)).reshape(Y.shape)
        block = max(1, GRID_VALUES // Y[0].size)
        grid_w = np.concatenate([
            argmax((at_grid[g : g + block] @ coef.reshape(n_pts, -1)).reshape(
                (-1,) + Y.shape[1:]))
            for g in range(0, grid.size, block)
        ])  # (grid point, piece, unit)
        kg, kp, kj = np.nonzero(grid_w[1:] != grid_w[:-1])
        t_left, t_right = grid_w[kg, kp, kj], grid_w[kg + 1, kp, kj]
        diff = (coef[:, kp, kj, t_left] - coef[:, kp, kj, t_right]).T  # > 0 left of it
        kink = _root(diff, grid[kg], grid[kg + 1])
        has_kinks = np.zeros(n_pieces, dtype=bool)
        has_kinks[kp] = True

        # a kinkless piece: Gauss-Legendre at the true maxima
        weight = np.where(has_kinks[:, None], 0.0, gauss)  # (piece, point)
        values = [weight[:, :, None] * dR.reshape(n_pieces, n_pts, n_units)]
        dZ_sum = weight.reshape(-1, 1) * dZ  # the head's share, for the static values
        index = [(rows[:, :, None] * n_units + units) * n_steps + true_w.transpose(1, 0, 2)]

        # 2. a piece with kinks: one configuration between consecutive kinks
        kinked = np.flatnonzero(has_kinks)
        owner = np.r_[kp, kinked, kinked]
        ends = np.r_[kink, np.zeros(kinked.size), np.ones(kinked.size)]
        order = np.lexsort((ends, owner))
        owner, ends = owner[order], ends[order]
        same = owner[1:] == owner[:-1]
        sp, left, right = owner[:-1][same], ends[:-1][same], ends[1:][same]
        mid = (left + right) / 2
        g = np.clip(np.searchsorted(grid, mid, side="right") - 1, 0, grid.size - 2)
        at = np.full((grid.size - 1, n_pieces, n_units), np.inf)
        at[kg, kp, kj] = kink  # where a unit's maximum moves within a grid step
        config = np.where(mid[:, None] > at[g, sp], grid_w[g + 1, sp], grid_w[g, sp])
        R_s = Y[:, sp[:, None], units, config]  # (point, configuration, unit)
        rows_s = rows[sp].T  # (point, configuration)
        _, dR_s, dZ_s = pooled(R_s.reshape(-1, n_units), rows_s.ravel())
        W = (lagrange_integrals(right) - lagrange_integrals(left)).T  # (point, configuration)
        np.add.at(dZ_sum, rows_s.ravel(), W.reshape(-1, 1) * dZ_s)
        values.append(W[:, :, None] * dR_s.reshape(R_s.shape))
        index.append((rows_s[:, :, None] * n_units + units) * n_steps + config)

        # 3. one gradient per point, summed over its configurations
        D = np.bincount(np.concatenate([i.ravel() for i in index]),
                        np.concatenate([v.ravel() for v in values]),
                        minlength=n_rows * n_units * n_steps)
        D = D.reshape(n_rows, n_dir, n_hidden, n_steps).transpose(1, 3, 2, 0)
        return f, list(D), dZ_sum

    return readout


def _root(coef, lo, hi, n_iter=ROOT_ITERATIONS):
    """A root in ``[lo, hi]`` of each polynomial ``coef`` (Legendre series
    on ``x = 2 u - 1``, shape (n, degree + 1)), positive at ``lo`` and not
    positive at ``hi``: regula falsi, Illinois variant (superlinear, and
    the bracket never lost)."""
    def value(u):
        return (np.polynomial.legendre.legvander(2 * u - 1, coef.shape[1] - 1) * coef).sum(1)

    f_lo, f_hi = value(lo), value(hi)
    side = np.zeros(lo.size)
    for _ in range(n_iter):
        span = f_lo - f_hi
        u = np.where(span > 0, (lo * -f_hi + hi * f_lo) / np.where(span > 0, span, 1),
                     (lo + hi) / 2)
        u = np.clip(u, lo, hi)
        f_u = value(u)
        right = f_u > 0  # the root is right of u
        # Illinois: halve the value of an end kept twice in a row
        f_hi = np.where(right & (side > 0), f_hi / 2, f_hi)
        f_lo = np.where(~right & (side < 0), f_lo / 2, f_lo)
        lo, f_lo = np.where(right, u, lo), np.where(right, f_u, f_lo)
        hi, f_hi = np.where(right, hi, u), np.where(right, f_hi, f_u)
        side = np.where(right, 1, -1)
    return np.where(f_lo - f_hi > 0, (lo * -f_hi + hi * f_lo) / np.maximum(f_lo - f_hi, 1e-300),
                    (lo + hi) / 2)


# Completeness is checked on every piece of the path: a piece whose
# attributions miss the output's change over it by more than COMPLETENESS_TOL
# times its length (in the explained output's units: probability, or the
# regressor's y_scale_) is split in two. Why: a recurrent network can switch
# state within a short stretch of the path (measured: a probability going
# from 0.37 to 0.72 within 1/4000 of it), and no fixed rule of a few dozen
# points integrates that; bisection spends points there only. The halves
# take REFINE_POINTS nodes each: they are short, and the smooth part of the
# integrand is nearly a polynomial on them. Max pooling's kinks are
# integrated across (max_pooling_readout), so they cost no splits. Measured
# on the default classifier (32 units, 3 networks, 50 steps of 2 features;
# benchmarks/attributions_cost.py): about 410 points per sequence and
# network, a completeness error of 1.3e-8 at the median and 2.2e-7 at worst
# over 40 series (plain Gauss-Legendre on the same budget: 660 points,
# 1.4e-2 and 0.87). Fewer refinement nodes ran out of splits (4: worst
# 1.4e-2; 6: 5e-4); 12 cost more for no need. Depth is bounded by the splits,
# not MAX_DEPTH: one transition measured 1e-5 of the path wide.
COMPLETENESS_TOL = 1e-6
REFINE_POINTS = 8
MAX_SPLITS = 32
MAX_DEPTH = 40


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
        The raw static values of each sequence. They run along the path too,
        from their training mean (``network.s_mean``, which the network
        reads as 0) to their values, and get their attributions.

    Under max pooling, each piece is integrated across the kinks of its
    maxima (:func:`max_pooling_readout`).

    Returns
    -------
    A : ndarray of shape (n_samples, n_steps, n_channels), float64
        NaN on padding. Per sample, ``A`` (and ``A_static``) sums to
        ``F(x) - F(baseline)`` within ``tol`` unless the splits ran out.
    A_static : ndarray of shape (n_samples, network.n_static) or None
        The static values' attributions (None without ``static``).
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
    A_static = d_static = None
    if static is not None:
        d_static = static - network.s_mean
        A_static = np.zeros(static.shape)
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
            points, weights = piece_points(m)
            readout = None
            if network.pooling == "max":  # its weights are in the gradients
                readout, weights = max_pooling_readout(m), np.ones(points.size)
            batch = max(1, chunk_rows // len(points))
            errors, contributions, static_contributions = [], [], []
            for start in range(0, owner.size, batch):
                piece = slice(start, start + batch)
                o, a, b = owner[piece], lo[piece], hi[piece]
                f, G, G_static = _path_gradients(
                    C, delta, baseline, pad, o, a[:, None] + (b - a)[:, None] * points,
                    steps, network, thetas, output, patch_lengths, chunk_rows, static,
                    readout,
                )
                n_evaluations += f.size * len(thetas)
                G = np.einsum("k,nk...->n...", weights, G) * (b - a)[:, None, None]
                contribution = delta[o, :steps] * patch_channels_adjoint(
                    G, steps, p, differences, lengths[o]
                )
                total = contribution.sum(axis=(1, 2))
                if static is not None:
                    G_static = np.einsum("k,nks->ns", weights, G_static) * (b - a)[:, None]
                    static_contributions.append(d_static[o] * G_static)
                    total = total + static_contributions[-1].sum(axis=1)
                errors.append(total - (f[:, -1] - f[:, -2]))
                contributions.append(contribution)
            error, contribution = np.concatenate(errors), np.concatenate(contributions)
            split = _pieces_to_split(np.abs(error), tol[owner] * (hi - lo), owner, splits_left)
            if depth == MAX_DEPTH:
                split[:] = False
            np.add.at(A, (owner[~split], slice(None, steps)), contribution[~split])
            if static is not None:
                np.add.at(A_static, owner[~split], np.concatenate(static_contributions)[~split])
            mid = (lo[split] + hi[split]) / 2
            owner = np.repeat(owner[split], 2)
            lo = np.column_stack([lo[split], mid]).ravel()
            hi = np.column_stack([mid, hi[split]]).ravel()
            m = REFINE_POINTS
    A[pad] = np.nan
    return A, A_static, n_evaluations


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
                    output, patch_lengths, chunk_rows, static=None, readout=None):
    """The output and its gradient with respect to the network's input at
    the points ``baseline + alphas * delta`` of the paths of ``owner``,
    averaged over ``thetas``.

    Returns
    -------
    f : ndarray of shape (n_pieces, n_points)
    grad : ndarray of shape (n_pieces, n_points, n_patches, n_inputs)
    grad_static : ndarray of shape (n_pieces, n_points, n_static) or None
        With respect to the raw static values, which run from
        ``network.s_mean`` to ``static`` along the path.
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

    node_static, grad_static = None, 0.0
    if static is not None:
        node_static = network.s_mean + (alphas[:, :, None] * (static[owner] - network.s_mean)[
            :, None]).reshape(n_pieces * n_points, -1)
    f, grad = 0.0, 0.0
    for theta in thetas:
        out = input_gradient(theta, U, network, chunk_rows, node_output,
                             np.repeat(patch_lengths[owner], n_points), node_static,
                             readout, static_gradient=static is not None)
        f, grad = f + out[0], grad + out[1]
        if static is not None:
            grad_static = grad_static + out[2]
    f, grad = f / len(thetas), grad / len(thetas)
    if static is not None:
        grad_static = (grad_static / len(thetas)).reshape(n_pieces, n_points, -1)
    return (f.reshape(n_pieces, n_points), grad.reshape(n_pieces, n_points, *U.shape[1:]),
            None if static is None else grad_static)
