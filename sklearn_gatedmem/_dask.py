"""One fit on a Dask cluster, and predictions on dask arrays, block by block.

A fit on a ``dask.array`` X (chunked along samples only) never brings X to the
client. The estimators' own fit path does what a local fit does, with two
things coming from here instead (see ``BaseLSTM._fit``):

* the prepared data and what describes it (:func:`prepared`): every block is
  validated on its worker by the local fit's own functions (same errors),
  its targets encoded there with the label set of all blocks, its rows put in
  canonical order (within the block), made what the network reads
  (``_network_input``: instance_norm, differences, patches), sorted longest
  first with ``variable_length`` (as a local fit sorts all rows, so that
  the objective's chunks of similar lengths are slices), and kept in the
  workers' memory as futures; the standardisation of the inputs and the
  regressor's targets comes from one tree reduction of the blocks' weighted
  moments (:func:`~._input.weighted_moments`,
  :func:`~._input.combine_moments`; the targets' through the estimator's
  ``_target_moments`` and ``_scale_targets``);
* the ``fun(theta) -> (loss, grad)`` handed to L-BFGS
  (:meth:`Blocks.objective`): the fitted ``Network`` is scattered once,
  theta is broadcast to the workers every evaluation, each block's
  unnormalised loss and gradient sums are computed where the block lives
  (:func:`~._objective.weighted_sums`, one task per worker for all its
  blocks), and the sums are added in block order, so a fit is deterministic
  for a given chunking, wherever the blocks are. Only theta and one loss and
  gradient per block (weights-sized) travel per evaluation.

What differs from a local fit. A local fit merges duplicate rows and sorts
all rows by content (:func:`~._input.canonical_rows`), so it is the same bit
for bit whatever the row order. Here each block does that within itself, and
blocks are summed in their order: the fit does not depend on the order of
the rows within a block, bit for bit, and on the order of the rows overall or
on the chunking only to rounding (the objective's chunks, of similar lengths
with ``variable_length``, are planned within each block) (an integer weight is the same as repeating
a row within a block, and to rounding across blocks). With one block the fit
is the local fit, bit for bit.

A fit needs a ``dask.distributed`` Client (``Client()`` on one machine):
blocks are kept on the workers between evaluations, which the local
schedulers cannot do without bringing them into this process. Predictions
(:func:`map_rows`, :func:`score`) run under any scheduler.

Dask and distributed are imported only when a dask collection is passed.
"""

import dataclasses
import numbers
import operator
import sys
import threading
import uuid
import warnings
from contextlib import contextmanager

import numpy as np
from sklearn.base import clone, is_classifier
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.validation import (
    _check_sample_weight,
    check_consistent_length,
    check_is_fitted,
)

from . import _objective
from ._input import (
    canonical_rows,
    check_label_types,
    check_training_weights,
    clip_to_fitted_range,
    combine_moments,
    mean_scale,
    resolve_layout,
    resolve_static,
    warn_layout,
    weighted_moments,
)

# Partial results are added in groups of this many per task: few enough
# levels that a reduction over hundreds of blocks takes three hops, and each
# task adds a few weights-sized vectors.
FAN_IN = 8

INSTALL_HINT = (
    'pip install "sklearn_gatedmem[dask]" (dask[array] and distributed)'
)


def is_dask_collection(X):
    """Whether ``X`` is a dask collection; never imports dask itself."""
    dask = sys.modules.get("dask")
    return dask is not None and dask.is_dask_collection(X)


# -- checks on the client: metadata only ------------------------------------

def _check_dask_array(X, name="X"):
    """``X`` as a 2-D or 3-D dask array of known chunks along samples only."""
    import dask.array as da

    if not isinstance(X, da.Array):
        raise TypeError(
            f"{name} is a dask {type(X).__name__}, but the estimators take dask "
            "arrays: convert it first, e.g. ddf.to_dask_array(lengths=True) for "
            "a dask DataFrame."
        )
    if X.ndim not in (2, 3):
        raise ValueError(
            f"{name} is a {X.ndim}-D dask array (shape {X.shape}); expected 2-D "
            "(n_samples, n_columns) or 3-D (n_samples, n_steps, n_features)."
        )
    if any(np.isnan(c) for chunks in X.chunks for c in chunks):
        raise ValueError(
            f"{name} has chunks of unknown size (shape {X.shape}); call "
            f"{name}.compute_chunk_sizes() first, or build it with known "
            "lengths (to_dask_array(lengths=True))."
        )
    split = [axis for axis in range(1, X.ndim) if len(X.chunks[axis]) > 1]
    if split:
        raise ValueError(
            f"{name} is chunked along axis {split[0]} (chunks {X.chunks[split[0]]}); "
            "a block must hold whole sequences: chunk it along samples only, "
            f"{name}.rechunk({{{', '.join(f'{a}: -1' for a in range(1, X.ndim))}}})."
        )
    return X


def _client():
    """The current ``dask.distributed`` Client; a clear error without one."""
    try:
        from distributed import get_client
    except ImportError as exc:
        raise ImportError(f"A fit on a dask array needs distributed: {INSTALL_HINT}.") from exc
    try:
        return get_client()
    except ValueError:
        raise ValueError(
            "A fit on a dask array needs a dask.distributed Client: its blocks "
            "are kept on the workers between L-BFGS evaluations. Connect one "
            '(Client("tcp://scheduler:8786"), or Client() on this machine), or '
            "fit on X.compute() locally."
        ) from None


def _row_parts(client, a, row_chunks, name):
    """``a`` (None, a number, or an array of one row per sample) split into
    futures along ``row_chunks``; numbers and None are passed as they are."""
    if a is None or isinstance(a, numbers.Number):
        return [a] * len(row_chunks)
    if is_dask_collection(a):
        import dask.array as da

        if not isinstance(a, da.Array) or np.isnan(a.shape[0]):
            raise ValueError(
                f"{name} must be a dask array of known length (or a NumPy array), "
                f"got a {type(a).__name__} of shape {getattr(a, 'shape', None)}."
            )
        a = a.rechunk({0: row_chunks, **{axis: -1 for axis in range(1, a.ndim)}})
        return client.compute(list(a.to_delayed().ravel()))
    a = np.asarray(a)
    bounds = np.cumsum((0,) + tuple(row_chunks))
    return client.scatter([a[start:stop] for start, stop in zip(bounds[:-1], bounds[1:])])


def _tree(client, func, parts):
    """``func(*parts)`` as a tree of tasks of at most :data:`FAN_IN`
    consecutive parts each; its shape depends only on ``len(parts)``."""
    while len(parts) > 1:
        parts = [
            client.submit(func, *parts[start : start + FAN_IN], pure=False)
            for start in range(0, len(parts), FAN_IN)
        ]
    return parts[0]


# -- the fit ----------------------------------------------------------------

@contextmanager
def prepared(est, X, y, sample_weight):
    """Prepare a fit of ``est`` on a dask ``X`` on the current cluster.

    Yields what ``BaseLSTM._fit_network`` takes: ``(blocks, None, None, None,
    network, fitted)``, a :class:`Blocks`, the fitted ``Network`` (with the
    standardisation) and the other attributes that describe the data.
    The blocks are released when the context ends. Sets ``n_features_in_``,
    as ``validate_data`` does.

    Parameters
    ----------
    est : BaseLSTM
    X : dask.array.Array of shape (n_samples, n_columns) or \
            (n_samples, n_steps, n_features)
        Chunked along samples only.
    y : dask.array.Array or array-like of shape (n_samples,) or (n_samples, n_outputs)
    sample_weight : dask.array.Array, array-like of shape (n_samples,), number or None
    """
    blocks = None
    try:
        blocks, network, fitted = _prepare(est, X, y, sample_weight)
        yield blocks, None, None, None, network, fitted
    finally:
        if blocks is not None:
            blocks.close()


def _prepare(est, X, y, sample_weight):
    name = type(est).__name__
    if est.patch_shifts != "auto" and est.patch_shifts > 1:
        raise ValueError(
            f"patch_shifts={est.patch_shifts} is not supported for a dask X: its "
            "blocks are read once, where they live. Use patch_shifts=1 (what "
            '"auto" means for a dask X), or fit on X.compute() to read each '
            "case several ways."
        )
    if est.early_stopping:
        raise ValueError(
            "early_stopping=True is not supported for a dask X: the held-out "
            "rows would have to be split off across the blocks. Fit with "
            "early_stopping=False (and choose max_iter by a local fit on a "
            "sample), or fit on X.compute() locally."
        )
    X = _check_dask_array(X)
    if y is None:
        raise ValueError(
            f"This {name} estimator requires y to be passed, but the target y is None."
        )
    check_consistent_length(X, y)
    client = _client()
    import distributed

    # the layout, from the shape alone (the errors of a local fit, before any work)
    steps_features = None
    if X.ndim == 3:
        steps_features = X.shape[1:]
        if est.data_format == "channels_first":
            steps_features = steps_features[::-1]
    warn_layout(steps_features, est.data_format)
    n_columns = int(np.prod(X.shape[1:]))
    # the static columns (2-D) or channels (3-D), each block's to take out
    on = "columns" if steps_features is None else "channels"
    static_index = resolve_static(
        est.static_features, n_columns if on == "columns" else steps_features[1], None, on
    )
    n_static = 0 if static_index is None else len(static_index)
    if on == "channels":
        steps_features = (steps_features[0], steps_features[1] - n_static)
    n_steps, n_features = resolve_layout(
        n_columns - n_static if on == "columns" else int(np.prod(steps_features)),
        est.n_steps, steps_features,
    )
    vars(est).pop("feature_names_in_", None)  # as validate_data on an array
    est.n_features_in_ = n_columns

    # blocks of no rows are left out (validation refuses them), unless all
    # are: then validation says that X has no samples
    rows = [k for k, size in enumerate(X.chunks[0]) if size] or [0]
    y_parts = _row_parts(client, y, X.chunks[0], "y")
    if is_dask_collection(sample_weight):  # checked as _check_sample_weight does
        if getattr(sample_weight, "ndim", None) != 1:
            raise ValueError("Sample weights must be 1D array or scalar")
        if sample_weight.shape[0] != X.shape[0]:
            raise ValueError(
                f"sample_weight.shape == {sample_weight.shape}, expected {(X.shape[0],)}!"
            )
    elif sample_weight is not None and not isinstance(sample_weight, numbers.Number):
        sample_weight = _check_sample_weight(sample_weight, X)  # small: on the client
    sw_parts = _row_parts(client, sample_weight, X.chunks[0], "sample_weight")
    x_parts = client.compute([X.to_delayed().ravel()[k] for k in rows])
    y_parts, sw_parts = [y_parts[k] for k in rows], [sw_parts[k] for k in rows]
    template = client.scatter(clone(est), broadcast=True, hash=False)

    checked = client.map(_check_block, x_parts, y_parts, sw_parts, est=template, pure=False)
    del x_parts, y_parts, sw_parts  # the checked blocks replace them
    encoder = _target_encoder(client, est, checked, y)
    canonical = client.map(_canonical_block, checked, est=template, encoder=encoder,
                           pure=False)
    del checked
    gap_fill = None
    if est.missing == "carry":  # a leading gap's value: a pass over all blocks first
        gap_fill = est._gap_fill_of(_tree(
            client, _combine_moments, client.map(_raw_moments, canonical, pure=False),
        ).result())
    # what the network reads of the raw sequences (patches, differences,
    # instance_norm), before the standardisation is known
    bare = est._network_of(n_steps, n_features, encoder["n_outputs"],
                           encoder["out_activation"], gap_fill=gap_fill, n_static=n_static)

    encoded = client.map(_encode_block, canonical, est=template, network=bare,
                         pure=False)
    del canonical
    data = client.map(operator.itemgetter(0), encoded, pure=False)
    summary = _tree(
        client, _combine_summaries, client.map(operator.itemgetter(1), encoded, pure=False)
    ).result()
    del encoded
    x_mean, x_scale, sw_sum = _statistics(summary)
    s_mean = s_scale = None
    if n_static:  # standardised as the sequences are
        s_mean, s_scale = mean_scale(summary["s"], "the static features")
    # the targets' scaling from all blocks' moments (the estimator's errors,
    # here before any block is touched); the attributes of no rows of Y
    _, scale_attrs = est._scale_targets(
        np.zeros((0, encoder["n_outputs"])), np.zeros(0), moments=summary["y"]
    )

    data = client.map(_finish_block, data, x_mean=x_mean, x_scale=x_scale,
                      est=template, y_moments=summary["y"], s_mean=s_mean,
                      s_scale=s_scale, pure=False)
    distributed.wait(data)  # the blocks are ready before the first evaluation
    for future in data:
        if future.status == "error":  # a block's error, as a local fit raises it
            future.result()
    dtype = np.float32 if X.dtype == np.float32 else np.float64
    # clip_to_fitted_range computes in float64 what float32 cannot standardise
    dtype = clip_to_fitted_range(np.zeros((1, 1, x_mean.size), dtype), x_mean, x_scale).dtype
    shape = (summary["n_rows"], bare.input_shape(n_steps, n_features)[0], x_mean.size)
    network = dataclasses.replace(bare, x_mean=x_mean, x_scale=x_scale,
                                  s_mean=s_mean, s_scale=s_scale)
    fitted = dict(n_steps_=n_steps, n_step_features_=n_features,
                  static_features_=static_index, _static_on=on,
                  static_mean_=s_mean, static_scale_=s_scale,
                  static_into_=est._static_into(0 if static_index is None else len(static_index)),
                  **encoder["attrs"], **scale_attrs)
    return Blocks(client, data, shape, dtype, sw_sum), network, fitted


def _target_encoder(client, est, checked, y):
    """How every block encodes its targets, decided from all of them.

    A classifier's classes come from the union of the blocks' label sets,
    and the estimator's own ``_encode_targets`` runs on that set here (so the
    errors and attributes are those of a local fit); ``class_weight`` becomes
    one weight per class, "balanced" from the classes' counts over all blocks.
    """
    if not is_classifier(est):
        shape = (0,) + tuple(np.shape(y)[1:])
        Y, out_activation, attrs = est._encode_targets(np.zeros(shape))
        return dict(binarizer=None, class_weight=None, attrs=attrs,
                    out_activation=out_activation, n_outputs=Y.shape[1])
    sets = client.gather(client.map(_label_set, checked, pure=False))
    column = sets[0][2]
    values = np.concatenate([s[0] for s in sets])
    if values.ndim == 1:
        check_label_types(values)  # before np.unique, which cannot sort a mix
        labels, inverse = np.unique(values, return_inverse=True)
        counts = np.bincount(inverse.ravel(), weights=np.concatenate([s[1] for s in sets]))
    else:
        labels, counts = np.unique(values, axis=0), None
    Y, out_activation, attrs = est._encode_targets(labels[:, None] if column else labels)
    class_weight = None
    if est.class_weight is not None:
        est._class_sample_weight(labels)  # its errors (multilabel targets)
        classes = attrs["classes_"]
        if isinstance(est.class_weight, str):  # "balanced", as compute_class_weight
            class_weight = counts.sum() / (len(classes) * counts)
        else:
            class_weight = compute_class_weight(est.class_weight, classes=classes, y=classes)
    return dict(binarizer=attrs["_label_binarizer"], class_weight=class_weight,
                attrs=attrs, out_activation=out_activation, n_outputs=Y.shape[1])


def _statistics(summary):
    """``x_mean, x_scale, sum of weights`` from the reduced block summaries,
    with the errors of a local fit."""
    if not summary["any_weight"]:  # scikit-learn's error for all-zero weights
        _check_sample_weight(np.zeros(1), np.zeros((1, 1)))
    total = summary["sw_sum"]
    if not total > 0:
        check_training_weights(np.zeros(1))  # the local fit's error for a zero sum
    if not np.isfinite(total):
        raise ValueError(
            f"The sample weights sum to infinity (largest {summary['sw_max']:.3g});"
            " scale them down."
        )
    x_mean, x_scale = mean_scale(summary["x"], "X")
    return x_mean, x_scale, total


class Blocks:
    """A fit's prepared blocks, kept on the workers.

    ``shape`` and ``dtype`` are those of the whole prepared ``X`` (rows,
    patch steps, inputs), which is never assembled.
    """

    def __init__(self, client, parts, shape, dtype, sw_sum):
        self.client, self.parts = client, parts
        self.shape, self.dtype, self.sw_sum = shape, np.dtype(dtype), sw_sum
        self.token = uuid.uuid4().hex  # names this fit's work buffers on the workers

    def objective(self, alpha, network, chunk_size):
        """``fun(theta) -> (loss, grad)``, the full-data objective of
        :func:`~._objective.loss_grad`, each block evaluated on its worker.

        One task per worker evaluates the blocks that worker holds (asked
        afresh every evaluation, so a block recomputed elsewhere is
        followed), bound to it so that no block moves; it returns each
        block's sums, and one task adds them in block order, so the result
        does not depend on where the blocks are. Tasks, not blocks, cost the
        scheduler's time: an evaluation is ``n_workers + 1`` of them.
        """
        client = self.client
        network_future = client.scatter(network, broadcast=True, hash=False)

        def fun(theta):
            theta_future = client.scatter(theta, broadcast=True, hash=False)
            by_worker = {}
            for index, (part, where) in enumerate(zip(self.parts, self._holders())):
                by_worker.setdefault(where, []).append(index)
            per_worker = [
                client.submit(
                    _worker_sums, [self.parts[k] for k in indices], indices, theta_future,
                    network_future, chunk_size, self.token, workers=None if where is None
                    else [where], allow_other_workers=where is None, pure=False,
                )
                for where, indices in sorted(by_worker.items(), key=lambda kv: kv[1])
            ]
            loss, grad = client.submit(_add_in_block_order, *per_worker, pure=False).result()
            return _objective.penalised_mean(
                theta, loss, np.array(grad), self.sw_sum, alpha, network
            )

        return fun

    def _holders(self):
        """One worker holding each block, or None for a block held by none."""
        who_has = self.client.who_has(self.parts)
        return [min(who_has.get(part.key, ()), default=None) for part in self.parts]

    def close(self):
        """Release the blocks and the workers' buffers of this fit."""
        self.parts = []
        try:
            self.client.run(_release_workspaces, self.token)
        except Exception:  # the cluster is gone: nothing left to release
            pass


# -- what runs on the workers -----------------------------------------------

def _check_block(X, y, sample_weight, est):
    """A block validated as a local fit validates all of X: ``(X, y, sw,
    static)``, the static values (None without) taken out of X there."""
    with warnings.catch_warnings():
        # layout warnings are the client's, once, not every block's
        warnings.simplefilter("ignore", UserWarning)
        X, y, static, _ = est._validate_X(X, y, reset=True)
    # all zero is an error for all blocks together only (see _statistics)
    sample_weight = _check_sample_weight(
        sample_weight, X.reshape(X.shape[0], -1), allow_all_zero_weights=True
    )
    if is_classifier(est):
        check_label_types(y)
    return X, y, sample_weight, static


def _block_weights(y, sample_weight, encoder):
    """A block's sample weights times its rows' class weights, as a local
    fit multiplies them before anything else reads the weights."""
    if encoder["binarizer"] is None or encoder["class_weight"] is None:
        return sample_weight
    labels = y.ravel() if y.ndim == 2 and y.shape[1] == 1 else y
    classes = encoder["attrs"]["classes_"]
    return sample_weight * encoder["class_weight"][np.searchsorted(classes, labels)]


def _raw_moments(canonical):
    """The weighted moments of a block's raw sequences (canonical rows, as a
    local fit reads them), gaps left out: what ``missing="carry"`` fills a
    leading gap with, once all blocks' are combined."""
    X, _, sample_weight, _, _ = canonical
    return weighted_moments(X, sample_weight)


def _combine_moments(*moments):
    """Moments of blocks added in their order."""
    total = moments[0]
    for m in moments[1:]:
        total = combine_moments(total, m)
    return total


def _label_set(block):
    """A block's distinct labels (rows, for 2-D targets), with their counts
    for 1-D labels, and whether y was one column."""
    y = block[1]
    column = y.ndim == 2 and y.shape[1] == 1
    if y.ndim == 1 or column:
        labels, counts = np.unique(y.ravel(), return_counts=True)
        return labels, counts, column
    return np.unique(y, axis=0), None, False


def _canonical_block(block, est, encoder):
    """A block's rows as a local fit has them before it reads anything of
    them: targets encoded, weights times class weights, static values
    beside, the rows in canonical order (:func:`canonical_rows`).

    Returns
    -------
    canonical : tuple of (X, Y, sample_weight, static, any_weight)
        ``X`` of shape (n_rows, n_steps, n_features), ``static`` None
        without static features; ``any_weight`` whether any weight was not
        0 before the class weights.
    """
    X, y, sample_weight, static = block
    any_weight = bool(sample_weight.any())  # before class_weight, as in a local fit
    binarizer = encoder["binarizer"]
    if binarizer is None:
        Y = est._encode_targets(y)[0]
    else:
        labels = y.ravel() if y.ndim == 2 and y.shape[1] == 1 else y
        Y = binarizer.transform(labels).astype(np.float64)
        sample_weight = _block_weights(y, sample_weight, encoder)
    if not np.isfinite(Y).all():
        raise ValueError("Input y contains NaN or infinity (as float64).")
    if not (np.all(np.isfinite(sample_weight)) and np.all(sample_weight >= 0)
            and not sample_weight.any()):  # a block of zero weights is no error
        check_training_weights(sample_weight)
    n_samples, n_steps, n_features = X.shape
    n_static = 0 if static is None else static.shape[1]
    X2 = X.reshape(n_samples, -1)
    if n_static:  # a case's static values are part of its row, as in a local fit
        X2 = np.hstack([X2, static])
    if sample_weight.any():
        X2, Y, sample_weight = canonical_rows(X2, Y, sample_weight)
    else:  # every row dropped, as canonical_rows drops rows of zero weight
        X2, Y, sample_weight = X2[:0], Y[:0], sample_weight[:0]
    if n_static:
        X2, static = X2[:, : X2.shape[1] - n_static], X2[:, X2.shape[1] - n_static :]
    return X2.reshape(-1, n_steps, n_features), Y, sample_weight, static, any_weight


def _encode_block(canonical, est, network):
    """A block made what the objective reads, and its summary.

    The steps of a local fit, in its order, after the canonical rows
    (:func:`_canonical_block`): what ``network`` reads of them
    (``est._network_input``), the inputs' and the static values' moments,
    then with ``variable_length`` the rows sorted longest first, and the
    targets' moments (``est._target_moments``) of the rows in that order.

    Returns
    -------
    data : tuple of (X, lengths, Y, sample_weight, static)
        In canonical row order within the block (:func:`canonical_rows`),
        then longest first with ``variable_length``; X not yet clipped, Y
        not yet scaled; static None without static features.
    summary : dict
        Weighted moments of X and of the static values (None without) and
        what ``_scale_targets`` needs of Y (None for a classifier), the
        weights' sum and largest value, and the rows kept.
    """
    X, Y, sample_weight, static, any_weight = canonical
    n_static = 0 if static is None else static.shape[1]
    X, lengths = est._network_input(X, network)
    x_moments = weighted_moments(X, sample_weight)
    s_moments = None if not n_static else weighted_moments(
        static[:, None, :], sample_weight, name="the static features"
    )
    if est.variable_length:  # as a local fit: chunks of similar lengths are slices
        order = np.argsort(-lengths, kind="stable")
        X, lengths, Y, sample_weight = (a[order] for a in (X, lengths, Y, sample_weight))
        static = None if static is None else static[order]
    summary = {
        "x": x_moments,
        "s": s_moments,
        "y": est._target_moments(Y, sample_weight),  # None for no rows
        "any_weight": any_weight,
        "sw_sum": float(sample_weight.sum()),
        "sw_max": float(sample_weight.max(initial=0.0)),
        "n_rows": X.shape[0],
    }
    return (X, lengths, Y, sample_weight, static), summary


def _combine_summaries(*summaries):
    """Block summaries added in their order."""
    total = dict(summaries[0])
    for s in summaries[1:]:
        total["x"] = combine_moments(total["x"], s["x"])
        total["s"] = combine_moments(total["s"], s["s"])
        total["y"] = combine_moments(total["y"], s["y"])
        total["any_weight"] |= s["any_weight"]
        total["sw_sum"] += s["sw_sum"]
        total["sw_max"] = max(total["sw_max"], s["sw_max"])
        total["n_rows"] += s["n_rows"]
    return total


def _finish_block(data, x_mean, x_scale, est, y_moments, s_mean=None, s_scale=None):
    """Clip X (and the static values) to the fitted range and scale the
    targets by the moments of all blocks (``est._scale_targets``), as a
    local fit does after its statistics."""
    X, lengths, Y, sample_weight, static = data
    if X.shape[0]:
        X = clip_to_fitted_range(X, x_mean, x_scale)
    if static is not None and static.shape[0]:
        static = clip_to_fitted_range(static[:, None, :], s_mean, s_scale)[:, 0]
    Y, _ = est._scale_targets(Y, sample_weight, moments=y_moments)
    return X, lengths, Y, sample_weight, static


_WORKSPACES = {}  # (fit token, thread id) -> work buffers, on each worker


def _workspace(token):
    """This thread's work buffers for fit ``token``; those of an earlier fit
    on the same thread are dropped (one fit's buffers per thread at most)."""
    key = (token, threading.get_ident())
    ws = _WORKSPACES.get(key)
    if ws is None:
        for stale in [k for k in _WORKSPACES if k[1] == key[1]]:
            del _WORKSPACES[stale]
        ws = _WORKSPACES[key] = {}
    return ws


def _release_workspaces(token):
    for key in [k for k in _WORKSPACES if k[0] == token]:
        del _WORKSPACES[key]


def _worker_sums(parts, indices, theta, network, chunk_size, token):
    """Each block's ``sum_n s_n loss_n`` and its gradient, by block index."""
    ws = _workspace(token)
    sums = {}
    for index, (X, lengths, Y, sample_weight, static) in zip(indices, parts):
        with np.errstate(all="ignore"):  # the client checks the total (_FitGuard)
            sums[index] = _objective.weighted_sums(
                theta, X, Y, sample_weight, network, chunk_size, ws, lengths, static
            )
    return sums


def _add_in_block_order(*per_worker):
    """The blocks' loss and gradient sums added in block order, wherever
    each was computed: deterministic for a given chunking."""
    sums = {}
    for part in per_worker:
        sums.update(part)
    first, *rest = sorted(sums)
    loss, grad = sums[first][0], np.array(sums[first][1])
    for index in rest:
        loss += sums[index][0]
        grad += sums[index][1]
    return loss, grad


# -- predictions ------------------------------------------------------------

def map_rows(est, method, X):
    """``est.<method>(X)`` for a dask ``X``, lazily, one task per block.

    Parameters
    ----------
    est : fitted BaseLSTM
    method : {"predict", "predict_proba", "predict_log_proba"}
    X : dask.array.Array of shape (n_samples, n_columns) or \
            (n_samples, n_steps, n_features)
        Chunked along samples only.

    Returns
    -------
    result : dask.array.Array of shape (n_samples,) or (n_samples, n_outputs)
        Chunked as ``X`` along samples.
    """
    check_is_fitted(est)
    X = _check_dask_array(X)
    n_columns, dtype = _output_layout(est, method)
    if n_columns is None:
        layout = dict(drop_axis=list(range(1, X.ndim)), chunks=(X.chunks[0],))
    else:
        layout = dict(chunks=(X.chunks[0], (n_columns,)))
        if X.ndim == 3:
            layout["drop_axis"] = 2
    ndim = 1 if n_columns is None else 2
    return X.map_blocks(
        _predict_block, est, method, dtype=dtype, meta=np.empty((0,) * ndim, dtype),
        **layout,
    )


def _output_layout(est, method):
    """Columns (None for 1-D) and dtype of ``est.<method>``'s result."""
    if method != "predict":  # probabilities
        return len(est.classes_), np.dtype(np.float64)
    if is_classifier(est):
        binarizer = est._label_binarizer
        if binarizer.y_type_ == "multilabel-indicator":
            return len(est.classes_), binarizer.classes_.dtype
        return None, est.classes_.dtype
    return (None if est._y_ndim == 1 else est.n_outputs_), np.dtype(np.float64)


def _predict_block(X, est, method):
    return getattr(est, method)(X)


def score(est, X, y, sample_weight=None):
    """``est.score(X, y, sample_weight)`` for a dask ``X``, computed.

    Predictions are made block by block (:func:`map_rows`) and reduced with
    dask: accuracy (exact match of all labels) for a classifier, R^2
    averaged over outputs for a regressor, as scikit-learn's ``score``.

    Returns
    -------
    score : float
    """
    import dask
    import dask.array as da

    y_pred = map_rows(est, "predict", X)
    check_consistent_length(y_pred, y)

    def rows(a):
        if is_dask_collection(a):
            return a.rechunk({0: y_pred.chunks[0]})
        return da.from_array(np.asarray(a), chunks=(y_pred.chunks[0],) + np.shape(a)[1:])

    y = rows(y)
    w = None if sample_weight is None else rows(sample_weight).astype(np.float64)
    if is_classifier(est):
        if y.ndim == 2 and y_pred.ndim == 1:  # a column of labels
            y = y[:, 0]
        hit = y_pred == y
        if hit.ndim == 2:
            hit = hit.all(axis=1)
        hit = hit.astype(np.float64)
        if w is None:
            return float(hit.mean().compute())
        return float(((hit * w).sum() / w.sum()).compute())
    y = y.astype(np.float64)
    y2, p2 = (y[:, None], y_pred[:, None]) if y.ndim == 1 else (y, y_pred)
    w2 = 1.0 if w is None else w[:, None]
    y_mean = (w2 * y2).sum(axis=0) / (y2.shape[0] if w is None else w.sum())
    numerator, denominator = dask.compute(
        (w2 * (y2 - p2) ** 2).sum(axis=0), (w2 * (y2 - y_mean) ** 2).sum(axis=0)
    )
    # r2_score's force_finite rule: a constant target scores 1 if predicted
    # exactly, else 0
    scores = np.ones(numerator.shape)
    valid = (numerator != 0) & (denominator != 0)
    scores[valid] = 1 - numerator[valid] / denominator[valid]
    scores[(numerator != 0) & (denominator == 0)] = 0.0
    return float(scores.mean())
