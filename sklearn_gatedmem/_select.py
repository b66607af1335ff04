"""Parameters chosen from the training data: ``alpha``, ``pooling`` and
``patch_size`` set to "auto".

An "auto" parameter is chosen among a few candidate values (the estimator's
``_AUTO`` table, its first value the fixed default) by K-fold
cross-validation on the training data, as scikit-learn's ``RidgeCV`` and
``LogisticRegressionCV`` choose their penalty: one network per candidate and
fold, scored on the held-out fold, the best candidate refitted on all the
data. The search runs on small training sets only (at most
:data:`AUTO_MAX_SAMPLES` cases and :data:`AUTO_MAX_VALUES` values; the
regressor's, its fall-back to the training mean, up to
:data:`REGRESSOR_AUTO_MAX_VALUES` values, and on more cases up to
:data:`REGRESSOR_AUTO_MAX_STEPS` patch steps), where
one fixed setting fits worst and a fit is cheap, or (the classifier) on a
sample of :data:`AUTO_MAX_SAMPLES` cases of a larger one
(:func:`subsample_cases`); otherwise, and for dask collections, "auto" is
the first candidate. A larger regression set beyond the search checks its
fall-back on held-out cases instead (:data:`HELD_OUT_SHARE`,
:func:`held_out_cases`, :func:`held_out_scores`).

This module holds the pure parts (the grid, the folds, the choice); the
estimators' ``_resolved`` runs the fits.
"""

import itertools

import numpy as np
from sklearn.model_selection import (
    KFold,
    ShuffleSplit,
    StratifiedKFold,
    StratifiedShuffleSplit,
)

from ._input import resolve_patch_size

#: Training sets of at most this many cases are searched; larger ones take
#: the first candidate, or (the classifier) are searched on a sample of this
#: many cases. The search costs most where it is needed least: on
#: Tecator's 172 cases it found a better reading (RMSE 0.68 against 0.86) but
#: took the fit from 14.5 s to 85 s, beyond a quick baseline's budget (docs,
#: "How the defaults were chosen").
AUTO_MAX_SAMPLES = 100

#: ... and of at most this many values (cases x steps x features): the search
#: multiplies the fit's cost (each candidate is about one more fit), which
#: series of thousands of steps cannot afford within a quick baseline's budget.
AUTO_MAX_VALUES = 20_000

#: The regressor's limit of values (session 12): its search is also its
#: fall-back to the training mean, and a long small set beyond 20,000 values
#: went without it. Generated, 80 cases of 300 steps x 2 channels (5 draws):
#: a weak signal, RMSE 1.175 unsearched against the mean's 1.056, searched
#: 1.056; a learnable one 1.608 unsearched, 1.582 searched; each fit at most
#: 5.9 s with AVX-512, 7.3 s with AVX2 emulated (docs, "How the defaults were
#: chosen"). Long series offer 2 network
#: candidates (the poolings), so the search costs about 3 fits.
REGRESSOR_AUTO_MAX_VALUES = 150_000

#: The regressor searches a training set of more than AUTO_MAX_SAMPLES cases
#: too (session 13), on a sample of AUTO_MAX_SAMPLES of them as the
#: classifier does, when its cases hold at most this many patch steps (each
#: case's steps over the patch length, summed): without the search it had no
#: fall-back, and a weak signal in 150 to 300 cases of 40 steps was fitted to
#: an RMSE 15 to 30 % above the training mean's. The search of a sample adds
#: 1.5 to 3.5 s to a fit whose own cost grows with the patch steps: a
#: default fit of the generated adding task (80 steps, patches of 3) took
#: 11.2 s with AVX2 emulated at 296 cases (7,992 patch steps; 8.8 s with
#: AVX-512), 12.8 s at 185 (read twice; 10.0 s), and takes 13.6 s unsearched
#: at 400 (10,800), where a search would pass the 15-s budget (docs, "How
#: the defaults were chosen").
REGRESSOR_AUTO_MAX_STEPS = 8_000

#: The share of the distinct cases that a larger regression set beyond the
#: search (more than AUTO_MAX_SAMPLES cases and REGRESSOR_AUTO_MAX_STEPS
#: patch steps, or REGRESSOR_AUTO_MAX_VALUES values) holds out from its
#: ensemble's first member (session 14): that member's score there, against
#: the training mean's, is the fall-back's check (:func:`held_out_cases`).
#: Unchecked, a weak signal in 600 and 1,000 cases of 40 steps was fitted to
#: an RMSE of 1.285 where the mean has 1.039 and 1.054; checked, the mean.
#: The cost: the first member learns from nine tenths of the cases (the
#: adding task at its full 400 cases, 4 seeds: RMSE 0.167 -> 0.173; a
#: twentieth held out cost the same).
HELD_OUT_SHARE = 0.1

#: The whole series is a candidate patch (one step, read at once: the network
#: is then a one-hidden-layer perceptron) for series of at most this many
#: values (steps x features): the step's weights grow with its width.
WHOLE_MAX_VALUES = 128

#: The penalty of the constant predictor, the regressor's fall-back: with it
#: the weights vanish and the head's biases (not penalised) predict the
#: training mean. The search scores that predictor itself (scikit-learn's
#: DummyRegressor) rather than fitting it. The classifier has no fall-back
#: (session 13): the class frequencies won the folds of few cases by chance,
#: where the network beat 1-NN ED (docs, "How the defaults were chosen").
CONSTANT_ALPHA = 1e4

#: Folds of the search (fewer when a class has fewer cases).
N_FOLDS = 3


def patch_candidates(n_steps, n_features, lengths=None):
    """The candidate patch lengths of ``patch_size="auto"``: the length rule's
    (:func:`~sklearn_gatedmem._input.resolve_patch_size`), and the whole
    series (one step) when it is longer and short enough
    (:data:`WHOLE_MAX_VALUES`).

    Finer patches of long series, a candidate until session 11, are not
    offered: the fit reads each case of a small training set in several
    shifts of the rule's patches (``patch_shifts``), which gave Trace cut to
    30 and 60 cases what the finer patches gave, without their search cost.

    Parameters
    ----------
    n_steps, n_features : int
        The (longest) training sequence's steps and its features.
    lengths : ndarray of shape (n_samples,), default=None
        The real steps of each training sequence (the rule reads them).

    Returns
    -------
    patch_sizes : tuple of int
        The rule's first.
    """
    rule = resolve_patch_size("auto", n_steps, lengths, n_features)
    if rule < n_steps and n_steps * n_features <= WHOLE_MAX_VALUES:
        return (rule, n_steps)
    return (rule,)


def candidate_grid(options, n_steps=None, whole_alpha=None):
    """Every combination of the candidate values, the first values first.

    A candidate that reads the sequences in one step (``patch_size`` of
    ``n_steps`` or more) is kept with the first ``pooling`` only: pooling one
    step gives the same network whatever its kind; with ``whole_alpha``, it
    takes that penalty instead of the ``alpha`` options (once).

    Parameters
    ----------
    options : dict of str to tuple
        Each "auto" parameter's candidate values, its fixed default first.
    n_steps : int, default=None
        The training sequences' steps (needed with ``patch_size`` options).
    whole_alpha : float, default=None
        The penalty of the one-step reading; used only with ``alpha``
        options (a fixed alpha is every reading's).

    Returns
    -------
    grid : list of dict
        One dict of parameter values per candidate; ``grid[0]`` holds the
        fixed defaults.
    """
    names = list(options)
    grid = [dict(zip(names, values)) for values in itertools.product(*options.values())]
    if "patch_size" not in options:
        return grid
    first = {name: options[name][0] for name in ("pooling", "alpha") if name in options}
    if whole_alpha is None:
        first.pop("alpha", None)
    kept = []
    for c in grid:
        if c["patch_size"] < n_steps:
            kept.append(c)
        elif all(c[name] == value for name, value in first.items()):
            kept.append({**c, "alpha": whole_alpha} if "alpha" in first else c)
    return kept


def subsample_cases(groups, y, n_cases, stratified, random_state):
    """The rows of at most ``n_cases`` distinct cases, for the search.

    A training set of more cases is searched on a random sample of them
    (stratified by class when every class has two), drawn from
    ``random_state``; a smaller one whole (then nothing is drawn). The
    sample's choice stands for the whole set's: on short series it is the
    reading (the length rule or the whole series), which does not turn on
    the number of cases the way the penalty's strength does.

    Parameters
    ----------
    groups : ndarray of shape (n_samples,), int
        Each row's distinct case, numbered 0 to n_distinct - 1; -1 for a row
        of zero weight (see :func:`search_folds`).
    y : ndarray of shape (n_samples,) or (n_samples, n_outputs)
        The targets (labels when ``stratified``).
    n_cases : int
    stratified : bool
    random_state : RandomState instance

    Returns
    -------
    rows : ndarray of int
        The rows of the sampled cases (every row when there are at most
        ``n_cases`` cases).
    groups : ndarray of int of shape (len(rows),)
        Their cases, numbered again from 0 (a sample leaves out the rows of
        zero weight; without one, -1 is kept).
    """
    case_ids, first = np.unique(groups, return_index=True)
    case_ids, first = case_ids[case_ids >= 0], first[case_ids >= 0]
    if len(case_ids) <= n_cases:
        return np.arange(len(groups)), np.asarray(groups)
    labels = y[first] if stratified else None
    # stratified where both parts can hold every class (two cases of each,
    # and as many left out as there are classes), else a plain draw
    counts = np.unique(labels, return_counts=True)[1] if stratified else None
    splitter = (
        StratifiedShuffleSplit
        if stratified and counts.min() >= 2 and len(first) - n_cases >= len(counts)
        else ShuffleSplit
    )
    chosen, _ = next(splitter(1, train_size=n_cases, random_state=random_state).split(
        np.zeros(len(first)), labels
    ))
    rows = np.flatnonzero(np.isin(groups, case_ids[chosen]))
    return rows, np.unique(groups[rows], return_inverse=True)[1].ravel()


def case_groups(X, static, Y, sample_weight):
    """Each row's distinct case, numbered in an order of its content.

    Identical ``(x, y)`` rows share a number, and the numbers follow the
    content, not the row order: folds drawn over them do not depend on the
    order of the rows, and a repeated row is the same as a weighted one (as
    in the fit, ``canonical_rows``). NaN (padding, gaps) equals NaN.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_steps, n_features)
        The validated sequences.
    static : ndarray of shape (n_samples, n_static) or None
    Y : ndarray of shape (n_samples, n_outputs)
        The encoded targets.
    sample_weight : ndarray of shape (n_samples,)

    Returns
    -------
    groups : ndarray of shape (n_samples,), int
        0 to n_distinct - 1; -1 for a row of zero weight.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[[1.0]], [[0.0]], [[1.0]]])
    >>> case_groups(X, None, np.ones((3, 1)), np.array([1.0, 1.0, 0.0]))
    array([ 1,  0, -1])
    """
    rows = np.hstack([X.reshape(len(X), -1)] + ([] if static is None else [static]) + [Y])
    rows[np.isnan(rows)] = np.inf  # NaN padding equals NaN padding
    groups = np.full(len(rows), -1)
    kept = sample_weight != 0
    groups[kept] = np.unique(rows[kept], axis=0, return_inverse=True)[1].ravel()
    return groups


def held_out_cases(groups, random_state):
    """The rows of the training part and of the held-out part: a random
    :data:`HELD_OUT_SHARE` of the distinct cases (at least one), drawn from
    ``random_state``; the rows of zero weight (group -1) are in the training
    part.

    Parameters
    ----------
    groups : ndarray of shape (n_samples,), int
        Each row's distinct case (:func:`case_groups`).
    random_state : RandomState instance

    Returns
    -------
    train, test : ndarray of int
    """
    groups = np.asarray(groups)
    n_cases = groups.max() + 1
    n_test = max(1, int(HELD_OUT_SHARE * n_cases))
    test = np.isin(groups, random_state.permutation(n_cases)[:n_test])
    return np.flatnonzero(~test), np.flatnonzero(test)


def held_out_scores(y, predicted, constant, sample_weight=None, cases=None):
    """The squared errors of a network and of the constant predictor on the
    held-out cases, negated, in the shape :func:`best_candidate` ranks (each
    distinct case a "fold": the one-standard-error rule then weighs their
    paired difference over the cases).

    The rows of one case (identical rows, ``cases``) count as one case of
    their summed weight, so that repeating a row is the same as weighting it.

    Parameters
    ----------
    y, predicted : ndarray of shape (n_samples,) or (n_samples, n_outputs)
    constant : ndarray of shape (n_outputs,) or float
        The constant predictor's value (the training part's mean).
    sample_weight : ndarray of shape (n_samples,), default=None
        Each case's error counts in proportion (the mean of the scores is
        the weighted mean squared error).
    cases : ndarray of shape (n_samples,), int, default=None
        Each row's distinct case (:func:`case_groups`); None: one row each.

    Returns
    -------
    scores : ndarray of shape (2, n_cases, 1)
        The network's first, then the constant's; higher is better.

    Examples
    --------
    >>> import numpy as np
    >>> held_out_scores(np.array([1.0, 3.0]), np.array([1.0, 2.0]), 2.0)[:, :, 0]
    array([[-0., -1.],
           [-1., -1.]])
    """
    y = np.asarray(y, dtype=np.float64).reshape(len(y), -1)
    weight = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, float)
    case = (np.arange(len(y)) if cases is None
            else np.unique(cases, return_inverse=True)[1].ravel())
    case_weight = np.bincount(case, weights=weight)
    scores = []
    for p in (predicted, np.broadcast_to(constant, y.shape)):
        errors = ((y - np.asarray(p, dtype=np.float64).reshape(y.shape)) ** 2).mean(axis=1)
        # the case's weighted mean error, counted with the case's weight
        scores.append(-np.bincount(case, weights=weight * errors) / case_weight.mean())
    return np.stack(scores)[:, :, None]


def search_folds(y, groups, stratified, random_state):
    """The K folds of the search, or None when the data are too few.

    Folds are drawn over the distinct cases, not the rows: ``groups`` numbers
    each row's content (identical ``(x, y)`` rows share a number, and the
    numbers follow the content, not the row order), so a repeated row and a
    row of the same total weight fall in the same fold, and the folds do not
    depend on the order of the rows -- as the fit itself (``canonical_rows``).
    Rows of zero weight (group -1) are in every fold's training part (the
    fits drop them) and in no test part.

    Stratified by class for a single-label classifier: K is at most the
    smallest count of a class of 2 distinct cases or more, so every fold's
    networks see every class; a class of a single case is in every training
    part and in no test part (at least two classes must have 2 cases). Then
    a training set of many classes and few cases is still searched (digits
    cut to 15 cases, 5 draws: 0.479 with the fixed default, 0.629 searched).
    Otherwise plain shuffled folds of at least 2 distinct cases each.

    Parameters
    ----------
    y : ndarray of shape (n_samples,) or (n_samples, n_outputs)
        The targets (labels for a classifier).
    groups : ndarray of shape (n_samples,), int
        The row's distinct case, numbered in an order of content; -1 for a
        row of zero weight.
    stratified : bool
        Stratify by class (single-label classification).
    random_state : int, RandomState instance or None
        Shuffles the folds.

    Returns
    -------
    folds : list of (train, test) row index arrays, or None
    """
    groups = np.asarray(groups)
    case_ids, first = np.unique(groups, return_index=True)
    first = first[case_ids >= 0]
    n_cases = len(first)
    if stratified:
        labels = y[first]
        _, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
        # a class of one case cannot be tested and trained on: it stays in
        # every training part, and the folds stratify the other classes
        tested = np.flatnonzero(counts[inverse.ravel()] >= 2)
        counts = counts[counts >= 2]
        if len(counts) < 2:
            return None
        splitter = StratifiedKFold(min(N_FOLDS, counts.min()), shuffle=True,
                                   random_state=random_state)
        case_folds = (
            (None, tested[test]) for _, test in splitter.split(tested, labels[tested])
        )
    else:
        if n_cases < 2 * N_FOLDS:
            return None
        splitter = KFold(N_FOLDS, shuffle=True, random_state=random_state)
        case_folds = splitter.split(np.zeros(n_cases))
    folds = []
    for _, test_cases in case_folds:
        test = np.isin(groups, test_cases)  # groups number the cases 0..n_cases-1
        folds.append((np.flatnonzero(~test), np.flatnonzero(test)))
    return folds


def classification_fold_scores(proba, classes, y, sample_weight=None):
    """A classifier's (accuracy, -log-loss) on a held-out fold: what
    scikit-learn's ``accuracy_score`` and ``log_loss`` (with ``labels=classes``)
    compute, without their input validation, which cost a small search more
    than its networks (12 ms per fold score on folds of 4 cases).

    Parameters
    ----------
    proba : ndarray of shape (n_samples, n_classes)
        Predicted probabilities, columns in the order of ``classes``.
    classes : ndarray of shape (n_classes,)
        The fitted classes, sorted (``classes_``).
    y : ndarray of shape (n_samples,) or (n_samples, 1)
        The fold's labels (a column as the fit reads it). A label not in
        ``classes`` is predicted with probability 0 (``log_loss`` would raise).
    sample_weight : ndarray of shape (n_samples,), default=None

    Returns
    -------
    scores : tuple of float
        The weighted accuracy and the negated weighted log-loss, its
        probabilities clipped to ``[eps, 1 - eps]`` (float64's eps).
    """
    y = np.asarray(y).reshape(len(proba))
    column = np.minimum(np.searchsorted(classes, y), len(classes) - 1)
    known = classes[column] == y
    eps = np.finfo(np.float64).eps
    p_true = np.where(known, np.asarray(proba, dtype=np.float64)[np.arange(len(y)), column], 0.0)
    correct = known & (np.argmax(proba, axis=1) == column)
    return (
        float(np.average(correct, weights=sample_weight)),
        float(np.average(np.log(np.clip(p_true, eps, 1 - eps)), weights=sample_weight)),
    )


def regression_fold_score(y, predicted, sample_weight=None):
    """A regressor's negative mean squared error on a held-out fold, as
    scikit-learn's ``mean_squared_error`` (outputs averaged uniformly)
    computes it, without its input validation.

    Parameters
    ----------
    y, predicted : ndarray of shape (n_samples,) or (n_samples, n_outputs)
    sample_weight : ndarray of shape (n_samples,), default=None

    Returns
    -------
    scores : tuple of float
        One score: the negated weighted mean squared error.
    """
    y = np.asarray(y, dtype=np.float64)
    errors = (y - np.asarray(predicted).reshape(y.shape)) ** 2  # never broadcast
    return (-float(np.mean(np.average(errors, axis=0, weights=sample_weight))),)


def best_candidate(scores, fallback=None):
    """The candidates' ranks: 1 for the best, the largest mean score over
    the folds, compared as tuples (a classifier's accuracy, then its
    log-loss); equal scores rank in the grid's order, so the first candidate
    (the fixed default) wins ties.

    The ``fallback`` candidate (the constant predictor) is ranked first
    unless the best beats it by more than one standard error of their
    difference over the folds (on the first criterion): the "one standard
    error" rule of Breiman et al. (1984) and glmnet's ``lambda.1se``, which
    prefers the simplest model the folds cannot tell from the best. With a
    few folds and several candidates, the best mean is biased upwards (it is
    the largest of several noisy estimates); without the rule, a network
    that fits noise would now and then be chosen over the training mean.

    Parameters
    ----------
    scores : ndarray of shape (n_candidates, n_folds, n_criteria)
        Higher is better.
    fallback : int, default=None
        The index of the candidate to prefer when in doubt.

    Returns
    -------
    rank : ndarray of shape (n_candidates,)
    """
    scores = np.asarray(scores)
    means = [tuple(row) for row in scores.mean(axis=1)]
    # a stable sort on the negated tuples keeps the grid's order among equals
    order = sorted(range(len(means)), key=lambda k: tuple(-v for v in means[k]))
    if fallback is not None and order[0] != fallback:
        gain = scores[order[0], :, 0] - scores[fallback, :, 0]
        if gain.mean() <= gain.std(ddof=1) / np.sqrt(len(gain)):
            order.remove(fallback)
            order.insert(0, fallback)
    rank = np.empty(len(means), dtype=int)
    rank[order] = np.arange(1, len(means) + 1)
    return rank
