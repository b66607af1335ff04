"""The cells in isolation: forward against the docstring's equations, written
out naively; backward against finite differences; the one-``exp`` sigmoid and
tanh; the tanh-block scale."""

import warnings

import numpy as np
import pytest
from scipy.special import expit

from sklearn_gatedmem import _cells

CELL_NAMES = ["lstm", "gated_memory"]


def _random_cell(cell, n_steps=5, n_samples=3, n_features=2, n_hidden=4, seed=0):
    """Unscaled weights and a time-major input, large enough to leave the
    linear regime of every gate."""
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n_steps, n_samples, n_features))
    W = rng.normal(scale=0.8, size=(n_features, 4 * n_hidden))
    U = rng.normal(scale=0.8, size=(n_hidden, _cells.n_recurrent_columns(cell, n_hidden)))
    b = rng.normal(scale=0.5, size=4 * n_hidden)
    return X, W, U, b


def _run_cells(cell, X, W, U, b):
    """``_cells.forward`` as the objective drives it: scaled weights, one GEMM
    for the input projection, caches allocated here."""
    n_steps, n_samples, _ = X.shape
    n_hidden = U.shape[0]
    scale = _cells.gate_scale(cell, n_hidden, np.float64)
    first = _cells.CELLS[cell]["first_recurrent_block"] * n_hidden
    A = X @ (W * scale) + b * scale
    cache = {
        name: np.empty((n_steps, n_samples, n_hidden))
        for name in ("state", "out", "tanh_state")
    }
    cache["tmp"] = np.empty((n_samples, 4 * n_hidden))
    cache["deriv"] = np.empty((n_samples, 4 * n_hidden))
    out = _cells.forward(cell, A, U * scale[first:], cache)
    return out, cache


def _reference(cell, X, W, U, b):
    """Step by step from the equations of the ``_cells`` docstring."""
    n_steps, n_samples, _ = X.shape
    H = U.shape[0]
    sig, tanh = expit, np.tanh
    blk = [slice(k * H, (k + 1) * H) for k in range(4)]
    state = np.zeros((n_samples, H))  # c (lstm) or m (gated_memory)
    out = np.zeros((n_samples, H))  # h (lstm) or out (gated_memory)
    states, outs = [], []
    for t in range(n_steps):
        x = X[t]
        if cell == "lstm":
            h_prev, c_prev = out, state
            i = sig(x @ W[:, blk[0]] + h_prev @ U[:, blk[0]] + b[blk[0]])
            f = sig(x @ W[:, blk[1]] + h_prev @ U[:, blk[1]] + b[blk[1]])
            g = tanh(x @ W[:, blk[2]] + h_prev @ U[:, blk[2]] + b[blk[2]])
            o = sig(x @ W[:, blk[3]] + h_prev @ U[:, blk[3]] + b[blk[3]])
            c = f * c_prev + i * g
            h = o * tanh(c)
            state, out = c, h
        else:
            m_prev = state
            # U holds the m columns of [M_R, M_F, M_out]: blocks 0, 1, 2 of U
            z = tanh(x @ W[:, blk[0]] + b[blk[0]])
            r = sig(x @ W[:, blk[1]] + m_prev @ U[:, blk[0]] + b[blk[1]])
            f = sig(x @ W[:, blk[2]] + m_prev @ U[:, blk[1]] + b[blk[2]])
            o = sig(x @ W[:, blk[3]] + m_prev @ U[:, blk[2]] + b[blk[3]])
            m = f * m_prev + r * z
            state, out = m, o * m
        states.append(state)
        outs.append(out)
    return np.array(outs), np.array(states)


@pytest.mark.parametrize("cell", CELL_NAMES)
def test_forward_matches_the_equations(cell):
    X, W, U, b = _random_cell(cell)
    out, cache = _run_cells(cell, X, W, U, b)
    ref_out, ref_state = _reference(cell, X, W, U, b)
    np.testing.assert_allclose(out, ref_out, rtol=0, atol=1e-14)
    np.testing.assert_allclose(cache["state"], ref_state, rtol=0, atol=1e-14)
    assert out is cache["out"]
    # not a trivial regime: outputs spread over a good part of (-1, 1)
    assert np.ptp(ref_out) > 0.5
    if cell == "lstm":
        np.testing.assert_allclose(cache["tanh_state"], np.tanh(ref_state), atol=1e-14)


@pytest.mark.parametrize("cell", CELL_NAMES)
def test_recurrent_width(cell):
    """The lstm's U feeds all 4 gate blocks; gated_memory's only the 3 gates
    (``z_t`` sees the input alone)."""
    H = 5
    expected = 4 * H if cell == "lstm" else 3 * H
    assert _cells.n_recurrent_columns(cell, H) == expected


@pytest.mark.parametrize("cell", CELL_NAMES)
def test_backward_matches_finite_differences(cell):
    """A random weighted sum of every step's output (Karpathy's check): the
    gradient with respect to the unscaled pre-activations ``A``, all steps."""
    X, W, U, b = _random_cell(cell, n_steps=4, n_samples=2, n_hidden=3, seed=1)
    n_steps, n_samples, _ = X.shape
    H = U.shape[0]
    scale = _cells.gate_scale(cell, H, np.float64)
    first = _cells.CELLS[cell]["first_recurrent_block"] * H
    weights = np.random.RandomState(2).normal(size=(n_steps, n_samples, H))

    def loss_of_A(A_unscaled):
        cache = {
            name: np.empty((n_steps, n_samples, H))
            for name in ("state", "out", "tanh_state")
        }
        cache["tmp"] = np.empty((n_samples, 4 * H))
        cache["deriv"] = np.empty((n_samples, 4 * H))
        out = _cells.forward(cell, A_unscaled * scale, U * scale[first:], cache)
        return float((out * weights).sum()), cache

    A0 = X @ W + b
    _, cache = loss_of_A(A0.copy())
    dA = _cells.backward(cell, weights.copy(), U, cache, np.empty_like(A0))

    eps = 1e-6
    numeric = np.empty_like(A0)
    for idx in np.ndindex(A0.shape):
        plus, minus = A0.copy(), A0.copy()
        plus[idx] += eps
        minus[idx] -= eps
        numeric[idx] = (loss_of_A(plus)[0] - loss_of_A(minus)[0]) / (2 * eps)
    rel = np.linalg.norm(numeric - dA) / np.linalg.norm(numeric + dA)
    assert rel <= 1e-8, rel


def test_backward_does_not_modify_dout():
    cell = "lstm"
    X, W, U, b = _random_cell(cell, n_steps=3)
    _, cache = _run_cells(cell, X, W, U, b)
    dout = np.random.RandomState(0).normal(size=cache["out"].shape)
    before = dout.copy()
    _cells.backward(cell, dout, U, cache, np.empty(cache["gates"].shape))
    np.testing.assert_array_equal(dout, before)


GRID = np.concatenate(
    [
        [-1e4, -800.0, -710.0, -700.0, -50.0, -1e-300, 0.0, 1e-300, 50.0, 700.0, 710.0,
         800.0, 1e4, -0.0],
        np.linspace(-40, 40, 4001),
        np.logspace(-12, 2, 300),
        -np.logspace(-12, 2, 300),
    ]
)


def test_sigmoid_is_accurate_and_in_place():
    a = GRID.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(over="warn", divide="warn", invalid="warn"):
            result = _cells.sigmoid_(a)
    assert result is a  # in place
    np.testing.assert_allclose(result, expit(GRID), rtol=0, atol=1e-15)
    assert np.all((result >= 0) & (result <= 1))
    assert _cells.sigmoid_(np.array([-1e4]))[0] == 0.0
    assert _cells.sigmoid_(np.array([1e4]))[0] == 1.0


def test_tanh_is_accurate():
    a = GRID.copy()
    out = np.empty_like(a)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(over="warn", divide="warn", invalid="warn"):
            result = _cells.tanh_(a, out)
    assert result is out
    np.testing.assert_array_equal(a, GRID)  # the input is left alone
    np.testing.assert_allclose(result, np.tanh(GRID), rtol=0, atol=1e-15)
    assert _cells.tanh_(np.array([-1e4, 1e4]), np.empty(2)).tolist() == [-1.0, 1.0]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_and_tanh_at_the_extremes_emit_no_warning(dtype):
    a = np.array([-1e4, 1e4, -1e30, 1e30, 0.0], dtype=dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(over="warn", divide="warn", invalid="warn"):
            s = _cells.sigmoid_(a.copy())
            t = _cells.tanh_(a, np.empty_like(a))
    np.testing.assert_array_equal(s, np.array([0, 1, 0, 1, 0.5], dtype=dtype))
    np.testing.assert_array_equal(t, np.array([-1, 1, -1, 1, 0], dtype=dtype))
    assert s.dtype == t.dtype == dtype


@pytest.mark.parametrize("cell, tanh_block", [("lstm", 2), ("gated_memory", 0)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gate_scale_is_two_on_exactly_the_tanh_block(cell, tanh_block, dtype):
    H = 3
    scale = _cells.gate_scale(cell, H, dtype)
    assert scale.shape == (4 * H,)
    assert scale.dtype == dtype
    expected = np.ones(4 * H)
    expected[tanh_block * H : (tanh_block + 1) * H] = 2
    np.testing.assert_array_equal(scale, expected)
    assert _cells.CELLS[cell]["tanh_block"] == tanh_block
