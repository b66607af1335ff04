"""The estimator base shared by LSTMClassifier and LSTMRegressor."""

import copy
import dataclasses
import inspect
import numbers
import re
import threading
import warnings
from abc import ABCMeta, abstractmethod
from concurrent.futures import ThreadPoolExecutor, wait

import numpy as np
from sklearn.base import BaseEstimator, _fit_context, clone, is_classifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.utils import _safe_indexing, check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import (
    _check_sample_weight,
    _num_samples,
    check_array,
    check_is_fitted,
    validate_data,
)

from . import _attributions, _dask, _objective
from ._cells import CELLS
from ._input import (
    DATA_FORMATS,
    canonical_rows,
    check_predict_layout,
    check_training_weights,
    clip_to_fitted_range,
    has_nan,
    INSTANCE_NORMS,
    make_patches,
    carry_forward,
    MISSING,
    nan_error,
    patch_channels,
    ragged_error,
    read_sequences,
    resolve_layout,
    resolve_patch_shifts,
    patch_steps,
    resolve_patch_size,
    shift_offsets,
    shift_sequences,
    sequence_lengths,
    single_sequence_hint,
    resolve_static,
    split_static,
    warn_layout,
    weighted_mean_scale,
    weighted_moments,
    mean_scale,
)
from ._memory import available_bytes, check_memory, plan
from ._network import Network, widen
from ._optimize import (
    ValidationMonitor,
    beside_other_fits,
    blas_controlled_elsewhere,
    blas_threads,
    collecting_warnings,
    fit_lbfgs,
    release_blas_control,
)
from ._params import initialize, pack, unpack
from ._processes import PROCESSES_MAX_ROWS, Workers, fit_shared, worth_processes
from ._select import (
    AUTO_MAX_SAMPLES,
    AUTO_MAX_VALUES,
    CONSTANT_ALPHA,
    best_candidate,
    case_groups,
    held_out_cases,
    held_out_scores,
    candidate_grid,
    patch_candidates,
    subsample_cases,
    search_folds,
)

# Fitted attributes of one network: an ensemble keeps them in each member
# and sums them up (_ensemble_summary), coefs_ apart.
_NETWORK_ATTRS = (
    "coefs_", "n_iter_", "loss_", "loss_curve_", "validation_scores_",
    "best_validation_score_",
)
# Private fitted state that describes the data, shared by an ensemble's members.
_SHARED_PRIVATE_ATTRS = ("_label_binarizer", "_y_ndim", "_network", "_static_on")

# scikit-learn's checks (check_array, train_test_split, the metrics) switch
# warning filters with warnings.catch_warnings, which swaps the process's one
# filter list: run at once in two threads, the last to leave restores the
# list the other had changed, and the process keeps an ("error",
# ComplexWarning) filter. The members of an ensemble fit in threads, so their
# fits make these calls one at a time (issue 20).
_SKLEARN_CHECKS = threading.RLock()

# The compute dtype and activation method of the "auto" search's networks.
# float32: a candidate's score is an estimate either way, and a network
# costs 0.71 to 0.93 of a float64 one (docs: "Chosen from the data"). One
# method, not the one each process measures (whose float32 choice can flip
# with the load: the search's choice then changed with it, MinimalChinatown
# 0.900 or 0.950): "exp", the faster float32 method on the AVX2-only machine
# (0.67 of tanh's time). On the AVX-512 one it takes 1.8 times tanh's time,
# but tanh there, chosen by the CPU's features, sped only one set of the
# learning curves (Trace cut to 60, 4.9 -> 3.9 s) and flipped Coffee's tied
# readings (1.000 -> 0.964; docs: "How the defaults were chosen").
_SEARCH_COMPUTE = (np.float32, "exp")

# What validate_data(reset=True) sets on the estimator before fit can fail.
_VALIDATION_ATTRS = ("n_features_in_", "feature_names_in_")

class BaseLSTM(BaseEstimator, metaclass=ABCMeta):
    """Base class for LSTM estimators. Use the derived classes."""

    # alpha="auto" reads the whole series in one step with this penalty,
    # not the alpha candidates (None: with those)
    _WHOLE_ALPHA = None
    # the "auto" search runs on at most this many values (see _search_folds)
    _AUTO_MAX_VALUES = AUTO_MAX_VALUES
    # ... and on a set of more than AUTO_MAX_SAMPLES cases, on a sample of that
    # many, while its cases hold at most this many patch steps (None: any
    # number); see _search_folds
    _AUTO_MAX_STEPS = None
    # the search's fall-back with alpha="auto": a callable making the
    # constant predictor (scikit-learn's Dummy*), or None (no fall-back)
    _constant = None
    # the dtype a fit computes in, its input standardised first in the
    # input's dtype (None: the input's, standardised as it is read), and its
    # activation method (None: the one this process measured for that dtype);
    # the "auto" search's networks take _SEARCH_COMPUTE (_search)
    _compute_dtype = None
    _activation = None

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
        "patch_shifts": [Interval(numbers.Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "differences": ["boolean"],
        "instance_norm": [StrOptions(set(INSTANCE_NORMS)), None],
        "data_format": [StrOptions(set(DATA_FORMATS))],
        "bidirectional": ["boolean"],
        "pooling": [StrOptions({"last", "mean", "max", "auto"})],
        "variable_length": ["boolean"],
        "static_features": ["array-like", None],
        "static_into": [StrOptions({"auto", "head", "initial_state", "both"})],
        "missing": [StrOptions(set(MISSING))],
        "alpha": [Interval(numbers.Real, 0, None, closed="left"), StrOptions({"auto"})],
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
        patch_shifts,
        differences,
        instance_norm,
        data_format,
        bidirectional,
        pooling,
        variable_length,
        static_features,
        static_into,
        missing,
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
        self.patch_shifts = patch_shifts
        self.differences = differences
        self.instance_norm = instance_norm
        self.data_format = data_format
        self.bidirectional = bidirectional
        self.pooling = pooling
        self.variable_length = variable_length
        self.static_features = static_features
        self.static_into = static_into
        self.missing = missing
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

        ``Y`` is a float64 array of shape (n_samples, n_outputs), the head's
        targets; ``out_activation`` fixes the loss (see :mod:`._objective`).
        """

    def _scale_targets(self, Y, sample_weight, moments=None):
        """Return ``(Y, fitted_attrs)``: the targets as the head fits them,
        from the canonical rows and their weights (the regressor
        standardises them). ``moments``, when ``Y`` is only a block of the
        rows (a fit on a Dask cluster), are those of all of them: the
        blocks' :meth:`_target_moments` combined."""
        return Y, {}

    def _target_moments(self, Y, sample_weight):
        """What :meth:`_scale_targets` reads of the rows ``Y``, in a form
        that blocks of rows combine (:func:`~._input.combine_moments`); None when it
        reads nothing."""
        return None

    def _class_sample_weight(self, y):
        """Per-sample factors from ``class_weight`` (classifier only)."""
        return None

    def _stratify(self, Y, out_activation):
        """Labels to stratify the early-stopping split by, or None."""
        return None

    @abstractmethod
    def _validation_score(self, Z, Y, sample_weight, out_activation):
        """The estimator's ``score`` from head outputs ``Z`` of rows whose
        encoded targets are ``Y`` (NaN when ``Z`` is not finite)."""

    # -- input ------------------------------------------------------------

    def _validate_X(self, X, y=None, reset=True):
        """The one input-shaping path: validate and return 3-D sequences.

        3-D arrays and lists of sequences are read as ``data_format`` says
        (:func:`read_sequences`). With ``variable_length=True``, 3-D and list
        input may have any number of steps at predict time (2-D input keeps
        the fitted width, ``n_features_in_``).

        With ``static_features``, the static columns (2-D input) or channels
        (3-D and list input) are taken out (:func:`split_static`).

        Returns
        -------
        X : ndarray of shape (n_samples, n_steps, n_features)
            The sequences, without the static features.
        y : validated y (fit) or None
        static : ndarray of shape (n_samples, n_static) or None
            The static values.
        where : tuple of (ndarray or None, str)
            Their indices (:func:`resolve_static`) and whether they are
            "columns" or "channels".
        """
        X, steps_features, ragged = read_sequences(X, self.data_format)
        if ragged and not self.variable_length:
            raise ragged_error(steps_features)
        on = "columns" if steps_features is None else "channels"
        fitted_static = None if reset else getattr(self, "static_features_", None)
        if fitted_static is not None and on != self._static_on:
            raise ValueError(
                f"The estimator was fitted with static_features among the {self._static_on}"
                f" of {'2-D' if self._static_on == 'columns' else '3-D or list'} input; "
                "predict on input of the same kind."
            )
        fitted = None if reset else (self.n_steps_, self.n_step_features_)
        given = fitted  # the fitted layout as the user gives it: with static channels
        if fitted is not None and fitted_static is not None and on == "channels":
            given = (fitted[0], fitted[1] + len(fitted_static))
        if reset:
            warn_layout(steps_features, self.data_format)
        else:  # a 3-D layout error says "steps", not just "features"
            check_predict_layout(
                steps_features, given, self.variable_length, self.data_format
            )
        # any number of steps: predict on 3-D or list input, variable_length
        any_steps = not reset and self.variable_length and steps_features is not None
        shape = getattr(X, "shape", None)
        if not reset and steps_features is None:  # X[0] of 3-D data, say
            error = single_sequence_hint(
                _shape_2d(X) if shape is None else shape, given, self.n_features_in_,
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
        static = None
        if reset:
            n = X.shape[1] if steps_features is None else steps_features[1]
            index = resolve_static(
                self.static_features, n, getattr(self, "feature_names_in_", None), on
            )
        else:
            index = fitted_static
        if index is not None:
            if on == "columns":
                X, static = split_static(X, index, on)
            else:
                n_steps_in, n_channels = steps_features
                X, static = split_static(X.reshape(-1, n_steps_in, n_channels), index, on)
                steps_features = (n_steps_in, n_channels - len(index))
                X = X.reshape(X.shape[0], -1)
        if not self.variable_length and self.missing == "error" and has_nan(X):
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
        return X, y, static, (index, on)

    def _check_memory(self, shape, dtype, steps_features, reset):
        """Refuse a fit (``reset``) or prediction on a 2-D ``shape`` that
        cannot fit in memory, with a ValueError giving the estimate in GB."""
        estimate = self._resource_plan(shape, dtype, steps_features, reset)
        if estimate is None:
            return  # validation says what is wrong with the layout
        if reset:
            hint = (
                "Use fewer or smaller hidden layers (hidden_layer_sizes), shorter "
                "sequences, fewer samples or a smaller chunk_size."
            )
        else:
            hint = "Predict fewer samples at a time, or use a smaller chunk_size."
        check_memory(estimate.parts, "fit" if reset else "prediction", hint)

    def _resource_plan(self, shape, dtype, steps_features, reset):
        """The :func:`plan` of a fit (``reset``) or prediction on input of
        2-D ``shape`` and ``dtype``, before validation; None when the layout
        is invalid."""
        n_samples, n_columns = (int(s) for s in shape)
        if reset:
            n_static = _count_static(self.static_features)
            if steps_features is None:
                n_columns -= n_static
            else:
                steps_features = (steps_features[0], steps_features[1] - n_static)
            if n_columns <= 0 or (steps_features is not None and steps_features[1] <= 0):
                return None  # validation says what is wrong
            try:
                n_steps, n_features = resolve_layout(n_columns, self.n_steps, steps_features)
            except ValueError:
                return None
            # n_outputs is not known yet; the head is small anyway
            # "auto" reads short sequences more ways, in finer patches: for
            # ragged input, whose lengths are not known yet, the most steps
            # and readings it could (an upper bound)
            lengths = np.full(n_samples, 1 if self.variable_length else n_steps)
            network = self._network_of(n_steps, n_features, n_outputs=1, lengths=lengths)
        else:
            n_steps, n_features = self.n_steps_, self.n_step_features_
            if self.variable_length and steps_features is not None:
                n_steps = steps_features[0]  # predictions of any length
            network = self._network
        itemsize = 4 if dtype == np.float32 else 8
        net_steps, net_features = network.input_shape(n_steps, n_features)
        reshaped = (net_steps, net_features) != (n_steps, n_features)
        return plan(  # every case read patch_shifts ways
            network, n_samples * network.patch_shifts, net_steps, itemsize,
            self.chunk_size, fit=reset,
            n_raw_values=n_steps * n_features if reshaped else None,
            converts=dtype not in (np.float32, np.float64),
        )

    def _static_into(self, n_static):
        """Where ``n_static`` static values enter, ``static_into`` resolved
        (the fitted ``static_into_``): "auto" is "initial_state" for a cell
        that can start from given states (measured better where a static
        value changes how the series is read, at about 1.2 times the fit
        time; User guide, Static features) and "head" for the others. None
        without static values: they enter nowhere."""
        if not n_static:
            return None
        if self.static_into != "auto":
            return self.static_into
        return "head" if CELLS[self.cell].initial_gradient is None else "initial_state"

    def _network_of(self, n_steps, n_features, n_outputs, out_activation=None,
                    x_mean=None, x_scale=None, gap_fill=None, n_static=0, lengths=None):
        """The :class:`Network` that the parameters give for raw sequences of
        ``n_steps`` steps of ``n_features`` features, of real steps
        ``lengths`` (None: unknown, a dask collection)."""
        patch_size = resolve_patch_size(self.patch_size, n_steps, lengths, n_features)
        differences = bool(self.differences and n_steps > 1)  # one step: all 0
        # one step has no spread to normalise (every z-score would be 0)
        instance_norm = self.instance_norm if n_steps > 1 else None
        static_into = self._static_into(n_static) or "head"
        if static_into != "head" and CELLS[self.cell].initial_gradient is None:
            raise ValueError(
                f"static_into={self.static_into!r} needs a cell that can start from "
                f"given states (\"lstm\" or \"gru\"); cell={self.cell!r} starts from "
                'zero states. Use static_into="head" with this cell.'
            )
        return Network(
            cell=self.cell,
            hidden=_check_hidden_layer_sizes(self.hidden_layer_sizes),
            n_directions=2 if self.bidirectional else 1,
            pooling=self.pooling,
            patch_size=patch_size,
            differences=differences,
            n_features=n_features * patch_size * widen(
                differences, instance_norm, self.missing
            ),
            n_outputs=n_outputs,
            out_activation=out_activation,
            instance_norm=instance_norm,
            missing=self.missing,
            n_static=n_static,
            static_into=static_into,
            patch_shifts=resolve_patch_shifts(self.patch_shifts, patch_size, n_steps,
                                              n_features, lengths),
            x_mean=x_mean,
            x_scale=x_scale,
            gap_fill=gap_fill,
            activation=self._activation,
        )

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
            (``(n_features, n_steps_i)`` channels-first) or 1-D. A dask array,
            chunked along samples only, is fitted on the current
            ``dask.distributed`` cluster, its blocks kept on the workers
            (docs, user guide "Dask"; ``early_stopping`` is not
            supported there).
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Targets (a dask array too, with a dask X).
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
            # "auto" parameters chosen (cross-validation on small sets): the
            # fit is then that of a copy holding the chosen values, whose
            # fitted state becomes this estimator's
            # worker processes, if the search or the ensemble starts them,
            # end with the fit
            with Workers() as workers:
                model, chosen, search = self._resolved(X, y, sample_weight, workers)
                # a larger regression set beyond the search: the fall-back's
                # check holds out a tenth of the cases from the first member
                held_out = self._held_out(X, y, sample_weight) if search is None else None
                if model.n_ensemble > 1:
                    stops = model._fit_ensemble(X, y, sample_weight, workers, held_out)
                    if held_out is not None:
                        model, search, stops = model._checked(X, y, sample_weight, workers,
                                                              held_out, stops)
                        chosen["alpha"] = model.alpha
                    # the warnings of the networks of the model, not of those
                    # the check discarded
                    _warn_ensemble(stops, model.n_ensemble)
                else:
                    vars(model).pop("estimators_", None)  # a previous ensemble's
                    model._fit(X, y, sample_weight)
            if model is not self:
                self._take_fitted(model)
            self.alpha_, self.pooling_ = chosen["alpha"], chosen["pooling"]
            self.cv_results_ = search
            return self
        except BaseException:
            for name in _VALIDATION_ATTRS:
                vars(self).pop(name, None)
            vars(self).update(kept)
            raise

    def _resolved(self, X, y, sample_weight, workers):
        """The estimator to fit, with every "auto" parameter given a value.

        Each "auto" parameter takes one of the values of the subclass's
        ``_AUTO`` table (its first value where the searched cases hold more
        than ``_AUTO_MAX_VALUES`` values (:data:`_select.AUTO_MAX_VALUES`,
        the regressor's :data:`_select.REGRESSOR_AUTO_MAX_VALUES`), for dask
        collections, and where the folds cannot be made; the earlier choice
        on a warm start). A set of more than :data:`_select.AUTO_MAX_SAMPLES`
        cases is searched on a sample of that many, the regressor's only
        while its cases hold at most ``_AUTO_MAX_STEPS`` patch steps
        (:data:`_select.REGRESSOR_AUTO_MAX_STEPS`).
        ``patch_size``'s candidates depend on the series' shape
        (:func:`_select.patch_candidates`); its first, "auto", is the length
        rule. On smaller sets every combination is scored by K-fold
        cross-validation, one network per candidate and fold (fitted side by
        side as an ensemble's members are, in ``workers`` too), and the best
        is kept.

        Returns
        -------
        model : estimator
            ``self`` when no parameter is "auto", else a shallow copy of it
            with the chosen values.
        chosen : dict
            The values of ``alpha`` and ``pooling`` the fit uses.
        search : dict or None
            ``cv_results_``: ``params`` (the candidates), ``mean_test_score``
            and ``std_test_score`` (over the folds: accuracy for a
            classifier, the negative mean squared error for a regressor),
            ``mean_test_log_loss`` (a
            classifier's tie-breaker) and ``rank_test_score``; None when
            nothing was searched.
        """
        auto = {name: values for name, values in self._AUTO.items()
                if getattr(self, name) == "auto"}
        chosen = {name: getattr(self, name) for name in ("alpha", "pooling")}
        if not auto:
            return self, chosen, None
        # without a search, each takes its first value ("auto" patches: the
        # length rule, which the fit applies)
        search, choice = None, {name: values[0] for name, values in auto.items()}
        # the search draws from its own copy of a RandomState instance: the
        # fit then starts from the same weights as with the same int seed
        random_state = _random_state(copy.deepcopy(self.random_state))
        if self.warm_start and getattr(self, "alpha_", None) is not None:
            choice = {name: getattr(self, name + "_") for name in auto}
        else:
            found = self._search_folds(X, y, sample_weight, random_state)
            if found is not None:
                folds, (_, n_steps, n_features), lengths = found
                if "patch_size" in auto:
                    auto["patch_size"] = patch_candidates(n_steps, n_features, lengths)
                grid = candidate_grid(auto, n_steps, self._WHOLE_ALPHA)
                constant = "alpha" in auto and self._constant is not None
                if len(grid) > 1 or constant:
                    search = self._search(grid, folds, X, y, sample_weight, random_state,
                                          constant, n_steps, workers)
                    choice = search["params"][int(np.argmin(search["rank_test_score"]))]
        chosen.update({k: v for k, v in choice.items() if k in chosen})
        return copy.copy(self).set_params(**choice), chosen, search

    def _search_folds(self, X, y, sample_weight, random_state):
        """The folds of the "auto" search (:func:`search_folds`; of a sample
        of the cases of a larger set: :func:`subsample_cases`), the
        validated sequences' shape ``(n_samples, n_steps, n_features)`` and
        their real steps (``lengths``), or None: too many patch steps
        (``_AUTO_MAX_STEPS``) or values, too few cases, a dask collection,
        multilabel targets, a larger set with a classifier's early stopping.

        The data are validated first, as the fit validates them, so bad
        input fails here with the fit's own error. The folds are drawn over
        distinct cases in the order of their values (``np.unique`` of the
        validated rows): as in the fit, repeating a row is the same as
        weighting it, and neither the row order nor a positive scale of the
        data changes the folds.
        """
        if _dask.is_dask_collection(X) or _dask.is_dask_collection(y):
            return None
        try:
            n_samples = _num_samples(X)
        except TypeError:
            return None  # not rows: the fit's validation says what is wrong
        larger = n_samples > AUTO_MAX_SAMPLES  # searched on a sample
        # no classifier's sample with early stopping: it holds out a part of
        # each fold's training part, too few cases of a sample to keep every
        # class on both sides (digits: 10 classes, 66 rows per fold)
        if n_samples < 2 or (larger and self.early_stopping and is_classifier(self)):
            return None
        probe = copy.copy(self)
        X, static, _, weight, Y, out_activation, _ = probe._validated(X, y, sample_weight)
        if min(len(X), AUTO_MAX_SAMPLES) * X[0].size > self._AUTO_MAX_VALUES:
            return None
        lengths = probe._lengths(X)
        if larger and self._AUTO_MAX_STEPS is not None:  # the fit must afford it
            patch_size = resolve_patch_size(self.patch_size, X.shape[1], lengths, X.shape[2])
            if patch_steps(lengths, patch_size) > self._AUTO_MAX_STEPS:
                return None
        labels = self._stratify(Y, out_activation)
        if is_classifier(self) and labels is None:
            return None  # multilabel: a fold may lose a label
        groups = case_groups(X, static, Y, weight)
        target = Y if labels is None else labels
        # on a larger training set (classifier), the search runs on a sample
        rows, groups = subsample_cases(groups, target, AUTO_MAX_SAMPLES,
                                       labels is not None, random_state)
        folds = search_folds(target[rows], groups, labels is not None, random_state)
        if folds is None:
            return None
        return [(rows[train], rows[test]) for train, test in folds], X.shape, lengths

    def _held_out(self, X, y, sample_weight):
        """The rows of the training part and of the held-out part of the
        fall-back's check (:func:`held_out_cases`), and the held-out rows'
        distinct cases; or None.

        The regressor with ``alpha="auto"`` and an ensemble checks a set of
        more than :data:`AUTO_MAX_SAMPLES` cases that the search skipped (its
        patch steps or values beyond the search's budget): there the network
        had no fall-back to the training mean. Not on a warm start (which
        keeps the earlier choice) nor for dask collections."""
        if (self._constant is None or self.alpha != "auto" or self.n_ensemble < 2
                or (self.warm_start and getattr(self, "alpha_", None) is not None)
                or _dask.is_dask_collection(X) or _dask.is_dask_collection(y)):
            return None
        try:
            if _num_samples(X) <= AUTO_MAX_SAMPLES:
                return None
        except TypeError:
            return None  # not rows: the fit's validation says what is wrong
        X, static, _, weight, Y, _, _ = copy.copy(self)._validated(X, y, sample_weight)
        groups = case_groups(X, static, Y, weight)
        if groups.max() + 1 <= AUTO_MAX_SAMPLES:
            return None  # few distinct cases, repeated
        # drawn from a copy, as the search's: the members' seeds stay the same
        train, test = held_out_cases(groups, _random_state(copy.deepcopy(self.random_state)))
        return train, test, groups[test]

    def _checked(self, X, y, sample_weight, workers, held_out, stops):
        """The fall-back's check of an ensemble fitted with ``held_out``
        (its members' warnings in ``stops``): the model (this estimator, or
        a copy refitted as the constant predictor if the mean won), its
        ``cv_results_`` (:meth:`_held_out_check`; None when a member was
        interrupted, which keeps the ensemble) and its members' warnings."""
        if self._interrupted:
            return self, None, stops
        search = self._held_out_check(X, y, sample_weight, held_out)
        if search["rank_test_score"][-1] != 1:  # the network beat the mean
            return self, search, stops
        model = copy.copy(self).set_params(alpha=CONSTANT_ALPHA)
        vars(model).pop("estimators_")  # fitted afresh, not warm-started from those
        return model, search, model._fit_ensemble(X, y, sample_weight, workers)

    def _held_out_check(self, X, y, sample_weight, held_out):
        """``cv_results_`` of the fall-back's check: the first member
        (fitted on the training part of ``held_out``) and the training
        part's mean (the constant predictor), scored on the held-out part,
        the mean ranked first unless the member beats it by more than one
        standard error of their difference over the held-out cases
        (:func:`best_candidate`)."""
        train, test, cases = held_out
        X, y, sample_weight = _row_arrays(X, y, sample_weight)
        X_test, y_test, w_test = _rows((X, y, sample_weight), test)
        _, y_train, w_train = _rows((X, y, sample_weight), train)
        y_train = np.asarray(y_train, dtype=np.float64).reshape(len(train), -1)
        unit = _power_of_two(y_train)  # squares of huge targets cannot overflow
        scores = held_out_scores(
            np.asarray(y_test, dtype=np.float64) / unit,
            self.estimators_[0].predict(X_test) / unit,
            np.average(y_train / unit, axis=0, weights=w_train), w_test, cases,
        )
        with np.errstate(over="ignore"):  # back in y's units
            mean = scores[:, :, 0].mean(axis=1) * unit**2
        network = {name: getattr(self, name) for name in self._AUTO}
        return {
            "params": [network, {**network, "alpha": CONSTANT_ALPHA}],
            "mean_test_score": mean,
            "std_test_score": np.zeros(2),  # one held-out part, no folds
            "rank_test_score": best_candidate(scores, fallback=1),
        }

    def _search(self, grid, folds, X, y, sample_weight, random_state, constant, n_steps,
                workers):
        """Fit one network per candidate of ``grid`` and fold on the other
        folds (sequences of ``n_steps`` steps; in float32 once standardised,
        whatever the input's dtype, with one activation method:
        :data:`_SEARCH_COMPUTE`; in ``workers`` too, when
        :func:`_processes.worth_processes`) and score it on its fold
        (:meth:`_search_score`); with
        ``constant`` (``alpha="auto"``, the regressor), score the
        constant predictor too (:meth:`_constant`,
        fitted on the same folds: what a network with a penalty of
        :data:`CONSTANT_ALPHA` predicts). Returns ``cv_results_``."""
        X, y, sample_weight = _row_arrays(X, y, sample_weight)
        unit = 1.0
        if not is_classifier(self):  # numbers, scaled by a power of 2 (exact,
            # the fits do not change): squares of huge targets cannot overflow
            y = np.asarray(y).astype(np.float64)
            unit = _power_of_two(y)
            y = y / unit
        seeds = check_random_state(random_state).randint(
            np.iinfo(np.int32).max, size=len(folds)
        )
        base = {**self.get_params(deep=False), "n_ensemble": 1, "warm_start": False,
                "verbose": 0}
        if self.patch_shifts == "auto":  # one reading: K times cheaper; the
            # candidates are compared, each read the same way
            base["patch_shifts"] = 1
        networks, data = [], []
        for candidate in grid:
            for (train, _), seed in zip(folds, seeds):
                network = clone(self).set_params(
                    **{**base, **candidate, "random_state": int(seed)}
                )
                network._compute_dtype, network._activation = _SEARCH_COMPUTE
                networks.append(network)
                data.append(_rows((X, y, sample_weight), train))
        # the search's networks are not the model: their convergence is not
        # the user's concern (their warnings are dropped); a search of much
        # work shares them with worker processes (small fits hold the GIL)
        n_at_once = self._members_at_once(X, len(networks))
        steps_read = [_patches(n.patch_size, n_steps) for n in networks]
        if n_at_once > 1 and worth_processes(steps_read, self.max_iter,
                                             max(len(train) for train, _ in folds)):
            fitted, _ = fit_shared(networks, data, n_at_once, workers)
        else:
            fitted, _ = _fit_members(networks, n_at_once, data)
        if len(fitted) < len(networks) or any(n._interrupted for n in fitted):
            raise KeyboardInterrupt(
                "Interrupted while choosing the 'auto' parameters by "
                "cross-validation: nothing was fitted."
            )
        tests = [test for _ in grid for _, test in folds]
        if constant:  # the fall-back: the constant predictor
            grid = grid + [{**grid[0], "alpha": CONSTANT_ALPHA}]
            for train, test in folds:
                _, y_train, w_train = _rows((X, y, sample_weight), train)
                fitted.append(self._constant().fit(
                    np.zeros((len(train), 1)), y_train, sample_weight=w_train
                ))
                tests.append(test)
        scores = np.array([
            self._search_score(model, *_rows((X, y, sample_weight), test))
            for model, test in zip(fitted, tests)
        ]).reshape(len(grid), len(folds), -1)
        mean = scores.mean(axis=1)
        with np.errstate(over="ignore"):  # a regressor's MSE back in y's units
            search = {
                "params": grid,
                "mean_test_score": mean[:, 0] * unit**2,
                "std_test_score": scores[:, :, 0].std(axis=1) * unit**2,
            }
        if scores.shape[2] > 1:
            search["mean_test_log_loss"] = -mean[:, 1]
        search["rank_test_score"] = best_candidate(
            scores, fallback=len(grid) - 1 if constant else None
        )
        return search

    def _take_fitted(self, model):
        """Make the fitted state of ``model`` (a copy of this estimator with
        other parameter values) this estimator's; the parameters stay."""
        params = self.get_params(deep=False)
        for name in [name for name in vars(self) if name not in params]:
            delattr(self, name)
        vars(self).update({k: v for k, v in vars(model).items() if k not in params})

    def _fit_ensemble(self, X, y, sample_weight, workers, held_out=None):
        """Fit ``n_ensemble`` networks from seeds drawn from ``random_state``.

        Each member is this estimator with one network (``n_ensemble=1``) and
        a seed of its own, fitted on all the data; predictions average their
        probabilities (classifier) or values (regressor). The attributes that
        describe the data (``classes_``, ``n_steps_``, ``x_mean_``, ...) are
        the members' (they are the same in all); the per-network ones stay
        with each member in ``estimators_`` and are summed up on the ensemble
        (:func:`_ensemble_summary`), ``coefs_`` apart. The members'
        ConvergenceWarnings make one (:func:`_warn_ensemble`, which ``fit``
        calls).

        Members are fitted side by side in threads, one BLAS thread each, as
        many at a time as BLAS has threads (:meth:`_members_at_once`), with
        the weights of one after the other on one BLAS thread; or, with
        ``workers`` (:class:`_processes.Workers`) that the search started or
        for much work (:func:`_processes.worth_processes`), in this thread
        and worker processes, which small fits need (they hold the GIL).
        An interrupted member ends the ensemble: the members fitted or
        interrupted so far are kept, those not yet started are not fitted.
        Returns the texts each member would have warned alone, for
        :func:`_warn_ensemble` (the caller warns once).
        With ``held_out`` (the rows of a training and a held-out part, and
        the held-out rows' cases), the first member is fitted on the
        training part only.
        """
        previous = getattr(self, "estimators_", None) if self.warm_start else None
        if previous is not None and len(previous) != self.n_ensemble:
            previous = None
        seeds = _random_state(self.random_state).randint(
            np.iinfo(np.int32).max, size=self.n_ensemble
        )
        params = {**self.get_params(deep=False), "n_ensemble": 1}
        members = []
        for k, seed in enumerate(seeds):
            member = clone(self) if previous is None else previous[k]
            members.append(member.set_params(**{**params, "random_state": int(seed)}))
        n_at_once, data = self._members_at_once(X), [(X, y, sample_weight)] * self.n_ensemble
        if held_out is not None:
            data[0] = _rows(_row_arrays(X, y, sample_weight), held_out[0])
        if n_at_once > 1 and self._worth_processes(X, workers.started):
            members, stops = fit_shared(members, data, n_at_once, workers)
        else:
            members, stops = _fit_members(members, n_at_once, data)
        for name in _NETWORK_ATTRS:
            vars(self).pop(name, None)
        for name, value in vars(members[0]).items():
            if name.endswith("_") and name not in params and name not in _NETWORK_ATTRS:
                setattr(self, name, value)
        for name in _SHARED_PRIVATE_ATTRS:
            if hasattr(members[0], name):
                setattr(self, name, getattr(members[0], name))
        self.estimators_ = members
        vars(self).update(_ensemble_summary(members))
        self._interrupted = any(member._interrupted for member in members)
        return stops

    def _worth_processes(self, X, started):
        """Whether the ensemble's members on ``X`` are worth worker processes
        (:func:`_processes.worth_processes`: the steps each reads, patches of
        its longest sequence as the fit resolves them, the rows, each case
        read ``patch_shifts`` ways, and whether the search ``started`` them)."""
        try:
            flat, steps_features, _ = read_sequences(X, self.data_format)
            n_rows, n_columns = getattr(flat, "shape", None) or _shape_2d(flat)
            if steps_features is None:  # 2-D rows, as the fit reads them
                steps_features = resolve_layout(n_columns, self.n_steps, None)
            n_steps, n_features = steps_features
            lengths = np.full(n_rows, n_steps)
            if self.variable_length and n_rows <= PROCESSES_MAX_ROWS:
                # the real lengths set a small set's patches and readings
                # (beyond PROCESSES_MAX_ROWS rows processes do not pay anyway)
                lengths = sequence_lengths(
                    np.asarray(flat, dtype=np.float64)[:, : n_steps * n_features]
                    .reshape(n_rows, n_steps, n_features),
                    gaps=self.missing == "carry",
                )
        except (TypeError, ValueError, IndexError):
            return False  # the members' validation will say what is wrong
        patch_size = resolve_patch_size(self.patch_size, n_steps, lengths, n_features)
        readings = resolve_patch_shifts(self.patch_shifts, patch_size, n_steps, n_features,
                                        lengths)
        steps_read = [_patches(patch_size, n_steps)] * self.n_ensemble
        return worth_processes(steps_read, self.max_iter, n_rows * readings, started)

    def _members_at_once(self, X, n_fits=None):
        """How many of ``n_fits`` networks on ``X`` (an ensemble's members,
        the "auto" search's) to fit side by side.

        As many as BLAS may use threads (a user's ``threadpool_limits`` of 1,
        as joblib sets in GridSearchCV's workers, means one at a time), and
        no more than the memory holds: each member holds its own copies of
        ``X`` and work arrays. One at a time with ``verbose`` (each network's
        lines then read in order), for dask collections, and while another
        thread holds the control of BLAS's threads (a user's
        ``threadpool_limits`` there): the members could not keep to one
        BLAS thread each (:func:`_optimize.blas_controlled_elsewhere`).
        """
        n = min(self.n_ensemble if n_fits is None else n_fits, blas_threads())
        if (n < 2 or self.verbose or _dask.is_dask_collection(X)
                or blas_controlled_elsewhere()):
            return 1
        try:
            flat, steps_features, _ = read_sequences(X, self.data_format)
        except ValueError:
            return 1  # the members' validation will say what is wrong
        shape = getattr(flat, "shape", None) or _shape_2d(flat)
        if shape is None or len(shape) != 2:
            return 1
        estimate = self._resource_plan(
            shape, getattr(flat, "dtype", None), steps_features, reset=True
        )
        available = available_bytes()
        if estimate is None or (available is not None and n * estimate.total > available):
            return 1
        return n

    def _ensemble(self):
        """The fitted members, or None for a single network."""
        check_is_fitted(self)
        return getattr(self, "estimators_", None)

    def _validated(self, X, y, sample_weight):
        """Validate the training data (sets ``n_features_in_``): the sequences
        ``(n_samples, n_steps, n_features)``, the static values, the weights
        (times the class weights), the encoded targets ``Y`` and the targets'
        attributes; a ValueError names what is wrong."""
        with _SKLEARN_CHECKS:
            X, y, static, static_info = self._validate_X(X, y, reset=True)
            sample_weight = _check_sample_weight(sample_weight, X.reshape(X.shape[0], -1))
            try:
                Y, out_activation, target_attrs = self._encode_targets(y)
            except OverflowError as exc:  # a Python int beyond float64, say
                raise ValueError(f"y holds a number too large for float64 ({exc}).") from exc
            class_factor = self._class_sample_weight(y)
        if not np.isfinite(Y).all():  # strings such as "nan" pass validate_data
            raise ValueError("Input y contains NaN or infinity (as float64).")
        if class_factor is not None:
            sample_weight = sample_weight * class_factor
        check_training_weights(sample_weight)
        return X, static, static_info, sample_weight, Y, out_activation, target_attrs

    def _fit(self, X, y, sample_weight):
        """The body of :meth:`fit`."""
        _check_hidden_layer_sizes(self.hidden_layer_sizes)
        if _dask.is_dask_collection(X):  # prepared and kept on the workers
            with _dask.prepared(self, X, y, sample_weight) as prepared:
                return self._fit_network(*prepared)
        X, static, (static_index, static_on), sample_weight, Y, out_activation, target_attrs = (
            self._validated(X, y, sample_weight)
        )
        n_samples, n_steps, n_features = X.shape
        n_static = 0 if static is None else static.shape[1]
        X2 = X.reshape(n_samples, -1)
        if n_static:  # a case's static values are part of its row
            X2 = np.hstack([X2, static])
        X2, Y, sample_weight = canonical_rows(X2, Y, sample_weight)
        if n_static:
            X2, static = X2[:, : X2.shape[1] - n_static], X2[:, X2.shape[1] - n_static :]
        X = X2.reshape(-1, n_steps, n_features)
        gap_fill = self._gap_fill(X, sample_weight)
        lengths = self._lengths(X)
        bare = self._network_of(n_steps, n_features, Y.shape[1], out_activation,
                                gap_fill=gap_fill, n_static=n_static, lengths=lengths)
        # what the network reads: z-scores, differences, patches (make_patches),
        # each case read patch_shifts ways: one row per reading, each reading a
        # training case of its own (augmentation), of the case's target and weight
        X, lengths = self._network_input(X, bare, lengths)
        readings = bare.patch_shifts
        cases = None  # one row per case
        if readings > 1:
            cases = np.tile(np.arange(len(Y)), readings)
            Y, sample_weight = np.tile(Y, (readings, 1)), np.tile(sample_weight, readings)
            static = None if static is None else np.tile(static, (readings, 1))

        x_mean, x_scale = weighted_mean_scale(X, sample_weight)
        X = clip_to_fitted_range(X, x_mean, x_scale)  # as predict does
        s_mean = s_scale = None
        if n_static:  # standardised as the sequences are
            s_mean, s_scale = weighted_mean_scale(
                static[:, None, :], sample_weight, name="the static features"
            )
            static = clip_to_fitted_range(static[:, None, :], s_mean, s_scale)[:, 0]
        if self.variable_length or readings > 1:  # longest first: the objective's
            # chunks of similar lengths are then slices of X, not copies (chunk_plan)
            order = np.argsort(-lengths, kind="stable")
            X, lengths, Y, sample_weight = (a[order] for a in (X, lengths, Y, sample_weight))
            static = None if static is None else static[order]
            cases = None if cases is None else cases[order]
        Y, scale_attrs = self._scale_targets(Y, sample_weight)
        network = dataclasses.replace(bare, x_mean=x_mean, x_scale=x_scale,
                                      s_mean=s_mean, s_scale=s_scale)
        fitted = dict(n_steps_=n_steps, n_step_features_=n_features,
                      static_features_=static_index, _static_on=static_on,
                      static_mean_=s_mean, static_scale_=s_scale,
                      static_into_=self._static_into(n_static),
                      **target_attrs, **scale_attrs)
        return self._fit_network(X, lengths, Y, sample_weight, network, fitted, static,
                                 cases)

    def _fit_network(self, X, lengths, Y, sample_weight, network, fitted, static=None,
                     cases=None):
        """Fit the weights of ``network`` to prepared data; set the fitted
        attributes.

        ``X, lengths, Y, sample_weight`` are what the objective reads (for a
        dask ``X``, a :class:`_dask.Blocks` and three None); ``network`` is
        the fitted :class:`Network`, with the standardisation; ``fitted``
        holds the attributes that describe the data and are not the
        network's (``n_steps_``, ``n_step_features_``, the targets'); ``static``
        the cases' static values, clipped, in the rows' order; ``cases`` the
        case each row reads (rows of the same case are held out together by
        early stopping; None: one row per case). With a
        ``_compute_dtype``, the objective reads z-scores computed here, in
        ``X``'s dtype, then cast (nothing small against its level is rounded
        away), and weights scaled to a largest of 1, the penalty with them (the
        same objective; weights as large as float64 allows would overflow).
        """
        theta0 = self._initial_theta(network)
        read_as, alpha = network, self.alpha
        if self._compute_dtype is not None:  # the search's networks
            X = ((X - network.x_mean) / network.x_scale).astype(self._compute_dtype)
            read_as = dataclasses.replace(network, x_mean=np.zeros_like(network.x_mean),
                                          x_scale=np.ones_like(network.x_scale))
            top = sample_weight.max()
            sample_weight, alpha = sample_weight / top, alpha / top
        result = self._minimize(theta0, X, lengths, Y, sample_weight, read_as, static, alpha,
                                cases)

        self.patch_size_, self.differences_ = network.patch_size, network.differences
        self.patch_shifts_ = network.patch_shifts
        self.instance_norm_ = network.instance_norm
        self.gap_fill_ = network.gap_fill
        self.x_mean_, self.x_scale_ = network.x_mean, network.x_scale
        for name, value in fitted.items():
            setattr(self, name, value)
        self.n_outputs_ = network.n_outputs
        self.out_activation_ = network.out_activation
        self.coefs_ = {k: v.copy() for k, v in unpack(result.x, network.layout).items()}
        self.n_iter_, self.loss_ = result.n_iter, result.loss
        self.loss_curve_ = result.loss_curve
        self.validation_scores_ = result.validation_scores
        self.best_validation_score_ = result.best_validation_score
        self._network = network
        self._interrupted = result.interrupted
        return self

    def _network_input(self, X, network, lengths=None):
        """What ``network`` reads of sequences ``X`` (:func:`make_patches`),
        and each sequence's length in patch steps, ``ceil(length / p)``:
        ``network.patch_shifts`` readings of every sequence
        (:func:`shift_sequences`), one after the other, ``K * n_samples`` rows.

        The lengths are found on ``X`` itself (unless given: ``self._lengths(X)``
        already), so bad padding is reported in its steps, and once: the
        patches' lengths follow from them. With ``missing="carry"``, the gaps
        are filled first (:func:`carry_forward`).
        """
        if lengths is None:
            lengths = self._lengths(X)
        if network.missing == "carry":
            X = carry_forward(X, lengths, network.gap_fill)
        p = network.patch_size
        readings = [shift_sequences(X, lengths, offset)
                    for offset in shift_offsets(p, network.patch_shifts)]
        patches = [make_patches(Xk, p, network.differences, network.instance_norm)
                   for Xk, _ in readings]
        steps = [-(-lengths_k // p) for _, lengths_k in readings]
        if len(readings) == 1:
            return patches[0], steps[0]
        return np.concatenate(patches), np.concatenate(steps)

    def _lengths(self, X):
        """Real steps per sequence: from the NaN padding, or all steps.
        With ``missing="carry"``, NaN inside the real steps are gaps."""
        if self.variable_length:
            return sequence_lengths(X, gaps=self.missing == "carry")
        return np.full(X.shape[0], X.shape[1])

    def _gap_fill(self, X, sample_weight):
        """With ``missing="carry"``, each raw feature's weighted mean over
        its observed training values (what a series starting with a gap
        reads); else None."""
        if self.missing != "carry":
            return None
        return self._gap_fill_of(weighted_moments(X, sample_weight))

    @staticmethod
    def _gap_fill_of(moments):
        """``gap_fill_`` from the raw features' weighted moments (of all the
        training rows; a fit on dask blocks combines the blocks')."""
        never = np.flatnonzero(moments["weight"] == 0)
        if never.size:
            raise ValueError(
                f"Feature {never[0]} of X has no observed value in the training "
                'data (all NaN): missing="carry" has nothing to carry or to '
                "fill a series starting with a gap with. Drop that feature."
            )
        return mean_scale(moments)[0]

    def _initial_theta(self, network):
        """Warm start from the previous solution, or a fresh draw."""
        layout = network.layout
        if self.warm_start and hasattr(self, "coefs_"):
            previous = {k: v.shape for k, v in self.coefs_.items()}
            wanted = {k: shape for k, (_, _, shape) in layout.items()}
            if previous == wanted:
                return pack(self.coefs_, layout)
        return initialize(layout, network.cell, _random_state(self.random_state))

    def _minimize(self, theta0, X, lengths, Y, sample_weight, network, static, alpha,
                  cases=None):
        """L-BFGS over the flat vector (:func:`fit_lbfgs`), with early
        stopping on a held-out split of the rows when asked; ``alpha`` weighs
        the penalty (the parameter's, or scaled with the weights).

        Returns
        -------
        result : LBFGSResult
        """
        chunk = plan(network, X.shape[0], X.shape[1], X.dtype.itemsize,
                     self.chunk_size).chunk_rows
        monitor = None
        if self.early_stopping:
            train, val = self._validation_split(Y, network.out_activation, cases)
            X_val, lengths_val, Y_val, sw_val = X[val], lengths[val], Y[val], sample_weight[val]
            static_val = None if static is None else static[val]
            # a held-out case read several ways is scored as predict sees it:
            # the mean of its readings' outputs, once
            first, reading_of = None, None
            if cases is not None:
                _, first, reading_of = np.unique(cases[val], return_index=True,
                                                 return_inverse=True)
                Y_val, sw_val = Y_val[first], sw_val[first]

            def score(theta):
                Z = _objective.decision(theta, X_val, network, chunk, lengths_val, static_val)
                if reading_of is not None:
                    Z = self._mean_of_readings(Z, reading_of.ravel(), len(first),
                                               network.out_activation)
                with _SKLEARN_CHECKS:
                    return self._validation_score(Z, Y_val, sw_val, network.out_activation)

            monitor = ValidationMonitor(score)
            X, lengths, Y, sample_weight = (
                X[train], lengths[train], Y[train], sample_weight[train]
            )
            static = None if static is None else static[train]
        ws = {}  # work buffers reused by every evaluation of this fit

        if isinstance(X, _dask.Blocks):  # each block evaluated where it lives
            fun = X.objective(alpha, network, chunk)
        else:
            def fun(theta):
                return _objective.loss_grad(
                    theta, X, Y, sample_weight, alpha, network, chunk, ws, lengths,
                    static,
                )

        # the default max_iter is a budget measured to be enough (docs, How
        # the defaults were chosen; every fit there ran to it): reaching it is
        # how a default fit ends, not a failure to warn about
        default = inspect.signature(type(self)).parameters["max_iter"].default
        return fit_lbfgs(
            fun, theta0, max_iter=self.max_iter, max_fun=self.max_fun, tol=self.tol,
            monitor=monitor, n_iter_no_change=self.n_iter_no_change, verbose=self.verbose,
            warn_at_max_iter=self.max_iter != default,
        )

    def _mean_of_readings(self, Z, case, n_cases, out_activation):
        """The outputs of each case from those of its readings (rows of
        ``Z``, row ``i`` a reading of case ``case[i]``), as ``predict``
        averages them: the mean (the classifier: of the probabilities)."""
        return _mean_by_case(Z, case, n_cases)

    def _validation_split(self, Y, out_activation, cases=None):
        """Indices of the training and held-out rows for early stopping.

        Stratified as the subclass says (by class for single-label
        classification); drawn from ``random_state``, so an int gives the
        same split every time. With ``cases`` (the case each row reads, when
        a case has several readings: ``patch_shifts``; None: one row per
        case), the cases are split and each case's readings go to its side
        together.
        """
        first = None if cases is None else np.unique(cases, return_index=True)[1]
        units = Y if first is None else Y[first]
        n_rows = units.shape[0]
        stratify = self._stratify(units, out_activation)
        n_val = int(np.ceil(self.validation_fraction * n_rows))
        problem = None
        if n_val < 2 or n_rows - n_val < 2:
            problem = f"that leaves {n_val} held-out and {n_rows - n_val} training rows"
        else:
            try:
                with _SKLEARN_CHECKS:
                    train, val = train_test_split(
                        np.arange(n_rows),
                        test_size=self.validation_fraction,
                        stratify=stratify,
                        random_state=_random_state(self.random_state),
                    )
                if first is None:
                    return train, val
                held_out = np.isin(cases, cases[first[val]])
                return np.flatnonzero(~held_out), np.flatnonzero(held_out)
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
        """Head outputs before the output activation, of each reading of the
        sequences (``patch_shifts_`` of them, :meth:`_network_input`): shape
        (patch_shifts_, n_samples, n_outputs). Predictions average the
        readings' outputs (probabilities, values), as an ensemble's."""
        check_is_fitted(self)
        X, _, static, _ = self._validate_X(X, reset=False)
        network = self._network
        n_samples = X.shape[0]
        X, lengths = self._network_input(X, network)
        # finite but absurd values must not overflow the network
        X = clip_to_fitted_range(X, self.x_mean_, self.x_scale_)
        static = self._clip_static(static)
        if static is not None:
            static = np.tile(static, (network.patch_shifts, 1))
        chunk = plan(network, X.shape[0], X.shape[1], X.dtype.itemsize,
                     self.chunk_size, fit=False).chunk_rows
        theta = pack(self.coefs_, network.layout)
        with np.errstate(under="ignore"):  # saturated gates underflow exp; fine
            Z = _objective.decision(theta, X, network, chunk, lengths, static)
        return Z.reshape(network.patch_shifts, n_samples, Z.shape[1])

    def _clip_static(self, static):
        """Static values within the fitted range, as the sequences' values are."""
        if static is None:
            return None
        network = self._network
        return clip_to_fitted_range(static[:, None, :], network.s_mean, network.s_scale)[:, 0]

    # -- attributions -----------------------------------------------------

    def attributions(self, X, target=None, ig_steps=16):
        """How much each value of each sequence moved the prediction.

        Integrated gradients (Sundararajan et al. 2017): each value's change
        from a baseline times the gradient of the explained output,
        averaged along the straight path from the baseline to the sequence.
        The baseline is the series constant at each feature's training mean,
        which the network reads as zeros (its standardisation subtracts that
        mean). Patches, differences and ``instance_norm`` are carried back to
        the raw steps by the chain rule; a z-score's share goes to the value
        it normalises (User guide, "Attributions"). For an ensemble, the
        average of the networks' attributions, which explains the averaged
        prediction. With ``static_features``, the static values run along
        the path too, from their training mean (the baseline, read as 0) to
        their values, and are attributed where the user gave them: for 2-D
        input in their own columns; for 3-D input and lists, in their
        channel, spread evenly over the series' real steps (a static value
        is read once per case, not at a step; summed over the steps, the
        channel gives its whole attribution).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_steps, n_features) or \
                (n_samples, n_columns), or list of array-like
            Sequences, as for ``predict``.
        target : class label, int, array-like of shape (n_samples,) or None, \
                default=None
            What is explained. Classifier: the class (a label of ``classes_``)
            whose probability, a column of ``predict_proba``, is explained;
            None takes each sequence's predicted class (the most probable
            one). Regressor: the index of the output; None means 0, and is
            refused when there are several outputs. An array gives one per
            sequence.
        ig_steps : int, default=16
            Gauss-Legendre nodes over the whole path from the baseline to
            each sequence. Then every piece of the path whose attributions
            miss the output's change over it by more than 1e-6 (times the
            piece's share of the path) is split in two pieces of 8 nodes, the
            worst first, up to 32 splits per sequence: points are spent where
            the network switches state steeply, not everywhere. Measured on
            the default estimators (User guide, Attributions, "Completeness
            and cost"), the refinement decides the cost, not ``ig_steps``:
            16 costs as much as 8 or 32, with the same error.

        Returns
        -------
        attributions : ndarray or list of ndarray
            In the layout of ``X``: shape (n_samples, n_steps, n_features)
            for 3-D input ((n_samples, n_features, n_steps) with
            ``data_format="channels_first"``), (n_samples, n_columns) for 2-D
            input, in its column order; NaN on padding. For a list of
            sequences, a list of arrays, each of its sequence's shape. Per
            sequence, the values sum to ``f(x) - f(baseline)``, the explained
            output's change from the baseline: within 1e-6 (in probability;
            for the regressor, 1e-6 times ``y_scale_``) for every pooling,
            unless the 32 splits run out. Max pooling's kinks (the step of
            a maximum changing along the path) are located on each piece
            and integrated across, piece by piece between them. Measured on
            the default classifier over 40 series: 1.3e-8 at the median,
            2.2e-7 at worst (User guide, Attributions).

        Raises
        ------
        TypeError
            For a dask collection ``X``: compute the rows to explain first.
        ValueError
            For a ``target`` that is not a class (classifier) or an output
            index (regressor), an ``ig_steps`` below 1, or an estimator
            fitted with ``missing="carry"`` (its indicator channels are
            inputs the user did not give: impute first and fit with
            ``missing="error"`` to explain every value).

        Notes
        -----
        Computed in float64 whatever the dtype of ``X``; input beyond the
        fitted range that ``predict`` clips is not clipped here.

        Examples
        --------
        >>> import numpy as np
        >>> from sklearn_gatedmem import LSTMClassifier
        >>> rng = np.random.RandomState(0)
        >>> X = rng.normal(size=(40, 8, 1))
        >>> y = rng.randint(2, size=40)
        >>> X[:, 2, 0] += 3 * (2 * y - 1)  # the label is a bump at step 2
        >>> clf = LSTMClassifier(hidden_layer_sizes=4, n_ensemble=1,
        ...                      random_state=0).fit(X, y)
        >>> A = clf.attributions(X[:5])
        >>> A.shape
        (5, 8, 1)
        >>> int(np.abs(A[:, :, 0]).mean(axis=0).argmax())  # the step that matters
        2
        """
        if _dask.is_dask_collection(X):
            # each case's attributions cost hundreds of predictions: brought
            # into memory, not planned lazily over the cluster's blocks
            raise TypeError(
                "attributions does not take dask collections: compute the rows "
                "to explain first (X.compute(), or a slice of them), and pass "
                "the NumPy array."
            )
        members = self._ensemble() or [self]
        if isinstance(ig_steps, bool) or not isinstance(ig_steps, numbers.Integral) or (
            ig_steps < 1
        ):
            raise ValueError(f"ig_steps must be an int of at least 1, got {ig_steps!r}.")
        _, steps_features, ragged = read_sequences(X, self.data_format)
        X3, _, static, (static_index, static_on) = self._validate_X(X, reset=False)
        if self.missing == "carry":
            # the indicator channels are inputs too: the attributions of the
            # user's values alone would not sum to the change of the output
            raise ValueError(
                'attributions does not support missing="carry": impute the gaps '
                'yourself and fit with missing="error" to explain every value.'
            )
        X3 = X3.astype(np.float64)
        static = self._clip_static(static)
        network = self._network
        lengths = self._lengths(X3)
        thetas = [pack(member.coefs_, network.layout) for member in members]
        p = network.patch_size
        n_patches = -(-X3.shape[1] // p)
        chunk = plan(network, X3.shape[0] * ig_steps, n_patches, 8, self.chunk_size).chunk_rows
        # each reading of the sequences (patch_shifts_) is explained as an
        # ensemble's member is: the prediction averages them
        readings = []
        for offset in shift_offsets(p, network.patch_shifts):
            X_k, lengths_k = shift_sequences(X3, lengths, offset)
            readings.append((lengths - lengths_k, lengths_k,
                             *_attributions.source_channels(X_k, network)))

        def head_outputs():  # of every network and reading, for the default target
            return [_objective.decision(theta, patch_channels(C, p, network.differences),
                                        network, chunk, -(-lengths_k // p), static)
                    for _, lengths_k, C, _ in readings for theta in thetas]

        columns, kind, scale = self._explained(target, X3.shape[0], head_outputs)

        def output(Z, samples):
            return _attributions.explained_output(Z, columns[samples], kind, *scale)

        tol = _attributions.COMPLETENESS_TOL * (scale[0][columns] if scale else 1.0)
        A, A_static = 0.0, 0.0
        for drop, lengths_k, C, baseline in readings:
            with np.errstate(under="ignore"):  # saturated gates underflow exp; fine
                A_k, A_static_k, _ = _attributions.integrated_gradients(
                    C, baseline, lengths_k, network, thetas, output, ig_steps, chunk, tol,
                    static=static,
                )
            A = A + _unshifted(A_k, drop) / len(readings)
            if A_static_k is not None:
                A_static = A_static + A_static_k / len(readings)
        A_static = None if static is None else A_static
        A = _attributions.to_raw_steps(A, X3.shape[2])
        if static is None:
            return _in_user_layout(A, X, lengths, steps_features, ragged, self.data_format)
        if static_on == "columns":  # 2-D: in the static columns
            A = A.reshape(len(A), 1, -1)
            return _insert_static(A, A_static[:, None], static_index)[:, 0]
        # a static channel was read once per case, not at a step: its
        # attribution spread evenly over the series' real steps
        A_static = np.repeat((A_static / lengths[:, None])[:, None], A.shape[1], axis=1)
        A_static[np.isnan(A[:, :, 0])] = np.nan
        A = _insert_static(A, A_static, static_index)
        return _in_user_layout(A, X, lengths, steps_features, ragged, self.data_format)

    def _attribution_baseline(self, X):
        """The baseline series of :meth:`attributions` for the sequences
        ``X`` (as validated, 3-D): each feature's training mean over their
        real steps, NaN on padding."""
        X3, _, static, (index, on) = self._validate_X(X, reset=False)
        _, baseline = _attributions.source_channels(X3.astype(np.float64), self._network)
        pad = np.arange(X3.shape[1]) >= self._lengths(X3)[:, None]
        B = np.broadcast_to(baseline[: X3.shape[2]], X3.shape).copy()
        B[pad] = np.nan
        if static is None:
            return B
        # the static values at their training mean, where the user gave them
        means = np.broadcast_to(self._network.s_mean, static.shape)
        if on == "columns":
            return _insert_static(B.reshape(len(B), 1, -1), means[:, None], index)[:, 0]
        B_static = np.repeat(means[:, None], B.shape[1], axis=1)
        B_static[pad] = np.nan
        return _insert_static(B, B_static, index)

    @abstractmethod
    def _explained(self, target, n_samples, head_outputs):
        """What :meth:`attributions` explains: ``(columns, kind, scale)``,
        the per-sample column (ndarray of int of shape (n_samples,)), the
        ``kind`` and ``(scale, offset)`` of
        :func:`_attributions.explained_output`. ``head_outputs()`` gives
        each network's head outputs on X (for a default target)."""

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        tags.input_tags.allow_nan = self.variable_length or self.missing == "carry"
        return tags


def _random_state(random_state):
    """``check_random_state``, except that None is a generator of its own,
    seeded from the operating system's entropy: a fit with
    ``random_state=None`` differs from run to run as in scikit-learn, but
    leaves NumPy's global random state as it found it (a fit has no side
    effects)."""
    if random_state is None:
        return np.random.RandomState(np.random.SeedSequence().generate_state(1)[0])
    return check_random_state(random_state)


def _power_of_two(y):
    """The power of 2 at or above the largest magnitude of the targets ``y``
    (1.0 when all are 0): dividing by it is exact and keeps their squares
    finite."""
    top = np.abs(y).max()
    return 2.0 ** np.ceil(np.log2(top)) if top > 0 else 1.0


def _row_arrays(*arrays):
    """Arrays whose rows :func:`_rows` takes: lists (ragged sequences) and
    DataFrames as they are, None as None, other array-likes as ndarrays."""
    return tuple(
        a if a is None or isinstance(a, list) or hasattr(a, "iloc") else np.asarray(a)
        for a in arrays
    )


def _rows(arrays, index):
    """The rows ``index`` of each of ``arrays`` (X, y, sample_weight; None
    stays None), whatever their kind: arrays, lists, DataFrames."""
    return tuple(None if a is None else _safe_indexing(a, index) for a in arrays)


def _patches(patch_size, n_steps):
    """The steps a network with ``patch_size`` reads of ``n_steps``."""
    return -(-n_steps // resolve_patch_size(patch_size, n_steps))


def _mean_by_case(Z, case, n_cases):
    """The mean of the rows of ``Z`` (n_rows, n_outputs) of each case:
    ``case[i]`` in ``0 .. n_cases - 1`` is row ``i``'s."""
    sums = np.zeros((n_cases, Z.shape[1]), dtype=np.float64)
    np.add.at(sums, case, Z)
    return sums / np.bincount(case, minlength=n_cases)[:, None]


def _fit_members(members, n_at_once, data):
    """Fit ``members``, each on its ``(X, y, sample_weight)`` of ``data``,
    ``n_at_once`` side by side in threads (see :func:`beside_other_fits`).

    Ctrl-C, or an interrupted member, stops every running member at its best
    weights and cancels those not started. An error in a member is raised
    once all have ended.

    Returns
    -------
    fitted : list of estimator
        The members fitted, in order.
    stops : list of list of str
        For each of them, the texts of the ConvergenceWarnings it would have
        raised alone (:func:`collecting_warnings`), for :func:`_warn_ensemble`.
    """
    if n_at_once == 1:
        fitted, stops = [], []
        for member, args in zip(members, data):
            with collecting_warnings() as kept:
                fitted.append(member.fit(*args))
            stops.append(kept)
            if member._interrupted:
                break
        return fitted, stops
    stop = threading.Event()
    release_blas_control()  # so that the members' threads can set BLAS's threads

    def fit(member, args):
        if stop.is_set():
            return None
        with beside_other_fits(stop), collecting_warnings() as kept:
            member.fit(*args)
        if member._interrupted:
            stop.set()
        return member, kept

    with ThreadPoolExecutor(n_at_once) as pool:
        futures = [pool.submit(fit, member, args) for member, args in zip(members, data)]
        try:
            # waits in short steps: a signal that lands in another thread
            # is then still seen here, within 0.1 s
            while wait(futures, timeout=0.1).not_done:
                pass
        except KeyboardInterrupt:  # Ctrl-C reaches the main thread only
            stop.set()
            wait(futures)
    done = [future.result() for future in futures]
    done = [pair for pair in done if pair is not None]
    return [member for member, _ in done], [kept for _, kept in done]


def _ensemble_summary(members):
    """The per-network fitted attributes of an ensemble, as the ensemble
    sums them up (each network's own stay in ``estimators_``), as forests
    average their trees' ``feature_importances_``.

    ``n_iter_`` is the largest of the networks' iterations; ``loss_`` and
    ``best_validation_score_`` are the means of theirs; ``loss_curve_`` and
    ``validation_scores_`` the means after each iteration, a network that
    stopped earlier counting with its last value. ``coefs_`` has no
    counterpart: averaged weights are no network's.
    """
    def mean_curve(curves):
        curves = [c for c in curves if len(c)]  # no iteration: nothing to carry
        length = max((len(c) for c in curves), default=0)
        return [float(np.mean([c[min(i, len(c) - 1)] for c in curves]))
                for i in range(length)]

    summary = dict(
        n_iter_=max(member.n_iter_ for member in members),
        loss_=float(np.mean([member.loss_ for member in members])),
        loss_curve_=mean_curve([member.loss_curve_ for member in members]),
        validation_scores_=None, best_validation_score_=None,
    )
    if members[0].validation_scores_ is not None:  # early stopping
        summary["validation_scores_"] = mean_curve(
            [member.validation_scores_ for member in members]
        )
        summary["best_validation_score_"] = float(
            np.mean([member.best_validation_score_ for member in members])
        )
    return summary


def _warn_ensemble(stops, n_networks):
    """One ConvergenceWarning for an ensemble's fits, if any stopped short.

    ``stops`` holds, for each fitted member, the texts it would have warned
    alone (:func:`_fit_members`). Texts that differ only in their numbers
    are one kind (each network's own iteration, say): each kind is given
    once, with the members it concerns, as the first of them worded it.
    """
    kinds = {}
    for k, texts in enumerate(stops):
        for text in texts:
            key = re.sub(r"[0-9.e+-]+", "#", text)
            kinds.setdefault(key, ([], text))[0].append(k)
    if not kinds:
        return
    stopped = {k for members, _ in kinds.values() for k in members}
    parts = [
        f"estimators_[{', '.join(map(str, members))}]: {text}"
        for members, text in kinds.values()
    ]
    warnings.warn(
        f"{len(stopped)} of the {n_networks} networks stopped short of convergence. "
        + " ".join(parts),
        ConvergenceWarning,
        stacklevel=4,  # _warn_ensemble, fit, _fit_context: the user's call
    )


def _count_static(static_features):
    """How many features ``static_features`` names, roughly (before it is
    validated): for the memory estimate only."""
    if static_features is None:
        return 0
    values = np.asarray(static_features)
    if values.dtype.kind == "b":
        return int(values.sum())
    return int(values.size)
def _shape_2d(X):
    """The shape of a 2-D list or array-like, else None."""
    try:
        shape = np.shape(X)
    except (ValueError, TypeError):
        # array-likes that refuse NumPy's functions but give an array
        # (scikit-learn's _NotAnArray): the same shape as that array, so that
        # an ensemble fits them as it fits the array (_members_at_once)
        try:
            shape = np.asarray(X).shape if hasattr(X, "__array__") else ()
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


def _unshifted(A, drop):
    """Attributions of shifted sequences (:func:`shift_sequences`, each
    having dropped ``drop`` first steps) at the steps of the sequences they
    read: 0 on the dropped steps, NaN on padding."""
    t = np.arange(A.shape[1])
    source = t[None, :] - drop[:, None]
    out = np.take_along_axis(A, np.clip(source, 0, None)[:, :, None], axis=1)
    out[source < 0] = 0.0
    return out


def _insert_static(A, A_static, index):
    """``A`` (n_samples, n_steps, n_features) with ``A_static``
    (n_samples, n_steps, n_static) put back at the positions ``index`` of
    the static channels (or, with one step, columns) in the user's layout."""
    n_total = A.shape[2] + A_static.shape[2]
    out = np.empty(A.shape[:2] + (n_total,))
    series = np.ones(n_total, dtype=bool)
    series[index] = False
    out[:, :, series] = A
    out[:, :, index] = A_static
    return out


def _in_user_layout(A, X, lengths, steps_features, ragged, data_format):
    """Attributions ``A`` of shape (n_samples, n_steps, n_features),
    channels-last, in the layout the user gave ``X`` in (see
    :meth:`BaseLSTM.attributions`)."""
    channels_first = data_format == "channels_first"
    if ragged:
        out = []
        for a, length, seq in zip(A, lengths, X):
            a = a[:length]
            if np.ndim(seq) == 1:
                out.append(a[:, 0])
            else:
                out.append(a.T if channels_first else a)
        return out
    if steps_features is not None:  # 3-D
        return A.transpose(0, 2, 1) if channels_first else A
    return A.reshape(A.shape[0], -1)  # 2-D: step-major columns, as X
