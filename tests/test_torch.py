"""``to_torch()``: every fitted network as a ``torch.nn.Module`` on raw input.

Each module must reproduce ``predict_proba`` / ``predict`` to 1e-10 in float64.
"""


import itertools
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from sklearn_gatedmem import LSTMClassifier, LSTMRegressor, make_patches, pad_sequences
from conftest import CELL_NAMES
from sklearn_gatedmem import _cells

torch = pytest.importorskip("torch")

ROOT = Path(__file__).resolve().parents[1]
TOL = 1e-10


def _ragged(n_samples=14, n_features=2, low=2, high=8, seed=0):
    """Sequences with means and scales far from 0 and 1."""
    rng = np.random.RandomState(seed)
    seqs = [
        40 + 7 * rng.normal(size=(rng.randint(low, high), n_features))
        for _ in range(n_samples)
    ]
    return seqs, np.array([int(s[:, 0].mean() > 40) for s in seqs])


def _fit(est, X, y, one_network=True):
    """Fit ``est``, by default as one network (an ensemble is tested apart)."""
    if one_network:
        est.set_params(n_ensemble=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(X, y)


def _expected(est, X):
    return est.predict_proba(X) if hasattr(est, "predict_proba") else est.predict(X)


def _run(module, X):
    with torch.no_grad():
        return module(torch.as_tensor(np.asarray(X, dtype=np.float64))).numpy()


ARCHITECTURES = list(
    itertools.product(
        CELL_NAMES, [(3,), (4, 3)], [False, True], ["last", "mean", "max"], [False, True]
    )
)


@pytest.mark.parametrize(
    "cell, hidden, bidirectional, pooling, variable_length", ARCHITECTURES,
    ids=["-".join(map(str, a)) for a in ARCHITECTURES],
)
def test_every_architecture_reproduces_predict_proba(
    cell, hidden, bidirectional, pooling, variable_length
):
    seqs, y = _ragged()
    X = pad_sequences(seqs) if variable_length else pad_sequences(seqs, value=3.0)
    clf = _fit(
        LSTMClassifier(
            cell=cell, hidden_layer_sizes=hidden, bidirectional=bidirectional,
            pooling=pooling, variable_length=variable_length, max_iter=3, random_state=0,
        ),
        X, y,
    )
    module = clf.to_torch()
    assert isinstance(module, torch.nn.Module)
    np.testing.assert_allclose(_run(module, X), clf.predict_proba(X), rtol=0, atol=TOL)


TASKS = ["binary", "multiclass", "multilabel", "regression", "multi-output"]


def _task(task, X2):
    """Targets of each kind for sequences ``X2`` of shape (n, T, d)."""
    s = np.nanmean(X2[:, :, 0], axis=1) - 40
    if task == "binary":
        return LSTMClassifier, (s > 0).astype(int)
    if task == "multiclass":
        return LSTMClassifier, np.digitize(s, [-2, 2])
    if task == "multilabel":
        return LSTMClassifier, np.column_stack([s > 0, np.arange(len(s)) % 2])
    if task == "regression":
        return LSTMRegressor, 100 + 30 * s
    return LSTMRegressor, np.column_stack([100 + 30 * s, -5 * s])


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("task", TASKS)
def test_every_head_and_layout_reproduces_the_prediction(task, data_format):
    seqs, _ = _ragged(n_samples=18, n_features=3)
    X = pad_sequences(seqs)
    Estimator, y = _task(task, X)
    given = X if data_format == "channels_last" else X.transpose(0, 2, 1)
    est = _fit(
        Estimator(
            hidden_layer_sizes=3, variable_length=True, data_format=data_format,
            bidirectional=True, cell="gated_memory", max_iter=3, random_state=0,
        ),
        given, y,
    )
    expected = _expected(est, given)
    out = _run(est.to_torch(), given)
    assert out.shape == expected.shape
    np.testing.assert_allclose(out, expected, rtol=TOL, atol=TOL)
    # any number of steps, longer and shorter than in fit, as predict takes
    rng = np.random.RandomState(3)
    new = pad_sequences([40 + rng.normal(size=(n, 3)) for n in (1, 12, 5)], maxlen=15)
    new = new if data_format == "channels_last" else new.transpose(0, 2, 1)
    np.testing.assert_allclose(_run(est.to_torch(), new), _expected(est, new), rtol=TOL, atol=TOL)


@pytest.mark.parametrize("variable_length", [False, True])
@pytest.mark.parametrize("Estimator", [LSTMClassifier, LSTMRegressor])
@pytest.mark.parametrize("n_steps", [None, 3])
def test_2d_input_as_in_fit(Estimator, n_steps, variable_length):
    rng = np.random.RandomState(0)
    X = 10 + 3 * rng.normal(size=(16, 6))
    y = (X[:, 0] > 10).astype(int) if Estimator is LSTMClassifier else X[:, 0] * 2
    if variable_length:  # the last step (2 columns) is padding in every other row
        X[::2, 4:] = np.nan
    est = _fit(
        Estimator(
            hidden_layer_sizes=3, n_steps=n_steps, variable_length=variable_length,
            max_iter=3, random_state=0,
        ),
        X, y,
    )
    np.testing.assert_allclose(_run(est.to_torch(), X), _expected(est, X), rtol=TOL, atol=TOL)


def _reference_patches(X, p):
    """The patching of ``make_patches`` as specified, in NumPy: ceil(T/p)
    patches of p steps, step-major; a sequence's last partial patch completed
    with its last real step; patches beyond ceil(L/p) all NaN."""
    n, T, d = X.shape
    lengths = T - np.isnan(X).all(axis=2)[:, ::-1].cumprod(axis=1).sum(axis=1)
    n_patches = -(-T // p)
    source = np.minimum(np.arange(n_patches * p)[None, :], lengths[:, None] - 1)
    P = X[np.arange(n)[:, None], source].reshape(n, n_patches, p * d)
    P[np.arange(n_patches)[None, :] >= -(-lengths[:, None] // p)] = np.nan
    return P


@pytest.mark.parametrize("patch_shifts", [1, "auto"])
@pytest.mark.parametrize("differences", [False, True])
@pytest.mark.parametrize("p, variable_length", [(2, True), (3, True), (2, False), (4, False)])
def test_patching_is_built_in(cell, p, variable_length, differences, patch_shifts):
    """Patches, and the shifted readings of a small training set (every
    offset within a patch for these, "auto"), as predict_proba reads them."""
    seqs, y = _ragged(n_samples=16, low=3, high=10)
    X = pad_sequences(seqs) if variable_length else pad_sequences(seqs, value=3.0)
    clf = _fit(
        LSTMClassifier(
            cell=cell, hidden_layer_sizes=3, variable_length=variable_length,
            bidirectional=True, pooling="mean", max_iter=3, random_state=0,
            patch_size=p, differences=differences, patch_shifts=patch_shifts,
        ),
        X, y,
    )
    assert clf.patch_size_ == p and clf.differences_ == differences
    assert clf.patch_shifts_ == (1 if patch_shifts == 1 else p)
    # the module patches raw steps as fit does (make_patches, the reference)
    np.testing.assert_array_equal(
        make_patches(X, p), _reference_patches(X, p)
    )
    out = _run(clf.to_torch(), X)
    np.testing.assert_allclose(out, clf.predict_proba(X), rtol=0, atol=TOL)


@pytest.mark.parametrize("Estimator", [LSTMClassifier, LSTMRegressor])
def test_an_ensemble_is_the_mean_of_its_networks(Estimator):
    seqs, y = _ragged(n_samples=16, low=3, high=40)
    X = pad_sequences(seqs)  # up to 39 steps, in patches of 2
    if Estimator is LSTMRegressor:
        y = np.nanmean(X[:, :, 0], axis=1)
    est = _fit(Estimator(hidden_layer_sizes=3, variable_length=True, max_iter=3,
                         n_ensemble=3, patch_size=2, random_state=0), X, y,
               one_network=False)
    assert len(est.estimators_) == 3 and est.patch_size_ == 2
    module = est.to_torch()
    np.testing.assert_allclose(_run(module, X), _expected(est, X), rtol=TOL, atol=TOL)


@pytest.mark.parametrize("Estimator", [LSTMClassifier, LSTMRegressor])
def test_a_small_ragged_sets_own_patches_are_exported(Estimator):
    # 10 sequences of 30 to 39 steps, 2 of 200: "auto" patches of 2 (the
    # upper quartile of the lengths), not 7 (the longest), read 2 ways
    short, y = _ragged(n_samples=10, low=30, high=40)
    long_, _ = _ragged(n_samples=2, low=200, high=201, seed=1)
    X = pad_sequences(short + long_)
    y = np.r_[y, 0, 1] if Estimator is LSTMClassifier else np.nanmean(X[:, :, 0], axis=1)
    est = _fit(Estimator(hidden_layer_sizes=3, variable_length=True, max_iter=3,
                         alpha=1.0, pooling="max", random_state=0), X, y)
    assert est.patch_size_ == 2 and est.patch_shifts_ == 2
    np.testing.assert_allclose(_run(est.to_torch(), X), _expected(est, X), rtol=TOL, atol=TOL)


def test_reference_patches_match_the_specification():
    X = np.arange(2 * 5 * 2, dtype=float).reshape(2, 5, 2)
    X[1, 3:] = np.nan  # sequence 1 has 3 real steps
    P = _reference_patches(X, 2)
    assert P.shape == (2, 3, 4)
    np.testing.assert_array_equal(P[0, 0], [0, 1, 2, 3])  # steps 0 and 1, step-major
    np.testing.assert_array_equal(P[0, 2], [8, 9, 8, 9])  # edge: last step repeated
    np.testing.assert_array_equal(P[1, 1], [14, 15, 14, 15])
    assert np.isnan(P[1, 2]).all()


def test_every_cell_has_a_torch_step(cell):
    spec = _cells.get(cell)
    assert callable(spec.torch_step) and callable(spec.torch_input) and spec.n_states >= 1


@pytest.mark.parametrize("variable_length", [False, True])
def test_jit_trace(variable_length):
    seqs, y = _ragged()
    X = pad_sequences(seqs) if variable_length else pad_sequences(seqs, value=3.0)
    clf = _fit(
        LSTMClassifier(
            hidden_layer_sizes=(3, 2), bidirectional=True, variable_length=variable_length,
            max_iter=3, random_state=0,
        ),
        X, y,
    )
    x = torch.as_tensor(X)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        # PyTorch 2.13 deprecates tracing itself (in favour of torch.export)
        warnings.filterwarnings("ignore", "`torch.jit.trace", DeprecationWarning)
        traced = torch.jit.trace(clf.to_torch(), x)
    with torch.no_grad():
        out = traced(x).numpy()
    np.testing.assert_allclose(out, clf.predict_proba(X), rtol=0, atol=TOL)
    X2 = X[::-1].copy()  # other values, other lengths, same shape
    with torch.no_grad():
        out2 = traced(torch.as_tensor(X2)).numpy()
    np.testing.assert_allclose(out2, clf.predict_proba(X2), rtol=0, atol=TOL)


def test_module_is_float64_trainable_and_leaves_the_estimator_alone():
    seqs, y = _ragged()
    X = pad_sequences(seqs, value=3.0)
    clf = _fit(LSTMClassifier(hidden_layer_sizes=3, max_iter=3, random_state=0), X, y)
    before = {k: v.copy() for k, v in clf.coefs_.items()}
    module = clf.to_torch()
    assert all(p.dtype == torch.float64 and p.requires_grad for p in module.parameters())
    loss = module(torch.as_tensor(X))[:, 1].sum()
    loss.backward()
    assert all(p.grad is not None for p in module.parameters())
    with torch.no_grad():
        next(module.parameters()).add_(1.0)
    for k, v in clf.coefs_.items():
        np.testing.assert_array_equal(v, before[k])
    assert torch.get_default_dtype() == torch.float32  # untouched


def test_torch_is_imported_only_by_to_torch_and_its_absence_is_explained():
    code = """
import sys, warnings
import numpy as np
warnings.simplefilter("ignore")
import sklearn_gatedmem
from sklearn_gatedmem import LSTMClassifier
X = np.random.RandomState(0).normal(size=(20, 4, 2))
clf = LSTMClassifier(hidden_layer_sizes=2, max_iter=2).fit(X, (X[:, 0, 0] > 0).astype(int))
clf.predict(X)
assert "torch" not in sys.modules, "torch imported without to_torch"
sys.modules["torch"] = None  # as if PyTorch were not installed
try:
    clf.to_torch()
except ImportError as exc:
    print(exc)
"""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])
    ), OPENBLAS_NUM_THREADS="1")
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "pip install torch" in result.stdout


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(cell="gated_memory"), "gated_memory"),
        (dict(hidden_layer_sizes=(4, 3)), r"\(4, 3\)"),
    ],
)
def test_torch_state_dict_points_to_to_torch(kwargs, match):
    X = np.random.RandomState(0).normal(size=(20, 4, 2))
    clf = _fit(LSTMClassifier(max_iter=2, **kwargs), X, (X[:, 0, 0] > 0).astype(int))
    with pytest.raises(ValueError, match=match) as info:
        clf.torch_state_dict()
    assert "to_torch()" in str(info.value)
    ensemble = _fit(LSTMClassifier(hidden_layer_sizes=2, max_iter=2, n_ensemble=2), X,
                    (X[:, 0, 0] > 0), one_network=False)
    with pytest.raises(ValueError, match="n_ensemble.*to_torch"):
        ensemble.torch_state_dict()


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(),
        dict(variable_length=True, patch_size=3, differences=True),
        dict(variable_length=True, bidirectional=True, pooling="mean",
             instance_norm="replace"),
        dict(data_format="channels_first", n_ensemble=2),
    ],
)
def test_missing_carry_is_built_in(kwargs):
    """The module imputes as the estimator does: gaps carried forward, the
    training mean before the first observation, indicators appended."""
    seqs, y = _ragged(n_samples=16, low=5, high=9)
    X = pad_sequences(seqs)
    X[np.random.RandomState(0).rand(*X.shape) < 0.15] = np.nan
    X[0, 0] = np.nan  # a leading gap
    if not kwargs.get("variable_length"):
        X = X[:, :5]
    channels_first = kwargs.get("data_format") == "channels_first"
    if channels_first:
        X = X.transpose(0, 2, 1)
    clf = _fit(LSTMClassifier(missing="carry", hidden_layer_sizes=3, max_iter=5,
                              random_state=0, **kwargs), X, y,
               one_network="n_ensemble" not in kwargs)
    np.testing.assert_allclose(
        _run(clf.to_torch(), X), clf.predict_proba(X), rtol=0, atol=TOL
    )


@pytest.mark.parametrize(
    "layout, kwargs",
    [
        ("2d", dict()),
        ("3d", dict(variable_length=True, patch_size=2, missing="carry")),
        ("3d", dict(data_format="channels_first", bidirectional=True, pooling="mean")),
        ("3d", dict(n_ensemble=2, differences=True)),
        ("3d", dict(cell="gru", bidirectional=True, pooling="last")),
        ("regression", dict()),
    ],
)
@pytest.mark.parametrize("static_into", ["auto", "head", "initial_state", "both"])
def test_static_features_as_a_second_input(layout, kwargs, static_into):
    """The module reads the static values from x as predict does, or takes
    them as a second input beside the sequences alone: both equal the NumPy
    model to 1e-10, wherever the static values enter (the head, the first
    layer's initial states of each direction, both)."""
    seqs, y = _ragged(n_samples=16, low=5, high=8)
    X = pad_sequences(seqs)
    if not kwargs.get("variable_length"):
        X = X[:, :5]
    age = np.random.RandomState(3).uniform(20, 80, size=16)
    y = (y + (age > 50)) % 2
    if layout == "2d":
        full = np.hstack([age[:, None], X.reshape(16, -1)])
        est = LSTMClassifier(static_features=[0], n_steps=5, **kwargs)
        seq_only = X.reshape(16, -1)
    else:
        column = np.where(np.isnan(X[:, :, :1]), np.nan, age[:, None, None])
        full = np.concatenate([X[:, :, :1], column, X[:, :, 1:]], axis=2)
        seq_only = X
        if kwargs.get("data_format") == "channels_first":
            full, seq_only = full.transpose(0, 2, 1), X.transpose(0, 2, 1)
        Estimator = LSTMRegressor if layout == "regression" else LSTMClassifier
        est = Estimator(static_features=[1], **kwargs)
        if layout == "regression":
            y = np.nanmean(X[:, :, 0], axis=1) + age / 10
    est.set_params(hidden_layer_sizes=3, max_iter=5, random_state=0, static_into=static_into)
    est = _fit(est, full, y, one_network="n_ensemble" not in kwargs)
    module = est.to_torch()
    expected = _expected(est, full)
    one = est.estimators_[0] if hasattr(est, "estimators_") else est
    into = est.static_into_  # "auto": "initial_state" for these cells
    assert into == (static_into if static_into != "auto" else "initial_state")
    assert ("h0.W" in one.coefs_) == (into != "head")
    assert ("head.W_static" in one.coefs_) == (into != "initial_state")
    np.testing.assert_allclose(_run(module, full), expected, rtol=0, atol=TOL)
    with torch.no_grad():
        given = module(torch.as_tensor(seq_only), torch.as_tensor(age[:, None])).numpy()
    np.testing.assert_allclose(given, expected, rtol=0, atol=TOL)
    if "n_ensemble" not in kwargs:
        with pytest.raises(ValueError, match="static_features"):
            est.torch_state_dict()
