"""Integrated gradients (sklearn_gatedmem._attributions): the quadrature, the
explained outputs' gradients, and completeness through the estimators: per
sequence, the attributions sum to f(x) - f(baseline) for every cell, both
directions, ensembles and every input transform."""

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from sklearn_gatedmem import LSTMClassifier, LSTMRegressor
from sklearn_gatedmem._attributions import explained_output, quadrature

# completeness within this, in probability (or in the regressor's units over
# y_scale_), at ig_steps=64 on these small smooth networks
TOL = 1e-6


def test_quadrature_integrates_polynomials_of_degree_2m_minus_1():
    for m in (1, 4, 16):
        alphas, weights = quadrature(m)
        assert np.all((alphas > 0) & (alphas < 1))
        assert np.isclose(weights.sum(), 1)
        for degree in range(2 * m):  # int_0^1 a^k da = 1 / (k + 1)
            assert np.isclose(weights @ alphas**degree, 1 / (degree + 1), atol=1e-13)


@pytest.mark.parametrize("kind, K", [("softmax", 3), ("binary", 1), ("multilabel", 3),
                                     ("identity", 2)])
def test_explained_output_gradient(kind, K):
    rng = np.random.RandomState(0)
    Z = rng.normal(size=(5, K))
    column = rng.randint(2 if kind == "binary" else K, size=5)
    scale = (rng.uniform(0.5, 2, size=K), rng.normal(size=K)) if kind == "identity" else ()
    f, df = explained_output(Z, column, kind, *scale)
    eps, numeric = 1e-6, np.zeros_like(Z)
    for k in range(K):
        E = np.zeros_like(Z)
        E[:, k] = eps
        numeric[:, k] = (explained_output(Z + E, column, kind, *scale)[0]
                         - explained_output(Z - E, column, kind, *scale)[0]) / (2 * eps)
    np.testing.assert_allclose(df, numeric, atol=1e-9)


def _task(n=30, T=9, d=2, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n, T, d))
    y = (X[:, 2, 0] - X[:, 5, 1] > 0).astype(int)
    return X, y


def _fit(est, X, y):
    """Fit quietly. The classifiers here fix alpha and patch_size: what is
    tested is one network's attributions, not the "auto" search."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(X, y)


def _completeness_error(est, X, target=None, ig_steps=64):
    """Per sequence: sum of attributions minus (f(x) - f(baseline))."""
    A = est.attributions(X, target=target, ig_steps=ig_steps)
    B = est._attribution_baseline(X)
    if isinstance(est, LSTMClassifier):
        P, P0 = est.predict_proba(X), est.predict_proba(B)
        col = P.argmax(axis=1) if target is None else np.searchsorted(est.classes_, target)
        change = (P - P0)[np.arange(len(P)), col]
    else:
        change = est.predict(X) - est.predict(B)
    sums = np.array([np.nansum(a) for a in A]) if isinstance(A, list) else (
        np.nansum(A.reshape(len(A), -1), axis=1))
    return sums - change, change


TRANSFORMS = {
    "plain": dict(instance_norm=None),
    "append": dict(instance_norm="append"),
    "replace": dict(instance_norm="replace"),
    "differences": dict(differences=True, instance_norm=None),
    "patches": dict(patch_size=2, instance_norm=None),
    "all": dict(patch_size=4, differences=True, instance_norm="append"),
}


@pytest.mark.parametrize("transform", list(TRANSFORMS))
@pytest.mark.parametrize("bidirectional", [False, True])
def test_completeness_every_cell_direction_and_transform(cell, bidirectional, transform):
    X, y = _task()
    clf = _fit(LSTMClassifier(hidden_layer_sizes=3, cell=cell, bidirectional=bidirectional,
                              pooling="mean", max_iter=15, n_ensemble=1, random_state=0, alpha=1e-3,
                              **{"patch_size": None, **TRANSFORMS[transform]}), X, y)
    error, change = _completeness_error(clf, X[:6])
    print(f"{cell} bidirectional={bidirectional} {transform}: "
          f"completeness error {np.abs(error).max():.1e}, change {np.abs(change).max():.2f}")
    assert np.abs(change).max() > 1e-3  # something to explain
    assert np.abs(error).max() <= TOL


@pytest.mark.parametrize("pooling", ["last", "mean"])
def test_completeness_of_an_ensemble_and_of_a_regressor(cell, pooling):
    X, y = _task()
    clf = _fit(LSTMClassifier(alpha=1.0, patch_size=None, hidden_layer_sizes=3, cell=cell, pooling=pooling,
                              max_iter=15, n_ensemble=3, random_state=0), X, y)
    single = clf.estimators_[0].attributions(X[:4], ig_steps=64)
    A = clf.attributions(X[:4], ig_steps=64)
    assert not np.allclose(A, single)  # the members' average, not one member
    error, _ = _completeness_error(clf, X[:4])
    assert np.abs(error).max() <= TOL
    for target in (0, 1):  # either class, not only the predicted one
        error, _ = _completeness_error(clf, X[:4], target=target)
        assert np.abs(error).max() <= TOL
    reg = _fit(LSTMRegressor(hidden_layer_sizes=3, cell=cell, pooling=pooling, alpha=1e-4,
                             max_iter=15, n_ensemble=2, random_state=0),
               X, X[:, 2, 0] - X[:, 5, 1])
    error, change = _completeness_error(reg, X[:4])
    assert np.abs(change).max() > 1e-3
    assert np.abs(error).max() <= TOL * reg.y_scale_[0]


def test_completeness_variable_length_lists():
    rng = np.random.RandomState(0)
    X = [rng.normal(size=(rng.randint(3, 10), 2)) for _ in range(30)]
    y = np.array([int(x[0, 0] > 0) for x in X])
    clf = _fit(LSTMClassifier(alpha=1.0, hidden_layer_sizes=3, pooling="last", variable_length=True,
                              patch_size=2, differences=True, bidirectional=True,
                              max_iter=15, n_ensemble=1, random_state=0), X, y)
    error, _ = _completeness_error(clf, X[:6])
    assert np.abs(error).max() <= TOL


@pytest.mark.parametrize("bidirectional", [False, True])
def test_completeness_under_max_pooling(cell, bidirectional):
    """Max pooling's gradient jumps where the step of a unit's maximum
    changes along the path; integrated piecewise between those kinks, the
    attributions are complete within TOL, for an ensemble, either class and
    unequal lengths (the kinks of each sequence's own steps)."""
    X, y = _task(n=40, T=12)
    X[::3, 9:] = np.nan  # some sequences end early
    clf = _fit(LSTMClassifier(alpha=1.0, patch_size=None, hidden_layer_sizes=6, cell=cell, bidirectional=bidirectional,
                              pooling="max", variable_length=True, max_iter=30, n_ensemble=2,
                              random_state=0, instance_norm=None), X, y)
    for target in (None, 0):
        error, change = _completeness_error(clf, X[:6], target=target, ig_steps=16)
        print(f"{cell} bidirectional={bidirectional} target={target}: completeness error "
              f"{np.abs(error).max():.1e}, change {np.abs(change).max():.2f}")
        assert np.abs(change).max() > 1e-2
        assert np.abs(error).max() <= TOL


def test_max_pooling_kinks_are_found_on_the_path():
    """The kink-aware readout makes max pooling complete on one piece of the
    path, without splits (plain Gauss-Legendre missed by 1e-3 there), and
    the kinks are located as roots of the two steps' difference."""
    from sklearn_gatedmem import _attributions
    from sklearn_gatedmem._params import pack

    X, y = _task()
    clf = _fit(LSTMClassifier(alpha=1.0, patch_size=None, hidden_layer_sizes=4, max_iter=15, n_ensemble=1,
                              random_state=0), X, y)
    Xt = X[:8]
    network = clf._network
    C, baseline = _attributions.source_channels(Xt, network)
    P = clf.predict_proba(Xt)
    column = P.argmax(axis=1)
    change = (P - clf.predict_proba(clf._attribution_baseline(Xt)))[np.arange(8), column]

    def output(Z, samples):
        return _attributions.explained_output(Z, column[samples], "binary")

    def error(max_splits):
        A, _, _ = _attributions.integrated_gradients(
            C, baseline, np.full(8, 9), network, [pack(clf.coefs_, network.layout)],
            output, 16, 1000, max_splits=max_splits)
        return np.abs(_attributions.to_raw_steps(A, 2).sum(axis=(1, 2)) - change).max()

    assert error(0) <= TOL  # one piece of 16 nodes, no split: the kinks integrated across

    coef = np.array([[1.0, -2.0, 0.5], [0.2, -1.0, 0.0]])  # Legendre series in 2u - 1
    root = _attributions._root(coef, np.zeros(2), np.ones(2))
    values = (np.polynomial.legendre.legvander(2 * root - 1, 2) * coef).sum(axis=1)
    np.testing.assert_allclose(values, 0, atol=1e-12)


@pytest.mark.parametrize("static_into", ["head", "initial_state", "both"])
def test_static_values_are_attributed_and_complete(static_into):
    """Static channels run along the path from their training mean: their
    attributions, spread evenly over each series' real steps in the static
    channel, and the series' sum to f(x) - f(baseline), the baseline's
    static values at the mean; under max pooling and with an ensemble."""
    X, y = _task()
    X[::4, 7:] = np.nan
    s = np.random.RandomState(5).normal(size=(len(X), 1, 1))
    y = ((y + (s[:, 0, 0] > 0)) % 2).astype(int)  # the label needs the static value
    X3 = np.concatenate([X[:, :, :1], np.broadcast_to(s, X.shape[:2] + (1,)), X[:, :, 1:]],
                        axis=2)
    X3[np.isnan(X).any(axis=2)] = np.nan
    clf = _fit(LSTMClassifier(alpha=1.0, patch_size=None, hidden_layer_sizes=4, max_iter=30, n_ensemble=2, random_state=0,
                              variable_length=True, static_features=[1],
                              static_into=static_into), X3, y)
    A = clf.attributions(X3[:8], ig_steps=16)
    assert A.shape == X3[:8].shape
    np.testing.assert_array_equal(np.isnan(A), np.isnan(X3[:8]))
    static_part = A[:, :, 1]
    real = ~np.isnan(static_part)
    np.testing.assert_allclose(np.nanmax(static_part, axis=1), np.nanmin(static_part, axis=1))
    assert np.abs(np.nansum(static_part, axis=1)).max() > 1e-3  # the static value counts
    error, change = _completeness_error(clf, X3[:8], ig_steps=16)
    assert np.abs(change).max() > 1e-2
    assert np.abs(error).max() <= TOL
    assert real.sum(axis=1).min() == 7  # the padded series' real steps


def test_static_columns_of_2d_input_are_attributed_in_place():
    X, y = _task()
    age = np.random.RandomState(3).normal(size=len(X))
    y = ((X[:, 2, 0] + age) > 0).astype(int)
    X2 = np.column_stack([age, X.reshape(len(X), -1)])  # the static column first
    reg = _fit(LSTMRegressor(hidden_layer_sizes=3, n_steps=9, max_iter=15, n_ensemble=1,
                             random_state=0, static_features=[0], static_into="head",
                             alpha=1e-3), X2, X[:, 2, 0] + age)
    A = reg.attributions(X2[:5], ig_steps=16)
    assert A.shape == X2[:5].shape
    assert np.abs(A[:, 0]).max() > 1e-3
    change = reg.predict(X2[:5]) - reg.predict(reg._attribution_baseline(X2[:5]))
    np.testing.assert_allclose(A.sum(axis=1), change, rtol=0, atol=TOL * reg.y_scale_[0])


def test_attributions_refuse_missing_carry():
    X, y = _task()
    clf = _fit(LSTMClassifier(alpha=1.0, patch_size=None, hidden_layer_sizes=3, max_iter=3, n_ensemble=1,
                              random_state=0, missing="carry"), X, y)
    with pytest.raises(ValueError, match='missing="carry"'):
        clf.attributions(X[:2])
