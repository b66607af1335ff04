"""Turning what users pass as X into sequences ``(n_samples, n_steps, n_features)``.

Two layouts are accepted, and they are the same data:

* 3-D ``(n_samples, n_steps, n_features)``, batch first as in PyTorch and Keras;
* 2-D ``(n_samples, n_steps * n_features)``, step-major: ``X[i, t * d + j]`` is
  step ``t``, feature ``j`` of sample ``i``, which is exactly the C-order
  flattening of the 3-D array. With ``n_steps=None`` a 2-D row is a univariate
  sequence, one step per column.

So 3-D input is flattened first, validated as 2-D by scikit-learn (one
``n_features_in_``: the flattened width), and reshaped back.

``data_format="channels_first"`` reads 3-D arrays as ``(n_samples, n_features,
n_steps)``, aeon's and sktime's ``(n_cases, n_channels, n_timepoints)``; they
are transposed to channels-last on reading. Lists of sequences of different
lengths (each ``(n_steps_i, n_features)``, or ``(n_features, n_steps_i)``
channels-first) are padded with NaN at the end on reading, for
``variable_length=True``. 2-D input does not depend on ``data_format``.

The shape rule that warns (:func:`warn_layout`): 3-D input read as one step
of several features. Other shapes are left alone: few steps of many features
is ordinary channels-last data too (word embeddings: 20 steps of 300).
"""

import numbers
import warnings

import numpy as np
from scipy import sparse


DATA_FORMATS = ("channels_last", "channels_first")


def check_data_format(data_format):
    """``data_format`` must be one of :data:`DATA_FORMATS`."""
    if data_format not in DATA_FORMATS:
        raise ValueError(
            f'data_format must be "channels_last" or "channels_first", got {data_format!r}.'
        )


def read_sequences(X, data_format="channels_last"):
    """Flatten 3-D input and lists of sequences to 2-D; leave the rest alone.

    * A 3-D array (or nested list) is ``(n_samples, n_steps, n_features)``
      with ``data_format="channels_last"``, or ``(n_samples, n_features,
      n_steps)`` (aeon's and sktime's ``(n_cases, n_channels, n_timepoints)``)
      with ``"channels_first"``; it is returned channels-last, flattened.
    * A list of sequences of different lengths (a "ragged" list, or a 1-D
      object array of sequences), each 1-D ``(n_steps_i,)`` or 2-D in the
      layout of ``data_format``, is padded with NaN at the end to the longest
      (see :func:`pad_sequences`) and flattened.
    * Anything else (2-D arrays and lists, DataFrames, sparse matrices, odd
      input) is returned as it is, for ``validate_data`` to check.

    Parameters
    ----------
    X : array-like or list of array-like
    data_format : {"channels_last", "channels_first"}, default="channels_last"

    Returns
    -------
    X : array-like
        ``X`` itself, or the 2-D C-order flattening of the channels-last
        sequences, shape (n_samples, n_steps * n_features).
    steps_features : tuple of (int, int) or None
        ``(n_steps, n_features)`` of 3-D or ragged input, else None.
    ragged : bool
        True when ``X`` was a list of sequences of different lengths.

    Raises
    ------
    ValueError
        For input of 4 or more dimensions, and for ragged lists whose
        sequences are not 1-D or 2-D or disagree on their features.
    """
    if sparse.issparse(X) or hasattr(X, "iloc"):  # leave to validate_data
        return X, None, False
    ragged = False
    if not hasattr(X, "ndim"):
        try:
            candidate = np.asarray(X)
        except (ValueError, TypeError):  # NumPy's "inhomogeneous shape"
            candidate = None
        if candidate is None or (candidate.dtype == object and candidate.ndim == 1):
            return _read_ragged(X, data_format)
        if candidate.ndim < 3:
            return X, None, False
        X = candidate
    elif X.ndim == 1 and X.dtype == object and len(X) and hasattr(X[0], "__len__"):
        return _read_ragged(X, data_format)
    if X.ndim > 3:
        raise ValueError(
            f"X has {X.ndim} dimensions (shape {X.shape}); expected 2-D or 3-D: "
            "(n_samples, n_columns) or (n_samples, n_steps, n_features)"
            + (
                "." if data_format == "channels_last"
                else ", here (n_samples, n_features, n_steps)."
            )
        )
    if X.ndim != 3:
        return X, None, ragged
    if data_format == "channels_first":
        X = X.transpose(0, 2, 1)
    n_samples, n_steps, n_features = X.shape
    return X.reshape(n_samples, n_steps * n_features), (n_steps, n_features), ragged


def _read_ragged(X, data_format):
    """A list of sequences of different lengths, NaN-padded and flattened;
    ``X`` itself when its items are not numeric sequences."""
    try:
        arrays = [_one_sequence(seq, i, data_format) for i, seq in enumerate(X)]
    except ValueError as exc:
        if "expected 2-D or 3-D" in str(exc):
            raise ValueError(f"X is a list of sequences, and {exc}") from None
        return X, None, False  # not sequences: validate_data says what is wrong
    if not arrays or any(a.dtype.kind not in "biuf" for a in arrays):
        return X, None, False
    dtype = np.float32 if all(a.dtype == np.float32 for a in arrays) else np.float64
    X = _pad(arrays, dtype=dtype)
    n_samples, n_steps, n_features = X.shape
    return X.reshape(n_samples, n_steps * n_features), (n_steps, n_features), True


def ragged_error(steps_features):
    """The ValueError for a ragged list given to an estimator without
    ``variable_length=True``."""
    return ValueError(
        "X is a list of sequences of different lengths (the longest has "
        f"{steps_features[0]} steps); fit and predict them with "
        "variable_length=True, which reads each sequence up to its own end. "
        "Or make them one length yourself with pad_sequences(X, maxlen=..., "
        "value=0.0), which pads and cuts."
    )


def nan_error():
    """The ValueError for NaN in X without ``variable_length=True`` and
    with ``missing="error"``."""
    return ValueError(
        "Input X contains NaN. NaN marks the padding of sequences of different "
        "lengths, which needs variable_length=True (pad_sequences pads a list "
        "of sequences with NaN at the end). For gaps inside the series, pass "
        'missing="carry": the last observed value is carried forward, with an '
        "indicator channel per feature. Else impute missing values first."
    )


def resolve_static(static_features, n_features, feature_names=None, on="columns"):
    """The sorted indices that ``static_features`` names, or None.

    As ``HistGradientBoostingClassifier(categorical_features=...)`` reads
    its parameter: integer indices, a boolean mask of length
    ``n_features``, or names when ``X`` was a DataFrame (``feature_names``).

    Parameters
    ----------
    static_features : array-like of int, bool or str, or None
    n_features : int
        Columns of 2-D input (``on="columns"``), or channels per step of 3-D
        and list input (``on="channels"``).
    feature_names : ndarray of str or None
        ``feature_names_in_`` of a DataFrame ``X``.
    on : {"columns", "channels"}

    Returns
    -------
    index : ndarray of shape (n_static,), int, or None
        None when ``static_features`` is None or empty.

    Raises
    ------
    ValueError
        For indices out of range, repeated, a mask of the wrong length,
        names without a DataFrame or unknown, or when nothing is left for the
        sequences.
    """
    if static_features is None:
        return None
    values = np.asarray(static_features)
    if values.ndim != 1:
        raise ValueError(
            "static_features must be a 1-D array-like of indices, of booleans "
            f"or of feature names, got shape {values.shape}."
        )
    if values.size == 0:
        return None
    if values.dtype.kind in "USO":
        if on != "columns" or feature_names is None:
            raise ValueError(
                "static_features holds names, which need X as a DataFrame with "
                "string column names (2-D); give column or channel indices "
                "instead."
            )
        names = list(feature_names)
        unknown = [v for v in values if v not in names]
        if unknown:
            raise ValueError(
                f"static_features names {_few(unknown)}, which are not columns "
                f"of X ({_few(names)})."
            )
        index = np.array([names.index(v) for v in values])
    elif values.dtype.kind == "b":
        if values.size != n_features:
            raise ValueError(
                f"static_features is a boolean mask of length {values.size}, "
                f"but X has {n_features} {on}."
            )
        index = np.flatnonzero(values)
    elif values.dtype.kind in "iu":
        index = values.astype(np.intp)
        if index.min() < 0 or index.max() >= n_features:
            raise ValueError(
                f"static_features has index {int(index.min() if index.min() < 0 else index.max())},"
                f" out of range for X's {n_features} {on} (0 to {n_features - 1})."
            )
    else:
        raise ValueError(
            "static_features must hold integer indices, booleans or names, got "
            f"dtype {values.dtype}."
        )
    if len(np.unique(index)) != len(index):
        raise ValueError(f"static_features names some {on} twice: {_few(list(index))}.")
    if index.size == 0:
        return None
    if index.size >= n_features:
        raise ValueError(
            f"static_features takes all of X's {n_features} feature(s) ({on}): "
            "nothing is left for the sequences."
        )
    return np.sort(index)


def split_static(X, index, on):
    """Take the static values out of validated input.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_columns) or (n_samples, n_steps, n_features)
        2-D for ``on="columns"``, 3-D channels-last for ``on="channels"``.
    index : ndarray of int
        From :func:`resolve_static`.
    on : {"columns", "channels"}

    Returns
    -------
    X : ndarray
        Without the static columns or channels.
    static : ndarray of shape (n_samples, n_static)
        For channels, each series' value at its first step.

    Raises
    ------
    ValueError
        When a static value is NaN, or a static channel is not constant over
        a series (NaN, on padding, aside).
    """
    if on == "columns":
        static = X[:, index]
        X = np.delete(X, index, axis=1)
    else:
        channels = X[:, :, index]
        static = channels[:, 0]
        differs = ~np.isnan(channels) & (channels != static[:, None])
        if np.any(differs):
            n, _, j = np.argwhere(differs)[0]
            raise ValueError(
                f"static_features: channel {index[j]} is not constant over "
                f"series {n} (its first value {static[n, j]:g}, then "
                f"{channels[n][differs[n][:, j], j][0]:g}). A static channel "
                "must hold one value per series; pass time-varying channels "
                "as ordinary features."
            )
        X = np.delete(X, index, axis=2)
    if np.isnan(static).any():
        n, j = np.argwhere(np.isnan(static))[0]
        raise ValueError(
            f"static_features: the value of {on[:-1]} {index[j]} of sample {n} "
            "is NaN (for a channel, at the first step); static values must be "
            "finite."
        )
    return X, static


MISSING = ("error", "carry")


def carry_forward(X, lengths, fill):
    """Gaps filled by the last observed value, with one indicator per feature.

    The simple half of GRU-D (Che et al. 2018): within each sequence's real
    steps, a NaN value takes the last observed value of its feature, or
    ``fill`` (the training mean) before the first one; an indicator channel
    per feature is 1 where the value was imputed, 0 where observed. The
    network then reads both, so it can learn how much to trust a carried
    value. Steps beyond each sequence's length stay all NaN (padding).

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_steps, n_features)
        NaN where a value is missing.
    lengths : ndarray of shape (n_samples,)
        Real steps of each sequence (from :func:`sequence_lengths` with
        ``gaps=True``, or all steps).
    fill : ndarray of shape (n_features,)
        The value of a gap before any observation.

    Returns
    -------
    X : ndarray of shape (n_samples, n_steps, 2 * n_features)
        The imputed features, then their indicators, in ``X``'s dtype.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_gatedmem._input import carry_forward
    >>> X = np.array([[[np.nan], [2.0], [np.nan], [4.0]]])
    >>> carry_forward(X, np.array([4]), np.array([9.0]))[0].T
    array([[9., 2., 2., 4.],
           [1., 0., 1., 0.]])
    """
    n_steps = X.shape[1]
    t = np.arange(n_steps)
    observed = ~np.isnan(X)
    # index of the last observed step of each feature, -1 before the first
    last = np.where(observed, t[None, :, None], -1)
    np.maximum.accumulate(last, axis=1, out=last)
    values = np.take_along_axis(X, np.maximum(last, 0), axis=1)
    values = np.where(last >= 0, values, np.asarray(fill, dtype=X.dtype))
    out = np.concatenate([values, (~observed).astype(X.dtype)], axis=2)
    out[t[None, :] >= np.asarray(lengths)[:, None]] = np.nan
    return out


def has_nan(X, chunk_rows=4096):
    """Whether ``X`` (any shape, float) holds a NaN; memory bounded by chunks."""
    flat = X.reshape(X.shape[0], -1) if X.ndim > 1 else X.reshape(-1, 1)
    with np.errstate(over="ignore", invalid="ignore"):
        if np.isfinite(flat.sum()):  # no NaN for sure
            return False
    return any(
        np.isnan(flat[start : start + chunk_rows]).any()
        for start in range(0, flat.shape[0], chunk_rows)
    )


def warn_layout(steps_features, data_format):
    """Warn, naming ``data_format``, when 3-D input reads as one step of many
    features: a recurrent network over one step has no recurrence, and this
    is the shape of a univariate aeon/sktime array ``(n, 1, n_timepoints)``
    read channels-last (or of ``(n, n_timepoints, 1)`` read channels-first).

    Parameters
    ----------
    steps_features : tuple of (int, int) or None
        ``(n_steps, n_features)`` as read, channels-last.
    data_format : {"channels_last", "channels_first"}
    """
    if steps_features is None:
        return
    n_steps, n_features = steps_features
    if n_steps == 1 and n_features > 1:
        other = "channels_first" if data_format == "channels_last" else "channels_last"
        layout = (
            "(n_samples, n_steps, n_features)" if data_format == "channels_last"
            else "(n_samples, n_features, n_steps)"
        )
        warnings.warn(
            f"X is read as sequences of 1 step of {n_features} features "
            f'(data_format="{data_format}": {layout}), so the network has no '
            f"recurrence. If the axis of length {n_features} is time, as in "
            f'aeon\'s and sktime\'s (n_cases, n_channels, n_timepoints), pass '
            f'data_format="{other}".',
            UserWarning,
            stacklevel=4,
        )


def resolve_layout(n_columns, n_steps, steps_features):
    """Decide ``(n_steps, n_features)`` for a 2-D width at fit time.

    Parameters
    ----------
    n_columns : int
        Width of the 2-D (or flattened 3-D) input.
    n_steps : int or None
        The estimator's ``n_steps`` parameter.
    steps_features : tuple of (int, int) or None
        From :func:`read_sequences`.

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


def check_predict_layout(steps_features, fitted, any_steps=False,
                         data_format="channels_last"):
    """At predict time, a 3-D input must match the fitted steps and features
    (only the features with ``any_steps``, i.e. ``variable_length=True``)."""
    if steps_features is None:
        return
    (n_steps, n_features), (fit_steps, fit_features) = steps_features, fitted
    if n_features == fit_features and (any_steps or n_steps == fit_steps):
        return
    what = "features" if any_steps else f"{fit_steps} steps of {fit_features} features"
    message = (
        f"X has {n_steps} steps of {n_features} features, but the estimator "
        f"was fitted on {fit_steps} steps of {fit_features} features"
        + (" (any number of steps: variable_length=True)" if any_steps else "")
        + "."
    )
    if n_steps == fit_features and (any_steps or n_features == fit_steps):
        message += (
            f' Read as data_format="{data_format}"; the other layout would have '
            f"the fitted {what}: is X (n_samples, "
            + ("n_features, n_steps" if data_format == "channels_last" else "n_steps, n_features")
            + ")? Fit and predict with the data_format of your data."
        )
    raise ValueError(message)


def single_sequence_hint(shape, fitted, n_features_in, data_format, any_steps,
                         name="the estimator"):
    """The ValueError for a 2-D ``shape`` that is one fitted sequence, not a
    batch (``X[0]`` of 3-D training data); None when it is not one.

    Parameters
    ----------
    shape : tuple of int or None
        Of the input; only 2-D shapes can be one sequence.
    fitted : tuple of (int, int)
        The fitted ``(n_steps, n_features)``.
    n_features_in : int
        The fitted 2-D width.
    data_format : {"channels_last", "channels_first"}
    any_steps : bool
        ``variable_length=True``: a sequence may have any number of steps.
    name : str
        The estimator's class name, as scikit-learn's message has it.
    """
    if shape is None or len(shape) != 2 or shape[1] == n_features_in:
        return None
    n_steps, n_features = shape if data_format == "channels_last" else shape[::-1]
    fit_steps, fit_features = fitted
    if n_features != fit_features or not (
        n_steps == fit_steps or (any_steps and fit_features > 1)
    ):
        return None
    return ValueError(
        f"X has {shape[1]} features, but {name} is expecting "
        f"{n_features_in} features as input. X, of shape {tuple(shape)}, has the "
        f"shape of one sequence ({n_steps} steps of {n_features} features, "
        f'data_format="{data_format}"): add a leading axis, X[None], to predict '
        "it as a batch of one."
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


# Shuffling the columns of NaN-padded 2-D data, as scikit-learn's
# permutation_importance does, moves padding inside sequences: the errors of
# sequence_lengths say so, since that is where such a shuffle ends up.
_SHUFFLED_PADDING = (
    " A column-wise shuffle of padded data (sklearn.inspection."
    "permutation_importance) does this: for sequences of different lengths, "
    "use the estimator's attributions(X) to see which steps matter, or make "
    "them one length (pad_sequences(X, maxlen=..., value=0.0)) and fit "
    "without variable_length."
)


def sequence_lengths(X, gaps=False):
    """Real steps of each sequence padded at the end with NaN.

    A step is padding when all its features are NaN and so are all the steps
    after it. Every sequence needs at least one real step.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_steps, n_features)
    gaps : bool, default=False
        Whether NaN may also mark missing values inside the real steps
        (``missing="carry"``). When False, padding must be whole steps at
        the end, and any other NaN is a ValueError.

    Returns
    -------
    lengths : ndarray of shape (n_samples,), int
    """
    step_nan = np.isnan(X)
    pad = step_nan.all(axis=2)
    lengths = X.shape[1] - pad[:, ::-1].cumprod(axis=1).sum(axis=1)
    if not gaps and np.any(step_nan.any(axis=2) & ~pad):
        raise ValueError(
            "X has NaN inside a step that also has real values; only whole "
            "steps of NaN, at the end of a sequence, are padding. For missing "
            'values inside the series, pass missing="carry".' + _SHUFFLED_PADDING
        )
    if not gaps and np.any(pad.sum(axis=1) != X.shape[1] - lengths):
        raise ValueError(
            "X has NaN steps before the end of a sequence; variable-length "
            "sequences must be padded with NaN at the end only (pad_sequences "
            'pads there with its default padding="post"; padding="pre" puts '
            'the NaN first). For missing steps inside the series, pass missing="carry".'
            + _SHUFFLED_PADDING
        )
    if np.any(lengths == 0):
        raise ValueError("X has a sequence with no real step (all NaN).")
    return lengths


# "auto" shifts. A small training set (at most SHIFTS_MAX_SAMPLES cases and
# SHIFTS_MAX_VALUES values) is read AUTO_PATCH_SHIFTS ways (at most
# patch_size): there one reading of the patches fits few cases worst, and a
# fit is cheap. A larger one is read LARGE_PATCH_SHIFTS ways when a reading
# is cheap too: at most LARGE_SHIFTS_MAX_STEPS patch steps over all its
# sequences (what the time loop runs through) and LARGE_SHIFTS_MAX_VALUES
# values (what the input projection reads). Chosen by measurement on the
# development data (docs, "How the defaults were chosen"): Trace cut to 30
# cases with a fixed reading 0.922 -> 0.992, PigCVP cut to 60 0.256 -> 0.388;
# at full size, two readings: PLAID 0.758 -> 0.806, PigCVP 0.413 -> 0.548;
# sets beyond the limits would pay seconds for it (the motif task, 9,000
# patch steps: 8.8 s a fit, one reading; watch cut to 30, 295,000 values:
# 0.731 -> 0.737 with 5 readings at 3.5 times the time).
AUTO_PATCH_SHIFTS = 5
SHIFTS_MAX_SAMPLES = 100
SHIFTS_MAX_VALUES = 150_000
LARGE_PATCH_SHIFTS = 2
LARGE_SHIFTS_MAX_STEPS = 5_000
LARGE_SHIFTS_MAX_VALUES = 250_000

# "auto" patching: sequences of more than AUTO_PATCH_STEPS steps are read in
# patches of ceil(n_steps / AUTO_PATCH_STEPS) steps, so that the network
# unrolls over at most AUTO_PATCH_STEPS patch steps; shorter ones are left
# alone. Chosen by measurement on the development data (benchmarks/defaults.py
# and the docs' "How the defaults were chosen").
AUTO_PATCH_STEPS = 32

# ... n_steps is the longest training sequence's, except on a small training
# set (small_training_set) of sequences of different lengths: there it is
# the upper quartile of their lengths (PATCH_LENGTH_QUANTILE), so that three
# sequences in four, not only the longest, are read in at most
# AUTO_PATCH_STEPS patches. A set whose longest series is several times its
# typical one otherwise reads most of its series in a handful of patches:
# PLAID (100 to 1,344 steps) cut to 60 cases, 0.605 -> 0.681 (patches of 14
# steps instead of 42); at full size, where the readings would cost too much,
# the longest sets the patches (docs, "How the defaults were chosen").
PATCH_LENGTH_QUANTILE = 0.75


def small_training_set(lengths, n_features):
    """Whether a training set of sequences of ``lengths`` real steps of
    ``n_features`` features is small enough for the costlier "auto" readings:
    at most :data:`SHIFTS_MAX_SAMPLES` cases and :data:`SHIFTS_MAX_VALUES`
    values (the patch length from the typical sequence, five readings).

    Parameters
    ----------
    lengths : ndarray of shape (n_samples,)
    n_features : int

    Returns
    -------
    small : bool
    """
    lengths = np.asarray(lengths)
    return (len(lengths) <= SHIFTS_MAX_SAMPLES
            and int(lengths.sum()) * n_features <= SHIFTS_MAX_VALUES)


def resolve_patch_size(patch_size, n_steps, lengths=None, n_features=1):
    """The patch length, in steps, that ``patch_size`` means for ``n_steps``.

    Parameters
    ----------
    patch_size : "auto", int or None
        The estimators' parameter. None means no patching (1); an int is used
        as it is; "auto" gives ``ceil(n_steps / AUTO_PATCH_STEPS)``, which is 1
        for sequences of up to ``AUTO_PATCH_STEPS`` steps, with ``n_steps``
        the upper quartile of ``lengths`` instead on a small training set
        (:func:`small_training_set`).
    n_steps : int
        Steps of the (longest) training sequence.
    lengths : ndarray of shape (n_samples,) or None, default=None
        The real steps of each training sequence; None when unknown (a dask
        collection, a search's candidate): the longest sets the patches.
    n_features : int, default=1
        Features per step.

    Returns
    -------
    patch_size : int

    Examples
    --------
    >>> from sklearn_gatedmem._input import resolve_patch_size
    >>> resolve_patch_size("auto", 1344)
    42
    >>> resolve_patch_size("auto", 1344, lengths=[100, 200, 300, 434, 1344])
    14
    """
    if patch_size is None:
        return 1
    if patch_size == "auto":
        if lengths is not None and len(lengths) and small_training_set(lengths, n_features):
            # "higher": a length some sequence has, never above the longest
            n_steps = int(np.quantile(lengths, PATCH_LENGTH_QUANTILE, method="higher"))
        return max(1, -(-int(n_steps) // AUTO_PATCH_STEPS))
    return int(patch_size)


def patch_steps(lengths, patch_size):
    """The patch steps a network's time loop runs through over a set of
    sequences: each one's real steps over ``patch_size``, rounded up, summed
    (what a reading of the set costs; the limits of the "auto" readings and
    of the regressor's search on larger sets count it).

    Parameters
    ----------
    lengths : ndarray of shape (n_samples,)
        The real steps of each sequence.
    patch_size : int
        The resolved patch length (:func:`resolve_patch_size`).

    Returns
    -------
    steps : int

    Examples
    --------
    >>> from sklearn_gatedmem._input import patch_steps
    >>> patch_steps([10, 7, 3], 3)
    8
    """
    return int((-(-np.asarray(lengths) // int(patch_size))).sum())


def resolve_patch_shifts(patch_shifts, patch_size, n_steps, n_features=1, lengths=None):
    """The number of readings ``K`` that ``patch_shifts`` means.

    Parameters
    ----------
    patch_shifts : "auto" or int
        The estimators' parameter.
    patch_size : int
        The resolved patch length (:func:`resolve_patch_size`).
    n_steps : int
        Steps of the (longest) training sequence.
    n_features : int, default=1
        Features per step.
    lengths : ndarray of shape (n_samples,) or None, default=None
        The real steps of each training sequence; None when unknown (a
        dask collection): "auto" then means 1.

    Returns
    -------
    K : int
        At most ``patch_size`` (there are ``patch_size`` distinct offsets
        within a patch), and 1 when the series is read in one step (a shift
        would drop part of the only step, not move a patch grid).
    """
    if patch_size >= n_steps:
        return 1
    if patch_shifts == "auto":
        patch_shifts = 1
        if lengths is not None:
            lengths = np.asarray(lengths)
            values = int(lengths.sum()) * n_features
            steps = patch_steps(lengths, patch_size)
            if small_training_set(lengths, n_features):
                patch_shifts = AUTO_PATCH_SHIFTS
            elif steps <= LARGE_SHIFTS_MAX_STEPS and values <= LARGE_SHIFTS_MAX_VALUES:
                patch_shifts = LARGE_PATCH_SHIFTS
    return min(int(patch_shifts), patch_size)


def shift_offsets(patch_size, patch_shifts):
    """The steps each of the ``K = patch_shifts`` readings drops at the start:
    ``round(k * patch_size / K)`` for ``k = 0 .. K - 1``, spread evenly over
    one patch (distinct while ``K <= patch_size``).

    Examples
    --------
    >>> from sklearn_gatedmem._input import shift_offsets
    >>> shift_offsets(9, 5)
    [0, 2, 4, 5, 7]
    """
    K = int(patch_shifts)
    return [(2 * k * patch_size + K) // (2 * K) for k in range(K)]


def shift_sequences(X, lengths, offset):
    """Sequences with their first ``offset`` steps dropped, NaN-padded at the
    end to the same number of steps: the reading of the patch grid started
    ``offset`` steps later (:func:`shift_offsets`). A sequence keeps at least
    its last real step.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_steps, n_features), float
    lengths : ndarray of shape (n_samples,), int
        Real steps of each sequence (the rest is padding).
    offset : int

    Returns
    -------
    shifted : ndarray of shape (n_samples, n_steps, n_features)
    lengths : ndarray of shape (n_samples,)
        Real steps of each shifted sequence, ``max(1, length - offset)``.
    """
    lengths = np.asarray(lengths)
    if offset == 0:
        return X, lengths
    drop = np.minimum(offset, lengths - 1)
    t = np.arange(X.shape[1])
    source = np.minimum(t + drop[:, None], X.shape[1] - 1)
    shifted = np.take_along_axis(X, source[:, :, None], axis=1)
    new_lengths = lengths - drop
    shifted[t >= new_lengths[:, None]] = np.nan
    return shifted, new_lengths


def make_patches(X, patch_size, differences=False, instance_norm=None):
    """Read sequences in patches: ``patch_size`` consecutive steps become one.

    This is what the estimators' network reads (with their ``patch_size_``,
    ``differences_`` and ``instance_norm_``), made in this order: with
    ``instance_norm``, each sequence's features are z-normalised over its own
    real steps (see below), appended to the raw ones ("append") or in their
    place ("replace"); with ``differences``, each feature's first difference
    ``x_t - x_{t-1}`` (0 at the first step) is appended to every step; then
    the steps are patched. A patch of ``p`` steps of ``d``
    features is one step of ``p * d`` values, step-major (``patch[k * d + j]`` is step ``k`` of the patch, feature
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
        Append the first differences (twice the features per step).
    instance_norm : {"append", "replace"} or None, default=None
        Per sequence and feature, ``(x_t - mean) / std`` over the sequence's
        real steps (population std; a feature whose std is at most
        ``sqrt(eps) * max|x|`` over the sequence, float64's eps, is constant
        and reads 0).
        "append" doubles the features per step, "replace" keeps their number.

    Returns
    -------
    patches : ndarray of shape (n_samples, ceil(n_steps / patch_size), \
            patch_size * n_features * (1 + differences) * (2 if "append" else 1))

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
    if instance_norm is not None:
        X = _with_instance_norm(X, instance_norm)
    return patch_channels(X, int(patch_size), differences)


def patch_channels(X, p, differences=False):
    """The linear part of :func:`make_patches`, after ``instance_norm``: the
    differences appended, then the steps patched.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_steps, n_channels), float
        NaN steps at the end are padding.
    p : int
        Steps per patch.
    differences : bool

    Returns
    -------
    patches : ndarray of shape (n_samples, ceil(n_steps / p), \
            p * n_channels * (1 + differences))
    """
    if differences:
        X = _with_differences(X)
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


def patch_channels_adjoint(G, n_steps, p, differences, lengths):
    """The transpose of the linear map :func:`patch_channels`: a gradient
    with respect to the patches carried back to the channels they read.

    A value read several times (the last real step, repeated to the end of
    its partial patch; a step read as itself and in two differences) gets
    the sum of its readings' gradients: the chain rule.

    Parameters
    ----------
    G : ndarray of shape (n_samples, n_patches, p * n_channels * (1 + differences))
        Gradient with respect to the patches; 0 on patches of padding.
    n_steps : int
        Steps of the channels (``n_patches = ceil(n_steps / p)``).
    p : int
    differences : bool
    lengths : ndarray of shape (n_samples,)
        Real steps of each sequence.

    Returns
    -------
    grad : ndarray of shape (n_samples, n_steps, n_channels)
        0 on padding.
    """
    n_samples, n_patches = G.shape[:2]
    G = G.reshape(n_samples, n_patches * p, -1)
    lengths = np.asarray(lengths)
    if p == 1 or (np.all(lengths == n_steps) and n_steps % p == 0):
        steps = G[:, :n_steps].copy()
    else:  # step t of the patches read step min(t, L - 1), up to its last patch
        t = np.arange(n_patches * p)
        source = np.minimum(t, lengths[:, None] - 1)
        read = t < -(-lengths[:, None] // p) * p
        steps = np.zeros((n_samples, n_steps, G.shape[2]))
        rows = np.broadcast_to(np.arange(n_samples)[:, None], source.shape)
        np.add.at(steps, (rows[read], source[read]), G[read])
    if not differences:
        return steps
    n_channels = steps.shape[2] // 2
    grad, dD = steps[:, :, :n_channels].copy(), steps[:, 1:, n_channels:]
    grad[:, 1:] += dD  # D_t = x_t - x_{t-1} for t >= 1; D_0 = 0 reads nothing
    grad[:, :-1] -= dD
    return grad


INSTANCE_NORMS = ("append", "replace")


def _with_instance_norm(X, mode, chunk_rows=4096):
    """Each sequence's features z-normalised over its real steps, appended
    to ``X`` ("append") or instead of it ("replace"); padding stays NaN.

    Why: the global standardisation keeps each series' level and amplitude,
    which some tasks need; the per-series z-scores give the shape alone, at
    every level, as 1-NN baselines and UCR practice read series. With both,
    the network has either (docs, How the defaults were chosen). A constant
    feature (spread within rounding of its size) reads 0, not noise. The
    float64 temporaries are made ``chunk_rows`` sequences at a time, so they
    stay within a chunk whatever the size of ``X``.
    """
    if mode not in INSTANCE_NORMS:
        raise ValueError(
            f"instance_norm must be one of {INSTANCE_NORMS} or None, got {mode!r}."
        )
    Z = np.empty_like(X)
    for start in range(0, X.shape[0], chunk_rows):
        rows = slice(start, start + chunk_rows)
        Z[rows] = _z_scores(X[rows])
    return Z if mode == "replace" else np.concatenate([X, Z], axis=2)


def _z_scores(X):
    """:func:`_with_instance_norm`'s z-scores of the sequences ``X``."""
    real = ~np.isnan(X)
    count = np.maximum(real.sum(axis=1, keepdims=True), 1)  # real steps, per feature
    X64 = np.where(real, X, 0.0).astype(np.float64, copy=False)
    # z-scores do not change with the scale: dividing by each feature's
    # largest magnitude first keeps the squares finite, from 1e-300 to 1e300
    size = np.abs(X64).max(axis=1, keepdims=True)
    X64 = X64 / np.where(size > 0, size, 1.0)
    mean = X64.sum(axis=1, keepdims=True) / count
    dev = np.where(real, X64 - mean, 0.0)
    std = np.sqrt((dev * dev).sum(axis=1, keepdims=True) / count)
    # float64's threshold whatever X's dtype (the moments are float64): the
    # same series reads the same in float32 and float64, and in to_torch
    constant = std <= np.sqrt(np.finfo(np.float64).eps)
    Z = dev / np.where(constant, 1.0, std)
    return np.where(real, Z, np.nan)


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


def pad_sequences(
    sequences,
    maxlen=None,
    padding="post",
    truncating="post",
    value=np.nan,
    dtype=np.float64,
    data_format="channels_last",
):
    """Stack sequences of different lengths into one padded 3-D array.

    The options are those of Keras's ``pad_sequences``, with the defaults the
    estimators need: NaN at the end of each sequence.

    Parameters
    ----------
    sequences : list of array-like of shape (n_steps_i, n_features) or (n_steps_i,)
        One array per sample; 1-D arrays are univariate sequences. With
        ``data_format="channels_first"``, 2-D arrays are
        ``(n_features, n_steps_i)``, as aeon and sktime hold unequal-length
        data. Empty sequences become all padding.
    maxlen : int, default=None
        Length of the output; the longest sequence when None. Longer
        sequences are cut as ``truncating`` says.
    padding : {"post", "pre"}, default="post"
        Pad after each sequence or before it. The estimators
        (``variable_length=True``) read only NaN at the end: "post".
    truncating : {"post", "pre"}, default="post"
        Cut sequences longer than ``maxlen`` at the end or at the start.
    value : float, default=np.nan
        The padding value. The estimators read NaN as padding; any other
        value is read as data.
    dtype : dtype, default=np.float64
        Of the output; NaN padding needs a floating dtype.
    data_format : {"channels_last", "channels_first"}, default="channels_last"
        How each 2-D sequence is laid out, and so the output.

    Returns
    -------
    X : ndarray of shape (n_samples, maxlen, n_features) or \
            (n_samples, n_features, maxlen)
        The second for ``data_format="channels_first"``.

    Examples
    --------
    >>> from sklearn_gatedmem import pad_sequences
    >>> pad_sequences([[1, 2, 3], [4]])[:, :, 0]
    array([[ 1.,  2.,  3.],
           [ 4., nan, nan]])
    >>> pad_sequences([[1, 2, 3], [4]], maxlen=2, padding="pre",
    ...               truncating="pre", value=0)[:, :, 0]
    array([[2., 3.],
           [0., 4.]])
    """
    for name, option in (("padding", padding), ("truncating", truncating)):
        if option not in ("post", "pre"):
            raise ValueError(f'{name} must be "post" or "pre", got {option!r}.')
    check_data_format(data_format)
    if maxlen is not None and (
        not isinstance(maxlen, numbers.Integral) or isinstance(maxlen, bool) or maxlen < 0
    ):
        raise ValueError(f"maxlen must be None or a non-negative int, got {maxlen!r}.")
    dtype = np.dtype(dtype)
    if np.isnan(value) and dtype.kind != "f":
        raise ValueError(f"value=nan needs a floating dtype, got dtype={dtype}.")
    arrays = [_one_sequence(seq, i, data_format, dtype) for i, seq in enumerate(sequences)]
    X = _pad(arrays, maxlen, padding, truncating, value, dtype)
    return X.transpose(0, 2, 1) if data_format == "channels_first" else X


def _one_sequence(seq, i, data_format, dtype=None):
    """Sequence ``i`` as an array of shape (n_steps_i, n_features)."""
    try:
        a = np.asarray(seq, dtype=dtype)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"sequence {i} is not a numeric array ({exc}).") from exc
    if a.ndim == 1:
        return a[:, None]
    if a.ndim == 2:
        return a.T if data_format == "channels_first" else a
    layout = "(n_features, n_steps_i)" if data_format == "channels_first" else (
        "(n_steps_i, n_features)"
    )
    raise ValueError(
        f"sequence {i} has shape {a.shape}; expected 2-D or 3-D X, so each "
        f"sequence must be 1-D (n_steps_i,) or 2-D {layout}."
    )


def _few(values, n=5):
    """The first ``n`` of ``values`` as text, with an ellipsis after."""
    return ", ".join(map(str, values[:n])) + (", ..." if len(values) > n else "")


def _pad(arrays, maxlen=None, padding="post", truncating="post", value=np.nan,
         dtype=np.float64):
    """Channels-last arrays ``(n_steps_i, n_features)`` into one padded
    ``(n_samples, maxlen, n_features)`` array (Keras's semantics)."""
    if not arrays:
        raise ValueError("pad_sequences needs at least one sequence.")
    widths = {a.shape[1] for a in arrays if a.shape[0]}
    if len(widths) > 1:
        firsts = {a.shape[0] for a in arrays}
        hint = ""
        if len(firsts) == 1:  # (C, T_i): same first axis, different second
            hint = (
                f" They all have {firsts.pop()} rows: if each is (n_channels, "
                "n_timepoints), as aeon and sktime hold unequal-length data, "
                'pass data_format="channels_first".'
            )
        raise ValueError(
            f"sequences have different numbers of features: {_few(sorted(widths))}; "
            f"each must be (n_steps_i, n_features) with the same n_features.{hint}"
        )
    longest = max(a.shape[0] for a in arrays)
    maxlen = longest if maxlen is None else int(maxlen)
    X = np.full((len(arrays), maxlen, widths.pop() if widths else 1), value, dtype=dtype)
    for i, a in enumerate(arrays):
        kept = a[:maxlen] if truncating == "post" else a[max(0, len(a) - maxlen):]
        if len(kept) and padding == "post":
            X[i, : len(kept)] = kept
        elif len(kept):
            X[i, maxlen - len(kept) :] = kept
    return X


def weighted_mean_scale(X, sample_weight, chunk_rows=4096, name="X"):
    """Per-feature weighted mean and standard deviation over samples and steps.

    Padding (NaN) is left out. Before any sum or square, each feature is
    divided by a power of two near its largest magnitude, and the weights by
    one near theirs: exact scalings, so the result is that of the plain
    formulas bit for bit, yet nothing overflows or underflows anywhere in the
    dtype's range (``1e300`` has no finite square). Passes over row chunks, so
    the temporary memory is bounded by the chunk. It is
    ``mean_scale(weighted_moments(X, sample_weight))``; blocks of samples
    combine their moments with :func:`combine_moments` (a fit on a Dask
    cluster does).

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
    return mean_scale(weighted_moments(X, sample_weight, chunk_rows, name), name)


def weighted_moments(X, sample_weight, chunk_rows=4096, name="X"):
    """The weighted moments of ``X`` that :func:`mean_scale` finishes.

    Parameters as :func:`weighted_mean_scale`; the same ValueError.

    Returns
    -------
    moments : dict or None
        None when ``X`` has no rows. Else per feature, in units of ``unit``
        (a power of two near the largest magnitude) and of weights divided by
        ``w_unit`` (one near the largest weight): ``weight`` (the sum of the
        weights of the real values), ``mean`` and ``m2`` (the weighted sum of
        squared deviations from ``mean``); and ``largest`` and ``dtype``.
    """
    if X.shape[0] == 0:
        return None
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
        return total, weight

    weight_unit = _power_of_two_below(np.max(sample_weight))
    w_unit = sample_weight / weight_unit
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
        total, weight = weighted_sums(lambda x: x)
        mean_u = total / weight
        m2, _ = weighted_sums(lambda x: (x - mean_u) ** 2)
    return {
        "dtype": finfo.dtype, "largest": largest, "unit": unit, "w_unit": weight_unit,
        "weight": weight, "mean": mean_u, "m2": m2,
    }


def combine_moments(a, b):
    """The :func:`weighted_moments` of two blocks of samples together.

    The blocks' units are made equal first (multiplications by powers of
    two: exact), then means and squared deviations are merged as Chan, Golub
    and LeVeque's pairwise update does; equal to the moments of the rows
    together to rounding. None (a block of no rows) is left out.
    """
    if a is None or b is None:
        return a if b is None else b
    unit, w_unit = np.maximum(a["unit"], b["unit"]), max(a["w_unit"], b["w_unit"])
    parts = []
    for m in (a, b):
        f, g = m["unit"] / unit, m["w_unit"] / w_unit
        parts.append((m["weight"] * g, m["mean"] * f, m["m2"] * (f * f * g)))
    (wa, ma, qa), (wb, mb, qb) = parts
    weight = wa + wb
    delta = mb - ma
    with np.errstate(under="ignore"):
        mean = ma + delta * (wb / weight)
        m2 = qa + qb + delta * delta * (wa * wb / weight)
    dtype = np.promote_types(a["dtype"], b["dtype"])
    return {
        "dtype": dtype, "largest": np.fmax(a["largest"], b["largest"]), "unit": unit,
        "w_unit": w_unit, "weight": weight, "mean": mean, "m2": m2,
    }


def mean_scale(moments, name="X"):
    """``mean, scale`` of :func:`weighted_mean_scale` from its moments."""
    finfo = np.finfo(moments["dtype"])
    unit = moments["unit"]
    with np.errstate(under="ignore"):
        var_u = moments["m2"] / moments["weight"]
        mean, scale = moments["mean"] * unit, np.sqrt(var_u) * unit
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
