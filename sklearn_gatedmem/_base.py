"""The estimator base shared by LSTMClassifier and LSTMRegressor."""

import numbers
import re
import time
import warnings
from abc import ABCMeta, abstractmethod
from contextlib import contextmanager

import numpy as np
from scipy.optimize import OptimizeResult, minimize
from sklearn.base import BaseEstimator, _fit_context, clone, is_classifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import r2_score
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import (
    _check_sample_weight,
    check_array,
    check_is_fitted,
    validate_data,
)
from threadpoolctl import ThreadpoolController

from . import _objective
from ._cells import CELLS
from ._input import (
    DATA_FORMATS,
    canonical_rows,
    check_label_types,
    check_predict_layout,
    check_training_weights,
    clip_to_fitted_range,
    has_nan,
    INSTANCE_NORMS,
    make_patches,
    nan_error,
    ragged_error,
    read_sequences,
    resolve_layout,
    resolve_patch_size,
    sequence_lengths,
    single_sequence_hint,
    warn_layout,
    weighted_mean_scale,
)
from ._memory import check_memory, fit_bytes, predict_bytes
from ._params import initialize, make_layout, unpack

# Fitted attributes of one network: an ensemble keeps them in each member.
_NETWORK_ATTRS = (
    "coefs_", "n_iter_", "loss_", "loss_curve_", "validation_scores_",
    "best_validation_score_",
)
# Private fitted state that describes the data, shared by an ensemble's members.
_SHARED_PRIVATE_ATTRS = ("_label_binarizer", "_y_ndim", "_fitted_architecture")

# What validate_data(reset=True) sets on the estimator before fit can fail.
_VALIDATION_ATTRS = ("n_features_in_", "feature_names_in_")

# Work arrays per chunk are bounded by this many bytes (the BPTT cache grows
# as n_samples * n_steps * n_hidden; the objective is summed over chunks).
# Measured: time per sample falls until chunks of about 500 sequences and is
# flat from there to several thousand; this budget gives 500 or more for
# networks up to 64 hidden units over 64 steps, and bounds fit's memory.
_CHUNK_BYTES = 256 * 2**20


class BaseLSTM(BaseEstimator, metaclass=ABCMeta):
    """Base class for LSTM estimators. Use the derived classes."""

    _parameter_constraints = {
        "hidden_layer_sizes": [
            "array-like",
            Interval(numbers.Integral, 1, None, closed="left"),
        ],
        "cell": [StrOptions(set(CELLS))],
        "n_steps": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "patch_size": [
            Interval(numbers.Integral, 1, None, closed="left"), StrOptions({"auto"}), None
        ],
        "differences": ["boolean"],
        "instance_norm": [StrOptions(set(INSTANCE_NORMS)), None],
        "data_format": [StrOptions(set(DATA_FORMATS))],
        "bidirectional": ["boolean"],
        "pooling": [StrOptions({"last", "mean", "max"})],
        "variable_length": ["boolean"],
        "alpha": [Interval(numbers.Real, 0, None, closed="left")],
        "max_iter": [Interval(numbers.Integral, 1, None, closed="left")],
        "tol": [Interval(numbers.Real, 0, None, closed="left")],
        "max_fun": [Interval(numbers.Integral, 1, None, closed="left")],
        "n_ensemble": [Interval(numbers.Integral, 1, None, closed="left")],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(numbers.Real, 0, 1, closed="neither")],
        "n_iter_no_change": [Interval(numbers.Integral, 1, None, closed="left")],
        "chunk_size": [Interval(numbers.Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "random_state": ["random_state"],
        "warm_start": ["boolean"],
        "verbose": ["verbose"],
    }

    @abstractmethod
    def __init__(
        self,
        hidden_layer_sizes,
        cell,
        n_steps,
        patch_size,
        differences,
        instance_norm,
        data_format,
        bidirectional,
        pooling,
        variable_length,
        alpha,
        max_iter,
        tol,
        max_fun,
        n_ensemble,
        early_stopping,
        validation_fraction,
        n_iter_no_change,
        chunk_size,
        random_state,
        warm_start,
        verbose,
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.cell = cell
        self.n_steps = n_steps
        self.patch_size = patch_size
        self.differences = differences
        self.instance_norm = instance_norm
        self.data_format = data_format
        self.bidirectional = bidirectional
        self.pooling = pooling
        self.variable_length = variable_length
        self.alpha = alpha
        self.max_iter = max_iter
        self.tol = tol
        self.max_fun = max_fun
        self.n_ensemble = n_ensemble
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.chunk_size = chunk_size
        self.random_state = random_state
        self.warm_start = warm_start
        self.verbose = verbose

    # -- what subclasses provide ------------------------------------------

    @abstractmethod
    def _encode_targets(self, y):
        """Return ``(Y, out_activation, fitted_attrs)`` for validated ``y``.

        ``Y`` is a float64 array of shape (n_samples, n_outputs); regression
        targets (``out_activation="identity"``) are standardised by ``fit``.
        """

    def _class_sample_weight(self, y):
        """Per-sample factors from ``class_weight`` (classifier only)."""
        return None

    # -- input ------------------------------------------------------------

    def _validate_X(self, X, y=None, reset=True):
        """The one input-shaping path: validate and return 3-D sequences.

        3-D arrays and lists of sequences are read as ``data_format`` says
        (:func:`read_sequences`). With ``variable_length=True``, 3-D and list
        input may have any number of steps at predict time (2-D input keeps
        the fitted width, ``n_features_in_``).

        Returns
        -------
        X : ndarray of shape (n_samples, n_steps, n_features)
        y : validated y (fit) or None
        """
        X, steps_features, ragged = read_sequences(X, self.data_format)
        if ragged and not self.variable_length:
            raise ragged_error(steps_features)
        fitted = None if reset else (self.n_steps_, self.n_step_features_)
        if reset:
            warn_layout(steps_features, self.data_format)
        else:  # a 3-D layout error says "steps", not just "features"
            check_predict_layout(
                steps_features, fitted, self.variable_length, self.data_format
            )
        # any number of steps: predict on 3-D or list input, variable_length
        any_steps = not reset and self.variable_length and steps_features is not None
        shape = getattr(X, "shape", None)
        if not reset and steps_features is None:  # X[0] of 3-D data, say
            error = single_sequence_hint(
                _shape_2d(X) if shape is None else shape, fitted, self.n_features_in_,
                self.data_format, self.variable_length, type(self).__name__,
            )
            if error is not None:
                raise error
        if shape is not None and len(shape) == 2:  # arrays: before any copy
            self._check_memory(shape, getattr(X, "dtype", None), steps_features, reset)
        kwargs = dict(dtype=[np.float64, np.float32], ensure_all_finite="allow-nan")
        try:
            # scikit-learn's finiteness check first sums X; that sum may
            # overflow (float32 near its limit), which the check handles
            with np.errstate(over="ignore", invalid="ignore"):
                if reset:  # fit: y is required (validate_data says so when None)
                    X, y = validate_data(self, X, y, multi_output=True, **kwargs)
                elif any_steps:  # n_features_in_ is one width; these have any
                    X = check_array(X, estimator=self, **kwargs)
                else:
                    X = validate_data(self, X, reset=False, **kwargs)
        except OverflowError as exc:  # a Python int beyond float64, say
            raise ValueError(f"X holds a number too large for float64 ({exc}).") from exc
        if not self.variable_length and has_nan(X):
            raise nan_error()
        if shape is None:  # lists: now that the shape is known
            self._check_memory(X.shape, X.dtype, steps_features, reset)
        if reset:
            layout = resolve_layout(X.shape[1], self.n_steps, steps_features)
        elif any_steps:
            layout = steps_features
        else:
            layout = fitted
        X = X.reshape(X.shape[0], *layout)
        return X, y

    def _check_memory(self, shape, dtype, steps_features, reset):
        """Refuse a fit (``reset``) or prediction on a 2-D ``shape`` that
        cannot fit in memory, with a ValueError giving the estimate in GB."""
        n_samples, n_columns = (int(s) for s in shape)
        if reset:
            try:
                n_steps, n_features = resolve_layout(n_columns, self.n_steps, steps_features)
            except ValueError:
                return  # validation says what is wrong with the layout
            n_outputs = 1  # not known yet; the head is small anyway
            arch = self._architecture()
        else:
            n_steps, n_features = self.n_steps_, self.n_step_features_
            if self.variable_length and steps_features is not None:
                n_steps = steps_features[0]  # predictions of any length
            n_outputs = self.n_outputs_
            arch = self._fitted_architecture
        # the network reads patches: fewer, wider steps
        if reset:
            patch = resolve_patch_size(self.patch_size, n_steps)
            widen = (1 + self.differences) * (2 if self.instance_norm == "append" else 1)
        else:
            patch = self.patch_size_
            widen = (1 + self.differences_) * (2 if self.instance_norm_ == "append" else 1)
        n_steps, n_features = -(-n_steps // patch), n_features * patch * widen
        hidden, n_directions = arch["hidden"], arch["n_directions"]
        itemsize = 4 if dtype == np.float32 else 8
        chunk = _chunk_size(self.chunk_size, n_steps, hidden, itemsize, n_directions)
        estimate = (fit_bytes if reset else predict_bytes)(
            n_samples, n_steps, n_features, hidden, n_outputs, n_directions,
            arch["cell"], itemsize, chunk,
        )
        if reset:
            hint = (
                "Use fewer or smaller hidden layers (hidden_layer_sizes), shorter "
                "sequences, fewer samples or a smaller chunk_size."
            )
        else:
            hint = "Predict fewer samples at a time, or use a smaller chunk_size."
        check_memory(estimate, "fit" if reset else "prediction", hint)

    # -- fit --------------------------------------------------------------

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit the model to sequences X and targets y by full-batch L-BFGS.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_steps, n_features) or \
                (n_samples, n_columns)
            Training sequences; see the class docstring for the 2-D layout
            and ``data_format``. With ``variable_length=True``, also a list of
            sequences of different lengths, each ``(n_steps_i, n_features)``
            (``(n_features, n_steps_i)`` channels-first) or 1-D.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Targets.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights of the samples; None gives each weight 1.

        Returns
        -------
        self : object
            The fitted estimator.

        Raises
        ------
        ValueError
            For invalid input, labels or weights, for values too large to
            standardise (beyond half the dtype's range), when the fit would
            need more memory than is available (the message gives the
            estimate in GB), or when the objective overflows at the initial
            weights.

        Notes
        -----
        Interrupting a fit (Ctrl-C, a ``KeyboardInterrupt`` while L-BFGS
        runs) ends it early but not in vain: the estimator is fitted with the
        best weights reached, those of the last completed iteration (or the
        initial ones), and a ConvergenceWarning says at which iteration it
        stopped. An objective that overflows part-way (NaN or infinite loss or
        gradient) ends the fit the same way; NaN never reaches the weights.
        ``loss_`` is NaN if the fit was interrupted before its first
        evaluation.
        """
        # validate_data sets n_features_in_ (and feature_names_in_) first; a
        # fit that fails later must not leave them beside the previous model
        kept = {k: v for k, v in vars(self).items() if k in _VALIDATION_ATTRS}
        try:
            if self.n_ensemble > 1:
                return self._fit_ensemble(X, y, sample_weight)
            vars(self).pop("estimators_", None)  # a previous ensemble's
            return self._fit(X, y, sample_weight)
        except BaseException:
            for name in _VALIDATION_ATTRS:
                vars(self).pop(name, None)
            vars(self).update(kept)
            raise

    def _fit_ensemble(self, X, y, sample_weight):
        """Fit ``n_ensemble`` networks from seeds drawn from ``random_state``.

        Each member is this estimator with one network (``n_ensemble=1``) and
        a seed of its own, fitted on all the data; predictions average their
        probabilities (classifier) or values (regressor). The attributes that
        describe the data (``classes_``, ``n_steps_``, ``x_mean_``, ...) are
        the members' (they are the same in all), the per-network ones
        (``coefs_``, ``loss_``, ...) stay with each member in
        ``estimators_``; ``n_iter_`` is the largest of theirs. An interrupted
        member ends the ensemble: the members fitted so far are kept.
        """
        previous = getattr(self, "estimators_", None) if self.warm_start else None
        if previous is not None and len(previous) != self.n_ensemble:
            previous = None
        seeds = check_random_state(self.random_state).randint(
            np.iinfo(np.int32).max, size=self.n_ensemble
        )
        params = {**self.get_params(deep=False), "n_ensemble": 1}
        members = []
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            for k, seed in enumerate(seeds):
                member = clone(self) if previous is None else previous[k]
                member.set_params(**{**params, "random_state": int(seed)})
                members.append(member.fit(X, y, sample_weight))
                if member._interrupted:
                    break
        _warn_once_per_kind(caught, self.n_ensemble)
        for name in _NETWORK_ATTRS:
            vars(self).pop(name, None)
        for name, value in vars(members[0]).items():
            if name.endswith("_") and name not in params and name not in _NETWORK_ATTRS:
                setattr(self, name, value)
        for name in _SHARED_PRIVATE_ATTRS:
            if hasattr(members[0], name):
                setattr(self, name, getattr(members[0], name))
        self.estimators_ = members
        self.n_iter_ = max(member.n_iter_ for member in members)
        self._interrupted = members[-1]._interrupted
        return self

    def _ensemble(self):
        """The fitted members, or None for a single network."""
        check_is_fitted(self)
        return getattr(self, "estimators_", None)

    def _fit(self, X, y, sample_weight):
        """The body of :meth:`fit`."""
        hidden = _check_hidden_layer_sizes(self.hidden_layer_sizes)
        X, y = self._validate_X(X, y, reset=True)
        n_samples, n_steps, n_features = X.shape
        sample_weight = _check_sample_weight(sample_weight, X.reshape(n_samples, -1))
        if is_classifier(self):
            check_label_types(y)
        try:
            Y, out_activation, target_attrs = self._encode_targets(y)
        except OverflowError as exc:  # a Python int beyond float64, say
            raise ValueError(f"y holds a number too large for float64 ({exc}).") from exc
        if not np.isfinite(Y).all():  # strings such as "nan" pass validate_data
            raise ValueError("Input y contains NaN or infinity (as float64).")
        class_factor = self._class_sample_weight(y)
        if class_factor is not None:
            sample_weight = sample_weight * class_factor
        check_training_weights(sample_weight)
        X2, Y, sample_weight = canonical_rows(
            X.reshape(n_samples, -1), Y, sample_weight
        )
        X = X2.reshape(-1, n_steps, n_features)
        # the network reads patches of steps (1: the steps themselves)
        patch_size = resolve_patch_size(self.patch_size, n_steps)
        differences = self.differences and n_steps > 1  # one step: all 0
        # one step has no spread to normalise (every z-score would be 0)
        instance_norm = self.instance_norm if n_steps > 1 else None
        X, lengths = self._network_input(X, patch_size, differences, instance_norm)

        x_mean, x_scale = weighted_mean_scale(X, sample_weight)
        X = clip_to_fitted_range(X, x_mean, x_scale)  # as predict does
        if self.variable_length:  # longest first: the objective's chunks of
            # similar lengths are then slices of X, not copies (chunk_plan)
            order = np.argsort(-lengths, kind="stable")
            X, lengths, Y, sample_weight = (a[order] for a in (X, lengths, Y, sample_weight))
        if out_activation == "identity":  # regression targets: standardised too
            y_mean, y_scale = weighted_mean_scale(Y[:, None, :], sample_weight, name="y")
            Y = (Y - y_mean) / y_scale
            target_attrs.update(y_mean_=y_mean, y_scale_=y_scale)
        architecture = self._architecture()
        spec = self._make_spec(
            X.shape[2], Y.shape[1], out_activation, X.dtype, x_mean, x_scale, architecture
        )
        theta0 = self._initial_theta(spec["layout"])
        theta, n_iter, loss, curve, validation = self._minimize(
            theta0, X, lengths, Y, sample_weight, spec
        )

        self.n_steps_, self.n_step_features_ = n_steps, n_features
        self.patch_size_, self.differences_ = patch_size, differences
        self.instance_norm_ = instance_norm
        self.x_mean_, self.x_scale_ = x_mean, x_scale
        for name, value in target_attrs.items():
            setattr(self, name, value)
        self.n_outputs_ = Y.shape[1]
        self.out_activation_ = out_activation
        self.coefs_ = {k: v.copy() for k, v in unpack(theta, spec["layout"]).items()}
        self.n_iter_, self.loss_, self.loss_curve_ = n_iter, loss, curve
        self._fitted_architecture = architecture
        self.validation_scores_, self.best_validation_score_ = validation or (None, None)
        return self

    def _network_input(self, X, patch_size, differences, instance_norm):
        """What the network reads of sequences ``X`` (:func:`make_patches`),
        and each sequence's length in patch steps, ``ceil(length / p)``.

        The lengths are found on ``X`` itself, so bad padding is reported in
        its steps, and once: the patches' lengths follow from them.
        """
        lengths = self._lengths(X)
        patches = make_patches(X, patch_size, differences, instance_norm)
        return patches, -(-lengths // patch_size)

    def _lengths(self, X):
        """Real steps per sequence: from the NaN padding, or all steps."""
        if self.variable_length:
            return sequence_lengths(X)
        return np.full(X.shape[0], X.shape[1])

    def _architecture(self):
        """The network's shape as the parameters say now. ``fit`` builds it
        and keeps it (``_fitted_architecture``): predictions use what was
        fitted, whatever ``set_params`` changed since."""
        return {
            "cell": self.cell,
            "hidden": _check_hidden_layer_sizes(self.hidden_layer_sizes),
            "n_directions": 2 if self.bidirectional else 1,
            "pooling": self.pooling,
        }

    def _make_spec(
        self, n_features, n_outputs, out_activation, dtype, x_mean, x_scale,
        architecture=None,
    ):
        arch = self._architecture() if architecture is None else architecture
        layout = make_layout(
            arch["cell"], n_features, arch["hidden"], n_outputs, arch["n_directions"]
        )
        return _objective.make_spec(
            arch["cell"],
            arch["hidden"],
            out_activation,
            layout,
            dtype,
            x_mean,
            x_scale,
            n_directions=arch["n_directions"],
            pooling=arch["pooling"],
        )

    def _initial_theta(self, layout):
        """Warm start from the previous solution, or a fresh draw."""
        if self.warm_start and hasattr(self, "coefs_"):
            previous = {k: v.shape for k, v in self.coefs_.items()}
            wanted = {k: shape for k, (_, _, shape) in layout.items()}
            if previous == wanted:
                return np.concatenate([self.coefs_[k].ravel() for k in layout])
        return initialize(layout, self.cell, check_random_state(self.random_state))

    def _minimize(self, theta0, X, lengths, Y, sample_weight, spec):
        """SciPy's L-BFGS-B over the flat vector, as MLPClassifier does.

        With ``early_stopping``, a held-out split of the rows is scored after
        every iteration by the callback, on the candidate weights; it raises
        StopIteration (which SciPy >= 1.11 honours) after ``n_iter_no_change``
        iterations without a strict improvement, and the best weights are
        returned.

        Returns
        -------
        theta : ndarray of shape (n_params,)
        n_iter : int
        loss : float
            The objective (on the training rows) at ``theta``.
        curve : list of float
            The objective after each iteration.
        validation : tuple of (list of float, float) or None
            With early stopping, the validation score after each iteration
            and the best one (that of ``theta``); else None.
        """
        chunk = _chunk_size(
            self.chunk_size, X.shape[1], spec["hidden"], X.dtype.itemsize,
            spec["n_directions"], n_features=X.shape[2], cell=spec["cell"],
        )
        monitor = None
        if self.early_stopping:
            train, val = self._validation_split(Y, spec["out_activation"])
            monitor = _ValidationMonitor(
                X[val], lengths[val], Y[val], sample_weight[val], spec, chunk
            )
            X, lengths, Y, sample_weight = (
                X[train], lengths[train], Y[train], sample_weight[train]
            )
        ws = {}  # work buffers reused by every evaluation of this fit
        curve, start = [], time.perf_counter()

        def fun(theta):
            return _objective.loss_grad(
                theta, X, Y, sample_weight, self.alpha, spec, chunk, ws, lengths
            )

        def callback(intermediate_result):
            curve.append(float(intermediate_result.fun))
            line = f"Iteration {len(curve)}, loss = {curve[-1]:.8f}"
            if monitor is not None:
                score = monitor.update(intermediate_result.x, len(curve))
                line += f", validation score = {score:.6f}"
            if self.verbose:
                print(f"{line}, elapsed = {time.perf_counter() - start:.2f} s")
            if monitor is not None and monitor.patience_lost(
                len(curve), self.n_iter_no_change
            ):
                if self.verbose:
                    print(
                        "Validation score did not improve for "
                        f"{self.n_iter_no_change} consecutive iterations. Stopping "
                        f"at the best, iteration {monitor.best_iter}."
                    )
                raise StopIteration

        # Reliability (see _FitGuard): every evaluation is checked and the last
        # iterate kept, so Ctrl-C or an overflowing objective ends the fit at
        # that iterate with a warning; NaN never reaches the weights.
        guard = _FitGuard(theta0)
        self._interrupted = False
        with _lbfgs_blas_threads(fun) as fun:
            result = guard.minimize(
                guard.objective(fun),
                theta0,
                method="L-BFGS-B",
                jac=True,
                callback=guard.callback(callback),
                options={"maxfun": self.max_fun, "maxiter": self.max_iter, "gtol": self.tol},
            )
        self._interrupted = guard.interrupted
        if guard.stopped or (monitor is not None and monitor.stopped):  # warned
            n_iter = int(result.nit)
        else:
            n_iter = _check_lbfgs_result(result, self.max_iter, self.max_fun, self.tol)
        if monitor is None:
            return result.x, n_iter, float(result.fun), curve, None
        if not monitor.scores:  # converged before a first iteration
            return result.x, n_iter, float(result.fun), curve, ([], monitor.score(result.x))
        loss = curve[monitor.best_iter - 1]
        return monitor.best_theta, n_iter, loss, curve, (monitor.scores, monitor.best_score)

    def _validation_split(self, Y, out_activation):
        """Indices of the training and held-out rows for early stopping.

        Stratified by class for single-label classification; drawn from
        ``random_state``, so an int gives the same split every time.
        """
        n_rows = Y.shape[0]
        if out_activation == "softmax":
            stratify = Y.argmax(axis=1)
        elif out_activation == "logistic" and Y.shape[1] == 1:
            stratify = Y[:, 0]
        else:  # regression and multilabel: not stratified, as in MLP
            stratify = None
        n_val = int(np.ceil(self.validation_fraction * n_rows))
        problem = None
        if n_val < 2 or n_rows - n_val < 2:
            problem = f"that leaves {n_val} held-out and {n_rows - n_val} training rows"
        else:
            try:
                return train_test_split(
                    np.arange(n_rows),
                    test_size=self.validation_fraction,
                    stratify=stratify,
                    random_state=check_random_state(self.random_state),
                )
            except ValueError as exc:  # a class too small to stratify
                problem = f"stratifying by class fails ({exc})"
        raise ValueError(
            f"early_stopping=True cannot hold out validation_fraction="
            f"{self.validation_fraction} of {n_rows} distinct training rows: "
            f"{problem}. It needs at least 2 rows on each side (and, for a "
            "classifier, every class on both sides). Use more samples, "
            "change validation_fraction, or set early_stopping=False."
        )

    # -- predict ----------------------------------------------------------

    def _decision(self, X):
        """Head outputs before the output activation, shape (n_samples, n_outputs)."""
        check_is_fitted(self)
        X, _ = self._validate_X(X, reset=False)
        X, lengths = self._network_input(
            X, self.patch_size_, self.differences_, self.instance_norm_
        )
        # finite but absurd values must not overflow the network
        X = clip_to_fitted_range(X, self.x_mean_, self.x_scale_)
        spec = self._make_spec(
            X.shape[2],
            self.n_outputs_,
            self.out_activation_,
            X.dtype,
            self.x_mean_,
            self.x_scale_,
            self._fitted_architecture,
        )
        theta = np.concatenate([self.coefs_[k].ravel() for k in spec["layout"]])
        chunk = _chunk_size(
            self.chunk_size, X.shape[1], spec["hidden"], X.dtype.itemsize,
            spec["n_directions"], n_features=X.shape[2], cell=spec["cell"],
        )
        with np.errstate(under="ignore"):  # saturated gates underflow exp; fine
            return _objective.decision(theta, X, spec, chunk, lengths)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        tags.input_tags.allow_nan = self.variable_length
        return tags


def _warn_once_per_kind(caught, n_networks):
    """Re-emit the warnings of an ensemble's fits: each ConvergenceWarning
    text once, saying how many of the networks it concerns (messages that
    differ only by numbers are one kind), every other warning as it was."""
    kinds = {}
    for w in caught:
        if issubclass(w.category, ConvergenceWarning):
            key = re.sub(r"[0-9.e+-]+", "#", str(w.message))
            kinds.setdefault(key, []).append(w)
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    for group in kinds.values():
        warnings.warn(
            f"{len(group)} of the {n_networks} networks: {group[0].message}",
            ConvergenceWarning,
            stacklevel=4,
        )
def _shape_2d(X):
    """The shape of a 2-D list, else None."""
    try:
        shape = np.shape(X)
    except (ValueError, TypeError):
        return None
    return shape if len(shape) == 2 else None


def _check_hidden_layer_sizes(value):
    """``hidden_layer_sizes`` as a non-empty tuple of positive ints."""
    sizes = (value,) if isinstance(value, numbers.Integral) else tuple(value)
    if not sizes or not all(
        isinstance(s, numbers.Integral) and not isinstance(s, bool) and s > 0
        for s in sizes
    ):
        raise ValueError(
            "hidden_layer_sizes must be a positive int or a non-empty sequence "
            f"of positive ints, got {value!r}."
        )
    return tuple(int(s) for s in sizes)


def _check_lbfgs_result(result, max_iter, max_fun, tol):
    """The iterations run; a ConvergenceWarning when L-BFGS did not converge.

    The warning says what stopped the fit, at which iteration, and what to
    change. Unlike scikit-learn's generic text it gives no advice to scale
    the data: the estimators standardise it already.

    Parameters
    ----------
    result : OptimizeResult
        From ``scipy.optimize.minimize(method="L-BFGS-B")``.
    max_iter, max_fun : int
    tol : float

    Returns
    -------
    n_iter : int
    """
    n_iter = min(int(result.nit), max_iter)
    if result.status == 0:
        return n_iter
    if n_iter >= max_iter:
        cause = f"it reached max_iter={max_iter} iterations"
        change = (
            f"Raise max_iter (now {max_iter}) to fit further, raise tol (now "
            f"{tol:g}) to accept a larger gradient, or set early_stopping=True "
            "to stop on a held-out score instead."
        )
    elif result.nfev >= max_fun:
        cause = f"it reached max_fun={max_fun} loss evaluations"
        change = (
            f"Raise max_fun (now {max_fun}), raise tol (now {tol:g}), or set "
            "early_stopping=True to stop on a held-out score instead."
        )
    else:  # status 2: the line search found no lower objective
        cause = "the line search could not lower the objective any further"
        change = (
            "More iterations will not help (max_iter is not the limit): the "
            f"largest gradient component is still above tol={tol:g}, at the "
            "precision of the arithmetic. Raise tol to accept this point, add "
            "regularisation (alpha), or set early_stopping=True."
        )
    warnings.warn(
        f"L-BFGS did not converge: the fit stopped at iteration {n_iter} because "
        f"{cause} (SciPy: {result.message}). The estimator keeps the weights of "
        f"that iteration. {change}",
        ConvergenceWarning,
        stacklevel=4,
    )
    return n_iter


class _NonFiniteObjective(ArithmeticError):
    """The objective or its gradient is NaN or infinite."""


class _FitGuard:
    """Keeps a fit's weights usable whatever happens inside L-BFGS.

    * :meth:`objective` evaluates under silenced floating-point warnings
      (saturated gates underflow ``exp``; an overflow shows in the result) and
      checks the result: a NaN or infinite loss or gradient raises
      :class:`_NonFiniteObjective` instead of reaching L-BFGS.
    * :meth:`callback` records every iterate before the fit's own callback
      runs (L-BFGS iterates only lower the objective: the last is the best).
    * :meth:`minimize` ends the fit at that iterate, with a ConvergenceWarning
      naming the iteration, on KeyboardInterrupt or a non-finite objective;
      a non-finite objective at the initial weights is a ValueError.
    """

    def __init__(self, theta0):
        self.x, self.fun, self.nit, self.stopped = theta0.copy(), np.nan, 0, False
        self.interrupted = False

    def objective(self, fun):
        def checked(theta):
            if not np.isfinite(theta).all():  # SciPy's own arithmetic overflowed
                raise _NonFiniteObjective(
                    "L-BFGS stepped to non-finite weights: the objective, "
                    f"{self.fun:.3g} at the last iterate, is too large for it"
                )
            with np.errstate(all="ignore"):
                loss, grad = fun(theta)
            if not (np.isfinite(loss) and np.isfinite(grad).all()):
                raise _NonFiniteObjective(
                    f"loss = {float(loss):.3g}, {np.count_nonzero(~np.isfinite(grad))} of "
                    f"{grad.size} gradient entries NaN or infinite"
                )
            if np.isnan(self.fun):  # the first evaluation: L-BFGS starts at theta0
                self.fun = float(loss)
            return loss, grad

        return checked

    def callback(self, callback):
        def recording(intermediate_result):
            self.x = intermediate_result.x.copy()  # SciPy reuses its array
            self.fun, self.nit = float(intermediate_result.fun), self.nit + 1
            callback(intermediate_result)

        return recording

    def minimize(self, *args, **kwargs):
        """``scipy.optimize.minimize(*args, **kwargs)``, guarded."""
        try:
            return minimize(*args, **kwargs)
        except KeyboardInterrupt:
            problem = "was interrupted (KeyboardInterrupt)"
            self.interrupted = True
        except _NonFiniteObjective as exc:
            if np.isnan(self.fun):  # not even the initial weights evaluate
                raise ValueError(
                    f"The objective is not finite at the initial weights ({exc}): "
                    "it overflows. Scale down sample_weight or alpha, or rescale "
                    "X and y."
                ) from None
            problem = f"stopped because the objective overflowed ({exc})"
        self.stopped = True
        kept = f"those of iteration {self.nit}" if self.nit else "its initial ones"
        warnings.warn(
            f"The fit {problem} at iteration {self.nit + 1}; the estimator keeps "
            f"the best weights reached, {kept}.",
            ConvergenceWarning,
        )
        return OptimizeResult(
            x=self.x, fun=self.fun, nit=self.nit, success=False, status=99,
            message=problem,
        )


class _ValidationMonitor:
    """Scores held-out rows on candidate weights; keeps the best weights.

    Scoring goes through :func:`_objective.decision`, the prediction path of
    the estimators, without touching any fitted attribute.
    """

    def __init__(self, X, lengths, Y, sample_weight, spec, chunk):
        self.X, self.lengths, self.Y, self.sample_weight = X, lengths, Y, sample_weight
        self.spec, self.chunk = spec, chunk
        self.scores, self.best_score, self.best_iter = [], -np.inf, 0
        self.best_theta, self.stopped = None, False

    def score(self, theta):
        """The estimator's score of the held-out rows with weights ``theta``."""
        Z = _objective.decision(theta, self.X, self.spec, self.chunk, self.lengths)
        return _score_decision(Z, self.Y, self.sample_weight, self.spec["out_activation"])

    def update(self, theta, iteration):
        """Score ``theta`` after ``iteration``; keep it if strictly better."""
        score = self.score(theta)
        self.scores.append(score)
        best = self.best_score
        if score > best or (np.isnan(best) and not np.isnan(score)) or iteration == 1:
            # theta may be SciPy's work array, overwritten by the next step
            self.best_theta, self.best_score, self.best_iter = theta.copy(), score, iteration
        return score

    def patience_lost(self, iteration, n_iter_no_change):
        """True, once, when ``n_iter_no_change`` iterations brought nothing better."""
        self.stopped = iteration - self.best_iter >= n_iter_no_change
        return self.stopped


def _score_decision(Z, Y, sample_weight, out_activation):
    """The estimator's ``score`` computed from head outputs ``Z``.

    Accuracy (exact match of all labels) for classifiers, R^2 for regressors,
    as MLP's ``_score``, on the encoded targets ``Y``: labels map one to one to
    their encoding (the predicted class is the argmax of a softmax head, or
    ``z > 0`` for a logistic one), and per-output R^2 does not change under the
    standardisation of the targets. NaN when ``Z`` is not finite.
    """
    if not np.isfinite(Z).all():
        return np.nan
    if out_activation == "identity":
        return float(r2_score(Y, Z, sample_weight=sample_weight))
    if out_activation == "softmax":
        hit = Z.argmax(axis=1) == Y.argmax(axis=1)
    else:
        hit = ((Z > 0) == (Y > 0.5)).all(axis=1)
    return float(np.average(hit, weights=sample_weight))


_BLAS = None  # the ThreadpoolController of this process, made once


@contextmanager
def _lbfgs_blas_threads(fun):
    """L-BFGS's own vector arithmetic on one BLAS thread, ``fun`` on all.

    SciPy's L-BFGS-B calls BLAS on vectors of the size of the weights, and
    SciPy's wheels bring their own OpenBLAS, whose worker threads keep
    spinning on the cores for a while after each call: the next evaluation of
    the objective then ran at up to half speed (measured on 2 cores: 44 ms
    evaluations took 70 to 120 ms inside ``minimize``). So BLAS is limited to
    one thread while ``minimize`` runs, and ``fun`` (yielded, wrapped) gets
    back the threads BLAS had (those a user's own limit allows).
    """
    global _BLAS
    if _BLAS is None:
        _BLAS = ThreadpoolController()
    blas = _BLAS.select(user_api="blas")
    n_threads = max((lib.num_threads for lib in blas.lib_controllers), default=1)

    def with_threads(theta):
        with blas.limit(limits=n_threads):
            return fun(theta)

    with blas.limit(limits=1):
        yield with_threads


def _chunk_size(
    chunk_size, n_steps, hidden, itemsize, n_directions=1, n_features=1,
    cell="gated_memory",
):
    """Samples per chunk: ``chunk_size`` itself, or for ``"auto"`` as many as
    keep a fit's work arrays within ``_CHUNK_BYTES`` (``cell`` defaults to the
    one that needs more)."""
    if chunk_size != "auto":
        return int(chunk_size)
    per_sample = _objective.work_bytes_per_sample(
        cell, n_steps, n_features, hidden, n_directions, itemsize
    )
    return max(1, _CHUNK_BYTES // per_sample)
