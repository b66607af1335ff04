"""Forecasting a time series with a sequence regressor.

:func:`make_windows` cuts a series into overlapping windows of ``n_steps``
past values (the input sequences) and the ``horizon`` values that follow each
window (the targets); :func:`forecast` runs a regressor fitted on such windows
forward from the end of a history. Layout, for a series ``s`` of shape
(n_times, n_variables)::

    X[i] = s[i : i + n_steps]                          (n_steps, n_variables)
    y[i] = s[i + n_steps : i + n_steps + horizon]      flattened step-major

so ``y[i, h * n_variables + j]`` is variable ``j``, ``h + 1`` steps after the
end of window ``i``.
"""

import numbers

import numpy as np
from sklearn.utils.validation import check_is_fitted


def make_windows(series, n_steps, horizon=1):
    """Cut a series into input windows and the values that follow them.

    Parameters
    ----------
    series : array-like of shape (n_times,) or (n_times, n_variables)
        A univariate or multivariate series, oldest first, without NaN.
    n_steps : int
        Past values in each input window.
    horizon : int, default=1
        Values after each window to predict.

    Returns
    -------
    X : ndarray of shape (n_windows, n_steps, n_variables)
        Input windows, ``n_windows = n_times - n_steps - horizon + 1``; a 1-D
        series has ``n_variables = 1``.
    y : ndarray of shape (n_windows,) or (n_windows, horizon * n_variables)
        The values that follow each window. 1-D exactly when ``series`` is
        1-D and ``horizon == 1``; otherwise one column per (step, variable),
        step-major: ``y[i, h * n_variables + j]`` is variable ``j`` at
        ``h + 1`` steps after window ``i``. A multi-output
        :class:`~sklearn_gatedmem.LSTMRegressor` fits it as it is.

    See Also
    --------
    forecast : Predict the steps after a history with a model fitted on these.

    Examples
    --------
    >>> from sklearn_gatedmem import make_windows
    >>> X, y = make_windows([1, 2, 3, 4, 5], n_steps=3)
    >>> X[:, :, 0]
    array([[1., 2., 3.],
           [2., 3., 4.]])
    >>> y
    array([4., 5.])
    >>> make_windows([1, 2, 3, 4, 5], n_steps=2, horizon=2)[1]
    array([[3., 4.],
           [4., 5.]])
    """
    values = _check_series(series)
    n_steps = _check_positive_int(n_steps, "n_steps")
    horizon = _check_positive_int(horizon, "horizon")
    n_times = values.shape[0]
    if n_times < n_steps + horizon:
        raise ValueError(
            f"series has {n_times} time steps, too few for windows of n_steps="
            f"{n_steps} followed by horizon={horizon}: it needs at least "
            f"{n_steps + horizon}."
        )
    table = values.reshape(n_times, -1)
    # all windows of n_steps + horizon consecutive rows, as a strided view
    windows = np.lib.stride_tricks.sliding_window_view(
        table, n_steps + horizon, axis=0
    ).transpose(0, 2, 1)
    X = np.ascontiguousarray(windows[:, :n_steps])
    y = windows[:, n_steps:].reshape(windows.shape[0], -1).copy()
    if values.ndim == 1 and horizon == 1:
        y = y[:, 0]
    return X, y


def forecast(estimator, history, n_ahead, strategy="recursive"):
    """Predict the ``n_ahead`` values after the end of ``history``.

    ``estimator`` must be a regressor fitted on windows from
    :func:`make_windows` of a series like ``history`` (same variables). Its
    window length is read from its ``n_features_in_`` (``n_steps *
    n_variables``), and its horizon from the width of its predictions.

    Parameters
    ----------
    estimator : fitted regressor
        Fitted on ``make_windows(series, n_steps, horizon)``, for example an
        :class:`~sklearn_gatedmem.LSTMRegressor` or a Pipeline ending in one.
    history : array-like of shape (n_times,) or (n_times, n_variables)
        The series up to now, oldest first; at least ``n_steps`` values, of
        which the last ``n_steps`` are read.
    n_ahead : int
        Number of future values to predict.
    strategy : {"recursive", "direct"}, default="recursive"
        ``"recursive"``: predict the next ``horizon`` values, append them to
        the history, and repeat from the new end until ``n_ahead`` values are
        predicted (with ``horizon=1``, the classic one-step-ahead recursion;
        errors can build up). ``"direct"``: one prediction of a model fitted
        with ``horizon >= n_ahead`` gives all values at once (one multi-output
        model for all horizons; nothing is fed back).

    Returns
    -------
    y_future : ndarray of shape (n_ahead,) or (n_ahead, n_variables)
        The predicted values; 1-D when ``history`` is 1-D.

    See Also
    --------
    make_windows : The training windows this expects the model to be fitted on.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_gatedmem import LSTMRegressor, forecast, make_windows
    >>> series = np.sin(np.arange(80) * 2 * np.pi / 12)  # period 12
    >>> X, y = make_windows(series, n_steps=12)
    >>> reg = LSTMRegressor(hidden_layer_sizes=8, random_state=0).fit(X, y)
    >>> forecast(reg, series, n_ahead=6).shape
    (6,)
    >>> X2, Y2 = make_windows(series, n_steps=12, horizon=6)
    >>> reg2 = LSTMRegressor(hidden_layer_sizes=8, random_state=0).fit(X2, Y2)
    >>> forecast(reg2, series, n_ahead=6, strategy="direct").shape
    (6,)
    """
    check_is_fitted(estimator)
    values = _check_series(history, "history")
    n_ahead = _check_positive_int(n_ahead, "n_ahead")
    if strategy not in ("recursive", "direct"):
        raise ValueError(
            f"strategy must be 'recursive' or 'direct', got {strategy!r}."
        )
    table = values.reshape(values.shape[0], -1)
    n_variables = table.shape[1]
    n_steps = _window_length(estimator, n_variables)
    if table.shape[0] < n_steps:
        raise ValueError(
            f"history has {table.shape[0]} time steps, fewer than the "
            f"{n_steps} steps of the estimator's input windows."
        )

    def predict_block(past):
        """The next values after ``past``, shape (horizon, n_variables)."""
        out = np.asarray(estimator.predict(past[None, -n_steps:]), dtype=np.float64)
        if out.size % n_variables:
            raise ValueError(
                f"the estimator predicts {out.size} values per window, not a "
                f"multiple of the {n_variables} variables of history."
            )
        return out.reshape(-1, n_variables)

    if strategy == "direct":
        future = predict_block(table)
        if future.shape[0] < n_ahead:
            raise ValueError(
                f"strategy='direct' needs a model of horizon >= n_ahead={n_ahead}, "
                f"but this one predicts {future.shape[0]} steps: fit it on "
                f"make_windows(series, n_steps, horizon={n_ahead}), or use "
                "strategy='recursive'."
            )
    else:
        past = table[-n_steps:]
        blocks, n_done = [], 0
        while n_done < n_ahead:
            block = predict_block(past)
            blocks.append(block)
            n_done += block.shape[0]
            past = np.concatenate([past, block])[-n_steps:]
        future = np.concatenate(blocks)
    future = future[:n_ahead]
    return future[:, 0] if values.ndim == 1 else future


def _check_series(series, name="series"):
    """A finite float64 array of shape (n_times,) or (n_times, n_variables)."""
    try:
        values = np.asarray(series, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"{name} must be a numeric array-like of shape (n_times,) or "
            f"(n_times, n_variables), got {type(series).__name__}: {exc}"
        ) from exc
    if values.ndim not in (1, 2) or values.shape[-1] == 0:
        raise ValueError(
            f"{name} must be of shape (n_times,) or (n_times, n_variables) with "
            f"n_variables >= 1, got shape {values.shape}."
        )
    if not np.isfinite(values).all():
        raise ValueError(
            f"{name} contains NaN or infinity; fill or drop missing values "
            "before cutting windows."
        )
    return values


def _check_positive_int(value, name):
    if not isinstance(value, numbers.Integral) or isinstance(value, bool):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}.")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}.")
    return int(value)


def _window_length(estimator, n_variables):
    """Steps per input window: the fitted width divided by the variables."""
    n_features = getattr(estimator, "n_features_in_", None)
    if n_features is None:
        raise TypeError(
            f"{type(estimator).__name__} has no n_features_in_, so its window "
            "length is unknown; fit it on make_windows output first."
        )
    if n_features % n_variables:
        raise ValueError(
            f"the estimator was fitted on {n_features} values per window, not "
            f"a multiple of the {n_variables} variables of history."
        )
    return n_features // n_variables
