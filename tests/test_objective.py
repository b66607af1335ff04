"""The loss and gradient handed to L-BFGS, checked by central differences over
the whole packed parameter vector (the test that matters for an L-BFGS model),
and its invariances: chunking, the decision path, the penalty, float32."""

import dataclasses

import numpy as np
import pytest

from sklearn_gatedmem import _cells, _objective, _params, make_patches
from sklearn_gatedmem._input import sequence_lengths
from sklearn_gatedmem._memory import plan
from sklearn_gatedmem._network import Network

N, T, D, H = 5, 4, 2, 3
X_MEAN = np.array([2.5, -1.0])
X_SCALE = np.array([1.5, 0.7])

# out_activation, n_outputs
OUTPUTS = [
    ("identity", 1),
    ("identity", 2),
    ("logistic", 1),  # binary
    ("logistic", 3),  # multilabel
    ("softmax", 3),  # multiclass
]
HIDDEN = [(H,), (H, 2)]

WORST = {}  # worst relative error of the gradient checks, by test


def _targets(kind, K, rng, n=N):
    if kind == "identity":
        return rng.normal(size=(n, K))
    if kind == "logistic":
        Y = rng.randint(2, size=(n, K)).astype(float)
        Y[0] = 1 - Y[1]  # both labels present in every column
        return Y
    return np.eye(K)[rng.randint(K, size=n)]


def _network(cell, hidden, kind, K, n_features=D, n_directions=1, pooling="last",
             x_mean=X_MEAN, x_scale=X_SCALE):
    """The network that the objective evaluates (no patching: the objective
    reads what the network reads)."""
    return Network(
        cell=cell, hidden=hidden, n_directions=n_directions, pooling=pooling,
        patch_size=1, differences=False, n_features=n_features, n_outputs=K,
        out_activation=kind, x_mean=np.asarray(x_mean), x_scale=np.asarray(x_scale),
    )


def _problem(cell, hidden, kind, K, n_directions=1, pooling="last", seed=0,
             dtype=np.float64, n=N):
    """A tiny problem off the trivial regime: raw X around X_MEAN, perturbed
    initial weights, non-uniform sample weights."""
    rng = np.random.RandomState(seed)
    X = X_MEAN + X_SCALE * rng.normal(size=(n, T, D)) * 1.3 + 0.2
    Y = _targets(kind, K, rng, n)
    sw = rng.uniform(0.2, 2.0, size=n)
    network = _network(cell, hidden, kind, K, n_directions=n_directions, pooling=pooling)
    theta = _params.initialize(network.layout, cell, np.random.RandomState(seed))
    theta += 0.5 * rng.normal(size=theta.shape)
    return theta, X.astype(dtype), Y, sw, network


def _numeric_grad(f, theta, eps=1e-6):
    grad = np.empty_like(theta)
    for i in range(theta.size):
        plus, minus = theta.copy(), theta.copy()
        plus[i] += eps
        minus[i] -= eps
        grad[i] = (f(plus) - f(minus)) / (2 * eps)
    return grad


def _check_gradient(theta, X, Y, sw, alpha, spec, chunk, lengths=None, key=None):
    def f(t):
        return _objective.loss_grad(t, X, Y, sw, alpha, spec, chunk, lengths=lengths)[0]

    loss, grad = _objective.loss_grad(theta, X, Y, sw, alpha, spec, chunk, lengths=lengths)
    assert np.isfinite(loss)
    assert grad.shape == theta.shape and grad.dtype == np.float64
    numeric = _numeric_grad(f, theta)
    rel = np.linalg.norm(numeric - grad) / np.linalg.norm(numeric + grad)
    WORST[key] = rel
    print(f"gradient check {key}: relative error {rel:.3e}")
    # every block of the vector gets a non-trivial gradient
    for name, g in _params.unpack(grad, spec.layout).items():
        assert np.any(np.abs(g) > 1e-8), name
    assert rel <= 1e-6, rel
    return rel


@pytest.mark.parametrize("kind, K", OUTPUTS)
@pytest.mark.parametrize("hidden", HIDDEN, ids=["1layer", "2layers"])
def test_gradient_matches_finite_differences(cell, hidden, kind, K):
    theta, X, Y, sw, spec = _problem(cell, hidden, kind, K)
    _check_gradient(theta, X, Y, sw, 0.3, spec, 2, key=(cell, hidden, kind, K))


def test_gradient_every_activation_method(cell, method):
    """The gradient check with each activation method forced: a
    bidirectional layer, softmax head, mean pooling (the methods compute the
    gates, the same code in every layer: two layers are checked with the
    default method)."""
    theta, X, Y, sw, spec = _problem(cell, HIDDEN[0], "softmax", 3, n_directions=2,
                                     pooling="mean", seed=5)
    _check_gradient(theta, X, Y, sw, 0.3, spec, 2, key=(cell, method))


def test_activation_methods_give_the_same_objective(cell):
    """Loss, gradient and decision agree to 1e-12 between methods in float64,
    on longer sequences than the gradient checks'."""
    theta, X, Y, sw, spec = _problem(cell, HIDDEN[1], "logistic", 1, n_directions=2,
                                     seed=6, n=20)
    X = np.concatenate([X] * 8, axis=1)  # 32 steps
    results = {}
    for name in sorted(_cells.ACTIVATIONS):
        previous = _cells._force_activation(name)
        try:
            loss, grad = _objective.loss_grad(theta, X, Y, sw, 0.1, spec, 7)
            results[name] = loss, grad, _objective.decision(theta, X, spec, 7)
        finally:
            _cells._force_activation(previous)
    for name, (loss, grad, Z) in results.items():
        ref_loss, ref_grad, ref_Z = results["tanh"]
        assert abs(loss - ref_loss) <= 1e-12, name
        np.testing.assert_allclose(grad, ref_grad, rtol=0, atol=1e-12)
        np.testing.assert_allclose(Z, ref_Z, rtol=0, atol=1e-12)


@pytest.mark.parametrize("pooling", ["last", "mean", "max"])
@pytest.mark.parametrize("n_directions", [1, 2])
def test_gradient_bidirectional_pooling_variable_length(cell, n_directions, pooling):
    """The other read-outs of the core, on NaN-padded sequences of their own
    lengths, also over the whole vector."""
    hidden = (H, 2) if n_directions == 1 else (2, 2)
    theta, X, Y, sw, spec = _problem(
        cell, hidden, "softmax", 3, n_directions=n_directions, pooling=pooling, seed=3
    )
    lengths = _pad(X)
    _check_gradient(
        theta, X, Y, sw, 0.3, spec, 3, lengths=lengths,
        key=(cell, n_directions, pooling, "varlen"),
    )


def _pad(X):
    """NaN-pad the rows of X to lengths of their own; return the lengths."""
    lengths = np.array([4, 2, 3, 1, 4])
    for n, length in enumerate(lengths):
        X[n, length:] = np.nan
    return lengths


@pytest.mark.parametrize("n_directions", [1, 2])
def test_gradient_on_patches_with_partial_last_patches(cell, n_directions):
    """What the estimators hand to the objective with ``patch_size``: patches
    of variable-length sequences, whose last patches are partial (lengths
    4, 2, 3, 1, 4 in patches of 3), checked over the whole vector."""
    rng = np.random.RandomState(5)
    raw = X_MEAN + X_SCALE * rng.normal(size=(N, T, D))
    _pad(raw)
    X = make_patches(raw, 3)
    lengths = sequence_lengths(X)
    assert X.shape == (N, 2, 3 * D) and list(lengths) == [2, 1, 1, 1, 2]
    hidden = (H,) if n_directions == 1 else (2, 2)
    spec = _network(
        cell, hidden, "softmax", 3, 3 * D, n_directions, "mean",
        np.tile(X_MEAN, 3), np.tile(X_SCALE, 3),
    )
    theta = _params.initialize(spec.layout, cell, np.random.RandomState(0))
    theta += 0.5 * rng.normal(size=theta.shape)
    Y = _targets("softmax", 3, rng)
    sw = rng.uniform(0.2, 2.0, size=N)
    _check_gradient(
        theta, X, Y, sw, 0.3, spec, 2, lengths=lengths,
        key=(cell, n_directions, "patches"),
    )


@pytest.mark.parametrize("pooling", ["last", "mean", "max"])
def test_padding_values_and_chunks_do_not_matter(pooling):
    """Bidirectional and variable-length: chunking changes nothing, and what
    is in the padding never reaches the result."""
    theta, X, Y, sw, spec = _problem(
        "lstm", (2, 2), "logistic", 2, n_directions=2, pooling=pooling, seed=12
    )
    lengths = _pad(X)
    loss_ref, grad_ref = _objective.loss_grad(theta, X, Y, sw, 0.1, spec, N, lengths=lengths)
    for chunk in (1, 2, 3):
        loss, grad = _objective.loss_grad(theta, X, Y, sw, 0.1, spec, chunk, lengths=lengths)
        assert loss == pytest.approx(loss_ref, rel=1e-12)
        assert np.linalg.norm(grad - grad_ref) <= 1e-12 * np.linalg.norm(grad_ref)
    X_junk = np.where(np.isnan(X), 123.0, X)
    loss, grad = _objective.loss_grad(theta, X_junk, Y, sw, 0.1, spec, 2, lengths=lengths)
    assert loss == pytest.approx(loss_ref, rel=1e-12)
    assert np.linalg.norm(grad - grad_ref) <= 1e-12 * np.linalg.norm(grad_ref)
    # a sequence cut to its real steps alone gives its own decision
    Z = _objective.decision(theta, X, spec, 2, lengths)
    for n in range(N):
        Z_n = _objective.decision(theta, X[n : n + 1, : lengths[n]], spec, 1)
        np.testing.assert_allclose(Z_n[0], Z[n], rtol=1e-12, atol=1e-13)


def test_worst_gradient_error_is_recorded(capsys):
    """Summarises the checks that ran before it in this module (running one
    when it runs alone)."""
    if not WORST:
        test_gradient_matches_finite_differences("lstm", (H,), "softmax", 3)
    key, worst = max(WORST.items(), key=lambda kv: kv[1])
    with capsys.disabled():
        print(f"\nworst gradient-check relative error {worst:.3e} at {key}")
    assert worst <= 1e-6


@pytest.mark.parametrize("kind, K", OUTPUTS)
def test_result_does_not_depend_on_chunk_size(cell, kind, K):
    theta, X, Y, sw, spec = _problem(cell, (H, 2), kind, K, seed=1)
    ws = {}
    loss_ref, grad_ref = _objective.loss_grad(theta, X, Y, sw, 0.1, spec, N)
    # uneven chunks (a smaller last chunk) and one shared work-buffer dict
    for chunk in (1, 2, 3, N, 100):
        loss, grad = _objective.loss_grad(theta, X, Y, sw, 0.1, spec, chunk, ws)
        assert loss == pytest.approx(loss_ref, rel=1e-12)
        rel = np.linalg.norm(grad - grad_ref) / np.linalg.norm(grad_ref)
        assert rel <= 1e-12, (chunk, rel)


def test_reused_work_buffers_give_the_same_result():
    """The work-buffer dict of a fit is reused by every evaluation; a second
    evaluation at another theta, or of other rows, must not see stale data."""
    theta, X, Y, sw, spec = _problem("lstm", (H, 2), "softmax", 3, seed=2)
    ws = {}
    first = _objective.loss_grad(theta, X, Y, sw, 0.1, spec, 2, ws)
    _objective.loss_grad(theta * 0.5, X[:3], Y[:3], sw[:3], 0.1, spec, 3, ws)
    again = _objective.loss_grad(theta, X, Y, sw, 0.1, spec, 2, ws)
    assert first[0] == again[0]
    np.testing.assert_array_equal(first[1], again[1])


@pytest.mark.parametrize("n_directions", [1, 2])
def test_the_standardised_input_is_kept_between_evaluations(monkeypatch, n_directions):
    """A fit of a single chunk standardises its input once: later evaluations
    on the same X reuse it (same result as fresh buffers); another X, other
    lengths or a smaller chunk size (several chunks, each overwriting the
    buffer) standardise again, and the results stay those of fresh buffers."""
    theta, X, Y, sw, spec = _problem("lstm", (H,), "softmax", 3, n_directions, seed=5, n=8)
    lengths = np.array([4, 4, 3, 2, 4, 1, 3, 4])
    calls = []
    standardise = _objective._standardise
    monkeypatch.setattr(_objective, "_standardise",
                        lambda *args: calls.append(1) or standardise(*args))

    def fresh(theta, X, chunk, lengths=None):
        return _objective.loss_grad(theta, X, Y, sw, 0.1, spec, chunk, {}, lengths)

    ws = {}
    for k in range(3):
        got = _objective.loss_grad(theta * (1 + k / 10), X, Y, sw, 0.1, spec, 8, ws)
        want = fresh(theta * (1 + k / 10), X, 8)
        assert got[0] == want[0] and np.array_equal(got[1], want[1])
    assert len(calls) == 3 + 1  # the fresh ones, and one for the fit
    other = X + 1.0
    got = _objective.loss_grad(theta, other, Y, sw, 0.1, spec, 8, ws)
    want = fresh(theta, other, 8)
    assert got[0] == want[0] and np.array_equal(got[1], want[1])
    rescaled = dataclasses.replace(spec, x_scale=2 * spec.x_scale)
    got = _objective.loss_grad(theta, other, Y, sw, 0.1, rescaled, 8, ws)
    want = _objective.loss_grad(theta, other, Y, sw, 0.1, rescaled, 8, {})
    assert got[0] == want[0] and np.array_equal(got[1], want[1])
    for chunk, n_chunks in ((3, 3), (3, 3), (8, 1)):  # all re-standardised
        del calls[:]
        got = _objective.loss_grad(theta, X, Y, sw, 0.1, spec, chunk, ws)
        assert len(calls) == n_chunks
        np.testing.assert_allclose(got[1], fresh(theta, X, chunk)[1], rtol=1e-12)
    Xp = X.copy()
    Xp[np.arange(T) >= lengths[:, None]] = np.nan
    for _ in range(2):
        got = _objective.loss_grad(theta, Xp, Y, sw, 0.1, spec, 8, ws, lengths)
        want = fresh(theta, Xp, 8, lengths)
        assert got[0] == want[0] and np.array_equal(got[1], want[1])


@pytest.mark.parametrize("kind, K", OUTPUTS)
@pytest.mark.parametrize("hidden", HIDDEN, ids=["1layer", "2layers"])
def test_decision_is_the_head_output_of_loss_grad(cell, hidden, kind, K, monkeypatch, method):
    theta, X, Y, sw, spec = _problem(cell, hidden, kind, K, seed=4)
    seen = []
    original = _objective._loss_and_delta

    def spy(Z, *args, **kwargs):
        seen.append(np.array(Z))
        return original(Z, *args, **kwargs)

    monkeypatch.setattr(_objective, "_loss_and_delta", spy)
    _objective.loss_grad(theta, X, Y, sw, 0.0, spec, 2)
    Z_loss = np.vstack(seen)
    assert Z_loss.shape == (N, K)
    for chunk in (1, 2, N):
        Z = _objective.decision(theta, X, spec, chunk)
        assert Z.shape == (N, K) and Z.dtype == np.float64
        np.testing.assert_allclose(Z, Z_loss, rtol=1e-13, atol=1e-13)


def test_decision_recovered_from_the_identity_gradient():
    """Without looking inside: for one sample, zero alpha and the identity
    loss, ``d loss / d head.b = (z - y) / K``."""
    theta, X, Y, sw, spec = _problem("gated_memory", (H, 2), "identity", 2, seed=5)
    Z = _objective.decision(theta, X, spec, N)
    for n in range(N):
        loss, grad = _objective.loss_grad(
            theta, X[n : n + 1], Y[n : n + 1], np.ones(1), 0.0, spec, 1
        )
        db = _params.unpack(grad, spec.layout)["head.b"]
        np.testing.assert_allclose(2 * db + Y[n], Z[n], rtol=1e-12, atol=1e-12)
        assert loss == pytest.approx(0.25 * np.sum((Z[n] - Y[n]) ** 2), rel=1e-12)


@pytest.mark.parametrize("kind, K", OUTPUTS)
def test_loss_values_match_the_docstring(kind, K):
    """The objective itself (not only its gradient), from the decision."""
    theta, X, Y, sw, spec = _problem("lstm", (H,), kind, K, seed=6)
    alpha = 0.7
    Z = _objective.decision(theta, X, spec, N)
    if kind == "identity":
        per = 0.5 * ((Z - Y) ** 2).sum(axis=1) / K
    elif kind == "logistic":
        P = 1 / (1 + np.exp(-Z))
        per = -(Y * np.log(P) + (1 - Y) * np.log(1 - P)).sum(axis=1)
    else:
        P = np.exp(Z) / np.exp(Z).sum(axis=1, keepdims=True)
        per = -(Y * np.log(P)).sum(axis=1)
    weights = theta * _params.penalty_mask(spec.layout)
    expected = (per @ sw + 0.5 * alpha * weights @ weights) / sw.sum()
    loss, _ = _objective.loss_grad(theta, X, Y, sw, alpha, spec, 2)
    assert loss == pytest.approx(expected, rel=1e-12)


def test_penalty_excludes_biases(cell):
    theta, X, Y, sw, spec = _problem(cell, (H, 2), "softmax", 3, seed=7)
    loss0, grad0 = _objective.loss_grad(theta, X, Y, sw, 0.0, spec, 2)
    alpha = 0.9
    loss1, grad1 = _objective.loss_grad(theta, X, Y, sw, alpha, spec, 2)
    mask = _params.penalty_mask(spec.layout)
    np.testing.assert_allclose(
        grad1 - grad0, alpha * theta * mask / sw.sum(), rtol=1e-10, atol=1e-14
    )
    weights = theta * mask
    assert loss1 - loss0 == pytest.approx(0.5 * alpha * weights @ weights / sw.sum(), rel=1e-10)
    # biases: bit-identical gradients with and without the penalty
    for name, (start, stop, _) in spec.layout.items():
        if name.startswith("b") or name == "head.b":
            np.testing.assert_array_equal(grad1[start:stop], grad0[start:stop])
        else:
            assert not np.array_equal(grad1[start:stop], grad0[start:stop]), name


def test_sample_weight_scale_invariance_and_integer_weights():
    """Objective is a weighted *mean*: scaling all weights (and alpha) by c
    changes nothing; an integer weight equals a repeated row."""
    theta, X, Y, sw, spec = _problem("lstm", (H,), "softmax", 3, seed=8)
    loss, grad = _objective.loss_grad(theta, X, Y, sw, 0.2, spec, 2)
    loss_c, grad_c = _objective.loss_grad(theta, X, Y, 3 * sw, 0.6, spec, 2)
    assert loss_c == pytest.approx(loss, rel=1e-12)
    np.testing.assert_allclose(grad_c, grad, rtol=1e-11, atol=1e-15)
    counts = np.array([1, 2, 3, 1, 2])
    loss_w, grad_w = _objective.loss_grad(theta, X, Y, counts.astype(float), 0.2, spec, 2)
    rep = np.repeat(np.arange(N), counts)
    loss_r, grad_r = _objective.loss_grad(theta, X[rep], Y[rep], np.ones(rep.size), 0.2, spec, 2)
    assert loss_w == pytest.approx(loss_r, rel=1e-12)
    np.testing.assert_allclose(grad_w, grad_r, rtol=1e-11, atol=1e-15)


def test_network_standardisation_is_applied():
    """Shifting X and x_mean together changes nothing."""
    theta, X, Y, sw, spec = _problem("lstm", (H,), "identity", 1, seed=9)
    shifted = _network("lstm", (H,), "identity", 1, x_mean=X_MEAN + 10.0)
    a = _objective.loss_grad(theta, X, Y, sw, 0.1, spec, 2)
    b = _objective.loss_grad(theta, X + 10.0, Y, sw, 0.1, shifted, 2)
    assert b[0] == pytest.approx(a[0], rel=1e-12)
    np.testing.assert_allclose(b[1], a[1], rtol=1e-10, atol=1e-13)
    # and the standardisation matters: a wrong mean gives another loss
    c = _objective.loss_grad(theta, X, Y, sw, 0.1, shifted, 2)
    assert abs(c[0] - a[0]) > 1e-3


@pytest.mark.parametrize("kind, K", OUTPUTS)
def test_float32_input_is_close_to_float64(cell, kind, K):
    theta, X, Y, sw, spec64 = _problem(cell, (H, 2), kind, K, seed=10)
    spec32 = spec64  # the compute dtype is that of X
    loss64, grad64 = _objective.loss_grad(theta, X, Y, sw, 0.3, spec64, 2)
    loss32, grad32 = _objective.loss_grad(theta, X.astype(np.float32), Y, sw, 0.3, spec32, 2)
    assert isinstance(loss32, float)
    assert grad32.dtype == np.float64
    assert loss32 == pytest.approx(loss64, rel=1e-5)
    rel = np.linalg.norm(grad32 - grad64) / np.linalg.norm(grad64)
    assert rel <= 1e-4, rel
    assert not np.array_equal(grad32, grad64)  # it did compute in float32
    Z32 = _objective.decision(theta, X.astype(np.float32), spec32, 2)
    Z64 = _objective.decision(theta, X, spec64, 2)
    assert Z32.dtype == np.float64
    np.testing.assert_allclose(Z32, Z64, rtol=1e-4, atol=1e-5)


def test_extreme_logits_give_finite_loss_and_gradient():
    """log(1 + e^z) and logsumexp stay finite for saturated heads."""
    for kind, K in [("logistic", 2), ("softmax", 3)]:
        theta, X, Y, sw, spec = _problem("lstm", (H,), kind, K, seed=11)
        head_b = _params.unpack(theta, spec.layout)["head.b"]
        head_b[:] = np.linspace(-800, 800, K)
        loss, grad = _objective.loss_grad(theta, X, Y, sw, 0.1, spec, 2)
        assert np.isfinite(loss) and np.all(np.isfinite(grad))
        assert loss > 100  # the wrong labels cost a lot


# -- chunking, memory, float32 at scale -------------------------------------


@pytest.mark.parametrize("pooling", ["last", "mean", "max"])
def test_chunk_one_and_auto_chunk_agree(cell, pooling):
    """Chunks of one sequence against the estimator's automatic chunk size
    (all rows in one chunk here), bidirectional and variable length."""
    theta, X, Y, sw, spec = _problem(
        cell, (H, 2), "softmax", 3, n_directions=2, pooling=pooling, seed=13
    )
    lengths = _pad(X)
    auto = plan(spec, N, T, 8).chunk_rows
    assert auto >= N
    loss_a, grad_a = _objective.loss_grad(theta, X, Y, sw, 0.1, spec, auto, lengths=lengths)
    loss_1, grad_1 = _objective.loss_grad(theta, X, Y, sw, 0.1, spec, 1, lengths=lengths)
    assert loss_1 == pytest.approx(loss_a, rel=1e-12)
    assert np.linalg.norm(grad_1 - grad_a) <= 1e-12 * np.linalg.norm(grad_a)
    Z_a = _objective.decision(theta, X, spec, auto, lengths)
    Z_1 = _objective.decision(theta, X, spec, 1, lengths)
    np.testing.assert_allclose(Z_1, Z_a, rtol=1e-12, atol=1e-13)


def test_chunks_are_balanced_and_cover_every_row():
    for n_samples in (0, 1, 5, 17, 1000):
        for chunk_size in (1, 2, 3, 7, 600, 5000):
            chunks = _objective._chunks(n_samples, chunk_size)
            sizes = [c.stop - c.start for c in chunks]
            assert sum(sizes) == n_samples
            assert all(c.start == (p.stop if p else 0) for p, c in zip([None] + chunks, chunks))
            if sizes:
                assert max(sizes) <= chunk_size and max(sizes) - min(sizes) <= 1


def test_chunk_plan_groups_similar_lengths_and_runs_only_their_steps():
    rng = np.random.RandomState(0)
    lengths = rng.randint(1, 101, size=500)
    for ordered in (False, True):
        L = np.sort(lengths)[::-1] if ordered else lengths
        plan = _objective.chunk_plan(500, 100, 150, L)
        rows = np.concatenate([np.arange(500)[r] for r, _ in plan])
        np.testing.assert_array_equal(np.sort(rows), np.arange(500))  # each row once
        assert all(isinstance(r, slice) == ordered for r, _ in plan)
        for r, n_steps in plan:
            chunk = L[r]
            assert n_steps == chunk.max() and 0 < len(chunk) <= 150
            # a group is at least _MIN_CHUNK_ROWS rows, the last takes what is left
            if len(chunk) > 2 * _objective._MIN_CHUNK_ROWS:
                assert chunk.min() >= n_steps / 2
        # far fewer steps than every sequence run to the longest
        assert sum(len(L[r]) * n for r, n in plan) < 0.7 * 500 * 100
    # equal lengths, or none: the plain chunks over all steps
    assert _objective.chunk_plan(10, 7, 4) == [(r, 7) for r in _objective._chunks(10, 4)]
    assert _objective.chunk_plan(10, 7, 4, np.full(10, 7)) == _objective.chunk_plan(10, 7, 4)


def test_float32_objective_at_a_realistic_size(cell):
    """Float32 compute (loss and gradient accumulated in float64) against
    float64, on a problem large enough for many steps and chunks to matter."""
    n, T, D, H = 300, 40, 4, 16
    rng = np.random.RandomState(1)
    X = rng.normal(size=(n, T, D)) * 2 + 1
    Y = (rng.rand(n, 1) > 0.5).astype(float)
    network = _network(cell, (H,), "logistic", 1, D, 2, "mean", np.ones(D), 2 * np.ones(D))
    theta = _params.initialize(network.layout, cell, rng)
    specs = dict.fromkeys((np.float32, np.float64), network)  # the dtype is X's
    loss64, grad64 = _objective.loss_grad(theta, X, Y, np.ones(n), 1e-3, specs[np.float64], 64)
    X32 = X.astype(np.float32)
    loss32, grad32 = _objective.loss_grad(theta, X32, Y, np.ones(n), 1e-3, specs[np.float32], 64)
    assert grad32.dtype == np.float64
    assert loss32 == pytest.approx(loss64, rel=1e-5)
    assert np.linalg.norm(grad32 - grad64) <= 1e-4 * np.linalg.norm(grad64)
    Z64 = _objective.decision(theta, X, specs[np.float64], 1000)
    Z32 = _objective.decision(theta, X32, specs[np.float32], 7)
    np.testing.assert_allclose(Z32, Z64, rtol=1e-4, atol=1e-5)


def _check_static_gradient(theta, X, Y, sw, alpha, spec, chunk, lengths, static, key):
    def f(t):
        return _objective.loss_grad(t, X, Y, sw, alpha, spec, chunk, lengths=lengths,
                                    static=static)[0]

    loss, grad = _objective.loss_grad(theta, X, Y, sw, alpha, spec, chunk,
                                      lengths=lengths, static=static)
    numeric = _numeric_grad(f, theta)
    rel = np.linalg.norm(numeric - grad) / np.linalg.norm(numeric + grad)
    WORST[key] = rel
    for name, g in _params.unpack(grad, spec.layout).items():
        assert np.any(np.abs(g) > 1e-8), name
    assert rel <= 1e-6, rel


@pytest.mark.parametrize("kind, K", [("identity", 2), ("softmax", 3), ("logistic", 1)])
@pytest.mark.parametrize("n_directions, pooling, padded", [
    (1, "last", False), (2, "max", True), (1, "mean", True),
])
def test_gradient_with_static_features(cell, kind, K, n_directions, pooling, padded):
    """Static values beside the pooled state (``head.W_static``): the whole
    packed vector, static block included, against central differences."""
    import dataclasses

    theta, X, Y, sw, spec = _problem(cell, (H,), kind, K, n_directions, pooling, seed=4)
    spec = dataclasses.replace(
        spec, n_static=2, s_mean=np.array([30.0, -2.0]), s_scale=np.array([5.0, 0.5])
    )
    assert spec.layout["head.W_static"][2] == (2, K)
    rng = np.random.RandomState(9)
    theta = _params.initialize(spec.layout, cell, rng) + 0.5 * rng.normal(
        size=_params.n_params(spec.layout)
    )
    static = np.array([30.0, -2.0]) + np.array([5.0, 0.5]) * rng.normal(size=(N, 2))
    lengths = _pad(X) if padded else None
    _check_static_gradient(theta, X, Y, sw, 0.3, spec, 2, lengths, static,
                           key=(cell, kind, K, n_directions, pooling, "static"))
    # the decision path reads them the same way, chunk by chunk
    Z = _objective.decision(theta, X, spec, 2, lengths, static)
    Z1 = _objective.decision(theta, X, spec, 5, lengths, static)
    np.testing.assert_allclose(Z, Z1, rtol=0, atol=1e-12)
    moved = _objective.decision(theta, X, spec, 2, lengths, static + 1.0)
    assert not np.allclose(moved, Z)


@pytest.mark.parametrize("static_into", ["initial_state", "both"])
@pytest.mark.parametrize("cell_name", ["lstm", "gru"])
@pytest.mark.parametrize("hidden, n_directions, pooling, padded", [
    ((H,), 1, "last", False), ((2, 2), 2, "max", True), ((H,), 1, "mean", True),
])
def test_gradient_with_static_initial_states(cell_name, static_into, hidden, n_directions,
                                             pooling, padded):
    """Static values through a learned map to the first layer's initial
    states (``h0.W``, ``h0.b``; the experiment of issue 21), alone or beside
    the head's: the whole packed vector against central differences."""
    import dataclasses

    theta, X, Y, sw, spec = _problem(cell_name, hidden, "softmax", 3, n_directions,
                                     pooling, seed=4)
    spec = dataclasses.replace(
        spec, n_static=2, s_mean=np.array([30.0, -2.0]), s_scale=np.array([5.0, 0.5]),
        static_into=static_into,
    )
    n_states = _cells.get(cell_name).n_states
    assert spec.layout["h0.W"][2] == (2, n_directions * n_states * hidden[0])
    assert ("head.W_static" in spec.layout) == (static_into == "both")
    rng = np.random.RandomState(9)
    theta = _params.initialize(spec.layout, cell_name, rng) + 0.5 * rng.normal(
        size=_params.n_params(spec.layout)
    )
    static = np.array([30.0, -2.0]) + np.array([5.0, 0.5]) * rng.normal(size=(N, 2))
    lengths = _pad(X) if padded else None
    _check_static_gradient(theta, X, Y, sw, 0.3, spec, 2, lengths, static,
                           key=(cell_name, static_into, hidden, n_directions, "h0"))
    # the decision path starts from the same states, chunk by chunk
    Z = _objective.decision(theta, X, spec, 2, lengths, static)
    Z1 = _objective.decision(theta, X, spec, 5, lengths, static)
    np.testing.assert_allclose(Z, Z1, rtol=0, atol=1e-12)
    loss = _objective.loss_grad(theta, X, Y, sw, 0.0, spec, 5, lengths=lengths,
                                static=static)[0]
    expected = -(Y * (Z - np.log(np.exp(Z).sum(axis=1, keepdims=True)))).sum(axis=1)
    assert loss == pytest.approx(expected @ sw / sw.sum(), rel=1e-12)


def test_zero_static_initial_states_are_the_zero_states(cell):
    """Zero ``h0`` weights and bias give exactly the network of zero initial
    states (the first step's skipped recurrent GEMM and the full one agree);
    the gated_memory cell, which has no initial-state path, is refused."""
    import dataclasses

    if cell == "gated_memory":
        theta, X, Y, sw, spec = _problem(cell, (H,), "softmax", 3, seed=4)
        spec = dataclasses.replace(spec, n_static=1, s_mean=np.zeros(1), s_scale=np.ones(1),
                                   static_into="initial_state")
        theta = _params.initialize(spec.layout, cell, np.random.RandomState(0))
        with pytest.raises(ValueError, match="starts from zero states only"):
            _objective.decision(theta, X, spec, 2, None, np.ones((N, 1)))
        return
    theta, X, Y, sw, plain = _problem(cell, (H,), "softmax", 3, seed=4)
    spec = dataclasses.replace(plain, n_static=1, s_mean=np.zeros(1), s_scale=np.ones(1),
                               static_into="initial_state")
    full = _params.unpack(np.zeros(_params.n_params(spec.layout)), spec.layout)
    for name, value in _params.unpack(theta, plain.layout).items():
        full[name][...] = value
    theta_h0 = _params.pack(full, spec.layout)
    static = np.random.RandomState(1).normal(size=(N, 1))
    np.testing.assert_allclose(
        _objective.decision(theta_h0, X, spec, 2, None, static),
        _objective.decision(theta, X, plain, 2), rtol=0, atol=1e-13,
    )


@pytest.mark.parametrize("pooling", ["last", "mean", "max"])
@pytest.mark.parametrize("n_directions", [1, 2])
@pytest.mark.parametrize("hidden", HIDDEN, ids=["1layer", "2layers"])
def test_input_gradient_matches_finite_differences(cell, hidden, n_directions, pooling):
    """The input gradient of the one backward path (what attributions
    integrate), by central differences over every input value, on sequences
    of unequal lengths, against the output the caller names."""
    theta, X, _, _, network = _problem(cell, hidden, "softmax", 3, n_directions, pooling)
    lengths = np.array([4, 2, 3, 4, 1])
    X[np.arange(T) >= lengths[:, None]] = np.nan
    column = np.array([0, 1, 2, 1, 0])

    def output(Z, rows):  # a probability per sample and its gradient
        P = np.exp(Z - Z.max(axis=1, keepdims=True))
        P /= P.sum(axis=1, keepdims=True)
        c = column[rows]
        f = P[np.arange(len(c)), c]
        df = -f[:, None] * P
        df[np.arange(len(c)), c] += f
        return f, df

    f, grad = _objective.input_gradient(theta, X, network, 2, output, lengths)
    assert grad.shape == X.shape
    np.testing.assert_allclose(
        f, output(_objective.decision(theta, X, network, 2, lengths), np.arange(N))[0]
    )
    eps, numeric = 1e-6, np.zeros_like(grad)
    real = np.arange(T) < lengths[:, None]
    for idx in zip(*np.nonzero(real)):
        for j in range(D):
            plus, minus = X.copy(), X.copy()
            plus[idx + (j,)] += eps
            minus[idx + (j,)] -= eps
            fp = _objective.input_gradient(theta, plus, network, 2, output, lengths)[0]
            fm = _objective.input_gradient(theta, minus, network, 2, output, lengths)[0]
            numeric[idx + (j,)] = (fp[idx[0]] - fm[idx[0]]) / (2 * eps)
    assert np.all(grad[~real] == 0)  # padding reads nothing
    rel = np.linalg.norm(numeric[real] - grad[real]) / np.linalg.norm(numeric[real])
    assert np.linalg.norm(grad[real]) > 1e-6
    assert rel <= 1e-6, rel
