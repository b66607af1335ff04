"""LSTMClassifier and LSTMRegressor beyond scikit-learn's common checks:
memory, input layouts and types, errors, fitted state, reproducibility,
warm start, the loss curve, probabilities, model selection."""

import pickle
import warnings

import numpy as np
import pytest
from scipy import sparse
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.class_weight import compute_sample_weight
from threadpoolctl import threadpool_limits

from conftest import sequences
from sklearn_gatedmem._input import (
    LARGE_SHIFTS_MAX_STEPS, SHIFTS_MAX_SAMPLES, shift_offsets, shift_sequences,
)
from sklearn_gatedmem import (
    LSTMClassifier, LSTMRegressor, _objective, make_patches, pad_sequences,
)

SMALL = dict(hidden_layer_sizes=4, max_iter=8, random_state=0, n_ensemble=1)
# the classifier's one network, without the "auto" search of alpha and
# patch_size (tests/test_select.py), for the tests of what one fit does
SMALL_CLF = dict(SMALL, alpha=1.0, patch_size=None)
quiet = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def _coefs_bytes(est):
    return {k: v.tobytes() for k, v in est.coefs_.items()}


# -- (a) memory -------------------------------------------------------------


def _memory_task(n_samples, seed, n_signal=3, n_noise=21):
    """The class is the sign of the first steps; then only noise follows."""
    rng = np.random.RandomState(seed)
    y = rng.randint(2, size=n_samples)
    signal = (2 * y - 1)[:, None] * rng.uniform(0.5, 1.5, size=(n_samples, n_signal))
    noise = rng.normal(size=(n_samples, n_noise))
    return np.hstack([signal, noise])[:, :, None], y


@quiet
def test_remembers_the_start_of_long_sequences(cell):
    X, y = _memory_task(200, seed=0)
    X_test, y_test = _memory_task(400, seed=1)
    assert X.shape[1] == 24
    # the last step alone carries nothing: a linear model on it is at chance
    last = LogisticRegression().fit(X[:, -1], y)
    assert last.score(X_test[:, -1], y_test) <= 0.65
    clf = LSTMClassifier(hidden_layer_sizes=6, cell=cell, max_iter=100, random_state=0)
    clf.fit(X, y)
    accuracy = clf.score(X_test, y_test)
    print(f"memory task, {cell}: held-out accuracy {accuracy:.3f}")
    assert accuracy >= 0.9


# -- (b) 2-D step-major equals 3-D ------------------------------------------


@quiet
@pytest.mark.parametrize("Estimator", [LSTMClassifier, LSTMRegressor])
def test_2d_with_n_steps_equals_3d(Estimator):
    X, y, _ = sequences(n_steps=5, n_features=3)
    target = y if Estimator is LSTMClassifier else X[:, :, 0].sum(axis=1)
    est3 = Estimator(**SMALL).fit(X, target)
    est2 = Estimator(n_steps=5, **SMALL).fit(X.reshape(len(X), -1), target)
    assert (est2.n_steps_, est2.n_step_features_) == (5, 3)
    assert (est3.n_steps_, est3.n_step_features_) == (5, 3)
    assert est2.n_features_in_ == est3.n_features_in_ == 15
    assert _coefs_bytes(est2) == _coefs_bytes(est3)
    np.testing.assert_array_equal(est2.predict(X.reshape(len(X), -1)), est3.predict(X))
    # a model fitted on either layout reads the other layout too
    np.testing.assert_array_equal(est3.predict(X.reshape(len(X), -1)), est3.predict(X))
    np.testing.assert_array_equal(est2.predict(X), est2.predict(X.reshape(len(X), -1)))


@quiet
def test_2d_without_n_steps_is_univariate():
    X, y, _ = sequences(n_features=1)
    a = LSTMClassifier(**SMALL_CLF).fit(X[:, :, 0], y)
    b = LSTMClassifier(**SMALL_CLF).fit(X, y)
    assert (a.n_steps_, a.n_step_features_) == (6, 1)
    assert _coefs_bytes(a) == _coefs_bytes(b)


# -- (c) input types --------------------------------------------------------


@quiet
def test_dataframe_sets_feature_names():
    pd = pytest.importorskip("pandas")
    X, y, _ = sequences(n_steps=3, n_features=2)
    columns = [f"t{t}_f{j}" for t in range(3) for j in range(2)]
    df = pd.DataFrame(X.reshape(len(X), -1), columns=columns)
    clf = LSTMClassifier(n_steps=3, **SMALL_CLF).fit(df, y)
    np.testing.assert_array_equal(clf.feature_names_in_, columns)
    ref = LSTMClassifier(n_steps=3, **SMALL_CLF).fit(X.reshape(len(X), -1), y)
    assert _coefs_bytes(clf) == _coefs_bytes(ref)
    np.testing.assert_array_equal(clf.predict_proba(df), ref.predict_proba(X))


@quiet
def test_list_input_and_int_input():
    X, y, _ = sequences()
    ref = LSTMClassifier(**SMALL_CLF).fit(X, y)
    from_list = LSTMClassifier(**SMALL_CLF).fit(X.tolist(), y.tolist())
    assert _coefs_bytes(from_list) == _coefs_bytes(ref)
    np.testing.assert_array_equal(from_list.predict(X.tolist()), ref.predict(X))

    X_int = np.round(3 * X).astype(np.int64)
    as_int = LSTMClassifier(**SMALL_CLF).fit(X_int, y)
    as_float = LSTMClassifier(**SMALL_CLF).fit(X_int.astype(np.float64), y)
    assert _coefs_bytes(as_int) == _coefs_bytes(as_float)
    np.testing.assert_array_equal(as_int.predict_proba(X_int), as_float.predict_proba(X_int))


@quiet
@pytest.mark.parametrize("Estimator", [LSTMClassifier, LSTMRegressor])
def test_float32_input_computes_in_float32(Estimator, monkeypatch):
    X, y, _ = sequences()
    target = y if Estimator is LSTMClassifier else X[:, :, 1].sum(axis=1)
    dtypes = []
    original = _objective.loss_grad

    def spy(theta, X, *args, **kwargs):
        dtypes.append(X.dtype)
        loss, grad = original(theta, X, *args, **kwargs)
        assert grad.dtype == np.float64
        return loss, grad

    monkeypatch.setattr(_objective, "loss_grad", spy)
    est = Estimator(**SMALL).fit(X.astype(np.float32), target)
    assert dtypes and set(dtypes) == {np.dtype(np.float32)}
    for v in est.coefs_.values():
        assert v.dtype == np.float64  # L-BFGS works on float64 parameters
    pred = est.predict(X.astype(np.float32))
    assert np.all(np.isfinite(pred))
    if Estimator is LSTMClassifier:
        proba = est.predict_proba(X.astype(np.float32))
        assert proba.dtype == np.float64 and np.all(np.isfinite(proba))
        np.testing.assert_allclose(proba, est.predict_proba(X), atol=1e-4)


@quiet
def test_fortran_ordered_and_read_only_memmaps(tmp_path):
    X, y, _ = sequences()
    ref = LSTMClassifier(**SMALL_CLF).fit(X, y)
    fortran = LSTMClassifier(**SMALL_CLF).fit(np.asfortranarray(X), y)
    assert _coefs_bytes(fortran) == _coefs_bytes(ref)

    np.save(tmp_path / "X.npy", X)
    X_np_load = np.load(tmp_path / "X.npy", mmap_mode="r")
    assert not X_np_load.flags.writeable
    loaded = LSTMClassifier(**SMALL_CLF).fit(X_np_load, y)
    assert _coefs_bytes(loaded) == _coefs_bytes(ref)
    np.testing.assert_array_equal(loaded.predict_proba(X_np_load), ref.predict_proba(X))

    raw = np.memmap(tmp_path / "X.dat", dtype=np.float64, mode="w+", shape=X.shape)
    raw[:] = X
    raw.flush()
    del raw
    X_mm = np.memmap(tmp_path / "X.dat", dtype=np.float64, mode="r", shape=X.shape)
    mapped = LSTMClassifier(**SMALL_CLF).fit(X_mm, y)
    assert _coefs_bytes(mapped) == _coefs_bytes(ref)
    np.testing.assert_array_equal(mapped.predict(X_mm), ref.predict(X))
    np.testing.assert_array_equal(np.asarray(X_mm), X)  # never written


# -- (d) errors -------------------------------------------------------------


@pytest.mark.parametrize("Estimator", [LSTMClassifier, LSTMRegressor])
def test_sparse_input_is_a_type_error(Estimator):
    X, y, _ = sequences()
    with pytest.raises(TypeError, match="[Ss]parse"):
        Estimator(**SMALL).fit(sparse.csr_matrix(X.reshape(len(X), -1)), y)


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_non_finite_input_is_a_value_error(value):
    X, y, _ = sequences()
    X[3, 2, 1] = value
    with pytest.raises(ValueError, match="NaN|infinity"):
        LSTMClassifier(**SMALL_CLF).fit(X, y)
    with pytest.raises(ValueError, match="NaN|infinity"):
        LSTMClassifier(**SMALL_CLF).fit(X.reshape(len(X), -1), y)


def test_non_finite_at_predict_is_a_value_error():
    X, y, _ = sequences()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = LSTMClassifier(**SMALL_CLF).fit(X, y)
    X[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        clf.predict(X)


@pytest.mark.parametrize("shape", [(0, 6, 2), (0, 12)])
def test_empty_input_is_a_value_error(shape):
    with pytest.raises(ValueError, match="0 sample"):
        LSTMClassifier(**SMALL_CLF).fit(np.empty(shape), np.empty(0))


@quiet
def test_wrong_width_at_predict():
    X, y, _ = sequences()
    clf = LSTMClassifier(**SMALL_CLF).fit(X.reshape(len(X), -1), y)
    with pytest.raises(ValueError, match="features"):
        clf.predict(np.zeros((3, 11)))


@quiet
@pytest.mark.parametrize(
    "shape", [(3, 5, 2), (3, 6, 3), (3, 4, 3), (3, 3, 4)],
    ids=["fewer_steps", "more_features", "same_width_other_layout", "same_width_2"],
)
def test_wrong_3d_layout_at_predict_mentions_steps(shape):
    X, y, _ = sequences(n_steps=6, n_features=2)
    clf = LSTMClassifier(**SMALL_CLF).fit(X, y)
    with pytest.raises(ValueError, match="steps"):
        clf.predict(np.zeros(shape))


def test_n_steps_not_dividing_width_fails_in_fit_only():
    X, y, _ = sequences(n_steps=5, n_features=2)
    clf = LSTMClassifier(n_steps=3, **SMALL_CLF)  # no error here
    clf.set_params(n_steps=4)  # nor here
    assert clf.get_params()["n_steps"] == 4
    with pytest.raises(ValueError, match="n_steps=4 does not divide the 10 columns"):
        clf.fit(X.reshape(len(X), -1), y)


def test_n_steps_disagreeing_with_3d_input_fails_in_fit():
    X, y, _ = sequences(n_steps=5)
    with pytest.raises(ValueError, match="n_steps"):
        LSTMClassifier(n_steps=4, **SMALL_CLF).fit(X, y)


@pytest.mark.parametrize("Estimator", [LSTMClassifier, LSTMRegressor])
@pytest.mark.parametrize(
    "param, value",
    [
        ("alpha", -1),
        ("cell", "rnn"),
        ("hidden_layer_sizes", (0,)),
        ("hidden_layer_sizes", ()),
        ("hidden_layer_sizes", 0),
        ("hidden_layer_sizes", (4, -2)),
        ("max_iter", 0),
        ("tol", -1.0),
        ("max_fun", 0),
        ("n_steps", 0),
        ("patch_size", 0),
        ("patch_size", "big"),
        ("patch_size", 2.5),
        ("n_ensemble", 0),
        ("n_ensemble", 1.5),
        ("differences", "yes"),
        ("instance_norm", "series"),
        ("instance_norm", True),
        ("data_format", "channels_middle"),
    ],
)
def test_invalid_parameters_name_the_parameter(Estimator, param, value):
    X, y, _ = sequences()
    est = Estimator(**{**SMALL, param: value})  # no validation in __init__
    assert est.get_params()[param] == value
    with pytest.raises(ValueError, match=param):
        est.fit(X, y)
    assert not hasattr(est, "coefs_")


def test_single_class_is_a_value_error_mentioning_class():
    X, _, _ = sequences()
    with pytest.raises(ValueError, match="class"):
        LSTMClassifier(**SMALL_CLF).fit(X, np.ones(len(X), dtype=int))


def test_zero_total_sample_weight_is_a_value_error():
    X, y, _ = sequences()
    with pytest.raises(ValueError):
        LSTMClassifier(**SMALL_CLF).fit(X, y, sample_weight=np.zeros(len(X)))


# -- (e) a failed fit leaves no fitted state --------------------------------


FAILING_FITS = {
    "single_class": lambda X, y: (X, np.zeros_like(y)),
    "nan": lambda X, y: (np.where(np.arange(X.size).reshape(X.shape) == 5, np.nan, X), y),
    "n_steps_mismatch_3d": None,  # set n_steps that disagrees with the 3-D input
    "other_width_single_class": lambda X, y: (X[:, :4], np.zeros_like(y)),
}


def _failing_fit(est, name, X, y):
    if name == "n_steps_mismatch_3d":
        est.set_params(n_steps=X.shape[1] + 1)
        try:
            est.fit(X, y)
        finally:
            est.set_params(n_steps=None)
    else:
        est.fit(*FAILING_FITS[name](X, y))


@pytest.mark.parametrize("name", list(FAILING_FITS))
def test_fresh_estimator_whose_fit_failed_is_not_fitted(name):
    X, y, _ = sequences()
    clf = LSTMClassifier(**SMALL_CLF)
    with pytest.raises(ValueError):
        _failing_fit(clf, name, X, y)
    for method in (clf.predict, clf.predict_proba):
        with pytest.raises(NotFittedError):
            method(X)


@quiet
@pytest.mark.parametrize("name", list(FAILING_FITS))
def test_failed_refit_leaves_no_half_fitted_state(name):
    """After a failed refit, the estimator is either not fitted at all or the
    previous model, whole; never a mix of the two fits."""
    X, y, _ = sequences()
    clf = LSTMClassifier(**SMALL_CLF).fit(X, y)
    before = clf.predict_proba(X)
    X_other, y_other, _ = sequences(n_steps=4, n_features=2, seed=1)
    with pytest.raises(ValueError):
        _failing_fit(clf, name, X_other, y_other)
    try:
        after = clf.predict_proba(X)
    except NotFittedError:
        return
    np.testing.assert_array_equal(after, before)


# -- (f) reproducibility ----------------------------------------------------


@quiet
@pytest.mark.parametrize("Estimator", [LSTMClassifier, LSTMRegressor])
def test_same_random_state_same_coefs(Estimator, cell):
    X, y, _ = sequences()
    target = y if Estimator is LSTMClassifier else X[:, :, 0].sum(axis=1)
    a = Estimator(cell=cell, **SMALL).fit(X, target)
    b = Estimator(cell=cell, **SMALL).fit(X, target)
    assert _coefs_bytes(a) == _coefs_bytes(b)
    assert a.loss_curve_ == b.loss_curve_
    c = Estimator(cell=cell, **{**SMALL, "random_state": 1}).fit(X, target)
    assert _coefs_bytes(c) != _coefs_bytes(a)
    # a RandomState instance with the same seed draws the same start
    d = Estimator(cell=cell, **{**SMALL, "random_state": np.random.RandomState(0)})
    assert _coefs_bytes(d.fit(X, target)) == _coefs_bytes(a)


@quiet
@pytest.mark.parametrize("Estimator", [LSTMClassifier, LSTMRegressor])
def test_row_order_does_not_matter(Estimator):
    X, y, _ = sequences(n_samples=50)
    target = y if Estimator is LSTMClassifier else X[:, :, 0].sum(axis=1)
    sw = np.random.RandomState(3).uniform(0.5, 2.0, size=len(X))
    ref = Estimator(**SMALL).fit(X, target, sample_weight=sw)
    for seed in range(3):
        perm = np.random.RandomState(seed).permutation(len(X))
        est = Estimator(**SMALL).fit(X[perm], target[perm], sample_weight=sw[perm])
        assert _coefs_bytes(est) == _coefs_bytes(ref)


@quiet
@pytest.mark.parametrize("Estimator", [LSTMClassifier, LSTMRegressor])
def test_integer_sample_weight_equals_repeated_rows(Estimator):
    X, y, _ = sequences(n_samples=30)
    target = y if Estimator is LSTMClassifier else X[:, :, 0].sum(axis=1)
    counts = np.random.RandomState(0).randint(0, 4, size=len(X))
    counts[:2] = [1, 2]
    weighted = Estimator(**SMALL).fit(X, target, sample_weight=counts)
    rep = np.repeat(np.arange(len(X)), counts)
    repeated = Estimator(**SMALL).fit(X[rep], target[rep])
    assert _coefs_bytes(weighted) == _coefs_bytes(repeated)
    np.testing.assert_array_equal(weighted.x_mean_, repeated.x_mean_)
    # and weights do something
    unweighted = Estimator(**SMALL).fit(X, target)
    assert _coefs_bytes(unweighted) != _coefs_bytes(weighted)


@quiet
def test_chunk_size_does_not_change_predictions():
    X, y, _ = sequences(n_samples=25)
    clf = LSTMClassifier(**SMALL_CLF).fit(X, y)
    ref = clf.predict_proba(X)
    for chunk in (1, 4, 25, 100):
        clf.set_params(chunk_size=chunk)
        np.testing.assert_allclose(clf.predict_proba(X), ref, rtol=1e-12, atol=1e-14)


@quiet
def test_chunk_size_barely_changes_the_fit():
    """Chunks change only the summation order of the objective."""
    X, y, _ = sequences(n_samples=25)
    ref = LSTMClassifier(**SMALL_CLF).fit(X, y)
    chunked = LSTMClassifier(chunk_size=7, **SMALL_CLF).fit(X, y)
    assert chunked.n_iter_ == ref.n_iter_
    for name, value in ref.coefs_.items():
        np.testing.assert_allclose(chunked.coefs_[name], value, rtol=1e-7, atol=1e-9)


# -- (g) warm start ---------------------------------------------------------


@quiet
@pytest.mark.parametrize("Estimator", [LSTMClassifier, LSTMRegressor])
def test_warm_start_continues(Estimator, monkeypatch):
    X, y, _ = sequences()
    target = y if Estimator is LSTMClassifier else X[:, :, 0].sum(axis=1)
    est = Estimator(hidden_layer_sizes=4, max_iter=1, random_state=0, warm_start=True,
                    n_ensemble=1)
    starts = []
    original = _objective.loss_grad

    def spy(theta, *args, **kwargs):
        starts.append(theta.copy())
        return original(theta, *args, **kwargs)

    monkeypatch.setattr(_objective, "loss_grad", spy)
    losses = []
    for _ in range(5):
        previous = None
        if hasattr(est, "coefs_"):
            previous = np.concatenate([v.ravel() for v in est.coefs_.values()])
        starts.clear()
        est.fit(X, target)
        if previous is not None:  # the first evaluation is at the last solution
            np.testing.assert_array_equal(starts[0], previous)
        losses.append(est.loss_)
    assert all(b < a for a, b in zip(losses, losses[1:])), losses
    # a cold start with max_iter=1 stays at the first loss
    cold = Estimator(hidden_layer_sizes=4, max_iter=1, random_state=0, n_ensemble=1)
    cold.fit(X, target)
    cold_again = clone(cold).fit(X, target)
    assert cold.loss_ == cold_again.loss_ == losses[0]


@quiet
@pytest.mark.parametrize("Estimator", [LSTMClassifier, LSTMRegressor])
def test_warm_start_of_an_ensemble_continues_each_network(Estimator):
    X, y, _ = sequences()
    target = y if Estimator is LSTMClassifier else X[:, :, 0].sum(axis=1)
    est = Estimator(hidden_layer_sizes=4, max_iter=2, random_state=0, warm_start=True,
                    n_ensemble=3).fit(X, target)
    members = list(est.estimators_)
    before = [m.loss_ for m in members]
    est.fit(X, target)
    assert [id(m) for m in est.estimators_] == [id(m) for m in members]
    assert all(m.loss_ < b for m, b in zip(est.estimators_, before))


# -- ensembles -------------------------------------------------------------


@quiet
@pytest.mark.parametrize("Estimator", [LSTMClassifier, LSTMRegressor])
def test_an_ensemble_averages_networks_of_their_own_seeds(Estimator):
    X, y, _ = sequences()
    target = y if Estimator is LSTMClassifier else X[:, :, 0].sum(axis=1)
    est = Estimator(hidden_layer_sizes=4, max_iter=8, random_state=0, n_ensemble=3)
    est.fit(X, target)
    assert Estimator().n_ensemble == 3  # the default
    assert len(est.estimators_) == 3 and not hasattr(est, "coefs_")
    seeds = [m.random_state for m in est.estimators_]
    assert len(set(seeds)) == 3
    assert all(m.n_ensemble == 1 for m in est.estimators_)
    assert est.n_iter_ == max(m.n_iter_ for m in est.estimators_)
    # each member is the single network of its seed (and of the values the
    # regressor's "auto" search chose for the ensemble)
    alone = clone(est).set_params(n_ensemble=1, random_state=seeds[1],
                                  alpha=est.alpha_, pooling=est.pooling_).fit(X, target)
    assert _coefs_bytes(alone) == _coefs_bytes(est.estimators_[1])
    if Estimator is LSTMClassifier:
        P = np.mean([m.predict_proba(X) for m in est.estimators_], axis=0)
        np.testing.assert_array_equal(est.predict_proba(X), P)
        np.testing.assert_array_equal(est.predict(X), est.classes_[P.argmax(axis=1)])
        np.testing.assert_array_equal(est.predict_log_proba(X), np.log(P))
    else:
        values = np.mean([m.predict(X) for m in est.estimators_], axis=0)
        np.testing.assert_array_equal(est.predict(X), values)
    # the same seed, the same ensemble; refitting as one network drops the members
    again = clone(est).fit(X, target)
    np.testing.assert_array_equal(again.predict(X), est.predict(X))
    est.set_params(n_ensemble=1).fit(X, target)
    assert hasattr(est, "coefs_") and not hasattr(est, "estimators_")
    with pytest.raises(ValueError, match="n_ensemble"):
        again.torch_state_dict()


@quiet
@pytest.mark.parametrize("early_stopping", [False, True])
def test_an_ensemble_sums_up_its_networks_attributes(early_stopping):
    """As forests average their trees' feature_importances_: n_iter_ the
    largest, loss_ and the curves the means (a network that stopped earlier
    carried at its last value), coefs_ only in the members."""
    X, y, _ = sequences(80)
    est = LSTMClassifier(hidden_layer_sizes=4, max_iter=12, random_state=0, n_ensemble=3,
                         early_stopping=early_stopping, n_iter_no_change=2).fit(X, y)
    members = est.estimators_
    assert not hasattr(est, "coefs_") and all(hasattr(m, "coefs_") for m in members)
    assert est.n_iter_ == max(m.n_iter_ for m in members)
    assert est.loss_ == pytest.approx(np.mean([m.loss_ for m in members]), rel=1e-12)

    def carried(curve, n):
        return list(curve) + [curve[-1]] * (n - len(curve))

    expected = np.mean([carried(m.loss_curve_, est.n_iter_) for m in members], axis=0)
    assert len(est.loss_curve_) == est.n_iter_
    np.testing.assert_allclose(est.loss_curve_, expected, rtol=1e-12)
    if not early_stopping:
        assert est.validation_scores_ is None and est.best_validation_score_ is None
        assert est.loss_ == pytest.approx(est.loss_curve_[-1], rel=1e-12)
        return
    assert len({m.n_iter_ for m in members}) > 1  # the carrying is exercised
    expected = np.mean([carried(m.validation_scores_, est.n_iter_) for m in members], axis=0)
    np.testing.assert_allclose(est.validation_scores_, expected, rtol=1e-12)
    assert est.best_validation_score_ == pytest.approx(
        np.mean([m.best_validation_score_ for m in members]), rel=1e-12)


def test_an_ensemble_warns_once_per_kind_of_convergence_warning():
    X, y, _ = sequences()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        LSTMClassifier(hidden_layer_sizes=4, max_iter=2, tol=0, random_state=0,
                       n_ensemble=4).fit(X, y)
    messages = [str(w.message) for w in caught if w.category is ConvergenceWarning]
    assert len(messages) == 1 and messages[0].startswith("4 of the 4 networks")


@quiet
def test_an_interrupted_ensemble_keeps_the_networks_fitted_so_far(monkeypatch):
    """One after the other, the third network is never started."""
    from sklearn_gatedmem._base import BaseLSTM

    monkeypatch.setattr("sklearn_gatedmem._base.blas_threads", lambda: 1)
    X, y, _ = sequences()
    fits, calls = [], []
    original_fit, original_loss = BaseLSTM._fit, _objective.loss_grad

    def counting_fit(self, *args, **kwargs):
        fits.append(1)
        return original_fit(self, *args, **kwargs)

    def interrupt_in_the_second_network(theta, *args, **kwargs):
        if len(fits) == 2:
            calls.append(1)
            if len(calls) == 3:
                raise KeyboardInterrupt
        return original_loss(theta, *args, **kwargs)

    monkeypatch.setattr(BaseLSTM, "_fit", counting_fit)
    monkeypatch.setattr(_objective, "loss_grad", interrupt_in_the_second_network)
    est = LSTMClassifier(hidden_layer_sizes=4, max_iter=8, tol=0, random_state=0,
                         n_ensemble=3, alpha=1.0, patch_size=None).fit(X, y)
    assert len(fits) == 2  # no third network after the interrupt
    assert len(est.estimators_) == 2 and est.estimators_[1].n_iter_ < 8
    assert est.predict_proba(X).shape == (len(X), 2)


@quiet
def test_an_interrupted_network_stops_those_beside_it(monkeypatch):
    """Side by side, an interrupt in the second network stops the first at
    its next evaluation, and the third is never started."""
    import threading

    from sklearn_gatedmem import _optimize

    monkeypatch.setattr("sklearn_gatedmem._base.blas_threads", lambda: 2)
    X, y, _ = sequences()
    threads, calls = _threads_of_member_fits(monkeypatch), {}
    original_loss = _objective.loss_grad

    def interrupt_in_the_second_network(theta, *args, **kwargs):
        me = threading.get_ident()
        calls[me] = calls.get(me, 0) + 1
        if len(threads) == 2 and me == threads[1] and calls[me] == 3:
            raise KeyboardInterrupt
        if me == threads[0] and calls[me] == 2:
            # the first network waits until the second's interrupt has
            # stopped the ensemble, so that it cannot finish first
            assert _optimize._THIS_THREAD.stop.wait(timeout=30)
        return original_loss(theta, *args, **kwargs)

    monkeypatch.setattr(_objective, "loss_grad", interrupt_in_the_second_network)
    est = LSTMClassifier(hidden_layer_sizes=4, max_iter=8, tol=0, random_state=0,
                         n_ensemble=3, alpha=1.0, patch_size=None).fit(X, y)
    assert len(threads) == 2  # no third network after the interrupt
    assert len(est.estimators_) == 2
    assert all(m._interrupted and m.n_iter_ < 8 for m in est.estimators_)
    assert est.predict_proba(X).shape == (len(X), 2)


def _threads_of_member_fits(monkeypatch):
    """Record the thread in which each network's ``_fit`` runs."""
    import threading

    from sklearn_gatedmem._base import BaseLSTM

    threads, original = [], BaseLSTM._fit

    def recording(self, *args, **kwargs):
        threads.append(threading.get_ident())
        return original(self, *args, **kwargs)

    monkeypatch.setattr(BaseLSTM, "_fit", recording)
    return threads


@quiet
@pytest.mark.parametrize("Estimator", [LSTMClassifier, LSTMRegressor])
def test_ensemble_members_side_by_side_equal_one_after_the_other(monkeypatch, Estimator):
    X, y_class, y_reg = sequences()
    y = y_class if Estimator is LSTMClassifier else y_reg
    params = dict(hidden_layer_sizes=4, max_iter=15, random_state=0, n_ensemble=3)
    # the members only, not the "auto" search's fits
    if Estimator is LSTMRegressor:
        params.update(alpha=1e-4, pooling="last", patch_size=None)
    else:
        params.update(alpha=1.0, patch_size=None)
    threads = _threads_of_member_fits(monkeypatch)
    # side by side, each network has one BLAS thread: one after the other on
    # one thread gives the same weights bit for bit (OpenBLAS may round some
    # products differently on several threads)
    with threadpool_limits(1, user_api="blas"):
        serial = Estimator(**params).fit(X, y)
    assert len(set(threads)) == 1
    threads.clear()
    monkeypatch.setattr("sklearn_gatedmem._base.blas_threads", lambda: 2)
    parallel = Estimator(**params).fit(X, y)
    assert len(threads) == 3 and len(set(threads)) >= 2  # fitted in threads
    for a, b in zip(serial.estimators_, parallel.estimators_):
        assert a.random_state == b.random_state and a.n_iter_ == b.n_iter_
        for name in a.coefs_:
            np.testing.assert_array_equal(a.coefs_[name], b.coefs_[name])
    np.testing.assert_array_equal(serial.predict(X), parallel.predict(X))


def test_ensemble_members_fit_one_after_the_other_when_asked(monkeypatch):
    """verbose keeps each network's lines in order; a BLAS limit of 1 (as
    joblib's workers have) and too little memory for several fits at once
    mean one at a time."""
    X, _, _ = sequences()
    monkeypatch.setattr("sklearn_gatedmem._base.blas_threads", lambda: 4)
    assert LSTMClassifier(n_ensemble=3)._members_at_once(X) == 3
    assert LSTMClassifier(n_ensemble=5)._members_at_once(X) == 4
    assert LSTMClassifier(n_ensemble=3, verbose=1)._members_at_once(X) == 1
    ragged = [np.zeros((4, 2)), np.zeros((6, 2))]  # read as NaN-padded sequences
    assert LSTMClassifier(n_ensemble=3, variable_length=True)._members_at_once(ragged) == 3
    assert LSTMClassifier(n_ensemble=3)._members_at_once(np.zeros((2, 3, 4, 5))) == 1
    # an array-like that refuses NumPy's functions is fitted as its array is
    # (side by side or not changes the BLAS threads, so the rounding)
    from sklearn.utils.estimator_checks import _NotAnArray
    assert LSTMClassifier(n_ensemble=3)._members_at_once(_NotAnArray(X.reshape(len(X), -1))) == 3
    estimate = LSTMClassifier(n_ensemble=3)._resource_plan(
        (40, 12), np.float64, (6, 2), reset=True).total
    monkeypatch.setattr("sklearn_gatedmem._base.available_bytes", lambda: 2.5 * estimate)
    assert LSTMClassifier(n_ensemble=3)._members_at_once(X) == 1
    monkeypatch.undo()
    with threadpool_limits(1, user_api="blas"):
        assert LSTMClassifier(n_ensemble=3)._members_at_once(X) == 1


@quiet
def test_ctrl_c_stops_the_networks_fitted_side_by_side(monkeypatch, ctrl_c):
    """Ctrl-C reaches the main thread, which waits for the members' threads:
    every running member ends at its best weights, none is lost."""
    import threading

    X, y, _ = sequences(n_samples=200, n_steps=20)
    monkeypatch.setattr("sklearn_gatedmem._base.blas_threads", lambda: 2)
    # in threads (test_processes has the workers' case)
    monkeypatch.setattr("sklearn_gatedmem._processes.PROCESSES_FROM_STEPS", 10**12)
    evaluations, original = [], _objective.loss_grad

    def counting(theta, *args, **kwargs):
        evaluations.append(threading.get_ident())
        if len(evaluations) == 10:
            ctrl_c()
        return original(theta, *args, **kwargs)

    monkeypatch.setattr(_objective, "loss_grad", counting)
    with pytest.warns(ConvergenceWarning, match="interrupted"):
        est = LSTMClassifier(hidden_layer_sizes=8, max_iter=1000, tol=0, random_state=0,
                             n_ensemble=2, alpha=1.0, patch_size=None).fit(X, y)
    assert len(evaluations) >= 10  # the interrupt was sent
    assert len(est.estimators_) == 2 and est._interrupted
    assert all(m._interrupted and m.n_iter_ < 1000 for m in est.estimators_)
    assert est.predict_proba(X).shape == (len(X), 2)


@quiet
def test_warm_start_with_other_classes_is_a_value_error():
    X, y, _ = sequences()
    clf = LSTMClassifier(warm_start=True, **SMALL_CLF).fit(X, y)
    with pytest.raises(ValueError, match="classes"):
        clf.fit(X, y + 1)


# -- (h) loss curve and convergence -----------------------------------------


@pytest.mark.parametrize("Estimator", [LSTMClassifier, LSTMRegressor])
def test_loss_curve_and_convergence_warning(Estimator):
    X, y, _ = sequences()
    target = y if Estimator is LSTMClassifier else X[:, :, 0].sum(axis=1)
    with pytest.warns(ConvergenceWarning):
        est = Estimator(hidden_layer_sizes=4, max_iter=6, tol=0, random_state=0, n_ensemble=1)
        est.fit(X, target)
    assert est.n_iter_ == 6
    curve = est.loss_curve_
    assert len(curve) == est.n_iter_
    assert all(np.isfinite(curve))
    assert curve[-1] <= curve[0]
    # L-BFGS-B with its line search never accepts an increase
    assert all(b <= a for a, b in zip(curve, curve[1:])), curve
    assert est.loss_ == pytest.approx(curve[-1], rel=1e-12)


def test_no_convergence_warning_when_converged():
    X, y, _ = sequences()
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        clf = LSTMClassifier(hidden_layer_sizes=3, max_iter=500, tol=1e-2, random_state=0,
                             n_ensemble=1)
        clf.fit(X, y)
    assert clf.n_iter_ < 500
    assert len(clf.loss_curve_) == clf.n_iter_


# -- (i) classifier outputs -------------------------------------------------


@quiet
@pytest.mark.parametrize("task", ["binary", "multiclass", "multilabel"])
def test_predict_proba(task):
    X, _, _ = sequences(n_samples=45)
    if task == "binary":
        y = (X[:, 0, 0] > 0).astype(int)
        n_classes = 2
    elif task == "multiclass":
        y = np.digitize(X[:, 0, 0], [-0.4, 0.4])
        n_classes = 3
    else:
        y = np.c_[X[:, 0, 0] > 0, X[:, 1, 1] > 0, X[:, 0, 1] > 0.5].astype(int)
        n_classes = 3
    clf = LSTMClassifier(**SMALL_CLF).fit(X, y)
    proba = clf.predict_proba(X)
    assert proba.shape == (len(X), n_classes)
    assert np.all((proba >= 0) & (proba <= 1))
    log_proba = clf.predict_log_proba(X)
    assert log_proba.shape == proba.shape
    finite = np.isfinite(log_proba)
    assert finite.mean() > 0.9
    np.testing.assert_allclose(log_proba[finite], np.log(proba[finite]), rtol=1e-10, atol=1e-12)
    pred = clf.predict(X)
    if task == "multilabel":
        assert pred.shape == (len(X), 3)
        assert np.all((proba > 0) & (proba < 1))
        np.testing.assert_array_equal(pred, (proba > 0.5).astype(int))
        np.testing.assert_array_equal(clf.classes_, [0, 1, 2])
    else:
        assert pred.shape == (len(X),)
        np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)
        np.testing.assert_array_equal(pred, clf.classes_[proba.argmax(axis=1)])
        np.testing.assert_array_equal(clf.classes_, np.arange(n_classes))


@quiet
def test_saturated_multilabel_probabilities_stay_inside_0_1():
    X, _, _ = sequences(n_samples=30)
    y = np.c_[X[:, 0, 0] > 0, X[:, 1, 1] > 0].astype(int)
    clf = LSTMClassifier(**SMALL_CLF).fit(X, y)
    clf.coefs_["head.b"][:] = [800.0, -800.0]  # saturate both labels
    proba = clf.predict_proba(X)
    assert np.all((proba > 0) & (proba < 1))
    assert np.all(np.isfinite(clf.predict_log_proba(X)))


@quiet
def test_string_labels():
    X, y, _ = sequences()
    labels = np.array(["cat", "dog"])[y]
    clf = LSTMClassifier(**SMALL_CLF).fit(X, labels)
    np.testing.assert_array_equal(clf.classes_, ["cat", "dog"])
    assert set(clf.predict(X)) <= {"cat", "dog"}
    ref = LSTMClassifier(**SMALL_CLF).fit(X, y)
    np.testing.assert_array_equal(clf.predict(X), np.array(["cat", "dog"])[ref.predict(X)])
    three = np.array(["a", "b", "c"])[np.digitize(X[:, 0, 0], [-0.4, 0.4])]
    clf3 = LSTMClassifier(**SMALL_CLF).fit(X, three)
    assert set(clf3.predict(X)) <= {"a", "b", "c"}
    assert clf3.predict_proba(X).shape == (len(X), 3)


@quiet
@pytest.mark.parametrize("class_weight", ["balanced", {0: 1.0, 1: 3.0}])
def test_class_weight_is_a_sample_weight(class_weight):
    X, _, _ = sequences(n_samples=40)
    y = (X[:, 0, 0] > 0.9).astype(int)  # imbalanced
    assert 0.1 < y.mean() < 0.4
    weighted = LSTMClassifier(class_weight=class_weight, **SMALL_CLF).fit(X, y)
    sw = compute_sample_weight(class_weight, y)
    explicit = LSTMClassifier(**SMALL_CLF).fit(X, y, sample_weight=sw)
    assert _coefs_bytes(weighted) == _coefs_bytes(explicit)
    plain = LSTMClassifier(**SMALL_CLF).fit(X, y)
    assert _coefs_bytes(plain) != _coefs_bytes(weighted)
    # it shifts predictions towards the minority class
    assert weighted.predict_proba(X)[:, 1].mean() > plain.predict_proba(X)[:, 1].mean()


def test_class_weight_with_multilabel_is_a_value_error():
    X, _, _ = sequences()
    y = np.c_[X[:, 0, 0] > 0, X[:, 1, 1] > 0].astype(int)
    with pytest.raises(ValueError, match="class_weight"):
        LSTMClassifier(class_weight="balanced", **SMALL_CLF).fit(X, y)


# -- (j) regressor shapes ---------------------------------------------------


@quiet
@pytest.mark.parametrize("n_outputs", [None, 1, 2])
def test_regressor_output_shapes(n_outputs):
    X, _, _ = sequences()
    base = 50 + 10 * X[:, :, 0].sum(axis=1)
    if n_outputs is None:
        y = base
    else:
        y = np.c_[base, -3 * X[:, 0, 1]][:, :n_outputs]
    reg = LSTMRegressor(**SMALL).fit(X, y)
    pred = reg.predict(X)
    assert pred.shape == y.shape
    assert np.all(np.isfinite(pred))
    # predictions are mapped back to the scale of y
    assert abs(np.mean(pred[..., 0] if pred.ndim > 1 else pred) - base.mean()) < 5
    assert reg.y_mean_.shape == reg.y_scale_.shape == (reg.n_outputs_,)


@quiet
def test_regressor_learns_a_sum():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(120, 8, 1))
    y = X[:, :, 0].sum(axis=1)
    reg = LSTMRegressor(hidden_layer_sizes=6, max_iter=150, random_state=0).fit(X[:80], y[:80])
    assert reg.score(X[80:], y[80:]) > 0.8


# -- (k) model selection, clone, pickle, parameters -------------------------


@quiet
def test_grid_search_over_a_pipeline():
    X, y, _ = sequences(n_samples=36, n_steps=4, n_features=2)
    pipe = make_pipeline(StandardScaler(), LSTMClassifier(n_steps=4, **SMALL_CLF))
    search = GridSearchCV(pipe, {"lstmclassifier__alpha": [1e-4, 1e-2]}, cv=2)
    search.fit(X.reshape(len(X), -1), y)
    assert search.best_params_["lstmclassifier__alpha"] in (1e-4, 1e-2)
    assert len(search.cv_results_["mean_test_score"]) == 2
    assert np.all(np.isfinite(search.cv_results_["mean_test_score"]))
    assert search.predict(X.reshape(len(X), -1)).shape == (len(X),)


@quiet
@pytest.mark.parametrize("Estimator", [LSTMClassifier, LSTMRegressor])
def test_clone_and_pickle_round_trip(Estimator):
    X, y, _ = sequences()
    target = y if Estimator is LSTMClassifier else X[:, :, 0].sum(axis=1)
    est = Estimator(**SMALL).fit(X, target)
    restored = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(restored.predict(X), est.predict(X))
    if Estimator is LSTMClassifier:
        np.testing.assert_array_equal(restored.predict_proba(X), est.predict_proba(X))
    cloned = clone(est)
    assert not hasattr(cloned, "coefs_")
    assert cloned.get_params() == est.get_params()
    cloned.fit(X, target)
    np.testing.assert_array_equal(cloned.predict(X), est.predict(X))


@quiet
@pytest.mark.parametrize("Estimator", [LSTMClassifier, LSTMRegressor])
def test_fit_does_not_modify_parameters(Estimator):
    X, y, _ = sequences()
    target = y if Estimator is LSTMClassifier else X[:, :, 0].sum(axis=1)
    kwargs = dict(hidden_layer_sizes=[3, 2], max_iter=3, random_state=np.random.RandomState(0))
    if Estimator is LSTMClassifier:
        kwargs["class_weight"] = {0: 1.0, 1: 2.0}
    est = Estimator(**kwargs)
    before = {k: (v, repr(v)) for k, v in est.get_params().items()}
    est.fit(X, target)
    after = est.get_params()
    assert set(after) == set(before)
    for k, (value, text) in before.items():
        assert after[k] is value, k
        if k != "random_state":  # a RandomState instance is consumed by design
            assert repr(after[k]) == text, k
    assert est.hidden_layer_sizes == [3, 2]


# -- (k) series as users have them: aeon/sktime layouts, ragged lists --------


def _ragged(n_samples=30, n_features=2, low=3, high=9, seed=0):
    rng = np.random.RandomState(seed)
    seqs = [rng.normal(size=(rng.randint(low, high), n_features)) for _ in range(n_samples)]
    return seqs, np.array([int(s[:, 0].mean() > 0) for s in seqs])


# -- patches ---------------------------------------------------------------


@quiet
@pytest.mark.parametrize("Estimator", [LSTMClassifier, LSTMRegressor])
def test_patch_size_auto_reads_long_sequences_in_patches(Estimator):
    X, y, _ = sequences(n_steps=70)
    est = Estimator(**SMALL).fit(X, y)
    assert est.patch_size_ == 3  # 70 steps in at most 32 patches
    width = 3 * X.shape[2] * (1 + est.differences_) * 2  # instance_norm="append"
    assert est.differences_ == (Estimator is LSTMRegressor)  # the defaults
    assert est.instance_norm_ == "append"
    assert est.x_mean_.shape == (width,)
    assert est.coefs_["W0.0"].shape[0] == width
    # above the search's 100 cases both weigh the whole series too, on a
    # sample of the cases (the regressor while they hold at most 8,000 patch
    # steps: 2,400 here; tests/test_select.py)
    X_short, y_short, _ = sequences(120, n_steps=20)
    short = Estimator(**SMALL, alpha=1.0 if Estimator is LSTMClassifier else "auto")
    short.fit(X_short, y_short)
    params = short.cv_results_["params"]
    assert {c["patch_size"] for c in params} == {1, 20}
    assert short.patch_size_ == params[int(np.argmin(short.cv_results_["rank_test_score"]))]["patch_size"]
    assert Estimator(**SMALL, patch_size=None).fit(X, y).patch_size_ == 1


@quiet
def test_patched_fit_is_the_fit_on_make_patches():
    """The estimator's network reads exactly make_patches(X, patch_size_)."""
    X, y, _ = sequences(n_steps=9, n_features=2)
    patched = LSTMClassifier(**SMALL, alpha=1.0, patch_size=4, instance_norm=None,
                             patch_shifts=1).fit(X, y)
    direct = LSTMClassifier(**SMALL, alpha=1.0, patch_size=None, instance_norm=None).fit(
        make_patches(X, 4), y
    )
    # equal to rounding: the rows' canonical order (by content) differs
    for name, value in patched.coefs_.items():
        np.testing.assert_allclose(value, direct.coefs_[name], rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(
        patched.predict_proba(X), direct.predict_proba(make_patches(X, 4)), atol=1e-9
    )


@quiet
@pytest.mark.parametrize("Estimator", [LSTMClassifier, LSTMRegressor])
def test_shifted_readings_are_a_fit_on_every_reading_and_a_mean_over_them(Estimator):
    """patch_shifts=K fits one network on the K readings of every case (the
    first shift_offsets(p, K) steps dropped), each a training case of the
    case's target and weight, and predicts the mean of the readings' outputs:
    the fit of patch_shifts=1 on the readings themselves, to rounding (the
    rows' order differs)."""
    X, y_class, y_reg = sequences(n_steps=10, n_features=2)
    y = y_class if Estimator is LSTMClassifier else y_reg
    weight = np.random.RandomState(1).uniform(0.5, 2.0, size=len(y))
    params = dict(SMALL, alpha=1.0, patch_size=4, pooling="mean")
    shifted = Estimator(**params, patch_shifts=3).fit(X, y, sample_weight=weight)
    assert shifted.patch_shifts_ == 3 and shift_offsets(4, 3) == [0, 1, 3]
    full = np.full(len(X), X.shape[1])
    readings = [shift_sequences(X, full, offset)[0] for offset in (0, 1, 3)]
    direct = Estimator(**params, patch_shifts=1, variable_length=True).fit(
        np.concatenate(readings), np.concatenate([y] * 3), np.tile(weight, 3)
    )
    for name, value in shifted.coefs_.items():
        np.testing.assert_allclose(value, direct.coefs_[name], rtol=1e-6, atol=1e-8)
    output = "predict_proba" if Estimator is LSTMClassifier else "predict"
    np.testing.assert_allclose(
        getattr(shifted, output)(X),
        np.mean([getattr(direct, output)(R) for R in readings], axis=0),
        rtol=1e-6, atol=1e-8,
    )


@quiet
def test_patch_shifts_auto_reads_small_training_sets_several_ways():
    X, y, _ = sequences(n_samples=20, n_steps=12)
    est = LSTMClassifier(**SMALL, alpha=1.0, patch_size=3).fit(X, y)
    assert est.patch_shifts_ == 3  # every offset within a patch of 3
    assert LSTMClassifier(**SMALL, alpha=1.0, patch_size=None).fit(X, y).patch_shifts_ == 1
    assert LSTMClassifier(**SMALL, alpha=1.0, patch_size=12).fit(X, y).patch_shifts_ == 1
    # a larger set: twice while a reading is cheap (404 patch steps here) ...
    X, y, _ = sequences(n_samples=SHIFTS_MAX_SAMPLES + 1, n_steps=12)
    assert LSTMClassifier(**SMALL, alpha=1.0, patch_size=3).fit(X, y).patch_shifts_ == 2
    # ... once beyond LARGE_SHIFTS_MAX_STEPS patch steps, unless asked
    X, y, _ = sequences(n_samples=LARGE_SHIFTS_MAX_STEPS // 4 + 1, n_steps=12)
    assert LSTMClassifier(**SMALL, alpha=1.0, patch_size=3).fit(X, y).patch_shifts_ == 1
    assert LSTMClassifier(**SMALL, alpha=1.0, patch_size=3, patch_shifts=3).fit(
        X, y).patch_shifts_ == 3


@quiet
@pytest.mark.parametrize("Estimator", [LSTMClassifier, LSTMRegressor])
def test_patch_size_auto_reads_a_small_ragged_set_by_its_typical_length(Estimator):
    # 4 series in 5 of 40 steps, 1 in 5 of 200: on a small set the short ones
    # set the patches (ceil(40 / 32) = 2), on a larger one the longest does
    # (ceil(200 / 32) = 7), as it does for equal lengths
    rng = np.random.RandomState(0)

    def ragged(n_samples):
        X = rng.normal(size=(n_samples, 200, 1))
        X[: 4 * n_samples // 5, 40:] = np.nan
        return X, (X[:, :40, 0].mean(axis=1) > 0).astype(int)

    params = dict(SMALL, alpha=1.0, variable_length=True, pooling="max")
    X, y = ragged(20)
    est = Estimator(**params).fit(X, y)
    assert est.patch_size_ == 2 and est.n_steps_ == 200
    assert est.predict(X).shape == (20,)
    X, y = ragged(SHIFTS_MAX_SAMPLES + 4)
    assert Estimator(**params).fit(X, y).patch_size_ == 7
    X, y = ragged(20)
    assert Estimator(**params).fit(X[:, :40], y).patch_size_ == 2  # equal lengths


@quiet
def test_early_stopping_holds_out_every_reading_of_a_case_together():
    X, y, _ = sequences(n_samples=30, n_steps=12)
    est = LSTMClassifier(**SMALL, alpha=1.0, patch_size=3, early_stopping=True,
                         validation_fraction=0.2)
    Y = np.tile(np.eye(2)[y], (3, 1))
    cases = np.tile(np.arange(30), 3)
    order = np.random.RandomState(0).permutation(90)  # as the fit's length sort
    train, val = est._validation_split(Y[order], "softmax", cases[order])
    assert len(val) == 3 * 6 and not set(cases[order][train]) & set(cases[order][val])
    assert est.fit(X, y).patch_shifts_ == 3 and est.n_iter_ >= 1


@quiet
@pytest.mark.parametrize("Estimator", [LSTMClassifier, LSTMRegressor])
def test_early_stopping_scores_a_held_out_case_by_the_mean_of_its_readings(
    Estimator, monkeypatch
):
    # as predict does: one score row per held-out case, the mean of its 3
    # readings' outputs (before: each reading scored as a case of its own)
    X, y, _ = sequences(n_samples=30, n_steps=12)
    if Estimator is LSTMRegressor:
        y = X[:, :, 0].sum(axis=1)
    seen = []
    real = Estimator._validation_score

    def recording(self, Z, Y, sample_weight, out_activation):
        seen.append((Z.copy(), Y.copy()))
        return real(self, Z, Y, sample_weight, out_activation)

    monkeypatch.setattr(Estimator, "_validation_score", recording)
    est = Estimator(**SMALL, alpha=1.0, patch_size=3, early_stopping=True,
                    validation_fraction=0.2).fit(X, y)
    assert est.patch_shifts_ == 3 and seen
    Z, Y = seen[-1]
    assert len(Z) == len(Y) == 6  # the held-out cases, each once
    if Estimator is LSTMClassifier:  # the mean probability less 1/2
        assert Z.shape == (6, 1) and np.all(np.abs(Z) < 0.5)


@quiet
def test_predict_uses_the_fitted_patch_size():
    X, y, _ = sequences(n_steps=9)
    est = LSTMClassifier(**SMALL, alpha=1.0, patch_size=4).fit(X, y)
    before = est.predict_proba(X)
    est.set_params(patch_size=2)
    np.testing.assert_array_equal(est.predict_proba(X), before)
    assert est.patch_size_ == 4


@quiet
def test_variable_length_patches_within_each_length():
    X, y, _ = sequences(n_steps=9)
    X[::3, 5:] = np.nan
    est = LSTMClassifier(**SMALL, alpha=1.0, patch_size=2, variable_length=True).fit(X, y)
    # each sequence's prediction is that of the sequence alone
    alone = np.vstack([est.predict_proba(X[n : n + 1]) for n in range(6)])
    np.testing.assert_allclose(est.predict_proba(X[:6]), alone, rtol=0, atol=1e-12)


@quiet
def test_differences_are_read_with_the_values():
    X, y, _ = sequences(n_steps=5)
    est = LSTMRegressor(**SMALL, patch_size=None, instance_norm=None).fit(X, y)
    assert est.differences_ and est.x_mean_.shape == (2 * X.shape[2],)
    D = np.diff(X, axis=1, prepend=X[:, :1])
    direct = LSTMRegressor(**SMALL, patch_size=None, differences=False, instance_norm=None).fit(
        np.concatenate([X, D], axis=2), y
    )
    np.testing.assert_allclose(est.predict(X), direct.predict(make_patches(X, 1, True)),
                               rtol=1e-7, atol=1e-9)
    # one step has no difference: none is added
    one = LSTMRegressor(**SMALL, n_steps=1).fit(X.reshape(40, -1), y)
    assert not one.differences_ and one.x_mean_.shape == (10,)


@quiet
@pytest.mark.parametrize("mode", ["append", "replace"])
def test_instance_norm_is_read_as_make_patches_gives_it(mode):
    X, y, _ = sequences(n_steps=7, n_features=2)
    X = X * [1.0, 50.0] + [3.0, -20.0]
    est = LSTMClassifier(**SMALL_CLF, instance_norm=mode).fit(X, y)
    assert est.instance_norm_ == mode
    assert est.x_mean_.shape == ((2 if mode == "append" else 1) * X.shape[2],)
    direct = LSTMClassifier(**SMALL_CLF, instance_norm=None).fit(
        make_patches(X, 1, instance_norm=mode), y
    )
    np.testing.assert_allclose(
        est.predict_proba(X),
        direct.predict_proba(make_patches(X, 1, instance_norm=mode)),
        rtol=1e-7, atol=1e-9,
    )
    # "replace" reads the shape alone: a series' level and scale do not matter
    if mode == "replace":
        moved = X * 7.0 - 2.0
        np.testing.assert_allclose(est.predict_proba(moved), est.predict_proba(X), atol=1e-9)
    # one step has no spread: nothing is normalised
    one = LSTMClassifier(**SMALL_CLF, n_steps=1, instance_norm=mode).fit(X.reshape(len(X), -1), y)
    assert one.instance_norm_ is None and one.x_mean_.shape == (14,)


@quiet
@pytest.mark.parametrize("Estimator", [LSTMClassifier, LSTMRegressor])
def test_channels_first_is_channels_last_transposed(Estimator):
    X, y, _ = sequences(n_steps=7, n_features=3)  # (n, T, C)
    last = Estimator(**SMALL).fit(X, y)
    first = Estimator(data_format="channels_first", **SMALL).fit(X.transpose(0, 2, 1), y)
    assert first.n_steps_ == 7 and first.n_step_features_ == 3
    assert _coefs_bytes(first) == _coefs_bytes(last)
    np.testing.assert_array_equal(first.predict(X.transpose(0, 2, 1)), last.predict(X))
    with pytest.raises(ValueError, match="data_format"):  # the other layout
        first.predict(X)


@quiet
def test_univariate_aeon_array_read_channels_last_warns_naming_data_format():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(30, 1, 20))  # aeon's univariate (n_cases, 1, n_timepoints)
    y = (X[:, 0, :3].sum(axis=1) > 0).astype(int)
    with pytest.warns(UserWarning, match='data_format="channels_first"'):
        LSTMClassifier(**SMALL_CLF).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        warnings.simplefilter("ignore", ConvergenceWarning)  # a UserWarning too
        clf = LSTMClassifier(data_format="channels_first", **SMALL_CLF).fit(X, y)
        LSTMClassifier(**SMALL_CLF).fit(X.reshape(30, 20), y)  # 2-D: unchanged
        LSTMClassifier(**SMALL_CLF).fit(rng.normal(size=(30, 4, 50)), y)  # few steps: fine
    assert clf.n_steps_ == 20 and clf.n_step_features_ == 1


@quiet
@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_ragged_lists_fit_and_predict_as_padded_arrays(data_format):
    from sklearn_gatedmem import pad_sequences

    seqs, y = _ragged()
    given = seqs if data_format == "channels_last" else [s.T for s in seqs]
    kwargs = dict(variable_length=True, data_format=data_format, **SMALL)
    from_list = LSTMClassifier(**kwargs).fit(given, y)
    padded = pad_sequences(given, data_format=data_format)
    from_array = LSTMClassifier(**kwargs).fit(padded, y)
    assert _coefs_bytes(from_list) == _coefs_bytes(from_array)
    np.testing.assert_array_equal(from_list.predict_proba(given), from_array.predict_proba(padded))


@quiet
@pytest.mark.parametrize("pooling", ["last", "mean", "max"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_predict_any_length_independent_of_padding_and_batch(pooling, bidirectional):
    from sklearn_gatedmem import pad_sequences

    seqs, y = _ragged(low=5, high=12)  # fitted on 5 to 11 steps
    reg = LSTMRegressor(
        variable_length=True, pooling=pooling, bidirectional=bidirectional, **SMALL
    ).fit(seqs, y)
    rng = np.random.RandomState(1)
    new = [rng.normal(size=(n, 2)) for n in (35, 2, 1, 11, 20)]  # shorter, longer
    alone = np.array([reg.predict(s[None])[0] for s in new])
    np.testing.assert_allclose(reg.predict(new), alone, rtol=1e-12, atol=1e-12)
    wide = pad_sequences(new, maxlen=60)
    np.testing.assert_allclose(reg.predict(wide), alone, rtol=1e-12, atol=1e-12)
    others = new[:2] + [rng.normal(size=(40, 2)) * 50] + new[2:]  # another neighbour
    np.testing.assert_allclose(
        np.delete(reg.predict(others), 2), alone, rtol=1e-12, atol=1e-12
    )
    assert np.isfinite(alone).all()


@pytest.mark.parametrize("Estimator", [LSTMClassifier, LSTMRegressor])
def test_ragged_or_nan_input_without_variable_length_names_it(Estimator):
    seqs, y = _ragged()
    with pytest.raises(ValueError, match="variable_length=True.*pad_sequences"):
        Estimator(**SMALL).fit(seqs, y)
    from sklearn_gatedmem import pad_sequences

    with pytest.raises(ValueError, match="variable_length=True.*pad_sequences"):
        Estimator(**SMALL).fit(pad_sequences(seqs), y)
    X, y, _ = sequences()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est = Estimator(**SMALL).fit(X, y)
    with pytest.raises(ValueError, match="variable_length=True"):
        est.predict([X[0], X[1, :3]])


@quiet
def test_pre_padding_fed_to_the_estimator_is_a_clear_error():
    from sklearn_gatedmem import pad_sequences

    seqs, y = _ragged()
    with pytest.raises(ValueError, match='padding="post"'):
        LSTMClassifier(variable_length=True, **SMALL_CLF).fit(pad_sequences(seqs, padding="pre"), y)


@pytest.mark.parametrize("shape", [(40, 6, 2, 1), (40, 2, 3, 2, 1)])
def test_4d_input_says_expected_2d_or_3d(shape):
    X, y, _ = sequences()
    with pytest.raises(ValueError, match="expected 2-D or 3-D"):
        LSTMClassifier(**SMALL_CLF).fit(np.zeros(shape), y)


@quiet
@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_one_sequence_at_predict_says_add_a_leading_axis(data_format):
    X, y, _ = sequences(n_steps=8, n_features=3)
    if data_format == "channels_first":
        X = X.transpose(0, 2, 1)
    clf = LSTMClassifier(data_format=data_format, **SMALL_CLF).fit(X, y)
    with pytest.raises(ValueError, match=r"X\[None\]"):
        clf.predict(X[0])
    with pytest.raises(ValueError, match=r"X\[None\]"):
        clf.predict(X[0].tolist())
    assert clf.predict(X[0][None]).shape == (1,)
    with pytest.raises(ValueError, match="features") as info:  # any other width
        clf.predict(np.zeros((8, 5)))
    assert "X[None]" not in str(info.value)


def test_multilabel_predict_log_proba_runs_the_network_once(monkeypatch):
    X, _, _ = sequences(30)
    Y = np.stack([X[:, 0, 0] > 0, X[:, 1, 1] > 0], axis=1).astype(int)
    clf = LSTMClassifier(hidden_layer_sizes=3, max_iter=3, n_ensemble=1, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X, Y)
    calls, decision = [], clf._decision
    monkeypatch.setattr(clf, "_decision", lambda X: calls.append(1) or decision(X))
    log_proba = clf.predict_log_proba(X)
    assert len(calls) == 1
    np.testing.assert_allclose(log_proba, np.log(clf.predict_proba(X)), rtol=0, atol=1e-15)



# -- missing="carry" -------------------------------------------------------------


def _with_gaps(X, share, seed):
    X = X.copy()
    X[np.random.RandomState(seed).rand(*X.shape) < share] = np.nan
    return X


def test_missing_error_is_the_default_and_names_carry():
    X, y, _ = sequences(20, 6, 2, seed=0)
    X[3, 2, 1] = np.nan
    for kwargs in ({}, {"variable_length": True}):
        with pytest.raises(ValueError, match='missing="carry"'):
            LSTMClassifier(**SMALL_CLF, **kwargs).fit(X, y)


@quiet
@pytest.mark.parametrize("variable_length", [False, True])
def test_missing_carry_fits_gaps_and_keeps_trailing_padding(variable_length):
    X, y, _ = sequences(30, 8, 2, seed=1)
    X = _with_gaps(X, 0.15, seed=2)
    X[0, 0] = np.nan  # a series starting with a whole missing step
    clf = LSTMClassifier(missing="carry", variable_length=variable_length, **SMALL_CLF)
    clf.fit(X, y)
    # the fill of a leading gap is each feature's mean over its observed values
    np.testing.assert_allclose(clf.gap_fill_, np.nanmean(X, axis=(0, 1)), rtol=1e-12)
    assert clf.x_mean_.shape == (2 * 2 * 2,)  # values, indicators; instance_norm
    P = clf.predict_proba(X)
    assert np.isfinite(P).all()
    if variable_length:  # trailing all-NaN steps are padding, not gaps
        padded = np.concatenate([X, np.full((30, 3, 2), np.nan)], axis=1)
        np.testing.assert_allclose(clf.predict_proba(padded), P, rtol=0, atol=1e-12)
        ragged = [x[: 8 - k % 3] for k, x in enumerate(X)]
        np.testing.assert_allclose(
            clf.predict_proba(ragged), clf.predict_proba(pad_sequences(ragged)),
            rtol=0, atol=1e-12,
        )
    else:  # they are gaps: carried, unlike padding
        tail = X.copy()
        tail[:, -2:] = np.nan
        assert np.isfinite(clf.predict_proba(tail)).all()


def _frequency_task(n, seed, n_steps=24):
    """Class 0: two cycles over the series, class 1: three; random phase,
    noise, and a second channel of pure noise."""
    rng = np.random.RandomState(seed)
    y = rng.randint(2, size=n)
    t = np.arange(n_steps)
    cycles = np.where(y == 1, 3, 2)[:, None] / n_steps
    phase = rng.uniform(0, 2 * np.pi, size=(n, 1))
    wave = np.sin(2 * np.pi * cycles * t + phase) + 0.3 * rng.normal(size=(n, n_steps))
    return np.stack([wave, rng.normal(size=(n, n_steps))], axis=-1), y


@quiet
def test_ten_percent_gaps_cost_only_a_few_points_of_accuracy(capsys):
    """Gaps at random positions (10 % of the values, train and test) against
    the complete data, the same networks (3, the default ensemble)."""
    X_train, y_train = _frequency_task(300, seed=0)
    X_test, y_test = _frequency_task(300, seed=1)
    # alpha and patches fixed: the same networks with and without gaps (the
    # "auto" search could choose differently for each)
    params = dict(hidden_layer_sizes=8, max_iter=100, random_state=0, alpha=1.0,
                  patch_size=None)
    complete = LSTMClassifier(**params).fit(X_train, y_train).score(X_test, y_test)
    gappy = LSTMClassifier(missing="carry", **params).fit(
        _with_gaps(X_train, 0.1, seed=2), y_train
    ).score(_with_gaps(X_test, 0.1, seed=3), y_test)
    with capsys.disabled():
        print(f"\naccuracy: complete {complete:.3f}, with 10 % gaps {gappy:.3f}")
    assert complete >= 0.95
    assert gappy >= complete - 0.05


# -- static_features ---------------------------------------------------------------


def _static_task(n, seed, n_steps=16):
    """The label: the series' level against a threshold that the static
    value (an "age" from 20 to 80) sets; neither decides it alone."""
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n, n_steps, 1))
    age = rng.uniform(20, 80, size=n)
    y = (4 * X[:, :, 0].mean(axis=1) + (age - 50) / 10 > 0).astype(int)
    return X, age, y


@quiet
def test_static_features_gain_where_the_label_needs_both(capsys):
    X_train, age_train, y_train = _static_task(300, seed=0)
    X_test, age_test, y_test = _static_task(300, seed=1)
    params = dict(hidden_layer_sizes=8, max_iter=100, random_state=0)
    series_only = LSTMClassifier(**params).fit(X_train, y_train).score(X_test, y_test)
    with_static = LSTMClassifier(static_features=[0], **params).fit(
        np.hstack([age_train[:, None], X_train[:, :, 0]]), y_train
    ).score(np.hstack([age_test[:, None], X_test[:, :, 0]]), y_test)
    with capsys.disabled():
        print(f"\naccuracy: series only {series_only:.3f}, with static_features "
              f"{with_static:.3f}")
    assert with_static >= series_only + 0.2
    assert with_static >= 0.9


def _half_task(n, seed, n_steps=16):
    """The label: the sign of the mean of the first or the second half of
    the series, as a binary static value says: the static value must change
    how the series is read over time, not shift the output."""
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n, n_steps))
    which = rng.randint(2, size=n)
    half = n_steps // 2
    mean = np.where(which == 1, X[:, half:].mean(axis=1), X[:, :half].mean(axis=1))
    return np.hstack([which[:, None].astype(float), X]), (mean > 0).astype(int)


@quiet
def test_static_into_initial_state_changes_how_the_series_is_read(capsys):
    """Where the label needs an interaction of the static value and the
    series over time, the head alone cannot use the static value; the
    initial states can (benchmarks/static_into.py measures more)."""
    X_train, y_train = _half_task(300, seed=0)
    X_test, y_test = _half_task(300, seed=1)
    params = dict(static_features=[0], hidden_layer_sizes=8, max_iter=100, random_state=0)
    scores = {
        into: LSTMClassifier(static_into=into, **params).fit(X_train, y_train).score(
            X_test, y_test
        )
        for into in ("head", "initial_state")
    }
    with capsys.disabled():
        print(f"\naccuracy by static_into: {scores}")
    assert scores["initial_state"] >= scores["head"] + 0.1
    assert scores["initial_state"] >= 0.85


@quiet
def test_static_into_layout_and_cells():
    """The blocks of each choice, and a clear error for the cell that has no
    initial-state path; without static features the parameter changes
    nothing."""
    X, y, _ = sequences(30, 5, 1, seed=3)
    age = np.random.RandomState(0).uniform(20, 80, size=30)
    X2 = np.hstack([X[:, :, 0], age[:, None]])
    for into, blocks in [("head", {"head.W_static"}), ("initial_state", {"h0.W", "h0.b"}),
                         ("both", {"head.W_static", "h0.W", "h0.b"})]:
        for cell, n_states in [("lstm", 2), ("gru", 1)]:
            est = LSTMClassifier(static_features=[5], static_into=into, cell=cell,
                                 **SMALL).fit(X2, y)
            extra = set(est.coefs_) - set(LSTMClassifier(**SMALL_CLF, cell=cell).fit(
                X[:, :, 0], y).coefs_)
            assert extra == blocks
            if "h0.W" in blocks:
                assert est.coefs_["h0.W"].shape == (1, n_states * 4)
    with pytest.raises(ValueError, match="static_into='initial_state' needs a cell"):
        LSTMClassifier(static_features=[5], static_into="initial_state",
                       cell="gated_memory", **SMALL).fit(X2, y)
    plain = LSTMClassifier(**SMALL_CLF).fit(X[:, :, 0], y)
    same = LSTMClassifier(static_into="both", **SMALL_CLF).fit(X[:, :, 0], y)
    for name in plain.coefs_:
        np.testing.assert_array_equal(same.coefs_[name], plain.coefs_[name])


@quiet
def test_static_into_auto_is_the_initial_state_where_the_cell_can_start_from_it():
    """The default "auto" puts the static values into the initial states of
    the cells that can start from given states and into the head of the
    gated_memory; static_into_ records the choice, None without static
    values; an explicit choice is kept."""
    X, y, _ = sequences(30, 5, 1, seed=3)
    age = np.random.RandomState(0).uniform(20, 80, size=30)
    X2 = np.hstack([X[:, :, 0], age[:, None]])
    assert LSTMClassifier().static_into == LSTMRegressor().static_into == "auto"
    for cell, into, blocks in [("lstm", "initial_state", {"h0.W", "h0.b"}),
                               ("gru", "initial_state", {"h0.W", "h0.b"}),
                               ("gated_memory", "head", {"head.W_static"})]:
        est = LSTMClassifier(static_features=[5], cell=cell, **SMALL_CLF).fit(X2, y)
        assert est.static_into == "auto" and est.static_into_ == into
        assert {"h0.W", "h0.b", "head.W_static"} & set(est.coefs_) == blocks
    reg = LSTMRegressor(static_features=[5], **SMALL).fit(X2, X[:, 0, 0])
    assert reg.static_into_ == "initial_state" and "h0.W" in reg.coefs_
    assert LSTMClassifier(static_features=[5], static_into="head", **SMALL_CLF).fit(
        X2, y).static_into_ == "head"
    assert LSTMClassifier(**SMALL_CLF).fit(X[:, :, 0], y).static_into_ is None
    ensemble = LSTMClassifier(static_features=[5], **{**SMALL_CLF, "n_ensemble": 2}).fit(X2, y)
    assert ensemble.static_into_ == "initial_state"


def test_static_features_named_every_way_fit_the_same_model():
    """Indices, a mask and DataFrame names of 2-D columns, and a constant
    channel of 3-D input: the same sequences and static values, the same
    weights bit for bit."""
    pd = pytest.importorskip("pandas")
    X, y, _ = sequences(30, 5, 1, seed=3)
    age = np.random.RandomState(0).uniform(20, 80, size=30)
    X2 = np.hstack([X[:, :, 0], age[:, None]])
    X3 = np.concatenate([X, np.repeat(age[:, None, None], 5, axis=1)], axis=2)
    frame = pd.DataFrame(X2, columns=[f"t{k}" for k in range(5)] + ["age"])
    fits = [
        LSTMClassifier(static_features=[5], **SMALL_CLF).fit(X2, y),
        LSTMClassifier(static_features=[False] * 5 + [True], **SMALL_CLF).fit(X2, y),
        LSTMClassifier(static_features=["age"], **SMALL_CLF).fit(frame, y),
        LSTMClassifier(static_features=[1], **SMALL_CLF).fit(X3, y),
    ]
    reference = _coefs_bytes(fits[0])
    assert set(reference) >= {"head.W", "h0.W", "h0.b"}  # "auto": the initial states
    assert fits[0].coefs_["h0.W"].shape == (1, 2 * 4)
    for est in fits[1:]:
        assert _coefs_bytes(est) == reference
    np.testing.assert_array_equal(fits[0].static_features_, [5])
    assert fits[0].n_steps_ == 5 and fits[0].n_step_features_ == 1
    np.testing.assert_allclose(fits[0].static_mean_, [age.mean()], rtol=1e-12)
    np.testing.assert_allclose(fits[3].predict_proba(X3), fits[0].predict_proba(X2),
                               rtol=0, atol=1e-14)
    # the static value moves the prediction
    moved = X2.copy()
    moved[:, 5] += 30
    assert not np.allclose(fits[0].predict_proba(moved), fits[0].predict_proba(X2))


@quiet
@pytest.mark.parametrize("kwargs", [
    dict(variable_length=True, patch_size=2, missing="carry"),
    dict(n_ensemble=2, bidirectional=True, differences=True),
    dict(data_format="channels_first", instance_norm="replace"),
])
def test_static_channels_with_the_other_options(kwargs):
    X, y, _ = sequences(24, 6, 2, seed=4)
    machine = np.random.RandomState(1).randint(3, size=24).astype(float)
    X = np.concatenate([X, np.repeat(machine[:, None, None], 6, axis=1)], axis=2)
    if kwargs.get("variable_length"):
        X[::3, 4:] = np.nan  # padding, static channel included
        X[1, 2, 0] = np.nan  # a gap
    if kwargs.get("data_format") == "channels_first":
        X = X.transpose(0, 2, 1)
    est = LSTMClassifier(static_features=[2], **{**SMALL_CLF, **kwargs}).fit(X, y)
    assert est.n_step_features_ == 2 and list(est.static_features_) == [2]
    assert np.isfinite(est.predict_proba(X)).all()
    if kwargs.get("variable_length"):  # any number of steps, a ragged list
        ragged = [x[: 6 - k % 2] for k, x in enumerate(X)]
        assert est.predict_proba(ragged).shape == (24, 2)


def test_static_features_errors_are_clear():
    X, y, _ = sequences(20, 5, 2, seed=5)
    X2 = X.reshape(20, -1)
    with pytest.raises(ValueError, match="channel 1 is not constant over series 0"):
        LSTMClassifier(static_features=[1], **SMALL_CLF).fit(X, y)
    with pytest.raises(ValueError, match="need X as a DataFrame"):
        LSTMClassifier(static_features=["age"], **SMALL_CLF).fit(X2, y)
    with pytest.raises(ValueError, match="out of range"):
        LSTMClassifier(static_features=[10], **SMALL_CLF).fit(X2, y)
    with pytest.raises(ValueError, match="boolean mask of length 3"):
        LSTMClassifier(static_features=[True, False, True], **SMALL_CLF).fit(X2, y)
    with pytest.raises(ValueError, match="nothing is left for the sequences"):
        LSTMClassifier(static_features=[0, 1], **SMALL_CLF).fit(X, y)
    with pytest.raises(ValueError, match="twice"):
        LSTMClassifier(static_features=[0, 0], **SMALL_CLF).fit(X2, y)
    bad = X2.copy()
    bad[3, 0] = np.nan
    with pytest.raises(ValueError, match="static values must be finite"):
        LSTMClassifier(static_features=[0], variable_length=True, **SMALL_CLF).fit(bad, y)
    est = LSTMClassifier(static_features=[0], n_steps=8, **SMALL_CLF)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X2[:, 1:], y)
    with pytest.raises(ValueError, match="predict on input of the same kind"):
        est.predict(X[:, :, :1])


# -- attributions: layouts and targets ----------------------------------------


def _attribution_task(n=30, T=8, d=2, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n, T, d))
    return X, (X[:, 2, 0] > 0).astype(int)


@quiet
def test_attributions_in_the_layout_of_the_input():
    X, y = _attribution_task()
    A3 = LSTMClassifier(**SMALL_CLF).fit(X, y).attributions(X[:4], ig_steps=8)
    assert A3.shape == (4, 8, 2) and np.all(np.isfinite(A3))
    # 2-D step-major input with n_steps: 2-D back, in the same columns
    X2 = X.reshape(len(X), -1)
    A2 = LSTMClassifier(n_steps=8, **SMALL_CLF).fit(X2, y).attributions(X2[:4], ig_steps=8)
    assert A2.shape == (4, 16)
    np.testing.assert_allclose(A2, A3.reshape(4, -1), rtol=1e-8, atol=1e-12)
    # channels-first input: channels-first attributions
    Xf = X.transpose(0, 2, 1)
    Af = LSTMClassifier(data_format="channels_first", **SMALL_CLF).fit(Xf, y).attributions(
        Xf[:4], ig_steps=8)
    assert Af.shape == (4, 2, 8)
    np.testing.assert_allclose(Af, A3.transpose(0, 2, 1), rtol=1e-8, atol=1e-12)
    # float32 input: the same values (computed in float64)
    A32 = LSTMClassifier(**SMALL_CLF).fit(X, y).attributions(X[:4].astype(np.float32), ig_steps=8)
    assert A32.dtype == np.float64 and A32.shape == (4, 8, 2)


@quiet
@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_attributions_of_ragged_lists_and_padded_arrays(data_format):
    from sklearn_gatedmem import pad_sequences

    rng = np.random.RandomState(0)
    lengths = rng.randint(3, 9, size=20)
    seqs = [rng.normal(size=(L, 2)) for L in lengths]
    y = np.array([int(s[0, 0] > 0) for s in seqs])
    if data_format == "channels_first":
        seqs = [s.T for s in seqs]
    clf = LSTMClassifier(variable_length=True, data_format=data_format, **SMALL_CLF).fit(seqs, y)
    A = clf.attributions(seqs[:5], ig_steps=8)
    assert isinstance(A, list) and len(A) == 5
    for a, s in zip(A, seqs[:5]):
        assert a.shape == s.shape and np.all(np.isfinite(a))
    # the same sequences as one NaN-padded array: NaN on the padding
    padded = pad_sequences(seqs[:5], data_format=data_format)
    P = clf.attributions(padded, ig_steps=8)
    assert P.shape == padded.shape
    np.testing.assert_array_equal(np.isnan(P), np.isnan(padded))
    for a, p, L in zip(A, P, lengths[:5]):
        np.testing.assert_allclose(a, p[:, :L] if data_format == "channels_first" else p[:L],
                                   rtol=1e-8, atol=1e-12)
    # univariate 1-D sequences give 1-D attributions
    uni = LSTMClassifier(variable_length=True, **SMALL_CLF).fit([s[0] for s in seqs], y)
    assert [a.shape for a in uni.attributions([s[0] for s in seqs[:3]], ig_steps=4)] == [
        (s.shape[-1],) for s in seqs[:3]]


@quiet
def test_attributions_target_and_bad_targets():
    X, y = _attribution_task()
    labels = np.array(["no", "yes"])[y]
    clf = LSTMClassifier(**SMALL_CLF).fit(X, labels)
    A_yes, A_no = clf.attributions(X[:3], "yes", 8), clf.attributions(X[:3], "no", 8)
    # the two probabilities sum to 1: their attributions are opposite
    np.testing.assert_allclose(A_yes, -A_no, atol=1e-6)
    per_sample = clf.attributions(X[:3], ["yes", "no", "yes"], 8)
    np.testing.assert_allclose(per_sample[1], A_no[1])
    for bad in ("maybe", 1, ["yes", "no"]):
        with pytest.raises(ValueError, match="target"):
            clf.attributions(X[:3], bad)
    with pytest.raises(ValueError, match="ig_steps"):
        clf.attributions(X[:3], ig_steps=0)
    reg = LSTMRegressor(**SMALL).fit(X, np.column_stack([X[:, 2, 0], X[:, 5, 1]]))
    assert reg.attributions(X[:3], 1, 8).shape == (3, 8, 2)
    for bad in (None, 2, -1, 0.5):  # None: two outputs, which one?
        with pytest.raises(ValueError, match="target"):
            reg.attributions(X[:3], bad)
    with pytest.raises(NotFittedError):
        LSTMRegressor().attributions(X[:3])


# -- meta-estimators with 3-D arrays and lists of sequences ------------------


def _meta_data(ragged):
    rng = np.random.RandomState(0)
    if ragged:
        X = [rng.normal(size=(rng.randint(3, 8), 2)) for _ in range(30)]
        y = np.array([int(x[0, 0] > 0) for x in X])
    else:
        X = rng.normal(size=(30, 6, 2))
        y = (X[:, 0, 0] > 0).astype(int)
    return X, y


META = dict(hidden_layer_sizes=3, max_iter=5, n_ensemble=2, random_state=0)


@quiet
@pytest.mark.parametrize("ragged", [False, True], ids=["3-D", "ragged"])
def test_calibration_and_cross_validation_with_sequences(ragged):
    """CalibratedClassifierCV and cross_val_score with their defaults (5
    folds) take 3-D arrays and lists of sequences as they are: they only
    index the rows."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.frozen import FrozenEstimator
    from sklearn.model_selection import cross_val_score

    X, y = _meta_data(ragged)
    clf = LSTMClassifier(variable_length=ragged, **META)
    calibrated = CalibratedClassifierCV(clf).fit(X, y)
    P = calibrated.predict_proba(X)
    assert P.shape == (30, 2) and np.allclose(P.sum(axis=1), 1)
    frozen = CalibratedClassifierCV(FrozenEstimator(clone(clf).fit(X, y))).fit(X, y)
    assert frozen.predict(X).shape == (30,)
    scores = cross_val_score(clf, X, y)
    assert scores.shape == (5,) and np.all((scores >= 0) & (scores <= 1))
    reg = LSTMRegressor(variable_length=ragged, **META)
    target = np.array([x[0, 0] for x in X])
    assert np.all(np.isfinite(cross_val_score(reg, X, target)))


@quiet
def test_permutation_importance_needs_2d_and_the_workaround_works():
    """scikit-learn's permutation_importance checks that X is 2-D before our
    estimator sees it: 3-D arrays fail there. The workaround: the same
    sequences as 2-D step-major rows, which a model fitted on 3-D arrays
    predicts as they are; each column is then one (step, feature)."""
    from sklearn.inspection import permutation_importance

    X, y = _meta_data(ragged=False)
    clf = LSTMClassifier(**META).fit(X, y)
    with pytest.raises(ValueError, match="dim 3"):  # scikit-learn's own check
        permutation_importance(clf, X, y, n_repeats=2, random_state=0)
    result = permutation_importance(clf, X.reshape(len(X), -1), y, n_repeats=2,
                                    random_state=0)
    assert result.importances_mean.shape == (6 * 2,)
    # channels-first data: transposed to step-major first
    Xf = X.transpose(0, 2, 1)
    clf_f = LSTMClassifier(data_format="channels_first", **META).fit(Xf, y)
    flat = Xf.transpose(0, 2, 1).reshape(len(X), -1)
    np.testing.assert_allclose(clf_f.predict_proba(flat), clf_f.predict_proba(Xf))
    assert permutation_importance(clf_f, flat, y, n_repeats=2).importances.shape == (12, 2)


@quiet
def test_permutation_importance_of_ragged_sequences_names_the_workaround():
    """Lists of sequences of different lengths fail in scikit-learn's
    check; padded 2-D rows get through it, but a shuffled column moves
    padding inside sequences: our error says so and names attributions."""
    from sklearn.inspection import permutation_importance

    from sklearn_gatedmem import pad_sequences

    X, y = _meta_data(ragged=True)
    clf = LSTMClassifier(variable_length=True, **META).fit(X, y)
    with pytest.raises(ValueError, match="inhomogeneous"):  # scikit-learn's
        permutation_importance(clf, X, y, n_repeats=2, random_state=0)
    flat = pad_sequences(X).reshape(len(X), -1)
    with pytest.raises(ValueError, match="permutation_importance.*attributions"):
        permutation_importance(clf, flat, y, n_repeats=2, random_state=0)


def test_the_mean_of_readings_decides_as_predict_does():
    from scipy.special import expit, softmax

    rng = np.random.RandomState(0)
    Z = 3 * rng.normal(size=(15, 4))
    case = np.tile(np.arange(5), 3)  # 3 readings of 5 cases
    mean = np.array([softmax(Z[case == c], axis=1).mean(axis=0) for c in range(5)])
    D = LSTMClassifier()._mean_of_readings(Z, case, 5, "softmax")
    np.testing.assert_allclose(D, mean)
    mean = np.array([expit(Z[case == c]).mean(axis=0) for c in range(5)])
    D = LSTMClassifier()._mean_of_readings(Z, case, 5, "logistic")
    np.testing.assert_array_equal(D > 0, mean > 0.5)
    D = LSTMRegressor()._mean_of_readings(Z, case, 5, "identity")
    np.testing.assert_allclose(D, [Z[case == c].mean(axis=0) for c in range(5)])
