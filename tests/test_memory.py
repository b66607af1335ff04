"""The resource plan (chunk size and peak memory) and the memory guard."""

import dataclasses
import tracemalloc
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from sklearn_gatedmem import LSTMClassifier, LSTMRegressor, _objective, _params
from sklearn_gatedmem._input import resolve_patch_size
from sklearn_gatedmem._memory import (
    CHUNK_BYTES,
    available_bytes,
    check_memory,
    plan,
    work_bytes_per_sample,
)
from sklearn_gatedmem._network import Network


def _network(cell="lstm", n_features=4, hidden=(32,), n_directions=1, n_outputs=1):
    return Network(
        cell=cell, hidden=hidden, n_directions=n_directions, pooling="last",
        patch_size=1, differences=False, n_features=n_features, n_outputs=n_outputs,
    )


# -- the plan ---------------------------------------------------------------------


def test_chunk_size_auto_stays_within_the_budget(cell):
    for n_steps, n_features, hidden, n_directions, itemsize in [
        (32, 8, (32,), 1, 8), (256, 4, (32,), 1, 4), (16, 64, (128, 64), 2, 8),
        (5000, 2, (256,), 2, 8),
    ]:
        network = _network(cell, n_features, hidden, n_directions)
        chunk = plan(network, 10**6, n_steps, itemsize).chunk_rows
        per_sample = work_bytes_per_sample(network, n_steps, itemsize)
        assert chunk >= 1
        assert chunk == 1 or chunk * per_sample <= CHUNK_BYTES
        assert (chunk + 1) * per_sample > CHUNK_BYTES
    assert plan(_network(cell), 100, 32, 8, chunk_size=17).chunk_rows == 17


def test_the_guard_sizes_chunks_as_the_fit_does():
    """The issue's case: an lstm of 4 units on 100,000 sequences of 32 steps
    of 1,000 features. The guard once sized chunks for one feature and the
    other cell (15,520 rows, 11.4 GB of work arrays) while the objective's own
    chunks were 502 rows. Now both take the plan's chunk, sized on the work
    arrays that the objective allocates (no dx for the first layer: 937
    rows, 965 before the input projection of all steps and the weight
    gradient's blocks joined the work arrays), and the estimate counts the
    standardisation's temporaries, which for rows this wide are the larger
    phase of the fit."""
    network = _network("lstm", n_features=1000, hidden=(4,))
    fit = plan(network, 100_000, 32, 8)
    per_sample = work_bytes_per_sample(network, 32, 8)
    assert fit.chunk_rows == CHUNK_BYTES // per_sample == 937
    predict = plan(network, 100_000, 32, 8, fit=False)
    assert predict.chunk_rows == fit.chunk_rows  # predictions chunk alike
    assert predict.parts["work arrays"] <= CHUNK_BYTES
    # 5 float64 temporaries of 4096 rows of 32,000 values
    assert fit.parts["work arrays"] == 5 * 8 * 4096 * 32 * 1000


def test_the_estimator_predicts_with_the_planned_chunks(monkeypatch):
    from sklearn_gatedmem import _objective

    X = np.random.RandomState(0).normal(size=(30, 5, 3))
    est = LSTMRegressor(hidden_layer_sizes=3, max_iter=2, n_ensemble=1, random_state=0,
                        alpha=1e-4, pooling="last", patch_size=None)  # no search
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, X[:, 0, 0])
    seen, decision = [], _objective.decision
    monkeypatch.setattr(
        _objective, "decision",
        lambda theta, X, network, chunk, lengths=None, static=None: seen.append(chunk)
        or decision(theta, X, network, chunk, lengths, static),
    )
    est.predict(X)
    expected = plan(est._network, 30, 5, 8, fit=False).chunk_rows
    assert seen == [expected]


@pytest.mark.parametrize("n_directions", [1, 2])
def test_memory_model_matches_what_is_allocated(cell, n_directions):
    """``work_bytes_per_sample`` bounds, tightly, the work buffers that one
    evaluation allocates per sample of a chunk."""
    n, T, D, hidden = 30, 9, 3, (5, 4)
    rng = np.random.RandomState(0)
    X = rng.normal(size=(n, T, D))
    Y = rng.normal(size=(n, 2))
    network = dataclasses.replace(
        _network(cell, D, hidden, n_directions, n_outputs=2),
        out_activation="identity", x_mean=np.zeros(D), x_scale=np.ones(D),
    )
    theta = _params.initialize(network.layout, cell, rng)
    ws = {}
    _objective.loss_grad(theta, X, Y, np.ones(n), 0.1, network, n, ws)
    # "sources": which chunk the first layer's input holds, no buffer; "G":
    # the per-step products of the weight gradient, chunk independent
    not_per_sample = {"sources", "G"}
    allocated = sum(buf.nbytes for key, buf in ws.items() if key not in not_per_sample)
    estimate = n * work_bytes_per_sample(network, T, 8)
    assert 0.75 * estimate <= allocated <= estimate


# shapes (n, steps, features), hidden, cell, and other parameters; the first
# two are the extremes: 1,000 features and 1 hidden unit
PEAK_CASES = [
    ((200, 10, 1000), (1,), "lstm", {}),
    ((200, 10, 1000), (1,), "gru", {"bidirectional": True}),
    ((300, 40, 3), (8,), "lstm", {}),  # patches of 2 (the length rule)
    ((300, 20, 10), (16, 8), "gated_memory", {"bidirectional": True}),
    ((100, 8, 200), (4,), "gru", {"differences": True}),
    ((2000, 16, 4), (2,), "lstm", {}),
]


def _traced_peak(call):
    """Peak bytes that ``call()`` allocates beyond what was allocated before."""
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        call()
        return tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("shape, hidden, cell, params", PEAK_CASES)
def test_the_estimate_is_within_a_factor_of_the_measured_peak(shape, hidden, cell, params):
    """The guard's estimate against the peak that tracemalloc measures, for
    a fit and a prediction, within a factor of 1.5 either way.

    The "auto" parameters are given the values the estimate assumes (the
    first of each, the length rule's patches): the search could choose
    others, whose network is not the one estimated (it chose the whole
    series, one step, for the third case, where the rule gives patches of 2;
    the check then failed on one machine at a factor of 1.52)."""
    n, T, D = shape
    X = np.random.RandomState(0).normal(size=shape)
    y = (X[:, 0, 0] > 0).astype(int)
    no_search = {"alpha": LSTMClassifier._AUTO["alpha"][0],
                 "patch_size": resolve_patch_size("auto", T)}
    est = LSTMClassifier(hidden_layer_sizes=hidden, cell=cell, max_iter=2, n_ensemble=1,
                         random_state=0, **no_search, **params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        fit_peak = _traced_peak(lambda: est.fit(X, y))
    fit_plan = est._resource_plan((n, T * D), X.dtype, (T, D), reset=True)
    predict_peak = _traced_peak(lambda: est.predict(X))
    predict_plan = est._resource_plan((n, T * D), X.dtype, (T, D), reset=False)
    for estimate, peak in ((fit_plan.total, fit_peak), (predict_plan.total, predict_peak)):
        print(f"{shape} {hidden} {cell} {params}: estimate / peak = {estimate / peak:.2f}")
        assert peak / 1.5 <= estimate <= 1.5 * peak


# -- the guard ------------------------------------------------------------------


def test_absurd_hidden_size_is_refused_before_allocating():
    X = np.zeros((5, 3, 1))
    with pytest.raises(ValueError, match=r"would need about [\d.e+]+ GB .*weights"):
        LSTMRegressor(hidden_layer_sizes=(10**6,), max_iter=1).fit(X, np.arange(5.0))


@pytest.mark.parametrize("Estimator", [LSTMClassifier, LSTMRegressor])
def test_a_billion_steps_are_refused_before_allocating(Estimator):
    # zero strides: 10^9 steps that take 8 bytes of memory
    X = np.broadcast_to(np.zeros(1), (2, 10**9, 4))
    with pytest.raises(ValueError, match=r"fit would need about [\d.e+]+ GB") as info:
        Estimator(hidden_layer_sizes=4, max_iter=1).fit(X, [0, 1])
    assert "copies of X" in str(info.value) and "work arrays" in str(info.value)


def test_a_huge_prediction_is_refused_before_allocating():
    X = np.random.RandomState(0).normal(size=(6, 3, 1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est = LSTMRegressor(hidden_layer_sizes=2, max_iter=2, n_ensemble=1).fit(X, np.arange(6.0))
    huge = np.broadcast_to(np.zeros(1), (10**10, 3, 1))
    with pytest.raises(ValueError, match=r"prediction would need about [\d.e+]+ GB"):
        est.predict(huge)


def test_check_memory_compares_against_what_is_available():
    parts = plan(_network(), 1000, 100, 8, chunk_size=1000).parts
    needed = sum(parts.values())
    check_memory(parts, "fit", "", available=int(needed) + 1)
    with pytest.raises(ValueError, match=r"about 0\.\d+ GB .* only 0\.0\d+ GB"):
        check_memory(parts, "fit", "", available=int(needed) // 10)
    assert available_bytes() > 0  # Linux: /proc/meminfo


def test_ordinary_fits_pass_the_memory_guard():
    """The guard must not refuse what fits: a default-sized network on a
    medium data set needs well under the memory of any machine."""
    assert plan(_network(n_features=8), 10_000, 100, 8, chunk_size=2000).total < 2**30
    X = np.random.RandomState(0).normal(size=(20, 30, 2))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        LSTMRegressor(hidden_layer_sizes=32, max_iter=1).fit(X, np.arange(20.0))
