"""The resource plan (chunk size and peak memory) and the memory guard."""

import dataclasses
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from sklearn_gatedmem import LSTMClassifier, LSTMRegressor, _objective, _params
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
    other cell (15,520 rows, 11.4 GB of work arrays), and refused fits that
    the objective's own chunks (502 rows, 0.37 GB) would run."""
    network = _network("lstm", n_features=1000, hidden=(4,))
    fit = plan(network, 100_000, 32, 8)
    assert fit.chunk_rows == 502
    assert fit.parts["work arrays"] == pytest.approx(0.37 * 2**30, rel=0.05)
    predict = plan(network, 100_000, 32, 8, fit=False)
    assert predict.chunk_rows == fit.chunk_rows  # predictions chunk alike
    assert predict.parts["work arrays"] < fit.parts["work arrays"]


def test_the_estimator_predicts_with_the_planned_chunks(monkeypatch):
    from sklearn_gatedmem import _objective

    X = np.random.RandomState(0).normal(size=(30, 5, 3))
    est = LSTMRegressor(hidden_layer_sizes=3, max_iter=2, n_ensemble=1, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, X[:, 0, 0])
    seen, decision = [], _objective.decision
    monkeypatch.setattr(
        _objective, "decision",
        lambda theta, X, network, chunk, lengths=None: seen.append(chunk)
        or decision(theta, X, network, chunk, lengths),
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
    chunk_independent = {"G"}
    allocated = sum(buf.nbytes for key, buf in ws.items() if key not in chunk_independent)
    estimate = n * work_bytes_per_sample(network, T, 8)
    assert 0.75 * estimate <= allocated <= estimate


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
