"""One fit on a Dask cluster (``_dask.py``), against the local fit.

One LocalCluster of two worker processes for the whole module. X is built so
that its blocks can only be computed on a worker (``_worker_only``): a fit or
prediction that brought X to the client would fail, not just be slow.
"""

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")

from sklearn_gatedmem import LSTMClassifier, LSTMRegressor, pad_sequences  # noqa: E402
from sklearn_gatedmem import _dask  # noqa: E402

RTOL = 1e-8  # the equality figure for predictions against a local fit


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster, distributed.Client(cluster) as client:
        yield client


def _worker_only(block):
    distributed.get_worker()  # ValueError outside a worker: X never on the client
    return block


def _on_workers(a, rows):
    """``a`` as a dask array of blocks of ``rows`` samples computed on workers."""
    chunks = (rows,) + a.shape[1:]
    return da.from_array(a, chunks=chunks).map_blocks(_worker_only, dtype=a.dtype)


def _fit(est, X, y, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(X, y, **kwargs)


def _data(n=150, n_steps=10, n_features=2, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n, n_steps, n_features))
    return X, rng


def _assert_close(ours, theirs, rtol=RTOL):
    ours, theirs = np.asarray(ours, dtype=float), np.asarray(theirs, dtype=float)
    scale = np.maximum(np.abs(theirs), 1e-300)
    assert np.max(np.abs(ours - theirs) / scale) < rtol


def _binary():
    X, rng = _data()
    y = (X[:, 0, 0] + X[:, 4, 1] > 0).astype(int)
    sw = rng.uniform(0.2, 3, size=len(y))
    return LSTMClassifier, dict(), X, y, dict(sample_weight=sw)


def _multiclass():
    X, _ = _data(seed=1)
    y = np.array(["a", "b", "c"])[np.digitize(X[:, :, 0].mean(axis=1), [-0.15, 0.15])]
    return LSTMClassifier, dict(class_weight="balanced", pooling="last"), X, y, {}


def _multilabel_2d():  # 2-D X read as 5 steps of 2 features, two labels
    X, _ = _data(seed=2)
    X = X.reshape(len(X), -1)
    Y = np.c_[X[:, 0] > 0, X[:, 3] + X[:, 6] > 0].astype(int)
    return LSTMClassifier, dict(n_steps=5, n_ensemble=2), X, Y, {}


def _regression():  # two outputs, differences, patches of 3 steps
    X, _ = _data(seed=3)
    Y = np.c_[X[:, :, 0].sum(axis=1), X[:, -1, 1] * 100 + 7]
    # read once, as a dask X always is ("auto" would read these 150 cases
    # twice locally: patch_shifts, refused above 1 for a dask X)
    return LSTMRegressor, dict(patch_size=3, patch_shifts=1), X, Y, {}


def _variable_length():  # NaN padding, bidirectional, channels-first
    X, rng = _data(seed=4)
    lengths = rng.randint(3, 11, size=len(X))
    X = pad_sequences([x[:k] for x, k in zip(X, lengths)])
    y = np.nanmean(X[:, :, 0], axis=1) > 0
    params = dict(variable_length=True, bidirectional=True, data_format="channels_first")
    return LSTMClassifier, params, X.transpose(0, 2, 1), y, {}


def _static_columns():  # 2-D: an "age" column beside 5 steps of 2 features
    X, rng = _data(seed=5)
    age = rng.uniform(20, 80, size=len(X))
    y = (4 * X[:, :5, 0].mean(axis=1) + (age - 50) / 10 > 0).astype(int)
    X2 = np.hstack([X[:, :5].reshape(len(X), -1)[:, :3], age[:, None],
                    X[:, :5].reshape(len(X), -1)[:, 3:]])
    sw = rng.uniform(0.2, 3, size=len(y))
    return LSTMClassifier, dict(n_steps=5, static_features=[3]), X2, y, dict(sample_weight=sw)


def _static_channel_gaps():  # 3-D: a constant channel, 10 % gaps carried forward
    X, rng = _data(seed=6)
    level = rng.normal(3.0, 2.0, size=len(X))
    y = X[:, :, 0].sum(axis=1) + level
    X = np.concatenate([X, np.repeat(level[:, None, None], X.shape[1], axis=1)], axis=2)
    X[:, :, :2][rng.rand(len(X), X.shape[1], 2) < 0.1] = np.nan
    X[0, 0, 1] = X[1, :3, 0] = np.nan  # series that start with gaps
    # alpha and pooling given: a local fit of 150 cases would choose them by
    # cross-validation, a dask fit takes the first values
    params = dict(static_features=[2], missing="carry", alpha=1e-4, pooling="last")
    return LSTMRegressor, params, X, y, {}


def _static_carry_variable_length():  # NaN padding, gaps, class weights
    X, rng = _data(seed=7)
    lengths = rng.randint(3, 11, size=len(X))
    group = rng.randint(2, size=len(X)).astype(float)
    X[rng.rand(*X.shape) < 0.1] = np.nan
    X = pad_sequences([x[:k] for x, k in zip(X, lengths)])
    padding = np.arange(X.shape[1])[None, :, None] >= lengths[:, None, None]
    X = np.concatenate([X, np.where(padding, np.nan, group[:, None, None])], axis=2)
    y = (np.nanmean(X[:, :, 0], axis=1) + group - 0.5 > 0).astype(int)
    params = dict(variable_length=True, missing="carry", static_features=[2],
                  class_weight="balanced")
    return LSTMClassifier, params, X, y, {}


# A dask fit searches nothing ("auto" is the first candidate); the local fit
# it is compared with takes the same values (a local classifier's fit of
# more than 100 cases would search a sample of them).
FIRST_CANDIDATES = {LSTMClassifier: dict(alpha=1.0, patch_size=None), LSTMRegressor: {}}


CASES = {f.__name__[1:]: f for f in (
    _binary, _multiclass, _multilabel_2d, _regression, _variable_length,
    _static_columns, _static_channel_gaps, _static_carry_variable_length,
)}


@pytest.mark.parametrize("case", sorted(CASES))
def test_fit_on_cluster_predicts_as_local_fit(client, case):
    cls, params, X, y, kwargs = CASES[case]()
    params = {"hidden_layer_sizes": 4, "max_iter": 15, "n_ensemble": 1,
              "random_state": 0, **FIRST_CANDIDATES[cls], **params}
    local = _fit(cls(**params), X, y, **kwargs)
    # unequal blocks; y and weights as dask arrays of other chunks
    dask_kwargs = {k: da.from_array(v, chunks=40) for k, v in kwargs.items()}
    ours = _fit(cls(**params), _on_workers(X, 64), da.from_array(y, chunks=50), **dask_kwargs)
    assert ours.n_iter_ == local.n_iter_
    for name in ("n_features_in_", "n_steps_", "patch_size_", "n_outputs_"):
        assert getattr(ours, name) == getattr(local, name)
    _assert_close(ours.x_scale_, local.x_scale_, 1e-12)
    if "static_features" in params:  # from the blocks' moments, with their rows
        np.testing.assert_array_equal(ours.static_features_, local.static_features_)
        _assert_close(ours.static_mean_, local.static_mean_, 1e-12)
        _assert_close(ours.static_scale_, local.static_scale_, 1e-12)
    if params.get("missing") == "carry":  # a pass over all blocks
        _assert_close(ours.gap_fill_, local.gap_fill_, 1e-12)
    if cls is LSTMClassifier:
        np.testing.assert_array_equal(ours.classes_, local.classes_)
        _assert_close(ours.predict_proba(X), local.predict_proba(X))
        np.testing.assert_array_equal(ours.predict(X), local.predict(X))
    else:
        _assert_close(ours.y_mean_, local.y_mean_, 1e-12)
        _assert_close(ours.predict(X), local.predict(X))


@pytest.mark.parametrize("case", ["binary", "regression", "variable_length",
                                  "static_columns", "static_carry_variable_length"])
def test_one_block_is_the_local_fit_bit_for_bit(client, case):
    # regression: the targets' scaling from the block's moments;
    # variable_length: the rows sorted longest first within the block
    cls, params, X, y, kwargs = CASES[case]()
    params = dict(hidden_layer_sizes=4, max_iter=10, n_ensemble=1, random_state=0,
                  **FIRST_CANDIDATES[cls], **params)
    local = _fit(cls(**params), X, y, **kwargs)
    ours = _fit(cls(**params), _on_workers(X, len(X)), y, **kwargs)
    for name in local.coefs_:
        np.testing.assert_array_equal(ours.coefs_[name], local.coefs_[name])
    assert ours.loss_curve_ == local.loss_curve_


def test_deterministic_and_row_order_within_blocks_does_not_matter(client):
    _, _, X, y, kwargs = _binary()
    sw = kwargs["sample_weight"]
    params = dict(hidden_layer_sizes=4, max_iter=10, n_ensemble=1, random_state=0)
    first = _fit(LSTMClassifier(**params), _on_workers(X, 50), y, sample_weight=sw)
    # the rows shuffled within each block of 50
    order = np.concatenate([np.random.RandomState(k).permutation(50) + 50 * k
                            for k in range(3)])
    second = _fit(LSTMClassifier(**params), _on_workers(X[order], 50), y[order],
                  sample_weight=sw[order])
    for name in first.coefs_:
        np.testing.assert_array_equal(second.coefs_[name], first.coefs_[name])
    # shuffled across blocks: the same to rounding
    across = np.random.RandomState(9).permutation(len(y))
    third = _fit(LSTMClassifier(**params), _on_workers(X[across], 50), y[across],
                 sample_weight=sw[across])
    _assert_close(third.predict_proba(X), first.predict_proba(X))


def test_ensemble_on_cluster(client):
    X, _ = _data(n=80)
    y = X[:, :, 1].sum(axis=1)
    # a dask fit takes the first "auto" candidates: the local fit the same values
    params = dict(hidden_layer_sizes=3, max_iter=8, n_ensemble=2, random_state=0,
                  alpha=1e-4, pooling="last")
    local = _fit(LSTMRegressor(**params), X, y)
    ours = _fit(LSTMRegressor(**params), _on_workers(X, 30), y)
    assert len(ours.estimators_) == 2
    _assert_close(ours.predict(X), local.predict(X))


def test_predictions_are_lazy_blockwise_dask_arrays(client):
    cls, params, X, y, _ = _multilabel_2d()
    est = _fit(cls(hidden_layer_sizes=3, max_iter=5, random_state=0, **params), X, y)
    X_dask = _on_workers(X, 40)  # computing it on the client would fail
    for method in ("predict", "predict_proba", "predict_log_proba"):
        result = getattr(est, method)(X_dask)
        assert isinstance(result, da.Array)
        assert result.chunks[0] == X_dask.chunks[0]
        expected = getattr(est, method)(X)
        assert result.shape == expected.shape and result.dtype == expected.dtype
        np.testing.assert_array_equal(result.compute(), expected)


@pytest.mark.parametrize("case", ["binary", "regression", "multilabel_2d"])
def test_score_on_dask_arrays_equals_local_score(client, case):
    cls, params, X, y, kwargs = CASES[case]()
    est = _fit(cls(hidden_layer_sizes=3, max_iter=5, random_state=0, **params), X, y)
    sw = np.random.RandomState(0).uniform(0, 2, size=len(y))
    for weights in (None, sw):
        expected = est.score(X, y, sample_weight=weights)
        dask_sw = None if weights is None else da.from_array(weights, chunks=70)
        ours = est.score(_on_workers(X, 40), da.from_array(y, chunks=30), dask_sw)
        assert isinstance(ours, float)
        assert ours == pytest.approx(expected, rel=1e-12, abs=1e-14)


def test_block_errors_are_those_of_a_local_fit(client):
    X, _ = _data(n=60)
    y = (X[:, 0, 0] > 0).astype(int)
    X_nan = X.copy()
    X_nan[45, 3, 1] = np.nan  # in the last block
    X_inf = X.copy()
    X_inf[5, 0, 0] = np.inf
    negative = np.ones(len(y))
    negative[50] = -1
    cases = [  # (X, y, sample_weight, part of the message)
        (X_nan, y, None, "contains NaN"),
        (X_inf, y, None, "infinity"),
        (X, np.zeros(len(y), dtype=int), None, "only one class"),
        (X, y, negative, "negative values"),
        (X, y, np.zeros(len(y)), "non-zero"),
        (X, X[:, 0, 0], None, "continuous"),
    ]
    for X_bad, y_bad, sw, text in cases:
        est = LSTMClassifier(hidden_layer_sizes=2, max_iter=2, n_ensemble=1)
        with pytest.raises(ValueError, match=text) as local:
            est.fit(X_bad, y_bad, sample_weight=sw)
        with pytest.raises(ValueError) as ours:
            est.fit(_on_workers(X_bad, 20), da.from_array(y_bad, chunks=20),
                    sample_weight=None if sw is None else da.from_array(sw, chunks=20))
        assert str(ours.value) == str(local.value)
        assert not hasattr(est, "n_features_in_")  # a failed fit leaves nothing
    # zero weights in every block but one are no error (fixed values: the
    # local fit of so few cases would search the "auto" ones, a dask fit not)
    sw = np.r_[np.zeros(40), np.ones(20)]
    est = LSTMClassifier(hidden_layer_sizes=2, max_iter=2, n_ensemble=1, random_state=0,
                         alpha=1.0, patch_size=None)
    _fit(est, _on_workers(X, 20), y, sample_weight=da.from_array(sw, chunks=20))
    local = _fit(LSTMClassifier(**est.get_params()), X, y, sample_weight=sw)
    _assert_close(est.predict_proba(X), local.predict_proba(X))


def test_unsupported_input_gets_a_clear_error(client):
    X, _ = _data(n=60)
    y = (X[:, 0, 0] > 0).astype(int)
    est = LSTMClassifier(hidden_layer_sizes=2, max_iter=2, n_ensemble=1)
    with pytest.raises(ValueError, match="chunked along axis 1.*samples only"):
        est.fit(da.from_array(X, chunks=(20, 5, 2)), y)
    with pytest.raises(ValueError, match="early_stopping=True is not supported"):
        LSTMClassifier(early_stopping=True).fit(da.from_array(X, chunks=20), y)
    with pytest.raises(ValueError, match="patch_shifts=3 is not supported for a dask X"):
        LSTMClassifier(patch_shifts=3).fit(da.from_array(X, chunks=20), y)
    with pytest.raises(ValueError, match="unknown size"):
        est.fit(da.from_array(X, chunks=20)[da.from_array(y, chunks=20) > 0], y)
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        est.fit(da.from_array(X, chunks=20), y[:-1])
    with pytest.raises(ValueError, match="4-D dask array"):
        est.fit(da.from_array(X[..., None], chunks=20), y)
    # the static-features errors of a local fit, from the client or the blocks
    with pytest.raises(ValueError, match="static_features"):
        est.set_params(static_features=[5]).fit(da.from_array(X, chunks=20), y)
    X_moving = X.copy()  # channel 1 is not constant over each series
    with pytest.raises(ValueError, match="channel 1"):
        est.set_params(static_features=[1]).fit(_on_workers(X_moving, 20), y)


def test_fit_without_a_client_says_what_to_do(client, monkeypatch):
    def no_client():
        raise ValueError("No clients found")  # what distributed raises

    monkeypatch.setattr(distributed, "get_client", no_client)
    X, _ = _data(n=30)
    with pytest.raises(ValueError, match="needs a dask.distributed Client"):
        LSTMClassifier(n_ensemble=1).fit(da.from_array(X, chunks=10), X[:, 0, 0] > 0)


def test_no_dask_import_for_numpy_input():
    assert not _dask.is_dask_collection(np.zeros((3, 2)))


def test_attributions_of_a_dask_array_say_compute_first():
    X, _ = _data(n=20)
    y = (X[:, 0, 0] > 0).astype(int)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est = LSTMClassifier(hidden_layer_sizes=2, max_iter=2, n_ensemble=1,
                             random_state=0).fit(X, y)
    with pytest.raises(TypeError, match=r"dask collections: compute .*X.compute\(\)"):
        est.attributions(da.from_array(X[:4], chunks=2))
    assert est.attributions(da.from_array(X[:4], chunks=2).compute()).shape == X[:4].shape
