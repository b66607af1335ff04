"""The cells in isolation: the registry's description of each cell; forward
against the equations of the cell's docstring, written out naively; backward
(with the fused weights' gradient mapping) against finite differences;
saturation of the one-``tanh`` gates. Every test runs on every registered
cell (the ``cell`` fixture, conftest.py)."""

import warnings

import numpy as np
import pytest
from scipy.special import expit

from sklearn_gatedmem import _cells

METHODS = sorted(_cells.ACTIVATIONS)  # the ``method`` fixture: conftest.py


def _random_cell(cell, n_steps=5, n_samples=3, n_features=2, n_hidden=4, seed=0):
    """Unscaled weights and a time-major input, large enough to leave the
    linear regime of every gate."""
    rng = np.random.RandomState(seed)
    shapes = _cells.get(cell).param_shapes(n_features, n_hidden)
    X = rng.normal(size=(n_steps, n_samples, n_features))
    W = rng.normal(scale=0.8, size=shapes["W"])
    U = rng.normal(scale=0.8, size=shapes["U"])
    b = rng.normal(scale=0.5, size=shapes["b"])
    return X, W, U, b


def _run_cells(cell, X, W, U, b, backward=False):
    """``_cells.forward`` as the objective drives it: fused weights, the step
    inputs ``[x_t; 1; h_{t-1}]`` in ``Z`` (feature major), work arrays
    allocated here.

    ``X`` is (n_steps, n_samples, n_features); the output and the state are
    returned as (n_steps, n_samples, n_hidden) for comparison (for the lstm
    without ``backward``, the last step's state only).
    """
    n_steps, n_samples, n_features = X.shape
    n_hidden = U.shape[0]
    shapes = _cells.work_shapes(cell, n_steps, n_features, n_hidden, n_samples, backward)
    cache = {name: np.full(shape, np.nan) for name, shape in shapes.items()}
    Z = cache.pop("Z")
    Z[:n_features, :n_steps] = X.transpose(2, 0, 1)
    Z[n_features, :n_steps] = 1
    weights = _cells.fused_weights(cell, W, U, b, np.float64)
    out = _cells.forward(cell, Z, weights["M"], cache)
    state = _cells.state(cell, cache)
    return out.transpose(0, 2, 1), state.transpose(0, 2, 1), cache, weights


def _lstm_step(x, state, W, U, b, blk):
    h_prev, c_prev = state
    i = expit(x @ W[:, blk[0]] + h_prev @ U[:, blk[0]] + b[blk[0]])
    f = expit(x @ W[:, blk[1]] + h_prev @ U[:, blk[1]] + b[blk[1]])
    g = np.tanh(x @ W[:, blk[2]] + h_prev @ U[:, blk[2]] + b[blk[2]])
    o = expit(x @ W[:, blk[3]] + h_prev @ U[:, blk[3]] + b[blk[3]])
    c = f * c_prev + i * g
    h = o * np.tanh(c)
    return h, (h, c), c


def _gated_memory_step(x, state, W, U, b, blk):
    (m_prev,) = state
    # U holds the m columns of [M_R, M_F, M_out]: blocks 0, 1, 2 of U
    z = np.tanh(x @ W[:, blk[0]] + b[blk[0]])
    r = expit(x @ W[:, blk[1]] + m_prev @ U[:, blk[0]] + b[blk[1]])
    f = expit(x @ W[:, blk[2]] + m_prev @ U[:, blk[1]] + b[blk[2]])
    o = expit(x @ W[:, blk[3]] + m_prev @ U[:, blk[2]] + b[blk[3]])
    m = f * m_prev + r * z
    return o * m, (m,), m


def _gru_step(x, state, W, U, b, blk):
    (h_prev,) = state
    r = expit(x @ W[:, blk[0]] + h_prev @ U[:, blk[0]] + b[blk[0]])
    z = expit(x @ W[:, blk[1]] + h_prev @ U[:, blk[1]] + b[blk[1]])
    n = np.tanh(x @ W[:, blk[2]] + b[blk[2]] + r * (h_prev @ U[:, blk[2]] + b[blk[3]]))
    h = (1 - z) * n + z * h_prev
    return h, (h,), h


# Per cell, one step from the equations of its module's docstring:
# ``(x, state, W, U, b, blocks) -> (output, state, carried memory)``.
REFERENCE_STEPS = {
    "lstm": _lstm_step, "gated_memory": _gated_memory_step, "gru": _gru_step,
}


def _reference(cell, X, W, U, b):
    """Step by step from the equations of the cell's docstring."""
    n_steps, n_samples, _ = X.shape
    H = U.shape[0]
    blk = [slice(k * H, (k + 1) * H) for k in range(4)]
    spec = _cells.get(cell)
    state = (np.zeros((n_samples, H)),) * spec.n_states
    states, outs = [], []
    for t in range(n_steps):
        out, state, memory = REFERENCE_STEPS[cell](X[t], state, W, U, b, blk)
        states.append(memory)
        outs.append(out)
    return np.array(outs), np.array(states)


def test_every_cell_has_a_reference():
    assert set(REFERENCE_STEPS) == set(_cells.CELLS)


def test_the_registry_describes_each_cell(cell):
    """Each parameter block is used by exactly one row block of ``M`` (its
    zero blocks are no parameters), the recurrent rows are contiguous, and
    the parameter shapes follow the blocks."""
    spec = _cells.get(cell)
    assert spec.name == cell and _cells.get(spec) is spec
    assert len(spec.row_kinds) == spec.n_rows == len(spec.rows)
    for k, kind in enumerate("WbU"):
        used = [row[k] for row in spec.rows if row[k] is not None]
        assert sorted(used) == sorted(getattr(spec, f"{kind}_blocks")), kind
    first, stop = spec.recurrent_rows
    assert stop - first == len(spec.U_blocks)
    shapes = spec.param_shapes(3, 5)
    assert shapes == {
        "W": (3, 5 * len(spec.W_blocks)), "U": (5, 5 * len(spec.U_blocks)),
        "b": (5 * len(spec.b_blocks),),
    }
    assert set(spec.bias_init) <= set(spec.b_blocks)


# 2 inputs go into each step's GEMM, 12 are projected before the time loop
# (more than twice the 4 hidden units, _cells.projects_input)
WIDTHS = [2, 12]


@pytest.mark.parametrize("n_features", WIDTHS)
@pytest.mark.parametrize("backward", [False, True])
def test_forward_matches_the_equations(cell, backward, method, n_features):
    X, W, U, b = _random_cell(cell, n_features=n_features)
    out, state, _, _ = _run_cells(cell, X, W, U, b, backward)
    ref_out, ref_state = _reference(cell, X, W, U, b)
    np.testing.assert_allclose(out, ref_out, rtol=0, atol=1e-14)
    assert len(state) in (1 if not backward else len(ref_state), len(ref_state))
    np.testing.assert_allclose(state, ref_state[-len(state) :], rtol=0, atol=1e-14)
    # not a trivial regime: outputs spread over a good part of (-1, 1)
    assert np.ptp(ref_out) > 0.5


def test_forward_without_backward_arrays_is_the_same(cell, method):
    """Prediction allocates no backward arrays (for the lstm, two step blocks
    instead of one per step) and computes the same."""
    X, W, U, b = _random_cell(cell)
    out, state, cache, _ = _run_cells(cell, X, W, U, b)
    out_b, state_b, cache_b, _ = _run_cells(cell, X, W, U, b, backward=True)
    np.testing.assert_array_equal(out, out_b)
    np.testing.assert_array_equal(state, state_b[-len(state) :])
    assert "dA" in cache_b and "dA" not in _cells.work_shapes(cell, 2, 2, 2, 2, False)
    if cell == "lstm":
        assert cache["gates"].shape[0] == 2 < cache_b["gates"].shape[0]


@pytest.mark.parametrize("n_features", [2, 7])
def test_backward_matches_finite_differences(cell, method, n_features):
    """A random weighted sum of every step's output (Karpathy's check): its
    gradient with respect to every input, ``W``, ``U`` and ``b`` through
    ``backward``, ``dx_t = Wx dA_t``, ``weight_gradient`` and
    ``add_weight_gradient``; 7 inputs are projected before the time loop."""
    X, W, U, b = _random_cell(cell, n_steps=4, n_samples=2, n_hidden=3, seed=1,
                              n_features=n_features)
    n_steps, n_samples, n_features = X.shape
    H = U.shape[0]
    weights = np.random.RandomState(2).normal(size=(n_steps, n_samples, H))

    def loss(X, W, U, b):
        return float((_run_cells(cell, X, W, U, b)[0] * weights).sum())

    _, _, cache, fused = _run_cells(cell, X, W, U, b, backward=True)
    dout = np.ascontiguousarray(weights.transpose(0, 2, 1))
    dA = _cells.backward(cell, dout, fused["R"], cache)
    dW, dU, db = np.zeros_like(W), np.zeros_like(U), np.zeros_like(b)
    _cells.add_weight_gradient(cell, _cells.weight_gradient(cache, dA), dW, dU, db)
    dX = (fused["Wx"] @ dA).transpose(0, 2, 1)

    eps = 1e-6
    for k, (array, analytic) in enumerate([(X, dX), (W, dW), (U, dU), (b, db)]):
        numeric = np.empty_like(array)
        for idx in np.ndindex(array.shape):
            args = [X, W, U, b]
            plus, minus = array.copy(), array.copy()
            plus[idx] += eps
            minus[idx] -= eps
            args[k] = plus
            up = loss(*args)
            args[k] = minus
            numeric[idx] = (up - loss(*args)) / (2 * eps)
        rel = np.linalg.norm(numeric - analytic) / np.linalg.norm(numeric + analytic)
        assert rel <= 1e-8, (k, rel)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n_samples", [1, 40, 600])
@pytest.mark.parametrize("n_features", [2, 70])
def test_weight_gradient_is_the_sum_over_steps(cell, dtype, n_samples, n_features):
    """``weight_gradient`` (a GEMM per block of steps, the last block
    partial, or per step when the steps have many samples) is ``sum_t Z_t
    dA_t^T``, computed step by step in float64 from the same values; with a
    narrow input (in each step's GEMM) and a wide one (projected before the
    time loop), whose forward agrees with the narrow path's equations."""
    X, W, U, b = _random_cell(cell, n_steps=23, n_samples=n_samples,
                              n_features=n_features, n_hidden=5, seed=4)
    n_steps = X.shape[0]
    assert _cells.projects_input(n_features, 5) == (n_features == 70)
    shapes = _cells.work_shapes(cell, n_steps, n_features, 5, n_samples, True)
    assert ("P" in shapes) == (n_features == 70)
    cache = {name: np.zeros(shape, dtype) for name, shape in shapes.items()}
    Z = cache.pop("Z")
    Z[:n_features, :n_steps] = X.transpose(2, 0, 1)
    Z[n_features, :n_steps] = 1
    fused = _cells.fused_weights(cell, W, U, b, dtype)
    out = _cells.forward(cell, Z, fused["M"], cache)
    dout = np.random.RandomState(5).normal(size=out.shape).astype(dtype)
    dA = _cells.backward(cell, dout, fused["R"], cache)
    steps = Z[:, :n_steps].transpose(1, 0, 2).astype(np.float64)  # Z_t, time major
    expected = sum(steps[t] @ dA[t].astype(np.float64).T for t in range(n_steps))
    G = _cells.weight_gradient(cache, dA)
    assert G.dtype == np.float64 and G.shape == expected.shape
    tol = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(G, expected, rtol=0, atol=tol * np.abs(expected).max())
    if dtype == np.float64:  # the output against the equations
        np.testing.assert_allclose(
            out.transpose(0, 2, 1), _reference(cell, X, W, U, b)[0], rtol=0, atol=1e-12)


def test_backward_does_not_modify_dout(cell):
    X, W, U, b = _random_cell(cell, n_steps=3)
    _, _, cache, fused = _run_cells(cell, X, W, U, b, backward=True)
    dout = np.random.RandomState(0).normal(size=(3, U.shape[0], X.shape[1]))
    before = dout.copy()
    _cells.backward(cell, dout, fused["R"], cache)
    np.testing.assert_array_equal(dout, before)


def test_live_steps_skip_only_zero_gradients(cell):
    """``live`` marks the steps where ``dout`` may be nonzero; with ``dout``
    zero elsewhere the result is the same as without it."""
    X, W, U, b = _random_cell(cell, n_steps=4)
    _, _, cache, fused = _run_cells(cell, X, W, U, b, backward=True)
    dout = np.zeros((4, U.shape[0], X.shape[1]))
    dout[[1, 3]] = np.random.RandomState(0).normal(size=(2,) + dout.shape[1:])
    full = _cells.backward(cell, dout, fused["R"], cache).copy()
    live = np.array([False, True, False, True])
    np.testing.assert_array_equal(_cells.backward(cell, dout, fused["R"], cache, live), full)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gates_saturate_without_warning(cell, dtype, method):
    """Pre-activations of +-1e4 (and 1e30) saturate every gate to exactly 0 or
    1 (tanh to +-1): no overflow, no warning, no NaN, in either dtype."""
    X, W, U, b = _random_cell(cell, n_steps=3)
    n_steps, n_samples, n_features = X.shape
    H = U.shape[0]
    shapes = _cells.work_shapes(cell, n_steps, n_features, H, n_samples, True)
    for big in (1e4, 1e30):
        cache = {name: np.zeros(shape, dtype) for name, shape in shapes.items()}
        Z = cache.pop("Z")
        Z[:n_features, :n_steps] = np.sign(X.transpose(2, 0, 1))
        Z[n_features, :n_steps] = 1
        fused = _cells.fused_weights(cell, big * np.sign(W), np.sign(U), big * np.sign(b), dtype)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            with np.errstate(all="warn"):
                out = _cells.forward(cell, Z, fused["M"], cache)
                dA = _cells.backward(cell, np.ones(out.shape, dtype), fused["R"], cache)
        assert out.dtype == dA.dtype == dtype
        assert np.all(np.isfinite(out)) and np.all(np.abs(out) <= n_steps)
        assert np.all(np.isfinite(dA))
        spec = _cells.get(cell)
        activated = [k for k, kind in enumerate(spec.row_kinds) if kind is not None]
        gates = cache["gates"][:n_steps].reshape(n_steps, -1, H, n_samples)[:, activated]
        saturated = np.isin(gates, [-1, 0, 1]).mean()
        assert saturated > 0.9, saturated


def test_activation_methods_agree(cell):
    """Every method gives the same forward and backward, to rounding, over a
    longer sequence with saturated and unsaturated gates."""
    X, W, U, b = _random_cell(cell, n_steps=30, n_samples=7, n_hidden=6, seed=3)
    W, b = 3 * W, 3 * b  # into saturation, partly
    dout = np.random.RandomState(4).normal(size=(30, 6, 7))
    results = {}
    for name in METHODS:
        previous = _cells._force_activation(name)
        try:
            out, state, cache, fused = _run_cells(cell, X, W, U, b, backward=True)
            dA = _cells.backward(cell, dout, fused["R"], cache)
        finally:
            _cells._force_activation(previous)
        assert fused["activation"] == name
        results[name] = out, state, dA
    for name in METHODS:
        for got, expected in zip(results[name], results["tanh"]):
            np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)


def test_activation_method_is_measured_once_or_forced(monkeypatch):
    """Measured once per process and dtype; the environment variable forces
    a method; an unknown name is an error."""
    previous = _cells._force_activation(None)
    try:
        monkeypatch.delenv(_cells.ACTIVATION_ENV, raising=False)
        for dtype in (np.float32, np.float64):
            chosen = _cells.activation_method(dtype)
            assert chosen in _cells.ACTIVATIONS
            assert _cells.activation_method(dtype) == chosen
        times = _cells._measure_activations(np.dtype(np.float64), repeats=1)
        assert set(times) == set(_cells.ACTIVATIONS) and all(t > 0 for t in times.values())
        for name in METHODS:
            monkeypatch.setenv(_cells.ACTIVATION_ENV, name)
            assert _cells.activation_method(np.float64) == name
        monkeypatch.setenv(_cells.ACTIVATION_ENV, "sin")
        with pytest.raises(ValueError, match="sin"):
            _cells.activation_method(np.float64)
    finally:
        _cells._force_activation(previous)


def test_pinned_activation_methods_win_and_are_given_back(monkeypatch):
    """A worker process computes with the methods of the process that
    started it, whatever is forced or measured there; after, its own again."""
    monkeypatch.setenv(_cells.ACTIVATION_ENV, "expit")
    methods = _cells.activation_methods()
    assert methods == {"float32": "expit", "float64": "expit"}
    with _cells.pinned_activations({"float32": "tanh", "float64": "exp"}):
        assert _cells.activation_method(np.float32) == "tanh"
        assert _cells.activation_method(np.float64) == "exp"
    assert _cells.activation_methods() == methods


def test_activation_method_changes_from_tanh_only_when_clearly_faster():
    """A near tie keeps tanh, so that the choice, and the model fitted from a
    random_state, does not change between processes with timing noise."""
    assert _cells._choose({"tanh": 1.0, "exp": 0.9, "expit": 3.0}) == "tanh"
    assert _cells._choose({"tanh": 1.0, "exp": 1.1, "expit": 3.0}) == "tanh"
    assert _cells._choose({"tanh": 1.0, "exp": 0.5, "expit": 3.0}) == "exp"
    assert _cells._choose({"tanh": 1.0, "exp": 0.9, "expit": 0.7}) == "expit"


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_exp_method_saturates_exactly_at_1e4(dtype):
    """The exp method at +-1e4: gates exactly 0 or 1, tanh exactly +-1, no
    overflow warning even when the caller asks for them to be raised."""
    H, n = 2, 3
    a = np.array([-1e4, -1e3, -50.0, 0.0, 50.0, 1e3, 1e4, 1e4], dtype=dtype)
    sig_rows = np.tile(a, (3 * H * n // a.size + 1))[: 3 * H * n].reshape(3 * H, n)
    block = np.vstack([sig_rows, sig_rows[:H]]).astype(dtype)
    saturated = np.abs(block) >= 1e3
    expected = np.vstack([expit(block[: 3 * H].astype(np.float64)),
                          np.tanh(block[3 * H :].astype(np.float64))])
    sigmoid_scale, tanh_scale = _cells.ACTIVATIONS["exp"]["scales"]
    block[: 3 * H] *= sigmoid_scale
    block[3 * H :] *= tanh_scale
    act = _cells.ACTIVATIONS["exp"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(all="raise"), np.errstate(**act["errstate"]):
            act["gates"](block, block[: 3 * H], block[3 * H :])
            state = np.empty((H, n), dtype)
            act["state"](np.full((H, n), -1e4, dtype), state)
    np.testing.assert_array_equal(block[saturated], np.round(expected[saturated]))
    np.testing.assert_allclose(block, expected, rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(state, -1)
