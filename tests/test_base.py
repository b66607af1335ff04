"""Fit orchestration: early stopping on a held-out split, progress lines, and
the ``chunk_size`` parameter (no chunking changes a fit or a prediction
beyond rounding; the plan itself is tested in test_memory.py)."""

import re
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils._param_validation import InvalidParameterError

from conftest import sequences
from sklearn_gatedmem import LSTMClassifier, LSTMRegressor
from sklearn_gatedmem._input import canonical_rows

SMALL = dict(hidden_layer_sizes=6, random_state=0, n_ensemble=1)


def _held_out(est, X, y):
    """The rows a fitted binary classifier or single-output regressor held out.

    Fit canonicalises the rows first (distinct X rows: sorted by X alone) and
    then splits; binary labels and raw targets split as their encodings do.
    """
    X2, Y, _ = canonical_rows(
        X.reshape(len(X), -1), y.reshape(-1, 1).astype(float), np.ones(len(X))
    )
    _, val = est._validation_split(Y, est.out_activation_)
    return X2[val].reshape(-1, *X.shape[1:]), Y[val, 0]


def test_without_early_stopping_the_validation_attributes_are_none():
    X, y, _ = sequences(60)
    clf = LSTMClassifier(max_iter=5, **SMALL)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X, y)
    assert clf.validation_scores_ is None
    assert clf.best_validation_score_ is None


@pytest.mark.parametrize("Estimator, target", [(LSTMClassifier, 1), (LSTMRegressor, 2)])
def test_early_stopping_keeps_the_best_iteration(Estimator, target):
    data = sequences(150)
    X, y = data[0], data[target]
    patience = 4
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)  # a halt is no failure
        est = Estimator(
            early_stopping=True, n_iter_no_change=patience, max_iter=300, **SMALL
        ).fit(X, y)
    scores = est.validation_scores_
    assert est.n_iter_ < 300
    assert len(scores) == est.n_iter_ == len(est.loss_curve_)
    best = int(np.argmax(scores))  # the first best: improvement is strict
    assert est.best_validation_score_ == scores[best] == max(scores)
    assert est.n_iter_ == best + 1 + patience  # stopped as soon as patience ran out
    assert est.loss_ == est.loss_curve_[best]
    # the kept weights are the best ones, and the score is the estimator's own
    X_val, y_val = _held_out(est, X, y)
    assert est.score(X_val, y_val) == pytest.approx(est.best_validation_score_, abs=1e-9)
    if best + 1 < est.n_iter_:
        last = Estimator(
            early_stopping=True, n_iter_no_change=1000, max_iter=est.n_iter_, **SMALL
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            last.fit(X, y)
        assert last.validation_scores_ == scores  # same split, same path


def test_early_stopping_stops_fitting_noise_early():
    rng = np.random.RandomState(1)
    X = rng.normal(size=(120, 5, 1))
    y = rng.randint(2, size=120)  # nothing to learn: held-out accuracy stalls
    clf = LSTMClassifier(
        hidden_layer_sizes=16, early_stopping=True, n_iter_no_change=5,
        max_iter=500, random_state=0, n_ensemble=1,
    ).fit(X, y)
    assert clf.n_iter_ < 100
    assert clf.best_validation_score_ < 0.85


def test_validation_split_is_stratified_and_reproducible():
    Y = np.zeros((100, 1))
    Y[:20] = 1  # 20 % positives
    clf = LSTMClassifier(early_stopping=True, validation_fraction=0.25, random_state=3)
    train, val = clf._validation_split(Y, "logistic")
    assert len(val) == 25 and len(train) == 75
    assert Y[val].sum() == 5  # 20 % of the held-out rows too
    again, _ = clf._validation_split(Y, "logistic")
    np.testing.assert_array_equal(train, again)
    other, _ = clf.set_params(random_state=4)._validation_split(Y, "logistic")
    assert not np.array_equal(np.sort(train), np.sort(other))


def test_early_stopping_does_not_depend_on_row_order():
    X, y, _ = sequences(80)
    order = np.random.RandomState(0).permutation(len(X))
    kwargs = dict(early_stopping=True, n_iter_no_change=3, max_iter=40, **SMALL)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        a = LSTMClassifier(**kwargs).fit(X, y)
        b = LSTMClassifier(**kwargs).fit(X[order], y[order])
    assert a.validation_scores_ == b.validation_scores_
    for name in a.coefs_:
        np.testing.assert_array_equal(a.coefs_[name], b.coefs_[name])


def test_early_stopping_multilabel_and_multioutput():
    X, y, total = sequences(80)
    multilabel = np.column_stack([y, X[:, -1, 1] > 0]).astype(int)
    clf = LSTMClassifier(early_stopping=True, n_iter_no_change=3, max_iter=30, **SMALL)
    reg = LSTMRegressor(early_stopping=True, n_iter_no_change=3, max_iter=30, **SMALL)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X, multilabel)
        reg.fit(X, np.column_stack([total, -2 * total]))
    for est in (clf, reg):
        assert len(est.validation_scores_) == est.n_iter_
        assert np.isfinite(est.best_validation_score_)


@pytest.mark.parametrize(
    "n_samples, y, match",
    [
        (10, None, "1 held-out"),  # 10 % of 10 rows is 1 row
        (30, np.r_[np.zeros(15), np.ones(14), 2], "stratifying by class"),
    ],
)
def test_too_few_rows_for_a_split_is_a_clear_error(n_samples, y, match):
    X, y_default, _ = sequences(n_samples)
    y = y_default if y is None else y
    with pytest.raises(ValueError, match=f"early_stopping=True.*{match}"):
        LSTMClassifier(early_stopping=True, **SMALL).fit(X, y)


def test_silent_by_default(capsys):
    X, _, total = sequences(40)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        LSTMRegressor(max_iter=3, early_stopping=True, **SMALL).fit(X, total)
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize("early_stopping", [False, True])
def test_verbose_prints_one_line_per_iteration(capsys, early_stopping):
    X, y, _ = sequences(60)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = LSTMClassifier(
            verbose=1, early_stopping=early_stopping, n_iter_no_change=2,
            max_iter=6, **SMALL,
        ).fit(X, y)
    lines = capsys.readouterr().out.splitlines()
    progress = [line for line in lines if line.startswith("Iteration ")]
    assert len(progress) == clf.n_iter_
    number = r"[-+]?\d+\.\d+"
    score = rf", validation score = {number}" if early_stopping else ""
    pattern = rf"Iteration (\d+), loss = {number}{score}, elapsed = {number} s"
    for i, line in enumerate(progress, start=1):
        match = re.fullmatch(pattern, line)
        assert match, line
        assert int(match.group(1)) == i
    if early_stopping and clf.n_iter_ < 6:
        assert "did not improve" in lines[-1]


# -- the package's own ConvergenceWarning -------------------------------------


def _one_warning(record):
    messages = [str(w.message) for w in record if issubclass(w.category, ConvergenceWarning)]
    assert len(messages) == 1, messages
    return messages[0]


@pytest.mark.parametrize("Estimator", [LSTMClassifier, LSTMRegressor])
def test_convergence_warning_at_max_iter_says_what_to_change(Estimator):
    X, y, total = sequences(150)
    target = y if Estimator is LSTMClassifier else total
    with pytest.warns(ConvergenceWarning) as record:
        est = Estimator(max_iter=3, tol=0, **SMALL).fit(X, target)
    message = _one_warning(record)
    assert "stopped at iteration 3 because it reached max_iter=3" in message
    for advice in ("max_iter", "tol", "early_stopping"):
        assert advice in message
    assert "scale" not in message.lower()  # the estimator standardises already
    assert est.n_iter_ == 3


def test_convergence_warning_at_max_fun_names_max_fun():
    X, y, _ = sequences(150)
    with pytest.warns(ConvergenceWarning) as record:
        LSTMClassifier(max_iter=100, max_fun=4, tol=0, **SMALL).fit(X, y)
    message = _one_warning(record)
    assert re.search(r"stopped at iteration \d+ because it reached max_fun=4", message)
    assert "max_iter" not in message.split("because")[1].split("(SciPy")[0]
    assert "scale" not in message.lower()


# -- an ensemble's one warning (issue 20) ----------------------------------------


def _all_warnings(fit):
    """Every warning ``fit()`` emits, as texts, and the warning filters
    added or removed meanwhile."""
    before, shown = list(warnings.filters), []
    original = warnings.showwarning
    warnings.showwarning = lambda message, *args, **kwargs: shown.append(str(message))
    try:
        fit()
    finally:
        warnings.showwarning = original
    after = list(warnings.filters)
    return shown, [f for f in after if f not in before] + [f for f in before if f not in after]


def test_a_default_fit_that_reaches_max_iter_warns_once():
    """Defaults (3 networks side by side) with a budget of the user's: one
    ConvergenceWarning naming how many networks stopped, said once."""
    X, y, _ = sequences(60, n_steps=8)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        LSTMClassifier(max_iter=2, random_state=0).fit(X, y)
    messages = [str(w.message) for w in record]
    assert len(messages) == 1, messages
    assert messages[0].startswith("3 of the 3 networks stopped short of convergence.")
    assert "estimators_[0, 1, 2]: L-BFGS did not converge" in messages[0]
    assert messages[0].count("networks") == 1 and messages[0].count("max_iter=2") == 1
    assert record[0].filename == __file__  # points at the call of fit


@pytest.mark.parametrize("Estimator", [LSTMClassifier, LSTMRegressor])
def test_the_default_iteration_budget_is_no_warning(Estimator):
    """The default max_iter is a measured budget: reaching it is how a
    default fit ends. Another max_iter of the same fit warns."""
    X, y, total = sequences(40, n_steps=5)
    target = y if Estimator is LSTMClassifier else total
    default = Estimator().max_iter
    params = dict(hidden_layer_sizes=3, tol=0, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        est = Estimator(**params).fit(X, target)
    assert all(m.n_iter_ == default for m in est.estimators_)  # it did reach it
    with pytest.warns(ConvergenceWarning, match=f"max_iter={default - 1}"):
        Estimator(max_iter=default - 1, **params).fit(X, target)


def test_concurrent_ensemble_fits_each_warn_once_and_leave_the_filters():
    """Ensembles fitted in 4 threads at once, 3 rounds: each fit's one warning
    reaches the user, none twice or inside another's, and the warning filters
    are as before. With warnings.catch_warnings (process-global) around each
    ensemble, fits recorded each other's warnings: 1 of 16 reached the user,
    as "1 of the 3 networks: 2 of the 3 networks: ...", and the filters kept
    an "always" entry; scikit-learn's own checks, run by members in threads
    at once, could leave an ("error", ComplexWarning) entry."""
    import threading

    X, y, _ = sequences(60, n_steps=8)

    def fits():
        for _ in range(3):
            threads = [
                threading.Thread(
                    target=LSTMClassifier(max_iter=2, random_state=k).fit, args=(X, y)
                )
                for k in range(4)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()

    with warnings.catch_warnings():
        warnings.simplefilter("always")  # each warning shown, none deduplicated
        shown, filters_changed = _all_warnings(fits)
    assert len(shown) == 12, shown
    assert all(m.count("networks") == 1 and m.count("L-BFGS") == 1 for m in shown), shown
    assert filters_changed == []


# -- chunk_size ----------------------------------------------------------------


@pytest.mark.parametrize("chunk_size", [0, -3, 2.5, "big", None])
def test_invalid_chunk_size_is_refused(chunk_size):
    X, y, _ = sequences(10)
    with pytest.raises((InvalidParameterError, ValueError, TypeError)):
        LSTMClassifier(hidden_layer_sizes=3, chunk_size=chunk_size, max_iter=2,
                       n_ensemble=1).fit(X, y)


@pytest.mark.parametrize("Estimator, target", [(LSTMClassifier, 1), (LSTMRegressor, 2)])
def test_fit_and_predict_do_not_depend_on_chunk_size(Estimator, target, cell):
    data = sequences(n_steps=7, n_features=3)
    X, y = data[0], data[target]
    fitted = {}
    for chunk_size in ("auto", 1, 7):
        # no "auto" parameter: the search would fit a dozen networks more
        est = Estimator(
            hidden_layer_sizes=4, cell=cell, chunk_size=chunk_size, max_iter=8,
            random_state=0, n_ensemble=1, alpha=1e-3, pooling="last", patch_size=None,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            fitted[chunk_size] = est.fit(X, y)
    ref = fitted["auto"]
    for chunk_size in (1, 7):
        est = fitted[chunk_size]
        for name, coef in ref.coefs_.items():
            np.testing.assert_allclose(est.coefs_[name], coef, rtol=1e-7, atol=1e-9)
    # prediction of one model with other chunk sizes: the same to rounding
    Z_ref = ref._decision(X)
    for chunk_size in (1, 3, 1000):
        Z = ref.set_params(chunk_size=chunk_size)._decision(X)
        np.testing.assert_allclose(Z, Z_ref, rtol=1e-12, atol=1e-12)
