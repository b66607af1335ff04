"""Chunking of the objective and of prediction: the ``chunk_size`` parameter,
the automatic size, the memory model behind it, and that no chunking changes a
result beyond rounding; and the row canonicalisation that keeps fit's memory
flat in the number of samples."""

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils._param_validation import InvalidParameterError

from sklearn_gatedmem import LSTMClassifier, LSTMRegressor, _input, _objective, _params
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
        LSTMClassifier(hidden_layer_sizes=3, chunk_size=chunk_size, max_iter=2).fit(X, y)


@pytest.mark.parametrize("Estimator, target", [(LSTMClassifier, 1), (LSTMRegressor, 2)])
@pytest.mark.parametrize("cell", CELL_NAMES)
def test_fit_and_predict_do_not_depend_on_chunk_size(Estimator, target, cell):
    data = _sequences()
    X, y = data[0], data[target]
    fitted = {}
    for chunk_size in ("auto", 1, 7):
        est = Estimator(
            hidden_layer_sizes=4, cell=cell, chunk_size=chunk_size, max_iter=8,
            random_state=0,
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


@pytest.mark.parametrize("n_directions", [1, 2])
@pytest.mark.parametrize("cell", CELL_NAMES)
def test_memory_model_matches_what_is_allocated(cell, n_directions):
    """``work_bytes_per_sample`` bounds, tightly, the work buffers that one
    evaluation allocates per sample of a chunk."""
    n, T, D, hidden = 30, 9, 3, (5, 4)
    rng = np.random.RandomState(0)
    X = rng.normal(size=(n, T, D))
    Y = rng.normal(size=(n, 2))
    layout = _params.make_layout(cell, D, hidden, 2, n_directions)
    spec = _objective.make_spec(
        cell, hidden, "identity", layout, np.float64, np.zeros(D), np.ones(D),
        n_directions=n_directions,
    )
    theta = _params.initialize(layout, cell, rng)
    ws = {}
    _objective.loss_grad(theta, X, Y, np.ones(n), 0.1, spec, n, ws)
    chunk_independent = {"G"}
    allocated = sum(buf.nbytes for key, buf in ws.items() if key not in chunk_independent)
    estimate = n * _objective.work_bytes_per_sample(cell, T, D, hidden, n_directions, 8)
    assert 0.75 * estimate <= allocated <= estimate


def test_chunks_are_balanced_and_cover_every_row():
    for n_samples in (0, 1, 5, 17, 1000):
        for chunk_size in (1, 2, 3, 7, 600, 5000):
            chunks = _objective._chunks(n_samples, chunk_size)
            sizes = [c.stop - c.start for c in chunks]
            assert sum(sizes) == n_samples
            assert all(c.start == (p.stop if p else 0) for p, c in zip([None] + chunks, chunks))
            if sizes:
                assert max(sizes) <= chunk_size and max(sizes) - min(sizes) <= 1


@pytest.mark.parametrize("cell", CELL_NAMES)
def test_float32_objective_at_a_realistic_size(cell):
    """Float32 compute (loss and gradient accumulated in float64) against
    float64, on a problem large enough for many steps and chunks to matter."""
    n, T, D, H = 300, 40, 4, 16
    rng = np.random.RandomState(1)
    X = rng.normal(size=(n, T, D)) * 2 + 1
    Y = (rng.rand(n, 1) > 0.5).astype(float)
    layout = _params.make_layout(cell, D, (H,), 1, 2)
    theta = _params.initialize(layout, cell, rng)
    specs = {
        dtype: _objective.make_spec(
            cell, (H,), "logistic", layout, dtype, np.ones(D), 2 * np.ones(D),
            n_directions=2, pooling="mean",
        )
        for dtype in (np.float32, np.float64)
    }
    loss64, grad64 = _objective.loss_grad(theta, X, Y, np.ones(n), 1e-3, specs[np.float64], 64)
    X32 = X.astype(np.float32)
    loss32, grad32 = _objective.loss_grad(theta, X32, Y, np.ones(n), 1e-3, specs[np.float32], 64)
    assert grad32.dtype == np.float64
    assert loss32 == pytest.approx(loss64, rel=1e-5)
    assert np.linalg.norm(grad32 - grad64) <= 1e-4 * np.linalg.norm(grad64)
    Z64 = _objective.decision(theta, X, specs[np.float64], 1000)
    Z32 = _objective.decision(theta, X32, specs[np.float32], 7)
    np.testing.assert_allclose(Z32, Z64, rtol=1e-4, atol=1e-5)


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
