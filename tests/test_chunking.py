"""Chunking in the estimators: the ``chunk_size`` parameter, the automatic
size, and that no chunking changes a fit or a prediction beyond rounding; and
the row canonicalisation that keeps fit's memory flat in the number of
samples. (The objective's own chunking is tested in test_objective.py.)"""

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils._param_validation import InvalidParameterError

from sklearn_gatedmem import LSTMClassifier, LSTMRegressor, _input, _objective
from sklearn_gatedmem._base import _CHUNK_BYTES, _chunk_size

CELL_NAMES = ["lstm", "gated_memory"]


def _sequences(n_samples=40, n_steps=7, n_features=3, seed=0, dtype=np.float64):
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n_samples, n_steps, n_features)).astype(dtype)
    return X, (X[:, :2, 0].sum(axis=1) > 0).astype(int), X[:, :, 1].sum(axis=1)


@pytest.mark.parametrize("chunk_size", [0, -3, 2.5, "big", None])
def test_invalid_chunk_size_is_refused(chunk_size):
    X, y, _ = _sequences(10)
    with pytest.raises((InvalidParameterError, ValueError, TypeError)):
        LSTMClassifier(hidden_layer_sizes=3, chunk_size=chunk_size, max_iter=2,
                       n_ensemble=1).fit(X, y)


@pytest.mark.parametrize("Estimator, target", [(LSTMClassifier, 1), (LSTMRegressor, 2)])
@pytest.mark.parametrize("cell", CELL_NAMES)
def test_fit_and_predict_do_not_depend_on_chunk_size(Estimator, target, cell):
    data = _sequences()
    X, y = data[0], data[target]
    fitted = {}
    for chunk_size in ("auto", 1, 7):
        est = Estimator(
            hidden_layer_sizes=4, cell=cell, chunk_size=chunk_size, max_iter=8,
            random_state=0, n_ensemble=1,
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


def test_chunk_size_auto_stays_within_the_budget():
    for cell in CELL_NAMES:
        for n_steps, n_features, hidden, n_directions, itemsize in [
            (32, 8, (32,), 1, 8), (256, 4, (32,), 1, 4), (16, 64, (128, 64), 2, 8),
            (5000, 2, (256,), 2, 8),
        ]:
            chunk = _chunk_size(
                "auto", n_steps, hidden, itemsize, n_directions,
                n_features=n_features, cell=cell,
            )
            per_sample = _objective.work_bytes_per_sample(
                cell, n_steps, n_features, hidden, n_directions, itemsize
            )
            assert chunk >= 1
            assert chunk == 1 or chunk * per_sample <= _CHUNK_BYTES
            assert (chunk + 1) * per_sample > _CHUNK_BYTES
    assert _chunk_size(17, 32, (32,), 8) == 17


def _canonical_by_bytes(X, Y, w):
    """The canonical rows ordered by their bytes, written out plainly."""
    keep = w != 0
    X, Y, w = X[keep], Y[keep], w[keep]
    rows = np.hstack([X.astype(np.float64) + 0.0, Y.astype(np.float64) + 0.0])
    rows = np.ascontiguousarray(rows).view(np.dtype((np.void, rows.shape[1] * 8))).ravel()
    _, first, inverse = np.unique(rows, return_index=True, return_inverse=True)
    merged = np.zeros(len(first))
    for i in np.lexsort((w, inverse)):
        merged[inverse[i]] += w[i]
    return X[first] + 0.0, Y[first] + 0.0, merged


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_canonical_rows_after_a_hash_collision(dtype, monkeypatch):
    """Rows of equal hash are told apart by their bytes: with every hash equal
    the result is the plain sort by bytes, duplicates merged."""
    rng = np.random.RandomState(0)
    X = rng.randint(0, 3, size=(40, 3)).astype(dtype)
    X[rng.rand(*X.shape) < 0.2] = -0.0
    Y = rng.randint(0, 2, size=(40, 1)).astype(float)
    w = rng.randint(0, 3, size=40).astype(float)
    expected = _canonical_by_bytes(X, Y, w)
    monkeypatch.setattr(_input, "_row_hashes", lambda X, Y, c: np.zeros(len(X), np.uint64))
    Xc, Yc, wc = _input.canonical_rows(X, Y, w, chunk_rows=6)
    np.testing.assert_array_equal(Xc, expected[0])
    np.testing.assert_array_equal(Yc, expected[1])
    np.testing.assert_allclose(wc, expected[2], rtol=1e-15)


def test_canonical_rows_are_the_same_bytes_for_any_order_with_signed_zeros():
    rng = np.random.RandomState(1)
    X = rng.randint(0, 2, size=(50, 4)).astype(float)
    X[rng.rand(*X.shape) < 0.3] *= -0.0  # -0.0 where X is 0
    Y = rng.randint(0, 2, size=(50, 1)).astype(float)
    w = rng.uniform(0.5, 2, size=50)
    ref = _input.canonical_rows(X, Y, w)
    assert not np.signbit(ref[0]).any()
    assert len(ref[0]) == len(_canonical_by_bytes(X, Y, w)[0])
    for seed in range(3):
        perm = np.random.RandomState(seed).permutation(50)
        out = _input.canonical_rows(X[perm], Y[perm], w[perm], chunk_rows=11)
        for a, b in zip(ref, out):
            assert a.tobytes() == b.tobytes()
