"""Turning what users pass as X into sequences ``(n_samples, n_steps, n_features)``.

Two layouts are accepted, and they are the same data:

* 3-D ``(n_samples, n_steps, n_features)``, batch first as in PyTorch and Keras;
* 2-D ``(n_samples, n_steps * n_features)``, step-major: ``X[i, t * d + j]`` is
  step ``t``, feature ``j`` of sample ``i``, which is exactly the C-order
  flattening of the 3-D array. With ``n_steps=None`` a 2-D row is a univariate
  sequence, one step per column.

So 3-D input is flattened first, validated as 2-D by scikit-learn (one
``n_features_in_``: the flattened width), and reshaped back.
"""

import numpy as np
from scipy import sparse


def flatten_3d(X):
    """Flatten 3-D input to 2-D; leave anything else for validation.

    Parameters
    ----------
    X : array-like
        Any input.

    Returns
    -------
    X : array-like
        ``X`` itself, or its 2-D C-order flattening when it was 3-D.
    steps_features : tuple of (int, int) or None
        ``(n_steps, n_features)`` of a 3-D input, else None.
    """
    if sparse.issparse(X) or hasattr(X, "iloc"):  # leave to validate_data
        return X, None
    if not hasattr(X, "ndim"):
        try:
            candidate = np.asarray(X)
        except (ValueError, TypeError):
            return X, None  # ragged or odd: validate_data says what is wrong
        if candidate.ndim != 3:
            return X, None
        X = candidate
    if X.ndim != 3:
        return X, None
    n_samples, n_steps, n_features = X.shape
    return X.reshape(n_samples, n_steps * n_features), (n_steps, n_features)


def resolve_layout(n_columns, n_steps, steps_features):
    """Decide ``(n_steps, n_features)`` for a 2-D width at fit time.

    Parameters
    ----------
    n_columns : int
        Width of the 2-D (or flattened 3-D) input.
    n_steps : int or None
        The estimator's ``n_steps`` parameter.
    steps_features : tuple of (int, int) or None
        From :func:`flatten_3d`.

    Returns
    -------
    n_steps, n_features : int
    """
    if steps_features is not None:
        if n_steps is not None and n_steps != steps_features[0]:
            raise ValueError(
                f"X is 3-D with {steps_features[0]} steps, but n_steps={n_steps}."
                " Leave n_steps=None for 3-D input or make them agree."
            )
        return steps_features
    if n_steps is None:
        return n_columns, 1
    if n_columns % n_steps:
        raise ValueError(
            f"n_steps={n_steps} does not divide the {n_columns} columns of X: "
            "each row must hold n_steps steps of the same number of features."
        )
    return n_steps, n_columns // n_steps


def check_predict_layout(steps_features, fitted):
    """At predict time, a 3-D input must match the fitted steps and features."""
    if steps_features is not None and tuple(steps_features) != tuple(fitted):
        raise ValueError(
            f"X has {steps_features[0]} steps of {steps_features[1]} features, "
            f"but the estimator was fitted on {fitted[0]} steps of "
            f"{fitted[1]} features."
        )


def canonical_rows(X, Y, sample_weight, chunk_rows=4096):
    """Merge repeated rows and fix a row order that depends on content only.

    Rows of zero weight are dropped; identical ``(x, y)`` rows become one row
    whose weight is the sum of theirs; rows are sorted by a 64-bit hash of
    their bytes (as float64, with -0.0 as 0.0), rows of equal hash by their
    bytes. So a fit is the same, bit for bit, whatever the order of the rows,
    and an integer weight is exactly the same as repeating a row (L-BFGS on a
    non-convex loss would otherwise amplify mere summation-order differences).

    Memory: the hashes are computed over chunks of rows, so that besides the
    returned copy of ``X`` nothing of the size of ``X`` is allocated.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_columns)
    Y : ndarray of shape (n_samples, n_outputs)
    sample_weight : ndarray of shape (n_samples,)

    Returns
    -------
    X, Y, sample_weight : ndarrays, with fewer or reordered rows.
        ``X`` and ``Y`` have -0.0 turned into 0.0.
    """
    keep = sample_weight != 0
    if not keep.all():
        X, Y, sample_weight = X[keep], Y[keep], sample_weight[keep]
    n_rows = X.shape[0]
    hashes = _row_hashes(X, Y, chunk_rows)
    order = np.argsort(hashes, kind="stable")
    sorted_hashes = hashes[order]
    group = np.cumsum(np.r_[True, sorted_hashes[1:] != sorted_hashes[:-1]]) - 1
    # rows of equal hash: equal bytes (duplicates), or, very rarely, a collision
    leader = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])[group]
    shared = np.flatnonzero(leader != np.arange(n_rows))
    same = np.ones(n_rows, dtype=bool)
    for start in range(0, shared.size, chunk_rows):
        i = shared[start : start + chunk_rows]
        same[i] = np.all(
            _row_bits(X, Y, order[i]) == _row_bits(X, Y, order[leader[i]]), axis=1
        )
    if not same.all():  # a collision: order those groups' rows by their bytes
        for g in np.unique(group[~same]):
            members = np.flatnonzero(group == g)
            bits = np.ascontiguousarray(_row_bits(X, Y, order[members]))
            rows = bits.view(np.dtype((np.void, bits.shape[1] * 8))).ravel()
            by_bytes = np.argsort(rows, kind="stable")
            order[members] = order[members[by_bytes]]
        group = _content_groups(X, Y, order, group)
    first = order[np.r_[True, group[1:] != group[:-1]]]
    inverse = np.empty(n_rows, dtype=np.intp)
    inverse[order] = group
    # sum each group's weights in an order fixed by the values themselves
    by_weight = np.lexsort((sample_weight, inverse))
    starts = np.flatnonzero(np.r_[True, np.diff(inverse[by_weight]) != 0])
    merged = np.add.reduceat(sample_weight[by_weight], starts)
    X_out, Y_out = X[first], Y[first].astype(np.float64)
    X_out += 0  # -0.0 to 0.0: the rows kept do not depend on the input order
    Y_out += 0
    return X_out, Y_out, merged


def _row_bits(X, Y, rows):
    """The rows' float64 values (-0.0 as 0.0) as uint64 bit patterns."""
    values = np.hstack([X[rows].astype(np.float64), Y[rows].astype(np.float64)])
    values += 0.0
    return values.view(np.uint64)


def _row_hashes(X, Y, chunk_rows):
    """A 64-bit multiply-add hash of each row's :func:`_row_bits`, by chunks."""
    n_columns = X.shape[1] + Y.shape[1]
    multipliers = np.random.RandomState(0).randint(
        1, 2**62, size=n_columns, dtype=np.int64
    ).astype(np.uint64) * np.uint64(2) + np.uint64(1)  # odd
    hashes = np.empty(X.shape[0], dtype=np.uint64)
    for start in range(0, X.shape[0], chunk_rows):
        rows = np.arange(start, min(start + chunk_rows, X.shape[0]))
        bits = _row_bits(X, Y, rows)
        bits ^= bits >> np.uint64(29)  # mix the high bits into the low ones
        bits *= multipliers  # uint64 arithmetic wraps around: it is a hash
        hashes[rows] = np.bitwise_xor.reduce(bits, axis=1) + bits.sum(axis=1)
    return hashes


def _content_groups(X, Y, order, group):
    """Group ids along ``order`` split where consecutive rows' bytes differ
    (after a hash collision, whose rows ``order`` sorts by their bytes)."""
    n_rows = len(order)
    differs = np.zeros(n_rows, dtype=bool)
    differs[0] = True
    differs[1:] = group[1:] != group[:-1]
    check = np.flatnonzero(~differs)
    if check.size:
        differs[check] = np.any(
            _row_bits(X, Y, order[check]) != _row_bits(X, Y, order[check - 1]), axis=1
        )
    return np.cumsum(differs) - 1


def sequence_lengths(X):
    """Real steps of each sequence padded at the end with NaN.

    A step is padding when all its features are NaN. Padding must be trailing,
    and every sequence needs at least one real step.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_steps, n_features)

    Returns
    -------
    lengths : ndarray of shape (n_samples,), int
    """
    step_nan = np.isnan(X)
    pad = step_nan.all(axis=2)
    lengths = X.shape[1] - pad[:, ::-1].cumprod(axis=1).sum(axis=1)
    if np.any(step_nan.any(axis=2) & ~pad):
        raise ValueError(
            "X has NaN inside a step that also has real values; only whole "
            "steps of NaN, at the end of a sequence, are padding."
        )
    if np.any(pad.sum(axis=1) != X.shape[1] - lengths):
        raise ValueError(
            "X has NaN steps before the end of a sequence; variable-length "
            "sequences must be padded with NaN at the end only."
        )
    if np.any(lengths == 0):
        raise ValueError("X has a sequence with no real step (all NaN).")
    return lengths


# "auto" patching: sequences of more than AUTO_PATCH_STEPS steps are read in
# patches of ceil(n_steps / AUTO_PATCH_STEPS) steps, so that the network
# unrolls over at most AUTO_PATCH_STEPS patch steps; shorter ones are left
# alone. Chosen by measurement on the development data (benchmarks/defaults.py
# and the README's "Choosing the defaults").
AUTO_PATCH_STEPS = 32


def resolve_patch_size(patch_size, n_steps):
    """The patch length, in steps, that ``patch_size`` means for ``n_steps``.

    Parameters
    ----------
    patch_size : "auto", int or None
        The estimators' parameter. None means no patching (1); an int is used
        as it is; "auto" gives ``ceil(n_steps / AUTO_PATCH_STEPS)``, which is 1
        for sequences of up to ``AUTO_PATCH_STEPS`` steps.
    n_steps : int
        Steps of the (longest) training sequence.

    Returns
    -------
    patch_size : int
    """
    if patch_size is None:
        return 1
    if patch_size == "auto":
        return max(1, -(-int(n_steps) // AUTO_PATCH_STEPS))
    return int(patch_size)


def make_patches(X, patch_size, differences=False):
    """Read sequences in patches: ``patch_size`` consecutive steps become one.

    This is what the estimators' network reads (with their ``patch_size_``
    and ``differences_``): with ``differences``, each feature's first
    difference ``x_t - x_{t-1}`` (0 at the first step) is first appended to
    every step, then the steps are patched. A patch of ``p`` steps of ``d`` features is one step of ``p * d`` values,
    step-major (``patch[k * d + j]`` is step ``k`` of the patch, feature
    ``j``), so long sequences unroll over few steps.

    Each sequence is patched within its own length: a sequence of ``L`` real
    steps (NaN padding at the end, as for ``variable_length=True``) gets
    ``ceil(L / p)`` patches, and its last, partial patch is completed by
    repeating the sequence's last real step. Repeating the edge keeps every
    value of that patch a real value of the series, in its range (zeros would
    be a made-up level, NaN inside a step is not allowed), and the network's
    reading of it is the same whatever the padding of the batch. The patches
    after a sequence's last are whole steps of NaN.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_steps, n_features)
        Sequences, batch first; trailing whole steps of NaN are padding.
    patch_size : int
        Steps per patch, at least 1; 1 returns ``X`` unchanged.
    differences : bool, default=False
        Append the first differences first (``2 * n_features`` values a step).

    Returns
    -------
    patches : ndarray of shape (n_samples, ceil(n_steps / patch_size), \
            patch_size * n_features * (1 + differences))

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_gatedmem import make_patches
    >>> make_patches(np.arange(5.0).reshape(1, 5, 1), 2)[0]
    array([[0., 1.],
           [2., 3.],
           [4., 4.]])
    """
    if isinstance(patch_size, bool) or not isinstance(patch_size, (int, np.integer)):
        raise TypeError(f"patch_size must be an int, got {patch_size!r}.")
    if patch_size < 1:
        raise ValueError(f"patch_size must be at least 1, got {patch_size}.")
    X = np.asarray(X)
    if X.ndim != 3:
        raise ValueError(
            f"make_patches expects 3-D sequences (n_samples, n_steps, n_features), "
            f"got an array of shape {X.shape}."
        )
    if X.dtype.kind != "f":
        X = X.astype(np.float64)
    if differences:
        X = _with_differences(X)
    p = int(patch_size)
    n_samples, n_steps, n_features = X.shape
    n_patches = -(-n_steps // p)
    if p == 1:
        return X
    padded = np.isnan(X).any()
    if not padded and n_steps % p == 0:
        return X.reshape(n_samples, n_patches, p * n_features)
    lengths = sequence_lengths(X) if padded else np.full(n_samples, n_steps)
    t = np.arange(n_patches * p)
    # each step of the output reads step min(t, L - 1) of its sequence: the
    # last real step is repeated to the end of its patch
    source = np.minimum(t, lengths[:, None] - 1)
    out = np.take_along_axis(X, source[:, :, None], axis=1)
    out[t >= -(-lengths[:, None] // p) * p] = np.nan
    return out.reshape(n_samples, n_patches, p * n_features)


def _with_differences(X):
    """``[x_t, x_t - x_{t-1}]`` at every step, the difference 0 at the first;
    a padding step (NaN) stays all NaN."""
    D = np.empty_like(X)
    D[:, :1] = np.where(np.isnan(X[:, :1]), np.nan, 0)  # padding stays padding
    # values near the dtype's limit may differ by more than it holds: the
    # infinity is then refused by the standardisation (fit) or clipped to
    # the fitted range (predict), as any too-large value is
    with np.errstate(over="ignore"):
        np.subtract(X[:, 1:], X[:, :-1], out=D[:, 1:])
    return np.concatenate([X, D], axis=2)


def pad_sequences(sequences, n_steps=None, dtype=np.float64):
    """Stack sequences of different lengths into a NaN-padded 3-D array.

    Parameters
    ----------
    sequences : list of array-like of shape (n_steps_i, n_features) or (n_steps_i,)
        One array per sample; 1-D arrays are univariate sequences.
    n_steps : int, default=None
        Length to pad to; the longest sequence when None. A longer sequence is
        a ValueError (nothing is silently cut).
    dtype : dtype, default=np.float64

    Returns
    -------
    X : ndarray of shape (n_samples, n_steps, n_features)
        Ready for an estimator with ``variable_length=True``.

    Examples
    --------
    >>> from sklearn_gatedmem import pad_sequences
    >>> pad_sequences([[1, 2, 3], [4]])[:, :, 0]
    array([[ 1.,  2.,  3.],
           [ 4., nan, nan]])
    """
    arrays = []
    for i, seq in enumerate(sequences):
        a = np.asarray(seq, dtype=dtype)
        a = a[:, None] if a.ndim == 1 else a
        if a.ndim != 2 or a.shape[0] == 0:
            raise ValueError(
                f"sequence {i} has shape {np.shape(seq)}; each sequence must be "
                "a non-empty array of shape (n_steps_i,) or (n_steps_i, n_features)."
            )
        arrays.append(a)
    if not arrays:
        raise ValueError("pad_sequences needs at least one sequence.")
    widths = {a.shape[1] for a in arrays}
    if len(widths) > 1:
        raise ValueError(f"sequences have different numbers of features: {sorted(widths)}.")
    longest = max(a.shape[0] for a in arrays)
    n_steps = longest if n_steps is None else n_steps
    if longest > n_steps:
        raise ValueError(f"a sequence has {longest} steps, more than n_steps={n_steps}.")
    X = np.full((len(arrays), n_steps, widths.pop()), np.nan, dtype=dtype)
    for i, a in enumerate(arrays):
        X[i, : a.shape[0]] = a
    return X


def weighted_mean_scale(X, sample_weight, chunk_rows=4096, name="X"):
    """Per-feature weighted mean and standard deviation over samples and steps.

    Padding (NaN) is left out. Before any sum or square, each feature is
    divided by a power of two near its largest magnitude, and the weights by
    one near theirs: exact scalings, so the result is that of the plain
    formulas bit for bit, yet nothing overflows or underflows anywhere in the
    dtype's range (``1e300`` has no finite square). Passes over row chunks, so
    the temporary memory is bounded by the chunk.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_steps, n_features)
    sample_weight : ndarray of shape (n_samples,)
        Finite, non-negative, not all zero.
    name : str, default="X"
        What ``X`` is called in errors.

    Returns
    -------
    mean, scale : ndarray of shape (n_features,), float64
        ``scale`` is 1 where a feature is constant: its spread is rounding
        noise next to its mean, or below the smallest normal number of the
        dtype (dividing by it would overflow).

    Raises
    ------
    ValueError
        When a value is beyond half the largest number of ``X``'s dtype, so
        that ``(x - mean) / scale`` could overflow in it.
    """
    finfo = np.finfo(X.dtype if X.dtype.kind == "f" else np.float64)

    def chunks():
        for start in range(0, X.shape[0], chunk_rows):
            rows = slice(start, start + chunk_rows)
            yield X[rows].astype(np.float64), w_unit[rows, None, None]

    def weighted_sums(f):
        total, weight = np.zeros(X.shape[2]), np.zeros(X.shape[2])
        for x, w in chunks():
            w = w * ~np.isnan(x)
            total += np.einsum("ntd,ntd->d", w, np.nan_to_num(f(x / unit)))
            weight += w.sum(axis=(0, 1))
        return total / weight

    w_unit = sample_weight / _power_of_two_below(np.max(sample_weight))
    largest = np.zeros(X.shape[2])
    for x, _ in chunks():
        largest = np.fmax(largest, np.fmax.reduce(np.abs(x), axis=(0, 1)))
    if np.any(largest > finfo.max / 2):
        j = int(np.argmax(largest))
        raise ValueError(
            f"{name} has a value of magnitude {largest[j]:.3g} (feature {j}), "
            f"beyond {finfo.max / 2:.3g}: standardising it would overflow "
            f"{finfo.dtype}. Rescale it{' or pass float64' if finfo.bits < 64 else ''}."
        )
    unit = _power_of_two_below(largest)
    with np.errstate(under="ignore"):  # squares of tiny deviations may be 0; fine
        mean_u = weighted_sums(lambda x: x)
        var_u = weighted_sums(lambda x: (x - mean_u) ** 2)
        mean, scale = mean_u * unit, np.sqrt(var_u) * unit
        rounding = 10 * np.finfo(np.float64).eps * np.abs(mean)
    scale[(scale <= rounding) | (scale < finfo.tiny)] = 1.0
    if not (np.isfinite(mean).all() and np.isfinite(scale).all()):  # a last guard
        raise ValueError(f"The standardisation of {name} is not finite.")
    return mean, scale


def _power_of_two_below(x):
    """``2**k`` with ``x / 2 < 2**k <= x``, elementwise; 1 where ``x`` is 0."""
    _, exponent = np.frexp(x)
    return np.where(x > 0, np.ldexp(1.0, exponent - 1), 1.0)


# Standardised inputs further than this many standard deviations from the
# training mean are clipped to it: every gate is saturated long before, and
# the input projection ``X W`` stays finite whatever finite X holds.
INPUT_CLIP = 1e6


def clip_to_fitted_range(X, mean, scale):
    """``X`` ready to be standardised by ``mean`` and ``scale`` in its dtype.

    Each feature is clipped to ``mean +- INPUT_CLIP * scale`` (and to half the
    dtype's range, so that ``x - mean`` cannot overflow); float32 input whose
    statistics float32 cannot hold is computed in float64. ``X`` is returned
    as it is, uncopied, when nothing needs changing; NaN padding passes.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_steps, n_features), float32 or float64
    mean, scale : ndarray of shape (n_features,)
        From :func:`weighted_mean_scale` on the training data.

    Returns
    -------
    X : ndarray of shape (n_samples, n_steps, n_features)
    """
    finfo = np.finfo(X.dtype)
    if np.any(np.abs(mean) > finfo.max / 2) or np.any(scale > finfo.max / 2) or (
        np.any(scale < finfo.tiny)
    ):
        X, finfo = X.astype(np.float64), np.finfo(np.float64)
    lo = np.maximum(mean - INPUT_CLIP * scale, -finfo.max / 2).astype(X.dtype)
    hi = np.minimum(mean + INPUT_CLIP * scale, finfo.max / 2).astype(X.dtype)
    flat = X.reshape(-1, X.shape[-1])
    if np.all(np.fmin.reduce(flat, axis=0) >= lo) and np.all(
        np.fmax.reduce(flat, axis=0) <= hi
    ):
        return X
    return np.clip(X, lo, hi)


def check_training_weights(sample_weight):
    """The per-sample weights of a fit: ``sample_weight`` times ``class_weight``.

    They must be finite and non-negative, and their sum positive and finite:
    anything else has no loss to minimise (a negative weight rewards error).

    Parameters
    ----------
    sample_weight : ndarray of shape (n_samples,), float64

    Raises
    ------
    ValueError
        Naming what is wrong.
    """
    if not np.all(np.isfinite(sample_weight)):
        raise ValueError(
            "The sample weights (sample_weight times class_weight) contain NaN "
            "or infinity; class_weight values must be finite numbers."
        )
    if np.any(sample_weight < 0):
        raise ValueError(
            "The sample weights (sample_weight times class_weight) contain "
            f"negative values, e.g. {sample_weight.min():g}; weights must be >= 0."
        )
    with np.errstate(over="ignore"):  # an infinite sum is reported below
        total = sample_weight.sum()
    if not total > 0:
        raise ValueError(
            "The sample weights (sample_weight times class_weight) sum to zero: "
            "there is nothing to fit."
        )
    if not np.isfinite(total):
        raise ValueError(
            f"The sample weights sum to infinity (largest {sample_weight.max():.3g});"
            " scale them down."
        )


def check_label_types(y):
    """A classifier's labels must be all strings or all not strings.

    NumPy cannot sort a mix of strings and numbers, which every label encoder
    needs; without this check the error is a bare ``'<' not supported``.

    Parameters
    ----------
    y : ndarray of shape (n_samples,) or (n_samples, n_outputs)
    """
    if y.dtype != object:
        return
    is_str = [isinstance(v, str) for v in y.ravel()]
    if any(is_str) and not all(is_str):
        kinds = sorted({type(v).__name__ for v in y.ravel()})
        raise ValueError(
            f"y mixes string and non-string labels ({', '.join(kinds)}); class "
            "labels must be all strings or all numbers."
        )
