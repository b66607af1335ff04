"""Hostile input, extreme values and interruption (the memory guard: test_memory.py).

The property-based tests draw inputs with hypothesis and hold every case to
one rule: ``fit`` either succeeds and ``predict`` returns finite values of the
right shape, or it raises ValueError or TypeError whose message names the
problem. Each test also computes which of the two must happen (an oracle), so
a wrong acceptance fails as surely as a crash. Nothing else may escape: no
IndexError, FloatingPointError, OverflowError, MemoryError, LinAlgError, and
no RuntimeWarning (all fits run with RuntimeWarnings as errors and NumPy's
overflow, division and invalid-operation errors raised).

Run with ``--hypothesis-show-statistics`` to see how many cases each test drew.
"""

import dataclasses
import re
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.validation import check_is_fitted

from sklearn_gatedmem import LSTMClassifier, LSTMRegressor, _objective
from sklearn_gatedmem._input import INPUT_CLIP, weighted_mean_scale
from sklearn_gatedmem._params import pack
from conftest import CELL_NAMES

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

# derandomize: the same cases on every run (CI must not flake); database=None:
# nothing written into the working tree.
PROPERTY = settings(
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

VALUES = [
    0.0, 1.0, -1.0, 0.5, -2.5, 3.0,
    1e-300, -1e-300, 1e4, -1e4, 1e300, -1e300,
    np.inf, -np.inf, np.nan,
]
DTYPES = [
    "bool", "int8", "int16", "int32", "int64", "uint8", "uint64",
    "float16", "float32", "float64", "object", "str", "complex128",
]
SMALL = dict(hidden_layer_sizes=2, max_iter=2, random_state=0, n_ensemble=1)
# the network's own fit, without the regressor's "auto" search of a penalty, a
# pooling and a reading (tests/test_select.py), for the tests of what one fit does
FIXED = dict(alpha=1e-4, pooling="last", patch_size=None)
# ... and the classifier's ("auto" alpha and patch_size are searched on few cases)
FIXED_CLF = dict(alpha=1.0, patch_size=None)


class Hostile:
    """Runs a call the strict way and sorts out what came of it."""

    def __init__(self):
        self.error = None

    def __enter__(self):
        self._warnings = warnings.catch_warnings()
        self._warnings.__enter__()
        warnings.simplefilter("error", RuntimeWarning)
        warnings.simplefilter("ignore", ConvergenceWarning)
        # underflow to 0 or a subnormal is IEEE's correct, harmless answer
        # (a saturated gate's exp(-800), a 1e-300 target over a 1e300 scale)
        self._errstate = np.errstate(over="raise", divide="raise", invalid="raise")
        self._errstate.__enter__()
        return self

    def __exit__(self, kind, value, tb):
        self._errstate.__exit__(kind, value, tb)
        self._warnings.__exit__(kind, value, tb)
        if kind is None:
            return False
        if issubclass(kind, (ValueError, TypeError)) and str(value).strip():
            self.error = value
            return True  # an accepted way to fail; the test checks which
        return False  # anything else escapes: the test fails with it


def _tally(outcome):
    """Count what generated cases came to (``--hypothesis-show-statistics``)."""
    if currently_in_test_context():
        error = outcome.error
        event("fitted" if error is None else f"{type(error).__name__}: {str(error)[:40]}")


def _expect(outcome, expected_error):
    """Either no error was expected and none came, or the message matches."""
    _tally(outcome)
    if expected_error is None:
        assert outcome.error is None, f"unexpected {outcome.error!r}"
    else:
        assert outcome.error is not None, f"accepted, but expected {expected_error}"
        assert re.search(expected_error, str(outcome.error), re.I), outcome.error


def _as_dtype(values, dtype):
    """The float64 ``values`` as the user would hand them over in ``dtype``."""
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return values.astype(dtype)


def _seen(X):
    """What the estimator must make of ``X``: ``(float64 values, compute dtype)``,
    or None for complex input."""
    if X.dtype.kind == "c":
        return None
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        values = X.astype(np.float64)
    return values, np.float32 if X.dtype == np.float32 else np.float64


def _x_error(X):
    """The error an input ``X`` must raise (a regex), or None."""
    seen = _seen(X)
    if seen is None:
        return "complex"
    values, dtype = seen
    if not np.isfinite(values).all():
        return "Input X contains (NaN|infinity)"
    if np.abs(values).max() > np.finfo(dtype).max / 2:
        return "standardis"
    return None


def _check_predictions(est, X):
    """Predictions of a fitted estimator are finite and well-shaped."""
    pred = est.predict(X)
    assert len(pred) == len(X)
    if isinstance(est, LSTMClassifier):
        assert set(np.unique(pred)) <= set(est.classes_)
        proba = est.predict_proba(X)
        assert np.isfinite(proba).all()
        np.testing.assert_allclose(proba.sum(axis=1), 1.0)
        assert np.isfinite(est.predict_log_proba(X)).all()
    else:
        assert np.isfinite(pred).all()
    for coef in est.coefs_.values():
        assert np.isfinite(coef).all()


# -- X: shapes, dtypes and values -----------------------------------------


@st.composite
def hostile_X(draw, max_samples=6, max_steps=6, max_features=3):
    shape = (
        draw(st.integers(1, max_samples)),
        draw(st.integers(1, max_steps)),
        draw(st.integers(1, max_features)),
    )
    # mostly ordinary numbers, with the extremes mixed in
    values = draw(
        st.lists(
            st.one_of(
                st.sampled_from(VALUES),
                st.floats(-5, 5, allow_nan=False, allow_infinity=False),
            ),
            min_size=int(np.prod(shape)),
            max_size=int(np.prod(shape)),
        )
    )
    values = np.array(values, dtype=np.float64).reshape(shape)
    X = _as_dtype(values, draw(st.sampled_from(DTYPES)))
    if draw(st.booleans()):  # the same data as 2-D, one step per column...
        X = X.reshape(shape[0], -1)
    return X


@settings(PROPERTY, max_examples=1500)
@given(
    X=hostile_X(),
    classifier=st.booleans(),
    cell=st.sampled_from(CELL_NAMES),
    bidirectional=st.booleans(),
    pooling=st.sampled_from(["last", "mean", "max"]),
)
def test_any_X_fits_and_predicts_finite_or_raises_a_clear_error(
    X, classifier, cell, bidirectional, pooling
):
    n = len(X)
    if classifier:
        est = LSTMClassifier(**SMALL, **FIXED_CLF, cell=cell, bidirectional=bidirectional, pooling=pooling)
        y = np.arange(n) % 2
    else:
        est = LSTMRegressor(**SMALL, cell=cell, bidirectional=bidirectional, pooling=pooling)
        y = np.linspace(-1.0, 2.0, n)
    expected = _x_error(X)
    if expected is None and classifier and n == 1:
        expected = "one class"
    with Hostile() as outcome:
        est.fit(X, y)
        _check_predictions(est, X)
    _expect(outcome, expected)


@settings(PROPERTY, max_examples=4)
@given(
    n_steps=st.integers(1000, 4000),
    cell=st.sampled_from(CELL_NAMES),
)
def test_thousands_of_steps_with_tiny_hidden_size(n_steps, cell):
    rng = np.random.RandomState(n_steps)
    X = rng.normal(size=(3, n_steps, 1)) * 1e4  # and large: gates saturate
    y = X[:, -3:, 0].sum(axis=1)
    est = LSTMRegressor(n_ensemble=1, hidden_layer_sizes=1, max_iter=1, cell=cell, random_state=0)
    with Hostile() as outcome:
        est.fit(X, y)
        _check_predictions(est, X)
    _expect(outcome, None)


@settings(PROPERTY, max_examples=300)
@given(
    lengths=st.lists(st.integers(0, 5), min_size=1, max_size=6),
    holes=st.lists(st.tuples(st.integers(0, 5), st.integers(0, 4), st.integers(0, 1))),
    pooling=st.sampled_from(["last", "mean", "max"]),
    bidirectional=st.booleans(),
)
def test_any_nan_padding(lengths, holes, pooling, bidirectional):
    """variable_length=True: NaN as whole trailing steps is padding; NaN
    anywhere else, or a sequence of padding only, is a clear error."""
    n = len(lengths)
    X = np.random.RandomState(n).normal(size=(n, 4, 2))
    for i, length in enumerate(lengths):
        X[i, min(length, 4):] = np.nan
    for i, t, j in holes:  # NaN dropped anywhere
        X[i % n, t % 4, j] = np.nan
    step_nan = np.isnan(X)
    pad = step_nan.all(axis=2)
    real = (~pad).sum(axis=1)
    trailing = all(not pad[i, : real[i]].any() for i in range(n))
    if (step_nan.any(axis=2) & ~pad).any():
        expected = "NaN inside a step"
    elif not trailing:
        expected = "padded with NaN at the end"
    elif (real == 0).any():
        expected = "no real step"
    else:
        expected = None
    est = LSTMRegressor(
        **SMALL, variable_length=True, pooling=pooling, bidirectional=bidirectional
    )
    with Hostile() as outcome:
        est.fit(X, np.linspace(0.0, 1.0, n))
        _check_predictions(est, X)
    _expect(outcome, expected)


@settings(PROPERTY, max_examples=250)
@given(
    weights=st.lists(
        st.sampled_from([0.0, 1.0, 2.5, 1e-300, 1e300, 1e308, -1.0, np.nan, np.inf]),
        min_size=5,
        max_size=5,
    ),
    classifier=st.booleans(),
)
def test_any_sample_weight(weights, classifier):
    w = np.array(weights)
    X = np.random.RandomState(0).normal(size=(5, 3, 2))
    y = np.arange(5) % 2 if classifier else np.linspace(0.0, 1.0, 5)
    with np.errstate(over="ignore"):
        total = w.sum()
    if not np.isfinite(w).all():
        expected = "sample_weight contains (NaN|infinity)"
    elif (w < 0).any():
        expected = "negative"
    elif not total > 0:
        expected = "non-zero"
    elif not np.isfinite(total):
        expected = "sum to infinity"
    else:  # even when one class keeps all the weight: y still names both
        expected = None
    Estimator = LSTMClassifier if classifier else LSTMRegressor
    with Hostile() as outcome:
        est = Estimator(**SMALL).fit(X, y, sample_weight=w)
        _check_predictions(est, X)
    _expect(outcome, expected)


# -- y: regression targets and class labels -------------------------------


@settings(PROPERTY, max_examples=500)
@given(
    values=st.lists(
        st.one_of(st.sampled_from(VALUES), st.floats(-3, 3, allow_nan=False)),
        min_size=1,
        max_size=8,
    ),
    dtype=st.sampled_from(["float64", "float32", "int64", "bool", "object", "str"]),
    two_d=st.booleans(),
)
def test_any_regression_target(values, dtype, two_d):
    y = _as_dtype(np.array(values), dtype)
    if two_d:
        y = np.column_stack([y, y[::-1]])
    n = len(values)
    X = np.random.RandomState(n).normal(size=(n, 3, 2))
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        seen = y.astype(np.float64)
    if not np.isfinite(seen).all():
        expected = "Input (y )?contains (NaN|infinity)"  # object y: no name
    elif np.abs(seen).max() > np.finfo(np.float64).max / 2:
        expected = "standardis"
    else:
        expected = None
    est = LSTMRegressor(**SMALL)
    with Hostile() as outcome:
        est.fit(X, y)
        pred = est.predict(X)
        assert pred.shape == y.shape
        assert np.isfinite(pred).all()
    _expect(outcome, expected)


LABEL_KINDS = {
    "ints": lambda i: [-3, 0, 7][i % 3],
    "strings": lambda i: ["cat", "dog", "ünïcode"][i % 3],
    "bools": lambda i: bool(i % 2),
    "integral floats": lambda i: [1.0, 2.0][i % 2],
    "continuous": lambda i: 0.1 + i / 7,
    "mixed": lambda i: ["a", 1][i % 2],
    "none": lambda i: [None, 1][i % 2],
}


@settings(PROPERTY, max_examples=300)
@given(
    kind=st.sampled_from(sorted(LABEL_KINDS)),
    n=st.integers(1, 9),
    one_class=st.booleans(),
    as_object=st.booleans(),
)
def test_any_class_labels(kind, n, one_class, as_object):
    labels = [LABEL_KINDS[kind](0 if one_class else i) for i in range(n)]
    as_object = as_object or kind in ("mixed", "none")
    y = np.array(labels, dtype=object) if as_object else np.array(labels)
    X = np.random.RandomState(n).normal(size=(n, 3, 2))
    n_classes = len(set(labels))
    if kind == "mixed" and n_classes > 1:
        expected = "mixes string and non-string"
    elif kind == "none" and n_classes > 1:
        expected = "label type"
    elif kind == "continuous" and n_classes > 1:
        expected = "label type"
    elif as_object and kind != "strings":  # scikit-learn: object labels are str
        expected = "label type|one class"
    elif n_classes < 2:
        expected = "one class|label type"
    else:
        expected = None
    est = LSTMClassifier(**SMALL)
    with Hostile() as outcome:
        est.fit(X, y)
        _check_predictions(est, X)
        assert set(est.classes_) == set(labels)
        # labels never seen in fit score as errors; nothing breaks
        unseen = {"ints": 99, "strings": "zebra", "integral floats": 99.0}.get(kind)
        if unseen is not None:
            assert est.score(X, np.array([unseen] * n, dtype=y.dtype)) == 0.0
    _expect(outcome, expected)


def test_refit_with_unseen_classes_under_warm_start_is_a_clear_error():
    X = np.random.RandomState(0).normal(size=(9, 3, 2))
    est = LSTMClassifier(**SMALL, warm_start=True).fit(X, np.arange(9) % 2)
    with pytest.raises(ValueError, match="same classes"):
        est.fit(X, np.arange(9) % 3)


@pytest.mark.parametrize("Estimator", [LSTMClassifier, LSTMRegressor])
def test_mismatched_y_is_a_clear_error(Estimator):
    X = np.zeros((6, 3, 2))
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        Estimator(**SMALL).fit(X, np.arange(5) % 2)
    with pytest.raises(ValueError, match="dim"):
        Estimator(**SMALL).fit(X, np.zeros((6, 1, 1)))


# -- parameters -------------------------------------------------------------

# (value, valid): True must fit, False must raise ValueError/TypeError, None may
# do either (e.g. early stopping on too few rows).
PARAMS = {
    "hidden_layer_sizes": [
        (1, True), (3, True), ((2,), True), ([2, 2], True), (np.int64(2), True),
        ((np.int32(2),), True), (np.array([2]), True), (0, False), (-1, False),
        ((), False), ((0,), False), ((2.5,), False), ("abc", False), (None, False),
        (True, False), ((True,), False), ([[2]], False), (2.0, False),
    ],
    "cell": [(name, True) for name in CELL_NAMES] + [("rnn", False), (None, False)],
    "bidirectional": [(True, True), (np.bool_(False), True), (1, False), ("yes", False)],
    "pooling": [("last", True), ("mean", True), ("max", True), ("sum", False)],
    "variable_length": [(True, True), (False, True), (None, False)],
    "data_format": [("channels_last", True), ("channels_first", True), ("NCT", False)],
    "alpha": [
        (0.0, True), (1e-4, True), (1e6, True), (-1.0, False), (np.nan, False),
        (np.inf, False), ("x", False), (1e300, None),
    ],
    "max_iter": [(1, True), (3, True), (0, False), (-1, False), (1.5, False), (None, False)],
    "tol": [(0.0, True), (1e10, True), (-1.0, False), (np.nan, False), (np.inf, False)],
    "max_fun": [(1, True), (4, True), (0, False)],
    "early_stopping": [(False, True), (True, None), ("no", False)],
    "validation_fraction": [
        (0.1, True), (0.5, True), (0.0, False), (1.0, False), (-0.1, False), (2, False),
    ],
    "n_iter_no_change": [(1, True), (10, True), (0, False)],
    "chunk_size": [
        ("auto", True), (1, True), (3, True), (10**12, True), (0, False), (-1, False),
        ("big", False), (1.5, False),
    ],
    "random_state": [
        (None, True), (0, True), (2**32 - 1, True), (np.random.RandomState(0), True),
        (-1, False), (2**40, False), ("x", False), (1.5, False),
    ],
    "warm_start": [(True, True), (False, True), (0, False)],
    "verbose": [(0, True), (False, True), (-1, False), ("x", False)],
}
CLASS_WEIGHTS = [
    (None, True), ("balanced", True), ({0: 1.0, 1: 2.0}, True), ({0: 1.0}, True),
    ({0: -1.0, 1: 1.0}, False), ({0: np.nan, 1: 1.0}, False), ({0: np.inf, 1: 1.0}, False),
    ({0: 0.0, 1: 0.0}, False), ({5: 1.0}, False), ("x", False),
]


@st.composite
def parameter_sets(draw):
    classifier = draw(st.booleans())
    table = dict(PARAMS, class_weight=CLASS_WEIGHTS) if classifier else PARAMS
    chosen = {}
    for name in sorted(table):  # each parameter: mostly its default
        if draw(st.integers(0, 3)) == 0:
            chosen[name] = draw(st.sampled_from(table[name]))
    return classifier, chosen


@settings(PROPERTY, max_examples=800)
@given(case=parameter_sets(), n_steps_choice=st.sampled_from([None, "match", "mismatch"]))
def test_any_parameter_values(case, n_steps_choice):
    classifier, chosen = case
    params = {name: value for name, (value, _) in chosen.items()}
    valid = [ok for _, ok in chosen.values()]
    if n_steps_choice is not None:  # n_steps must agree with the 3-D input
        steps = 2 if params.get("data_format") == "channels_first" else 4  # X: (12, 4, 2)
        params["n_steps"] = steps if n_steps_choice == "match" else 3
        valid.append(n_steps_choice == "match")
    params = {"max_iter": 2, "hidden_layer_sizes": 2, "n_ensemble": 1, **params}
    assume(None not in valid or False in valid)  # some definite expectation
    X = np.random.RandomState(0).normal(size=(12, 4, 2))
    y = np.arange(12) % 2 if classifier else np.linspace(0.0, 1.0, 12)
    Estimator = LSTMClassifier if classifier else LSTMRegressor
    with Hostile() as outcome:
        est = Estimator(**params).fit(X, y)
        _check_predictions(est, X)
    _tally(outcome)
    if False in valid:
        assert outcome.error is not None, f"accepted invalid parameters {params}"
    else:
        assert outcome.error is None, f"{params}: {outcome.error!r}"


@pytest.mark.parametrize(
    "change",
    [
        dict(hidden_layer_sizes=5),
        dict(hidden_layer_sizes=(3, 3)),
        dict(cell="gated_memory"),
        dict(bidirectional=True),
        dict(pooling="max"),
    ],
)
def test_set_params_after_fit_leaves_the_fitted_model_alone(change):
    """Predictions come from what was fitted; changing the architecture's
    parameters takes effect at the next fit (it used to raise KeyError or
    silently predict with a different network)."""
    X = np.random.RandomState(0).normal(size=(12, 4, 2))
    y = np.linspace(0.0, 1.0, 12)
    est = LSTMRegressor(**{**SMALL, "hidden_layer_sizes": 3}).fit(X, y)
    before = est.predict(X)
    exported = est.torch_state_dict()
    est.set_params(**change)
    with Hostile() as outcome:
        np.testing.assert_array_equal(est.predict(X), before)
        after = est.torch_state_dict()  # still the fitted LSTM's weights
        assert after.keys() == exported.keys()
        for key in after:
            np.testing.assert_array_equal(after[key], exported[key])
        est.fit(X, y)  # now the new architecture
        assert est.predict(X).shape == before.shape
    _expect(outcome, None)


# -- predict: rank, steps and width -----------------------------------------


@pytest.fixture(scope="module")
def fitted():
    X = np.random.RandomState(0).normal(size=(8, 4, 3))
    y = np.arange(8) % 2
    return {
        "clf": LSTMClassifier(**SMALL).fit(X, y),
        "reg": LSTMRegressor(**SMALL).fit(X, y * 1.5),
        "varlen": LSTMRegressor(**SMALL, variable_length=True).fit(X, y * 1.5),
    }


@settings(PROPERTY, max_examples=500)
@given(
    which=st.sampled_from(["clf", "reg", "varlen"]),
    shape=st.one_of(
        st.lists(st.integers(0, 13), min_size=1, max_size=4),  # anything
        st.tuples(  # right, or nearly: fitted on 4 steps of 3 features
            st.integers(1, 9),
            st.sampled_from([(4, 3), (12,), (4, 2), (3, 4), (12, 1), (1, 12), (5, 3), (11,)]),
        ).map(lambda t: [t[0], *t[1]]),
    ),
    scale=st.sampled_from([1.0, 1e4, 1e300, -1.7e308]),
)
def test_predict_on_any_shape(fitted, which, shape, scale):
    est = fitted[which]
    X = scale * np.tanh(np.random.RandomState(len(shape)).normal(size=shape))
    if len(shape) == 3 and shape[0] >= 1 and tuple(shape[1:]) == (4, 3):
        expected = None
    elif which == "varlen" and len(shape) == 3 and shape[0] >= 1 and shape[1] >= 1 and (
        shape[2] == 3
    ):
        expected = None  # variable_length: 3-D input of any number of steps
    elif len(shape) == 2 and shape[0] >= 1 and shape[1] == 12:
        expected = None
    elif shape[0] == 0 and shape[1:] in ([12], [4, 3]):
        expected = "0 sample"
    else:
        expected = "feature|steps|dim|2D|sample"
    with Hostile() as outcome:
        pred = est.predict(X)
        assert pred.shape == (shape[0],)
        assert np.isfinite(est._decision(X)).all()
    _expect(outcome, expected)


# -- extreme values -----------------------------------------------------------


def test_saturated_gates_give_finite_loss_gradient_and_predictions(cell):
    """Inputs of 1e4 and weights of 1e3 saturate every gate: no warning, all finite."""
    rng = np.random.RandomState(0)
    X = rng.normal(size=(10, 6, 2)) * 1e4
    y = np.arange(10) % 2
    # the objective below reads X itself: no per-series z-scores, no patches
    # (the search could choose the whole series, read in one step)
    est = LSTMClassifier(n_ensemble=1, hidden_layer_sizes=3, cell=cell, max_iter=3, random_state=0,
                         instance_norm=None, patch_size=None)
    with Hostile() as outcome:
        est.fit(X, y)
        _check_predictions(est, X)
        network = dataclasses.replace(est._network, x_mean=np.zeros(2), x_scale=np.ones(2))
        theta = np.sign(pack(est.coefs_, network.layout)) * 1e3  # far into saturation
        loss, grad = _objective.loss_grad(
            theta, X, y[:, None].astype(float), np.ones(10), 1e-4, network, 4
        )
        assert np.isfinite(loss) and np.isfinite(grad).all()
    _expect(outcome, None)


@pytest.mark.parametrize("magnitude", [1e150, 1e300, 1e-300])
def test_X_of_extreme_magnitude_is_standardised_without_overflow(magnitude):
    rng = np.random.RandomState(0)
    base = rng.normal(size=(12, 5, 2))
    y = base[:, :, 0].sum(axis=1)
    with Hostile() as outcome:
        reference = LSTMRegressor(**SMALL).fit(base, y)
        est = LSTMRegressor(**SMALL).fit(base * magnitude, y)
        assert np.isfinite(est.x_scale_).all() and (est.x_scale_ > 0).all()
        # per step [x, z, dx, dz] (instance_norm="append", differences): the
        # raw values' scales grow with X, the per-series z-scores' do not
        d = base.shape[2]
        raw, z = np.r_[0:d, 2 * d : 3 * d], np.r_[d : 2 * d, 3 * d : 4 * d]
        np.testing.assert_allclose(
            est.x_scale_[raw], reference.x_scale_[raw] * magnitude, rtol=1e-12
        )
        np.testing.assert_allclose(est.x_scale_[z], reference.x_scale_[z], rtol=1e-9)
        # the standardised problem is the same one
        np.testing.assert_allclose(
            est.predict(base * magnitude), reference.predict(base), rtol=1e-9, atol=1e-12
        )
    _expect(outcome, None)


def test_huge_targets_are_standardised_without_overflow():
    X = np.random.RandomState(0).normal(size=(12, 5, 2))
    y = np.linspace(-1, 1, 12) * 1e300
    with Hostile() as outcome:
        est = LSTMRegressor(**SMALL).fit(X, y)
        assert np.isfinite(est.predict(X)).all()
        assert np.isfinite(est.loss_)
    _expect(outcome, None)


@pytest.mark.parametrize(
    "X, dtype",
    [(np.array([1.7e308, -1.7e308]), np.float64), (np.array([3e38, -3e38]), np.float32)],
)
def test_values_too_large_to_standardise_are_a_clear_error(X, dtype):
    X = np.tile(X, 6).reshape(6, 2, 1).astype(dtype)
    with Hostile() as outcome:
        LSTMRegressor(**SMALL).fit(X, np.arange(6.0))
    _expect(outcome, "standardis.*overflow")


def test_weighted_mean_scale_is_exact_under_power_of_two_scaling():
    """The overflow-proof statistics equal the plain formulas bit for bit."""
    rng = np.random.RandomState(0)
    X = rng.normal(loc=3.0, size=(30, 4, 3))
    X[:, :, 2] *= 1e-3
    w = rng.uniform(0.1, 3.0, size=30)
    mean, scale = weighted_mean_scale(X, w)
    flat, wf = X.reshape(-1, 3), np.repeat(w, 4)[:, None]
    plain_mean = (wf * flat).sum(axis=0) / wf.sum()
    plain_var = (wf * (flat - plain_mean) ** 2).sum(axis=0) / wf.sum()
    np.testing.assert_allclose(mean, plain_mean, rtol=1e-14)
    np.testing.assert_allclose(scale, np.sqrt(plain_var), rtol=1e-14)
    for k in (-900, -300, 300, 900):  # exact: powers of two commute with rounding
        m2, s2 = weighted_mean_scale(X * 2.0**k, w * 2.0**-k)
        np.testing.assert_array_equal(m2, mean * 2.0**k)
        np.testing.assert_array_equal(s2, scale * 2.0**k)


def test_inputs_far_outside_the_training_range_are_clipped():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(10, 4, 2))
    # the raw values alone: the edge of their range is what is clipped to
    est = LSTMRegressor(**SMALL, differences=False, instance_norm=None).fit(X, np.arange(10.0))
    edge = est.x_mean_ + INPUT_CLIP * est.x_scale_
    far = np.broadcast_to(edge, (1, 4, 2))
    with Hostile() as outcome:
        at_edge = est.predict(far)
        for beyond in (10 * edge, np.full(2, 1.7e308)):
            np.testing.assert_array_equal(
                est.predict(np.broadcast_to(beyond, (1, 4, 2))), at_edge
            )
        # a float32 input on statistics float32 cannot hold: computed in float64
        est64 = LSTMRegressor(**SMALL).fit(X * 1e100, np.arange(10.0))
        assert np.isfinite(est64.predict((X * 1e30).astype(np.float32))).all()
    _expect(outcome, None)


@pytest.mark.parametrize(
    "weights, message",
    [
        (np.r_[np.ones(5), -np.ones(5)], "negative"),
        (np.zeros(10), "sum to zero|non-zero"),
        (np.full(10, 1e308), "infinity"),
    ],
)
def test_bad_sample_weights_are_clear_errors(weights, message):
    X = np.random.RandomState(0).normal(size=(10, 3, 2))
    with Hostile() as outcome:
        LSTMRegressor(**SMALL).fit(X, np.arange(10.0), sample_weight=weights)
    _expect(outcome, message)


def test_numbers_beyond_float64_are_clear_errors():
    X = np.full((4, 3), 10**400, dtype=object)
    with Hostile() as outcome:
        LSTMRegressor(**SMALL).fit(X, np.arange(4.0))
    _expect(outcome, "too large for float64")
    with Hostile() as outcome:
        LSTMRegressor(**SMALL).fit(np.eye(4), np.array([10**400, 1, 2, 3], dtype=object))
    _expect(outcome, "too large for float64")


# -- a non-finite objective -----------------------------------------------------


def test_objective_non_finite_at_the_start_is_a_clear_error():
    X = np.random.RandomState(0).normal(size=(10, 3, 2))
    with Hostile() as outcome:
        LSTMRegressor(**SMALL, alpha=1e308).fit(X, np.arange(10.0))
    _expect(outcome, "not finite at the initial weights")


def _fail_on_call(monkeypatch, n_call, failure):
    """Make the ``n_call``-th evaluation of the objective fail with ``failure``:
    an exception to raise, or a function of ``(loss, grad)`` to return."""
    original, calls = _objective.loss_grad, []

    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) == n_call:
            if isinstance(failure, type):
                raise failure
            return failure(*original(*args, **kwargs))
        return original(*args, **kwargs)

    monkeypatch.setattr(_objective, "loss_grad", failing)
    return calls


def _fit_through(est, X, y):
    """``est.fit(X, y)``, failing the test (not ending the session, as pytest
    does on KeyboardInterrupt) if an interrupt escapes."""
    try:
        return est.fit(X, y)
    except KeyboardInterrupt:
        pytest.fail("KeyboardInterrupt escaped fit", pytrace=False)


def _fit_data():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(40, 6, 2))
    return X, X[:, :, 0].sum(axis=1)


@pytest.mark.parametrize(
    "failure",
    [
        lambda loss, grad: (np.inf, grad),
        lambda loss, grad: (loss, np.full_like(grad, np.nan)),
    ],
    ids=["inf-loss", "nan-gradient"],
)
def test_objective_overflowing_mid_fit_keeps_the_last_finite_iterate(monkeypatch, failure):
    X, y = _fit_data()
    reference = LSTMRegressor(n_ensemble=1, hidden_layer_sizes=3, max_iter=50, random_state=0,
                              **FIXED).fit(X, y)
    _fail_on_call(monkeypatch, 9, failure)
    est = LSTMRegressor(n_ensemble=1, hidden_layer_sizes=3, max_iter=50, random_state=0, **FIXED)
    with pytest.warns(ConvergenceWarning, match=r"overflowed.*at iteration \d+") as record:
        est.fit(X, y)
    assert len(record) == 1  # one clear warning, not "failed to converge" as well
    k = est.n_iter_
    assert 1 <= k < 9
    for coef in est.coefs_.values():
        assert np.isfinite(coef).all()
    assert est.loss_ == reference.loss_curve_[k - 1]
    assert np.isfinite(est.predict(X)).all()


# -- interruption -------------------------------------------------------------


@pytest.mark.parametrize("Estimator", [LSTMClassifier, LSTMRegressor])
@pytest.mark.parametrize("n_call", [7, 15])
def test_keyboard_interrupt_keeps_the_best_iterate(monkeypatch, Estimator, n_call):
    X, y = _fit_data()
    y = (y > 0).astype(int) if Estimator is LSTMClassifier else y
    params = dict(hidden_layer_sizes=3, max_iter=100, random_state=0, n_ensemble=1,
                  **(FIXED if Estimator is LSTMRegressor else FIXED_CLF))
    calls = _fail_on_call(monkeypatch, n_call, KeyboardInterrupt)
    est = Estimator(**params)
    with pytest.warns(ConvergenceWarning, match=r"interrupted.*at iteration (\d+)") as rec:
        _fit_through(est, X, y)
    assert len(calls) == n_call  # it stopped at the interrupt
    k = est.n_iter_
    assert f"at iteration {k + 1}" in str(rec[0].message)
    assert f"iteration {k}," in str(rec[0].message) or f"iteration {k}." in str(rec[0].message)
    assert 1 <= k < n_call
    check_is_fitted(est)
    assert np.isfinite(est.predict(X)).all()
    # the weights are exactly those L-BFGS reached after k iterations...
    monkeypatch.undo()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        after_k = Estimator(**{**params, "max_iter": k}).fit(X, y)
    for name, coef in after_k.coefs_.items():
        np.testing.assert_array_equal(est.coefs_[name], coef)
    assert est.loss_ == after_k.loss_ == min(est.loss_curve_)
    # ...and warm_start resumes from them
    resumed = est.set_params(warm_start=True, max_iter=5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        resumed.fit(X, y)
    assert resumed.loss_ <= after_k.loss_


def test_keyboard_interrupt_in_the_first_evaluation_keeps_the_initial_weights(monkeypatch):
    X, y = _fit_data()
    _fail_on_call(monkeypatch, 1, KeyboardInterrupt)
    est = LSTMRegressor(n_ensemble=1, hidden_layer_sizes=3, random_state=0, **FIXED)
    with pytest.warns(ConvergenceWarning, match="interrupted.*initial"):
        _fit_through(est, X, y)
    assert est.n_iter_ == 0 and np.isnan(est.loss_)
    assert np.isfinite(est.predict(X)).all()


def test_keyboard_interrupt_from_the_callback(monkeypatch):
    """Ctrl-C may land anywhere, e.g. in the per-iteration printing."""
    X, y = _fit_data()
    printed = []

    def interrupting_print(*args, **kwargs):
        printed.append(args)
        if len(printed) == 3:
            raise KeyboardInterrupt

    monkeypatch.setattr("builtins.print", interrupting_print)
    est = LSTMRegressor(n_ensemble=1, hidden_layer_sizes=3, random_state=0, verbose=1)
    with pytest.warns(ConvergenceWarning, match="interrupted"):
        _fit_through(est, X, y)
    assert est.n_iter_ == 3
    assert np.isfinite(est.predict(X)).all()


def test_interrupt_outside_the_optimiser_propagates(monkeypatch):
    """Only L-BFGS's loop is guarded: Ctrl-C during validation still stops."""
    X, y = _fit_data()

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("sklearn_gatedmem._base.canonical_rows", interrupted)
    with pytest.raises(KeyboardInterrupt):
        LSTMRegressor(**SMALL).fit(X, y)


def test_docstrings_and_user_guide_document_interruption():
    import pathlib

    for Estimator in (LSTMClassifier, LSTMRegressor):
        assert "KeyboardInterrupt" in Estimator.fit.__doc__
    # the README's former section lives in the user guide
    page = pathlib.Path(__file__).parent.parent / "docs" / "user_guide" / "early_stopping.rst"
    assert "Interrupting a fit\n==================" in page.read_text()
