"""LSTMClassifier and LSTMRegressor: thin layers over :class:`BaseLSTM`."""

import numpy as np
from scipy.special import expit, log_softmax, softmax
from sklearn.base import ClassifierMixin, RegressorMixin
from sklearn.dummy import DummyRegressor
from sklearn.metrics import r2_score
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.class_weight import compute_sample_weight
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import check_is_fitted, column_or_1d

from . import _cells, _dask
from ._base import BaseLSTM, _mean_by_case
from ._input import check_label_types, mean_scale, weighted_moments
from ._select import (
    REGRESSOR_AUTO_MAX_STEPS,
    REGRESSOR_AUTO_MAX_VALUES,
    classification_fold_scores,
    regression_fold_score,
)

_SHARED_DOC = """
    Each sample is a sequence. The network unrolls ``cell`` over its steps
    (or over patches of steps, see ``patch_size``), stacks
    ``len(hidden_layer_sizes)`` recurrent layers, and reads what ``pooling``
    says of the last layer's outputs with a dense head. All weights form one
    vector fitted by SciPy's L-BFGS-B on the full training set, as
    :class:`~sklearn.neural_network.MLPClassifier` does with ``solver="lbfgs"``.

    Input features are standardised internally (per step-feature, weighted mean
    and standard deviation over samples and steps of the training data), so
    unscaled data does not saturate the gates.

    Parameters
    ----------
    hidden_layer_sizes : int or tuple of int, default=(32,)
        Hidden units of each stacked recurrent layer. One layer of 32 units is
        a quick, strong baseline for sequences of 10 to 300 steps: it holds a
        few thousand weights, so full-batch L-BFGS converges in a few hundred
        iterations at modest cost; add a second layer for hierarchical
        patterns.
    cell : {%(cells)s}, default="lstm"
        ``"lstm"``: the standard LSTM with a forget gate, as ``torch.nn.LSTM``
        (gates i, f, g, o; ``c_t = f*c_{t-1} + i*g``; ``h_t = o*tanh(c_t)``).
        ``"gated_memory"``: a cell where only the memory is carried
        (``m_t = f*m_{t-1} + r*tanh(M_in x_t + b_in)``; ``out_t = o*m_t``).
        ``"gru"``: the gated recurrent unit, as ``torch.nn.GRU`` (gates r, z,
        n; ``n = tanh(W_n x + b_in + r*(U_n h + b_hn))``; ``h_t = (1-z)*n +
        z*h_{t-1}``). Each cell's equations are in its module under
        :mod:`sklearn_gatedmem._cells`.
    n_steps : int, default=None
        How a 2-D ``X`` of width ``n_columns`` is read: ``None`` makes each row
        a univariate sequence of ``n_columns`` steps; ``k`` makes each row ``k``
        steps of ``n_columns / k`` features, step-major (``X[i, t*d + j]`` is
        step ``t``, feature ``j``). 3-D ``X`` of shape
        (n_samples, n_steps, n_features) is read as is (see ``data_format``).
    data_format : {"channels_last", "channels_first"}, default="channels_last"
        How 3-D arrays and lists of sequences are read (Keras's names).
        ``"channels_last"``: ``(n_samples, n_steps, n_features)``, batch first
        as in PyTorch and Keras, and lists of ``(n_steps_i, n_features)``
        arrays. ``"channels_first"``: ``(n_samples, n_features, n_steps)``, the
        ``(n_cases, n_channels, n_timepoints)`` of aeon and sktime, and their
        unequal-length lists of ``(n_channels, n_timepoints_i)`` arrays. 2-D
        input does not depend on it. Fit warns when 3-D input reads as one step
        of several features (an aeon array ``(n, 1, n_timepoints)`` read
        channels-last): there would be no recurrence.
    patch_size : "auto", int or None, default="auto"
        Read each sequence in patches of this many consecutive steps: a patch
        of ``p`` steps of ``d`` features is one step of ``p * d`` values for
        the network (see :func:`sklearn_gatedmem.make_patches`, which gives
        exactly what the network reads; the last, partial patch of each
        sequence repeats its last real step). Long series then unroll over a
        few dozen steps, which is much faster and, measured on the
        development data, more accurate. "auto" uses
        ``ceil(n_steps / 32)``: sequences of up to 32 steps are read step by
        step, longer ones over at most 32 patches; ``n_steps`` is the longest
        training sequence's, or, on training sets of at most 100 cases and
        150,000 values of sequences of different lengths, the upper quartile
        of their lengths (three in four read over at most 32 patches: PLAID
        cut to 60 cases, 0.61 to 0.68). None reads every step.%(patch_auto)s
    patch_shifts : "auto" or int, default="auto"
        Read each sequence ``K`` ways, the patch grid started ``round(k *
        patch_size_ / K)`` steps later for ``k = 0 .. K - 1`` (those first
        steps dropped; a sequence keeps at least its last step). The
        network is fitted on the ``K`` readings of every training case, each
        a case of its own with the case's target and weight (augmentation by
        window slicing, as Le Guennec et al. 2016, by less than a patch), and
        a prediction averages the outputs (probabilities, values) of the
        ``K`` readings of its sequence, as an ensemble averages its networks.
        The fit and the prediction cost about ``K`` times as much. At most
        ``patch_size_`` readings, and 1 where steps are not patched or the
        whole series is one step. "auto" is 5 on training sets of at most
        100 cases and 150,000 values (real steps x features), where one
        reading of the patches fits few cases worst (the development sets cut
        to 60 cases: PigCVP 0.26 to 0.39, PLAID 0.52 to 0.61, the motif task
        0.86 to 0.91); 2 on larger ones whose reading is cheap, at most 5,000
        patch steps over all sequences and 250,000 values (at full size:
        PLAID 0.76 to 0.81, PigCVP 0.41 to 0.55, Tecator's RMSE 0.86 to
        0.81); 1 otherwise and for a dask ``X`` (where an int above 1 is
        refused). The networks of the "auto" search read each sequence
        once. 1 turns it off. ``patch_shifts_`` says what was used.
    bidirectional : bool, default=False
        Run each layer forwards and backwards over every sequence and
        concatenate both directions' outputs at each step (as
        ``torch.nn.LSTM(bidirectional=True)``).
    differences : bool, default=%(differences)s
        Also give the network each feature's first difference ``x_t -
        x_{t-1}`` (0 at the first step), as derivative DTW and MultiRocket
        do: twice the features per step. Ignored for sequences of one step.
        %(differences_why)s
    instance_norm : {"append", "replace"} or None, default="append"
        Also give the network each sequence's features z-normalised over its
        own real steps (``(x_t - mean) / std``, a constant feature reading 0):
        "append" adds them to the raw values (twice the features per step),
        "replace" reads them alone, None reads the raw values only. The raw
        values, standardised over the whole training set, keep each series'
        level and amplitude; the z-scores give its shape at any level, as
        1-NN baselines and UCR practice read series (and as RevIN's instance
        normalisation, Kim et al. 2022, does for forecasting). "append" gives
        the network both: on the development series it was as accurate as
        the raw values alone, or more, on every real set (PLAID 0.40 to 0.71),
        and as the z-scores alone on all but Tecator, where "replace" is best
        (docs, How the defaults were chosen). Ignored for sequences of one step.
    pooling : {"last", "mean", "max", "auto"}, default=%(pooling)s
        What the head reads of the last layer: its output at each sequence's
        last real step (for a bidirectional layer, each direction's final
        state), or the mean or the maximum over the real steps. ``"auto"``:
        chosen from the data, as ``alpha="auto"`` says, among %(pooling_auto)s.
        %(pooling_why)s
    variable_length : bool, default=False
        Accept sequences of different lengths: lists of sequences (in the
        layout of ``data_format``), or arrays padded at the end with NaN
        (whole steps of NaN; see :func:`sklearn_gatedmem.pad_sequences`). Each
        sequence is read at its own last real step; padded steps cost nothing,
        and a sequence's prediction depends neither on the padding nor on the
        other sequences of the batch. At predict time, 3-D and list input may
        have any number of steps, fewer or more than any seen in fit (2-D
        input keeps the fitted width, ``n_features_in_``). NaN anywhere else is
        a ValueError. When False, NaN and lists of unequal sequences are
        rejected.
    static_features : array-like of int, array-like of bool, array-like of str \
            or None, default=None
        What is read once per case instead of at every step (a patient's age,
        a machine's type), as ``categorical_features`` of
        :class:`~sklearn.ensemble.HistGradientBoostingClassifier` names
        columns. For 2-D ``X`` of shape (n_samples, n_columns): column
        indices, a boolean mask of shape (n_columns,), or column names when
        ``X`` is a DataFrame; the other columns are the sequences (read as
        ``n_steps`` says). For 3-D ``X`` and lists of sequences: channel
        indices (or a mask of shape (n_features,)), each of which must be
        constant over every series (NaN on padding aside), else a
        ValueError. Predict takes the same kind of input as fit. The
        ``n_static`` values, standardised by their weighted training mean and
        standard deviation (``static_mean_``, ``static_scale_``), enter where
        ``static_into`` says.
    static_into : {"auto", "head", "initial_state", "both"}, default="auto"
        Where the static values enter the network. ``"auto"``:
        ``"initial_state"`` for the cells that can start from given states
        ("lstm", "gru"), ``"head"`` for "gated_memory"; the choice is
        ``static_into_``. ``"head"``: beside the
        pooled state, ``z = r W_head + s W_static + b``
        (``coefs_["head.W_static"]`` of shape (n_static, ``n_outputs_``));
        a static value then shifts the output. ``"initial_state"``: through
        a learned map to the first layer's initial states, ``h_0 = tanh(s
        W_h0 + b_h0)`` (and ``c_0`` likewise for the lstm; per direction;
        ``coefs_["h0.W"]`` of shape (n_static, n_directions * n_states *
        hidden_layer_sizes[0])), as conditional RNNs do; a static value then
        changes how the series is read. ``"both"``: both. The initial state
        needs cell "lstm" or "gru". Measured (docs, Static features and
        missing values): where a binary static value says which half of the
        series counts, accuracy 0.72 with the head, 0.91 with the initial
        state, at about 1.2 times the fit time: hence "auto".
    missing : {"error", "carry"}, default="error"
        What NaN inside the real steps of a sequence means. ``"error"``: it
        is refused (a ValueError naming this option). ``"carry"``: a missing
        value; the network reads the last observed value of that feature in
        the same sequence (the feature's weighted training mean, ``gap_fill_``,
        before the first one), plus one indicator channel per feature, 1
        where the value was imputed and 0 where observed: the simple half of
        GRU-D (Che et al. 2018). A step may miss some features or all of
        them. With ``variable_length=True``, trailing all-NaN steps are still
        padding, not gaps; without it, they are gaps, carried too. The
        network then reads ``2 * n_features`` raw values per step
        (``carry_forward`` in ``sklearn_gatedmem._input``), before
        ``instance_norm``, ``differences`` and patches. On a generated task
        with 10 %% of the values missing at random, accuracy stayed within a
        few points of the complete data (docs, Static features and missing
        values).
    alpha : float or "auto", default=%(alpha)s
        L2 penalty on weights (not biases), scaled as in MLP:
        ``alpha / 2 * ||W||^2 / sum(sample_weight)``. %(alpha_why)s
        ``"auto"`` (and every other "auto" of ``alpha``, ``pooling`` and
        ``patch_size``): on training sets of at most 100
        cases and %(max_values)s values (cases x steps x features), each candidate
        (%(alpha_auto)s; with the ``pooling`` and patch ones) is scored by
        3-fold cross-validation on
        the training data, one network per candidate and fold (accuracy, then
        log-loss, for the classifier; the mean squared error for the
        regressor)%(constant)s. The best is
        refitted on all the data; ``alpha_``, ``pooling_``, ``patch_size_``
        and ``cv_results_`` say what was chosen and why. Each network candidate
        costs about one more fit of three networks (on two thirds of the
        data). %(sample_search)sOn larger sets, for dask collections, where the folds cannot
        be made (fewer than two classes of two cases or more, multilabel
        targets, fewer than 6 cases) and on a warm start (which keeps the
        earlier choice), nothing is searched and "auto" is the first
        candidate. A number (a pooling, a patch size) turns it off.
    max_iter : int, default=%(max_iter)s
        Maximum number of L-BFGS iterations. %(max_iter_why)s Reaching
        this default is how a default fit ends (on the development data every
        fit ran to it; ``tol=1e-6`` changed nothing): it is a budget chosen by
        measurement, as a forest's number of trees is, not a failure, so it
        is no warning, which would advise more iterations against that
        measurement. Reaching any other ``max_iter`` raises a
        ConvergenceWarning, as in :class:`~sklearn.neural_network.MLPClassifier`:
        that budget was not measured here. Stopping for any other reason short of convergence
        (``max_fun``, a failed line search, an interrupt, an overflow) always
        warns. An ensemble (``n_ensemble > 1``) raises at most one
        ConvergenceWarning per fit, saying how many of its networks stopped
        short and why, and which (``estimators_[k]``).
    tol : float, default=1e-4
        L-BFGS stops when the largest gradient component is below ``tol``.
    max_fun : int, default=15000
        Maximum number of loss+gradient evaluations.
    n_ensemble : int, default=3
        Networks fitted, each from its own seed drawn from ``random_state``,
        whose predicted probabilities (classifier) or values (regressor) are
        averaged. It costs ``n_ensemble`` fits and predictions; on the
        development data, 3 networks gained up to 8 points of accuracy over
        one, and 5 at most 1 more than 3, at 5/3 of the cost (docs, How
        the defaults were chosen). 1 fits a single network, with ``coefs_`` on
        the estimator itself. The networks are fitted side by side in
        threads, one BLAS thread each, as many at once as BLAS has threads
        (two 32-unit networks on 2 cores took 0.6 of the time of one after
        the other), with the weights of one after the other on one BLAS
        thread; one at a time with ``verbose``, under a BLAS limit of 1 (as
        in joblib's workers), on Dask arrays, or when memory is short.
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the training data, score it after
        every L-BFGS iteration, stop when the score has not improved for
        ``n_iter_no_change`` iterations, and keep the best weights. A case
        read several ways (``patch_shifts``) is held out with all its
        readings and scored once, on their mean output, as ``predict``
        averages them.
    validation_fraction : float, default=0.1
        Share of the training data held out when ``early_stopping=True``.
    n_iter_no_change : int, default=10
        Iterations without improvement of the validation score before
        stopping, when ``early_stopping=True``.
    chunk_size : int or "auto", default="auto"
        Samples per chunk when evaluating the full-batch objective and
        predictions. The result does not depend on it (beyond rounding); it
        bounds memory. "auto" keeps the work arrays within a fixed budget.
    random_state : int, RandomState instance or None, default=None
        Draws the initial weights, the ensemble's seeds, the early-stopping
        split and the folds of an "auto" search. An int makes ``fit``
        reproducible bit for bit; the fitted model also does not depend on the
        order of the rows. None draws from a generator seeded by the operating
        system, not from NumPy's global random state, which a fit leaves as it
        found it.
    warm_start : bool, default=False
        Start from the previous solution when the shapes agree.
    verbose : int, default=0
        Print one line per L-BFGS iteration when positive."""

_CELL_CHOICES = ", ".join(f'"{name}"' for name in _cells.CELLS)

_SHARED_ATTRIBUTES = """
    n_features_in_ : int
        Width of ``X`` seen in fit, flattened (``n_steps * n_features``).
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Column names, when ``X`` was a DataFrame with string column names.
    n_steps_ : int
        Steps per sequence resolved in fit.
    n_step_features_ : int
        Features per step resolved in fit (without the static ones).
    patch_size_ : int
        Steps per patch that the network reads (1: no patching); what
        ``predict`` uses.
    patch_shifts_ : int
        Readings of each sequence (``patch_shifts``) that the network was
        fitted on and whose outputs ``predict`` averages (1: the sequence as
        it is).
    differences_ : bool
        Whether the network reads the first differences too.
    instance_norm_ : {"append", "replace"} or None
        How the network reads each sequence's z-normalised features (None
        for sequences of one step).
    static_features_ : ndarray of shape (n_static,), int, or None
        The indices of the static columns (2-D input) or channels (3-D and
        list input), sorted; None without ``static_features``.
    static_mean_, static_scale_ : ndarray of shape (n_static,) or None
        The standardisation of the static values.
    static_into_ : {"head", "initial_state", "both"} or None
        Where the static values enter (``static_into``, "auto" resolved);
        None without ``static_features``.
    gap_fill_ : ndarray of shape (``n_step_features_``,) or None
        With ``missing="carry"``, the value a series starting with a gap
        reads: each feature's weighted mean over its observed training
        values. None with ``missing="error"``.
    x_mean_, x_scale_ : ndarray of shape (n_inputs,)
        The internal standardisation of each value of a step that the network
        reads, ``n_inputs = patch_size_ * n_step_features_ * (1 +
        differences_) * (2 if instance_norm_ == "append" else 1) * (2 if
        missing == "carry" else 1)`` (see :func:`sklearn_gatedmem.make_patches`).
    estimators_ : list of estimator
        With ``n_ensemble > 1``, the fitted members, each an estimator of one
        network with all the attributes below of its own (``coefs_``,
        ``loss_curve_``, ...), as in :class:`~sklearn.ensemble.BaggingClassifier`.
        Absent with ``n_ensemble=1``.
    coefs_ : dict of ndarray
        Fitted weights by name (``"W0.0"``, ``"U0.0"``, ``"b0.0"``, ...,
        ``"head.W"``, ``"head.b"``; see :mod:`sklearn_gatedmem._params`),
        acting on standardised inputs. One network only: absent with
        ``n_ensemble > 1``, since averaged weights are no network's; each
        member has its own, ``estimators_[k].coefs_``.
    n_outputs_ : int
        Width of the head.
    out_activation_ : str
        ``"identity"``, ``"logistic"`` or ``"softmax"``.
    n_iter_ : int
        L-BFGS iterations run; for an ensemble, the largest of its networks'
        (``n_iter_ == max_iter`` then says that at least one network used
        the whole budget).
    loss_ : float
        Objective at the kept weights (loss plus penalty); for an ensemble,
        the mean of its networks' (each fits its own objective; that of the
        averaged prediction is not computed).
    loss_curve_ : list of float
        Objective after each L-BFGS iteration; for an ensemble, the mean of
        its networks' after each iteration, a network that stopped earlier
        counting with its last value (``n_iter_`` values).
    validation_scores_ : list of float or None
        With ``early_stopping=True``, the held-out score (accuracy or R^2)
        after each iteration; for an ensemble, the mean of its networks'
        (each scores its own network on its own held-out rows), a network
        that stopped earlier counting with its last score. Else None.
    best_validation_score_ : float or None
        With ``early_stopping=True``, the held-out score of the kept
        weights; for an ensemble, the mean of its networks'. Else None.
    alpha_ : float
        The penalty fitted: ``alpha``, or the value ``alpha="auto"`` chose
        (the regressor's 1e4: the constant predictor).
    pooling_ : str
        The pooling fitted: ``pooling``, or the one ``"auto"`` chose.
    cv_results_ : dict or None
        The search of the "auto" parameters, in the manner of
        :class:`~sklearn.model_selection.GridSearchCV`: ``params`` (the
        candidates, the regressor's constant predictor last), ``mean_test_score`` and
        ``std_test_score`` over the folds (accuracy, or the negative mean
        squared error in the squared units of y),
        ``mean_test_log_loss`` (classifier) and ``rank_test_score``. For
        the regressor's check of a larger set beyond the search, the first
        member's (fitted on nine tenths of the cases) and the training
        mean's scores on the tenth held out (``std_test_score`` 0: one
        part, no folds). None when nothing was searched or checked."""


class _TorchExport:
    """``to_torch`` for every fitted estimator; ``torch_state_dict`` for
    those that a plain ``torch.nn.LSTM`` or ``torch.nn.GRU`` can hold."""

    def to_torch(self):
        """The fitted network as a ``torch.nn.Module`` that takes raw input.

        ``forward(x)`` takes a float tensor: a 3-D batch-first batch in the
        layout of fit (``data_format``; with ``variable_length=True``, any
        number of steps, padded with NaN at the end), or a 2-D batch
        ``(n_samples, n_features_in_)`` as in fit. It returns what
        ``predict_proba`` (classifier) or ``predict`` (regressor) returns, in
        float64, to rounding. Standardisation, patching, pooling,
        bidirectional layers and the cell (any of ``cell``'s values) are
        built in; the weights are trainable ``nn.Parameter`` s acting on
        standardised inputs, as ``coefs_``. The module works with
        ``torch.jit.trace``. PyTorch is imported only here.

        Returns
        -------
        module : torch.nn.Module
            A ``sklearn_gatedmem._torch.SequenceNetwork``, float64.

        Raises
        ------
        ImportError
            Without PyTorch; the message says how to install it.
        """
        check_is_fitted(self)
        from ._torch import to_torch

        return to_torch(self)

    def torch_state_dict(self):
        """Weights for ``torch.nn.LSTM`` (or ``nn.GRU``) plus ``torch.nn.Linear``.

        The internal standardisation of ``X`` (and of ``y`` for the regressor)
        is folded into the first layer (and into the head), so the modules take
        raw inputs. Keys are those of a module holding an ``nn.LSTM`` (for
        ``cell="gru"``, an ``nn.GRU``) named ``lstm`` (``batch_first=True``,
        ``num_layers=len(hidden_layer_sizes)`` when the sizes are equal,
        ``bidirectional`` as here) and an ``nn.Linear`` named ``head``;
        PyTorch's two biases of a gate are one parameter here, given in
        ``bias_ih`` with zeros in ``bias_hh`` (except the gru's ``b_hn``,
        which is in ``bias_hh``). The head reads
        what ``pooling`` says: for ``"last"``, ``output[:, -1]`` of a
        unidirectional module, or ``h_n`` of the last layer's two directions
        concatenated. The head's output is the logit (classifier) or the
        prediction (regressor). The module reads what the network reads:
        ``make_patches(X, patch_size_, differences_, instance_norm_)`` of
        channels-last batches ``(n_samples, n_steps, n_features)``, whatever
        ``data_format`` was (with ``patch_size_ == 1``, no differences and no
        instance_norm, ``X`` itself). For any other
        network (``gated_memory``, layers of different sizes, an ensemble), or
        to have every step built in, use :meth:`to_torch`.

        Returns
        -------
        state : dict of str to ndarray
            ``"lstm.weight_ih_l0"`` of shape (4 * hidden, n_features) (3 *
            hidden for the gru), ...,
            ``"head.weight"`` of shape (n_outputs, hidden), ``"head.bias"``.
        """
        if self._ensemble():
            raise ValueError(
                f"This estimator averages {len(self.estimators_)} networks "
                "(n_ensemble > 1), which no single torch.nn.LSTM holds: export "
                "each member, estimator.estimators_[k].torch_state_dict(), use "
                "to_torch(), which averages them, or fit with n_ensemble=1."
            )
        network = self._network  # the fitted one, not set_params' since
        cell = network.cell_spec
        problem = None
        if cell.torch_module is None:
            problem = (
                f"it was fitted with cell={cell.name!r}, which no torch.nn "
                "module implements"
            )
        elif network.n_static:  # into the head or the initial states
            problem = (
                "it reads static_features (static_into), which a "
                "torch.nn.Linear over the recurrent output does not"
            )
        elif len(set(network.hidden)) > 1:
            problem = (
                f"its layers have different sizes, hidden_layer_sizes="
                f"{network.hidden}, and torch.nn.{cell.torch_module} has one hidden size"
            )
        if problem is not None:
            raise ValueError(
                f"torch_state_dict needs a network that a plain torch.nn "
                f"recurrent module holds, but {problem}. Use to_torch(), which "
                "builds any fitted network as a torch.nn.Module."
            )
        state = {}
        for name in self.coefs_:
            if not name.startswith("W"):
                continue
            layer, d = name[1:].split(".")
            W, U, b_ih, b_hh = cell.torch_weights(
                *(self.coefs_[k + name[1:]] for k in "WUb")
            )
            if layer == "0":  # fold x_std = (x - mean) / scale into layer 0
                b_ih = b_ih - (self.x_mean_ / self.x_scale_) @ W
                W = W / self.x_scale_[:, None]
            suffix = f"l{layer}" + ("_reverse" if d == "1" else "")
            state[f"lstm.weight_ih_{suffix}"] = np.ascontiguousarray(W.T)
            state[f"lstm.weight_hh_{suffix}"] = np.ascontiguousarray(U.T)
            state[f"lstm.bias_ih_{suffix}"] = np.array(b_ih)
            state[f"lstm.bias_hh_{suffix}"] = np.array(b_hh)
        weight, bias = self.coefs_["head.W"].T, self.coefs_["head.b"]
        y_scale = getattr(self, "y_scale_", None)
        if y_scale is not None:
            weight, bias = weight * y_scale[:, None], bias * y_scale + self.y_mean_
        state["head.weight"] = np.ascontiguousarray(weight)
        state["head.bias"] = np.array(bias)
        return state


class _DaskScore:
    """``score`` on dask arrays too, for both estimators (before scikit-learn's
    mixin in the bases, whose ``score`` it calls for any other input)."""

    def score(self, X, y, sample_weight=None):
        """The estimator's score: accuracy for the classifier (the weighted
        share of samples whose labels are all right), R^2 averaged over
        outputs for the regressor.

        As scikit-learn's ``score``; for a dask ``X`` the predictions are made
        block by block and the score reduced with dask (y and sample_weight
        dask or NumPy), then computed.

        Parameters
        ----------
        X : array-like or dask array of shape (n_samples, n_steps, n_features) \
                or (n_samples, n_columns), or list of array-like
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        score : float
        """
        if _dask.is_dask_collection(X):
            return _dask.score(self, X, y, sample_weight)
        return super().score(X, y, sample_weight)


class LSTMClassifier(_DaskScore, ClassifierMixin, _TorchExport, BaseLSTM):
    __doc__ = (
        """Recurrent classifier: an LSTM fitted by full-batch L-BFGS.

    Binary, multiclass (softmax head) and multilabel (logistic head) targets;
    the loss is the weighted mean log loss.
    """
        + _SHARED_DOC % dict(
            cells=_CELL_CHOICES,
            differences="False",
            differences_why=(
                "Off for the classifier: on the development data it lost\n"
                "        accuracy on as many sets as it gained (docs, How the defaults\n"
                "        were chosen)."
            ),
            pooling='"max"',
            max_iter="100",
            max_iter_why=(
                "The classifier's default: on the development\n"
                "        series, 3 networks of 100 iterations were as accurate as 3 of 200,\n"
                "        or more, at half the cost (docs, How the defaults were chosen)."
            ),
            alpha='"auto"',
            alpha_auto="1.0 and 0.1",
            max_values="20,000",
            sample_search=(
                "The classifier searches a larger training set on a\n"
                "        stratified sample of 100 of its cases (if they hold at most 20,000\n"
                "        values) and fits the choice on all of them\n"
                "        (not with ``early_stopping=True``).\n"
                "        "
            ),
            patch_auto=(
                "\n        For the classifier, \"auto\" also weighs the whole series read in one\n"
                "        step (a one-hidden-layer network) against that rule, by the\n"
                "        cross-validation that ``alpha`` describes (training sets of at most\n"
                "        100 cases and 20,000 values; series of at most 128 values): on\n"
                "        few short series it generalises better (digits cut to 30 cases:\n"
                "        0.79 against 0.60). ``patch_size_`` says what was read."
            ),
            pooling_auto='"max", the only candidate (the others lost every\n'
                         "        development set)",
            constant=(
                ". The class frequencies are not a candidate (since\n"
                "        session 13): on generated classes of 30 to 60 cases they won the\n"
                "        folds by chance in 5 draws of 32 (a training set unbalanced by the\n"
                "        draw), each time 0.17 to 0.60 of accuracy below the network; on\n"
                "        unbalanced classes that nothing predicts they were better (docs,\n"
                "        How the defaults were chosen)"
            ),
            alpha_why=(
                "The classifier's default is\n"
                "        \"auto\"; on larger sets 1.0: on the development series it was as\n"
                "        accurate or more than 1e-4 on every set (Coffee 1.0 against 0.98),\n"
                "        and it holds tables too. On few cases 0.1 is sometimes better\n"
                "        (Trace cut to 30 cases: 0.967 against 0.917)."
            ),
            pooling_why=(
                "The classifier's default: the strongest response of each unit\n"
                "        anywhere in the series, which measured best on the\n"
                "        development series (docs, How the defaults were chosen)."
            ),
        )
        + """
    class_weight : dict, "balanced" or None, default=None
        Weights of the classes, multiplied into ``sample_weight``; not for
        multilabel targets.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels (for multilabel, the label indices)."""
        + _SHARED_ATTRIBUTES
        + """

    See Also
    --------
    LSTMRegressor : The regressor with the same network.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_gatedmem import LSTMClassifier
    >>> rng = np.random.RandomState(0)
    >>> X = rng.normal(size=(60, 12, 2))  # 60 sequences of 12 steps, 2 features
    >>> y = (X[:, 0, 0] > 0).astype(int)  # decided by the first step
    >>> clf = LSTMClassifier(hidden_layer_sizes=8, random_state=0).fit(X, y)
    >>> clf.predict(X[:3]).shape
    (3,)
    """
    )

    _parameter_constraints = {
        **BaseLSTM._parameter_constraints,
        "class_weight": [dict, StrOptions({"balanced"}), None],
    }

    # "auto": the candidates of the search on small sets (_select), the
    # fixed default first (no constant predictor: see the alpha docstring)
    # "auto" patches: the length rule, or the whole series of short ones
    # (_select.patch_candidates)
    _AUTO = {"alpha": (1.0, 0.1), "patch_size": ("auto", "whole")}
    # a larger training set is searched on a sample of AUTO_MAX_SAMPLES
    # cases, whatever its patch steps (_AUTO_MAX_STEPS stays None)

    def _search_score(self, network, X, y, sample_weight):
        """A search network's (accuracy, -log-loss) on a held-out fold."""
        return classification_fold_scores(network.predict_proba(X), network.classes_,
                                          y, sample_weight)

    def __init__(
        self,
        hidden_layer_sizes=(32,),
        cell="lstm",
        n_steps=None,
        patch_size="auto",
        patch_shifts="auto",
        differences=False,
        instance_norm="append",
        data_format="channels_last",
        bidirectional=False,
        pooling="max",
        variable_length=False,
        static_features=None,
        static_into="auto",
        missing="error",
        alpha="auto",
        max_iter=100,
        tol=1e-4,
        max_fun=15000,
        n_ensemble=3,
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=10,
        chunk_size="auto",
        class_weight=None,
        random_state=None,
        warm_start=False,
        verbose=0,
    ):
        super().__init__(
            hidden_layer_sizes=hidden_layer_sizes,
            cell=cell,
            n_steps=n_steps,
            patch_size=patch_size,
            patch_shifts=patch_shifts,
            differences=differences,
            instance_norm=instance_norm,
            data_format=data_format,
            bidirectional=bidirectional,
            pooling=pooling,
            variable_length=variable_length,
            static_features=static_features,
            static_into=static_into,
            missing=missing,
            alpha=alpha,
            max_iter=max_iter,
            tol=tol,
            max_fun=max_fun,
            n_ensemble=n_ensemble,
            early_stopping=early_stopping,
            validation_fraction=validation_fraction,
            n_iter_no_change=n_iter_no_change,
            chunk_size=chunk_size,
            random_state=random_state,
            warm_start=warm_start,
            verbose=verbose,
        )
        self.class_weight = class_weight

    def _encode_targets(self, y):
        check_label_types(y)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        check_classification_targets(y)
        binarizer = LabelBinarizer().fit(y)
        if len(binarizer.classes_) < 2:
            raise ValueError(
                "LSTMClassifier needs samples of at least 2 classes in the data, "
                f"but y contains only one class: {binarizer.classes_[0]!r}."
            )
        if (
            self.warm_start
            and hasattr(self, "classes_")
            and not np.array_equal(self.classes_, binarizer.classes_)
        ):
            raise ValueError(
                "warm_start needs y to have the same classes as in the previous "
                f"fit: {self.classes_!r}, got {binarizer.classes_!r}."
            )
        Y = binarizer.transform(y).astype(np.float64)
        multiclass = binarizer.y_type_ == "multiclass"
        attrs = {"classes_": binarizer.classes_, "_label_binarizer": binarizer}
        return Y, "softmax" if multiclass else "logistic", attrs

    def _class_sample_weight(self, y):
        if self.class_weight is None:
            return None
        if type_of_target(y) == "multilabel-indicator":
            raise ValueError("class_weight is not supported for multilabel y.")
        return compute_sample_weight(self.class_weight, y)

    def _stratify(self, Y, out_activation):
        if out_activation == "softmax":
            return Y.argmax(axis=1)
        if Y.shape[1] == 1:
            return Y[:, 0]
        return None  # multilabel: not stratified, as in MLP

    @staticmethod
    def _decide(Z, out_activation):
        """The decision rule on head outputs ``Z``: the class index (the argmax
        of a softmax head, ``z > 0`` for one logistic output), or for
        multilabel the label indicators ``z > 0``. ``predict`` and early
        stopping both use it."""
        if out_activation == "softmax":
            return Z.argmax(axis=1)
        if Z.shape[1] == 1:
            return (Z[:, 0] > 0).astype(int)
        return Z > 0

    def _mean_of_readings(self, Z, case, n_cases, out_activation):
        """Decision values of the mean of the readings' probabilities, what
        ``predict`` decides on: the mean softmax, or the mean logistic less
        1/2 (:meth:`_decide` reads ``z > 0``)."""
        if out_activation == "softmax":
            return _mean_by_case(softmax(Z, axis=1), case, n_cases)
        return _mean_by_case(expit(Z), case, n_cases) - 0.5

    def _validation_score(self, Z, Y, sample_weight, out_activation):
        """Accuracy (exact match of all labels), as ``score`` and MLP's
        ``_score``, on the encoded targets ``Y``: labels map one to one to
        their encoding, which the decision rule reads back once centred on 0
        (one-hot or 0/1 minus 1/2)."""
        if not np.isfinite(Z).all():
            return np.nan
        hit = self._decide(Z, out_activation) == self._decide(Y - 0.5, out_activation)
        if hit.ndim == 2:
            hit = hit.all(axis=1)
        return float(np.average(hit, weights=sample_weight))

    def predict(self, X):
        """Predict class labels.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_steps, n_features) or \
                (n_samples, n_columns), or list of array-like
            Sequences, in the layout seen in fit (``data_format``); with
            ``variable_length=True``, 3-D arrays and lists of sequences of
            any number of steps.

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_classes)
            Labels; an indicator matrix for multilabel targets.
        """
        if _dask.is_dask_collection(X):  # lazily, block by block
            return _dask.map_rows(self, "predict", X)
        members = self._ensemble()  # first: it checks that the model is fitted
        multilabel = self._label_binarizer.y_type_ == "multilabel-indicator"
        if members or self.patch_shifts_ > 1:  # the class of the averaged probabilities
            P = self.predict_proba(X)
            if multilabel:
                return (P > 0.5).astype(self._label_binarizer.classes_.dtype)
            return self.classes_[np.argmax(P, axis=1)]
        decided = self._decide(self._decision(X)[0], self.out_activation_)
        if multilabel:
            return decided.astype(self._label_binarizer.classes_.dtype)
        return self.classes_[decided]

    def predict_proba(self, X):
        """Probability estimates.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_steps, n_features) or \
                (n_samples, n_columns), or list of array-like
            Sequences, in the layout seen in fit (``data_format``); with
            ``variable_length=True``, 3-D arrays and lists of sequences of
            any number of steps.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Class probabilities, in the order of ``classes_``. For multilabel
            targets, each label's probability, strictly inside (0, 1).
        """
        if _dask.is_dask_collection(X):  # lazily, block by block
            return _dask.map_rows(self, "predict_proba", X)
        members = self._ensemble()
        if members:
            return np.mean([member.predict_proba(X) for member in members], axis=0)
        return np.mean([self._proba(Z) for Z in self._decision(X)], axis=0)

    def _proba(self, Z):
        """Probabilities from head outputs ``Z``."""
        if self.out_activation_ == "softmax":
            return softmax(Z, axis=1)
        if Z.shape[1] == 1:
            return np.hstack([expit(-Z), expit(Z)])
        # a saturated logistic rounds to 0 or 1; the model never claims certainty
        eps = np.finfo(np.float64).eps
        return np.clip(expit(Z), eps, 1 - eps)

    def predict_log_proba(self, X):
        """Logarithm of :meth:`predict_proba`, computed stably.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_steps, n_features) or \
                (n_samples, n_columns), or list of array-like
            Sequences, in the layout seen in fit (``data_format``); with
            ``variable_length=True``, 3-D arrays and lists of sequences of
            any number of steps.

        Returns
        -------
        log_proba : ndarray of shape (n_samples, n_classes)
        """
        if _dask.is_dask_collection(X):  # lazily, block by block
            return _dask.map_rows(self, "predict_log_proba", X)
        if self._ensemble() or self.patch_shifts_ > 1:
            with np.errstate(divide="ignore"):  # a probability of 0 is -inf
                return np.log(self.predict_proba(X))
        Z = self._decision(X)[0]
        if self.out_activation_ == "softmax":
            return log_softmax(Z, axis=1)
        if Z.shape[1] == 1:
            return -np.logaddexp(0, np.hstack([Z, -Z]))
        return np.log(self._proba(Z))  # multilabel: clipped, as predict_proba

    def _explained(self, target, n_samples, head_outputs):
        if self.out_activation_ == "softmax":
            kind = "softmax"
        else:
            kind = "binary" if self.n_outputs_ == 1 else "multilabel"
        if target is None:  # the predicted class: the most probable one
            P = np.mean([self._proba(Z) for Z in head_outputs()], axis=0)
            return P.argmax(axis=1), kind, ()
        labels = _per_sample(target, n_samples, "target")
        columns = np.empty(n_samples, dtype=np.intp)
        index = {label: k for k, label in enumerate(self.classes_.tolist())}
        for i, label in enumerate(labels.tolist()):
            if label not in index:
                raise ValueError(
                    f"target={label!r} is not a class of this classifier; "
                    f"classes_ is {self.classes_.tolist()!r}."
                )
            columns[i] = index[label]
        return columns, kind, ()

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


class LSTMRegressor(_DaskScore, RegressorMixin, _TorchExport, BaseLSTM):
    __doc__ = (
        """Recurrent regressor: an LSTM fitted by full-batch L-BFGS.

    One or several outputs (identity head); the loss is half the weighted mean
    squared error. Targets are standardised internally, as inputs are, and
    predictions are mapped back.
    """
        + _SHARED_DOC % dict(
            cells=_CELL_CHOICES,
            differences="True",
            differences_why=(
                "On for the regressor: a quantity read off the shape of a\n"
                "        series (the development spectra) needs the slopes, and the\n"
                "        raw values keep its level (forecasting)."
            ),
            pooling='"auto"',
            max_iter="200",
            max_iter_why=(
                "The regressor's default: on the development\n"
                "        spectra 100 iterations were not enough (Tecator RMSE 2.4 against\n"
                "        1.3 for one network)."
            ),
            alpha='"auto"',
            alpha_auto="1e-4; 1.0 for the whole series read in one step",
            max_values="150,000",
            sample_search=(
                "The regressor searches a larger training set on a\n"
                "        sample of 100 of its cases (as the classifier does) while its cases\n"
                "        hold at most 8,000 patch steps (each case's steps over the patch\n"
                "        length, summed; since session 13): there the search's cost is\n"
                "        affordable, and without its fall-back the network fitted the\n"
                "        noise of 150 to 300 cases to an RMSE 15 to 30 % above the mean's.\n"
                "        A larger set beyond the search still has the fall-back (since\n"
                "        session 14; an ensemble, ``n_ensemble > 1``): the first network\n"
                "        learns from nine tenths of the cases, and the training mean is\n"
                "        kept unless that network beats it on the tenth held out by more\n"
                "        than one standard error (``cv_results_`` holds both scores); noise\n"
                "        in 600 and 1,000 cases was fitted to an RMSE of 1.285 against the\n"
                "        mean's 1.04 and 1.05 without it.\n"
                "        "
            ),
            patch_auto=(
                "\n        \"auto\" also weighs the whole series read in one step (a\n"
                "        one-hidden-layer network), with a penalty of 1.0 when ``alpha`` is\n"
                "        \"auto\", against that rule, by the cross-validation that ``alpha``\n"
                "        describes (training sets of at most 100 cases and 150,000 values;\n"
                "        series of at most 128 values): on few spectra it is a ridge-like\n"
                "        reading (Tecator cut to 30 cases: RMSE 1.81 against 4.72 for the\n"
                "        rule alone). ``patch_size_`` says what was read."
            ),
            pooling_auto='"last" (the first) and "mean"',
            constant=(
                ", beside the constant\n"
                "        predictor (the training mean, which a penalty of 1e4 gives: the\n"
                "        fall-back, kept unless a network beats it by more than one standard\n"
                "        error over the folds)"
            ),
            alpha_why=(
                "The regressor's default is\n"
                "        \"auto\": on small development sets a fixed 1e-4 let noise be\n"
                "        learnt (RMSE 1.46 where the mean has 1.11) and the state after\n"
                "        the last step lost the spectra (Tecator cut to 30 cases: 8.0\n"
                "        against 1.8 for \"auto\", which reads each spectrum whole); docs,\n"
                "        How the defaults were chosen.\n"
                "        A fixed penalty stronger than 1e-4 lost the spectra read in patches."
            ),
            pooling_why=(
                "The regressor's default is \"auto\"; on large sets\n"
                "        \"last\", the state after the whole series, what forecasting\n"
                "        reads."
            ),
        )
        + """

    Attributes
    ----------
    y_mean_, y_scale_ : ndarray of shape (`n_outputs_`,)
        The internal standardisation of the targets."""
        + _SHARED_ATTRIBUTES
        + """

    See Also
    --------
    LSTMClassifier : The classifier with the same network.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_gatedmem import LSTMRegressor
    >>> rng = np.random.RandomState(0)
    >>> X = rng.normal(size=(60, 10, 1))
    >>> y = X[:, :, 0].sum(axis=1)  # a running sum needs memory
    >>> reg = LSTMRegressor(hidden_layer_sizes=8, random_state=0).fit(X, y)
    >>> reg.predict(X[:3]).shape
    (3,)
    """
    )

    # "auto": the candidates of the search on small sets (_select), the
    # fixed defaults first; with alpha="auto" the training mean too
    _AUTO = {"alpha": (1e-4,), "pooling": ("last", "mean"), "patch_size": ("auto", "whole")}
    # the whole series read at once is a perceptron over every value: it
    # needs a ridge's penalty (Tecator cut to 30 cases: RMSE 1.81 at 1.0,
    # 3.68 at 1e-4)
    _WHOLE_ALPHA = 1.0
    # the search is the regressor's fall-back to the training mean too: it
    # runs on longer series than the classifier's (_select)
    _AUTO_MAX_VALUES = REGRESSOR_AUTO_MAX_VALUES
    # a larger set is searched on a sample of 100 cases only up to this many
    # patch steps (the fit's budget): on a sample the training mean could win
    # where the whole set teaches a network (the adding task cut to 60 cases
    # kept the mean in one draw of 5), but without the search the network
    # fitted the noise of 150 to 300 cases (_select)
    _AUTO_MAX_STEPS = REGRESSOR_AUTO_MAX_STEPS

    @staticmethod
    def _constant():
        return DummyRegressor()

    def _search_score(self, network, X, y, sample_weight):
        """A search network's negative mean squared error on a held-out fold
        (as RidgeCV's; R^2 is ill-conditioned on a fold of nearly equal targets)."""
        return regression_fold_score(y, network.predict(X), sample_weight)

    def __init__(
        self,
        hidden_layer_sizes=(32,),
        cell="lstm",
        n_steps=None,
        patch_size="auto",
        patch_shifts="auto",
        differences=True,
        instance_norm="append",
        data_format="channels_last",
        bidirectional=False,
        pooling="auto",
        variable_length=False,
        static_features=None,
        static_into="auto",
        missing="error",
        alpha="auto",
        max_iter=200,
        tol=1e-4,
        max_fun=15000,
        n_ensemble=3,
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=10,
        chunk_size="auto",
        random_state=None,
        warm_start=False,
        verbose=0,
    ):
        super().__init__(
            hidden_layer_sizes=hidden_layer_sizes,
            cell=cell,
            n_steps=n_steps,
            patch_size=patch_size,
            patch_shifts=patch_shifts,
            differences=differences,
            instance_norm=instance_norm,
            data_format=data_format,
            bidirectional=bidirectional,
            pooling=pooling,
            variable_length=variable_length,
            static_features=static_features,
            static_into=static_into,
            missing=missing,
            alpha=alpha,
            max_iter=max_iter,
            tol=tol,
            max_fun=max_fun,
            n_ensemble=n_ensemble,
            early_stopping=early_stopping,
            validation_fraction=validation_fraction,
            n_iter_no_change=n_iter_no_change,
            chunk_size=chunk_size,
            random_state=random_state,
            warm_start=warm_start,
            verbose=verbose,
        )

    def _encode_targets(self, y):
        y = np.asarray(y, dtype=np.float64)
        Y = y.reshape(-1, 1) if y.ndim == 1 else y
        return Y, "identity", {"_y_ndim": y.ndim}

    def _target_moments(self, Y, sample_weight):
        return weighted_moments(Y[:, None, :], sample_weight, name="y")

    def _scale_targets(self, Y, sample_weight, moments=None):
        # standardised as the inputs are, mapped back by predict; from the
        # moments, this is weighted_mean_scale(Y[:, None, :], ...) bit for bit
        if moments is None:
            moments = self._target_moments(Y, sample_weight)
        y_mean, y_scale = mean_scale(moments, name="y")
        return (Y - y_mean) / y_scale, {"y_mean_": y_mean, "y_scale_": y_scale}

    def _validation_score(self, Z, Y, sample_weight, out_activation):
        """R^2, as ``score`` and MLP's ``_score``; per-output R^2 does not
        change under the standardisation of the targets."""
        if not np.isfinite(Z).all():
            return np.nan
        return float(r2_score(Y, Z, sample_weight=sample_weight))

    def predict(self, X):
        """Predict targets.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_steps, n_features) or \
                (n_samples, n_columns), or list of array-like
            Sequences, in the layout seen in fit (``data_format``); with
            ``variable_length=True``, 3-D arrays and lists of sequences of
            any number of steps.

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_outputs)
        """
        if _dask.is_dask_collection(X):  # lazily, block by block
            return _dask.map_rows(self, "predict", X)
        members = self._ensemble()
        if members:
            return np.mean([member.predict(X) for member in members], axis=0)
        Y = self._decision(X).mean(axis=0) * self.y_scale_ + self.y_mean_
        return Y[:, 0] if self._y_ndim == 1 else Y

    def _explained(self, target, n_samples, head_outputs):
        n_outputs = self.n_outputs_
        if target is None:
            if n_outputs > 1:
                raise ValueError(
                    f"This regressor has {n_outputs} outputs: pass target=k, the "
                    f"index (0 to {n_outputs - 1}) of the output to explain."
                )
            target = 0
        columns = _per_sample(target, n_samples, "target")
        if columns.dtype.kind not in "iu" or np.any((columns < 0) | (columns >= n_outputs)):
            raise ValueError(
                f"target must be an output index, an int from 0 to {n_outputs - 1} "
                f"(or one per sample), got {target!r}."
            )
        return columns.astype(np.intp), "identity", (self.y_scale_, self.y_mean_)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        return tags


def _per_sample(target, n_samples, name):
    """``target``, one value or one per sample, as an array of shape (n_samples,)."""
    values = np.asarray(target)
    if values.ndim == 0:
        return np.full(n_samples, values.item(), dtype=values.dtype)
    if values.shape != (n_samples,):
        raise ValueError(
            f"{name} must be one value or one per sample (shape ({n_samples},)), "
            f"got an array of shape {values.shape}."
        )
    return values
