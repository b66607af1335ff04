"""make_windows and forecast: layout, the two strategies, and bad input."""

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.exceptions import ConvergenceWarning, NotFittedError

from sklearn_gatedmem import LSTMRegressor, forecast, make_windows


class NextValues(RegressorMixin, BaseEstimator):
    """An exact model of a series that goes up by ``step`` every time step.

    Fitted on ``make_windows`` output; predicts the ``horizon`` values after
    each window (all variables), so forecasts can be checked exactly.
    """

    def __init__(self, horizon=1, step=1.0):
        self.horizon = horizon
        self.step = step

    def fit(self, X, y):
        self.n_features_in_ = X.shape[1] * X.shape[2]
        return self

    def predict(self, X):
        last = X[:, -1, :]  # (n_windows, n_variables)
        ahead = np.arange(1, self.horizon + 1)[None, :, None] * self.step
        return (last[:, None, :] + ahead).reshape(len(X), -1)


def test_make_windows_univariate():
    X, y = make_windows(np.arange(10.0), n_steps=4)
    assert X.shape == (6, 4, 1) and y.shape == (6,)
    np.testing.assert_array_equal(X[0, :, 0], [0, 1, 2, 3])
    np.testing.assert_array_equal(X[-1, :, 0], [5, 6, 7, 8])
    np.testing.assert_array_equal(y, np.arange(4.0, 10.0))


def test_make_windows_multivariate_multistep_is_step_major():
    series = np.column_stack([np.arange(8.0), 100 + np.arange(8.0)])
    X, y = make_windows(series, n_steps=3, horizon=2)
    assert X.shape == (4, 3, 2) and y.shape == (4, 4)
    np.testing.assert_array_equal(X[1], series[1:4])
    # y[i, h * n_variables + j]: variable j, h + 1 steps after window i
    np.testing.assert_array_equal(y[1], [4, 104, 5, 105])


def test_make_windows_returns_writable_arrays_that_do_not_alias_the_series():
    series = np.arange(6.0)
    X, y = make_windows(series, n_steps=2)
    X[:] = -1
    y[:] = -1
    np.testing.assert_array_equal(series, np.arange(6.0))


@settings(max_examples=40, deadline=None, database=None)
@given(
    n_times=st.integers(2, 30),
    n_variables=st.integers(1, 3),
    n_steps=st.integers(1, 10),
    horizon=st.integers(1, 5),
    univariate=st.booleans(),
)
def test_make_windows_property(n_times, n_variables, n_steps, horizon, univariate):
    shape = (n_times,) if univariate else (n_times, n_variables)
    series = np.arange(np.prod(shape), dtype=float).reshape(shape)
    if n_times < n_steps + horizon:
        with pytest.raises(ValueError, match="too few"):
            make_windows(series, n_steps, horizon)
        return
    X, y = make_windows(series, n_steps, horizon)
    table = series.reshape(n_times, -1)
    n_windows = n_times - n_steps - horizon + 1
    assert X.shape == (n_windows, n_steps, table.shape[1])
    assert y.ndim == (1 if univariate and horizon == 1 else 2)
    for i in range(n_windows):
        np.testing.assert_array_equal(X[i], table[i : i + n_steps])
        future = table[i + n_steps : i + n_steps + horizon]
        np.testing.assert_array_equal(y[i], future.ravel() if y.ndim == 2 else future[0, 0])


@pytest.mark.parametrize(
    "series, n_steps, horizon, error, match",
    [
        (np.arange(5.0), 5, 1, ValueError, "too few"),
        (np.arange(5.0), 0, 1, ValueError, "n_steps must be >= 1"),
        (np.arange(5.0), 2, -1, ValueError, "horizon must be >= 1"),
        (np.arange(5.0), 2.5, 1, TypeError, "n_steps must be an int"),
        (np.arange(5.0), True, 1, TypeError, "n_steps must be an int"),
        ([1.0, np.nan, 3.0, 4.0], 2, 1, ValueError, "NaN"),
        ([1.0, np.inf, 3.0, 4.0], 2, 1, ValueError, "NaN or infinity"),
        (np.zeros((4, 2, 1)), 2, 1, ValueError, "shape"),
        (5.0, 1, 1, ValueError, "shape"),
        (np.zeros((6, 0)), 2, 1, ValueError, "n_variables >= 1"),
        (["a", "b", "c"], 1, 1, TypeError, "numeric"),
    ],
)
def test_make_windows_rejects_bad_input(series, n_steps, horizon, error, match):
    with pytest.raises(error, match=match):
        make_windows(series, n_steps, horizon)


@pytest.mark.parametrize("horizon", [1, 3])
def test_recursive_forecast_feeds_predictions_back(horizon):
    series = np.arange(20.0)
    model = NextValues(horizon=horizon).fit(*make_windows(series, 5, horizon))
    np.testing.assert_array_equal(forecast(model, series, n_ahead=7), np.arange(20.0, 27.0))


def test_direct_forecast_is_one_prediction():
    series = np.arange(20.0)
    model = NextValues(horizon=6).fit(*make_windows(series, 5, horizon=6))
    np.testing.assert_array_equal(
        forecast(model, series, n_ahead=4, strategy="direct"), [20, 21, 22, 23]
    )
    with pytest.raises(ValueError, match="horizon >= n_ahead=8"):
        forecast(model, series, n_ahead=8, strategy="direct")


@pytest.mark.parametrize("strategy, horizon", [("recursive", 1), ("direct", 3)])
def test_multivariate_forecast_has_one_column_per_variable(strategy, horizon):
    series = np.column_stack([np.arange(12.0), np.arange(12.0) * 10])
    model = NextValues(horizon=horizon, step=2.0).fit(*make_windows(series, 4, horizon))
    future = forecast(model, series[:10], n_ahead=3, strategy=strategy)
    assert future.shape == (3, 2)
    np.testing.assert_array_equal(future, [[11, 92], [13, 94], [15, 96]])


def test_forecast_reads_only_the_last_window():
    model = NextValues().fit(*make_windows(np.arange(10.0), 3))
    np.testing.assert_array_equal(forecast(model, [100, -5, 7, 8, 9], 2), [10, 11])


def test_forecast_rejects_bad_input():
    series = np.arange(20.0)
    model = NextValues().fit(*make_windows(series, 5))
    with pytest.raises(NotFittedError):
        forecast(NextValues(), series, 3)
    with pytest.raises(ValueError, match="fewer than the 5 steps"):
        forecast(model, series[:4], 3)
    with pytest.raises(ValueError, match="strategy must be"):
        forecast(model, series, 3, strategy="dirty")
    with pytest.raises(ValueError, match="n_ahead must be >= 1"):
        forecast(model, series, 0)
    with pytest.raises(ValueError, match="NaN"):
        forecast(model, np.r_[series, np.nan], 3)
    five_values = NextValues().fit(np.zeros((1, 5, 1)), None)
    with pytest.raises(ValueError, match="multiple of the 2 variables"):
        forecast(five_values, np.zeros((9, 2)), 1)


@pytest.mark.parametrize("strategy, horizon", [("recursive", 1), ("direct", 12)])
def test_lstm_forecasts_a_periodic_series(strategy, horizon):
    t = np.arange(120)
    series = np.sin(2 * np.pi * t / 12) + 0.5 * np.cos(2 * np.pi * t / 4)
    train, test = series[:-12], series[-12:]
    X, y = make_windows(train, n_steps=12, horizon=horizon)
    reg = LSTMRegressor(hidden_layer_sizes=8, max_iter=150, tol=1e-3, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        reg.fit(X, y)
    future = forecast(reg, train, n_ahead=12, strategy=strategy)
    assert np.abs(future - test).mean() < 0.05  # the last value is 0.73 off
