"""The estimator base shared by LSTMClassifier and LSTMRegressor."""

import numbers
import time
from abc import ABCMeta, abstractmethod

import numpy as np
from scipy.optimize import minimize
from sklearn.base import BaseEstimator, _fit_context
from sklearn.metrics import r2_score
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.optimize import _check_optimize_result
from sklearn.utils.validation import (
    _check_sample_weight,
    check_is_fitted,
    validate_data,
)

from . import _objective
from ._cells import CELLS
from ._input import (
    canonical_rows,
    check_predict_layout,
    flatten_3d,
    resolve_layout,
    sequence_lengths,
    weighted_mean_scale,
)
from ._params import initialize, make_layout, unpack

# Work arrays per chunk are bounded by this many bytes (the BPTT cache grows
# as n_samples * n_steps * n_hidden; the objective is summed over chunks).
_CHUNK_BYTES = 64 * 2**20


class BaseLSTM(BaseEstimator, metaclass=ABCMeta):
    """Base class for LSTM estimators. Use the derived classes."""

    _parameter_constraints = {
        "hidden_layer_sizes": [
            "array-like",
            Interval(numbers.Integral, 1, None, closed="left"),
        ],
        "cell": [StrOptions(set(CELLS))],
        "n_steps": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "bidirectional": ["boolean"],
        "pooling": [StrOptions({"last", "mean", "max"})],
        "variable_length": ["boolean"],
        "alpha": [Interval(numbers.Real, 0, None, closed="left")],
        "max_iter": [Interval(numbers.Integral, 1, None, closed="left")],
        "tol": [Interval(numbers.Real, 0, None, closed="left")],
        "max_fun": [Interval(numbers.Integral, 1, None, closed="left")],
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
        bidirectional,
        pooling,
        variable_length,
        alpha,
        max_iter,
        tol,
        max_fun,
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
        self.bidirectional = bidirectional
        self.pooling = pooling
        self.variable_length = variable_length
        self.alpha = alpha
        self.max_iter = max_iter
        self.tol = tol
        self.max_fun = max_fun
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

        Returns
        -------
        X : ndarray of shape (n_samples, n_steps, n_features)
        y : validated y (fit) or None
        """
        X, steps_features = flatten_3d(X)
        kwargs = dict(
            dtype=[np.float64, np.float32],
            reset=reset,
            ensure_all_finite="allow-nan" if self.variable_length else True,
        )
        if reset:  # fit: y is required (validate_data says so when it is None)
            X, y = validate_data(self, X, y, multi_output=True, **kwargs)
        else:
            X = validate_data(self, X, **kwargs)
        if reset:
            layout = resolve_layout(X.shape[1], self.n_steps, steps_features)
        else:
            layout = (self.n_steps_, self.n_step_features_)
            check_predict_layout(steps_features, layout)
        return X.reshape(X.shape[0], *layout), y

    # -- fit --------------------------------------------------------------

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit the model to sequences X and targets y by full-batch L-BFGS.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_steps, n_features) or \
                (n_samples, n_columns)
            Training sequences; see the class docstring for the 2-D layout.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Targets.
        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the samples; None gives each weight 1.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        hidden = _check_hidden_layer_sizes(self.hidden_layer_sizes)
        X, y = self._validate_X(X, y, reset=True)
        n_samples, n_steps, n_features = X.shape
        sample_weight = _check_sample_weight(sample_weight, X.reshape(n_samples, -1))
        Y, out_activation, target_attrs = self._encode_targets(y)
        class_factor = self._class_sample_weight(y)
        if class_factor is not None:
            sample_weight = sample_weight * class_factor
        X2, Y, sample_weight = canonical_rows(
            X.reshape(n_samples, -1), Y, sample_weight
        )
        if sample_weight.sum() <= 0:
            raise ValueError("sample_weight sums to zero: there is nothing to fit.")
        X = X2.reshape(-1, n_steps, n_features)
        lengths = self._lengths(X)

        x_mean, x_scale = weighted_mean_scale(X, sample_weight)
        if out_activation == "identity":  # regression targets: standardised too
            y_mean, y_scale = weighted_mean_scale(Y[:, None, :], sample_weight)
            Y = (Y - y_mean) / y_scale
            target_attrs.update(y_mean_=y_mean, y_scale_=y_scale)
        spec = self._make_spec(n_features, Y.shape[1], out_activation, X.dtype, x_mean, x_scale)
        theta0 = self._initial_theta(spec["layout"])
        theta, n_iter, loss, curve, validation = self._minimize(
            theta0, X, lengths, Y, sample_weight, spec
        )

        self.n_steps_, self.n_step_features_ = n_steps, n_features
        self.x_mean_, self.x_scale_ = x_mean, x_scale
        for name, value in target_attrs.items():
            setattr(self, name, value)
        self.n_outputs_ = Y.shape[1]
        self.out_activation_ = out_activation
        self.coefs_ = {k: v.copy() for k, v in unpack(theta, spec["layout"]).items()}
        self.n_iter_, self.loss_, self.loss_curve_ = n_iter, loss, curve
        self.validation_scores_, self.best_validation_score_ = validation or (None, None)
        return self

    def _lengths(self, X):
        """Real steps per sequence: from the NaN padding, or all steps."""
        if self.variable_length:
            return sequence_lengths(X)
        return np.full(X.shape[0], X.shape[1])

    def _make_spec(self, n_features, n_outputs, out_activation, dtype, x_mean, x_scale):
        hidden = _check_hidden_layer_sizes(self.hidden_layer_sizes)
        n_directions = 2 if self.bidirectional else 1
        layout = make_layout(self.cell, n_features, hidden, n_outputs, n_directions)
        return _objective.make_spec(
            self.cell,
            hidden,
            out_activation,
            layout,
            dtype,
            x_mean,
            x_scale,
            n_directions=n_directions,
            pooling=self.pooling,
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
        chunk = _chunk_size(X.shape[1], spec["hidden"], X.dtype.itemsize)
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

        result = minimize(
            fun,
            theta0,
            method="L-BFGS-B",
            jac=True,
            callback=callback,
            options={"maxfun": self.max_fun, "maxiter": self.max_iter, "gtol": self.tol},
        )
        if monitor is not None and monitor.stopped:  # SciPy calls it abnormal
            n_iter = int(result.nit)
        else:
            n_iter = _check_optimize_result("lbfgs", result, self.max_iter)
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
        spec = self._make_spec(
            self.n_step_features_,
            self.n_outputs_,
            self.out_activation_,
            X.dtype,
            self.x_mean_,
            self.x_scale_,
        )
        theta = np.concatenate([self.coefs_[k].ravel() for k in spec["layout"]])
        chunk = _chunk_size(X.shape[1], spec["hidden"], X.dtype.itemsize)
        return _objective.decision(theta, X, spec, chunk, self._lengths(X))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        tags.input_tags.allow_nan = self.variable_length
        return tags


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


def _chunk_size(n_steps, hidden, itemsize):
    """Samples per chunk so that the work arrays stay within ``_CHUNK_BYTES``."""
    # per sample and step: A, dA (4H each) and state, out, tanh_state (H each)
    per_sample = n_steps * itemsize * sum(11 * h for h in hidden) + 1
    return max(1, _CHUNK_BYTES // per_sample)
