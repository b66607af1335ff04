"""
Forecasting airline passengers two years ahead
==============================================

The monthly international airline passengers of 1949 to 1960 (Box & Jenkins)
grow from year to year, and their yearly seasonality grows with them. We hold
out the last two years, fit an :class:`~sklearn_gatedmem.LSTMRegressor` on
windows of the earlier years, and forecast all 24 months at once, recursively.

A recurrent network cannot extrapolate a level it has never seen, so it is
given what it can learn: the *year-over-year growth* of the logarithm,
``log y[t] - log y[t - 12]``, a series without trend or seasonality. The
forecast growth is then put back on top of the same month a year earlier.
The baseline is the seasonal naive forecast, which repeats the last observed
year; it is the same model with zero growth. On a series this short and this
regular, the seasonal naive forecast grown by the average yearly growth is
hard to beat, and the script prints it too.
"""

# %%
import os
import warnings
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from sklearn.exceptions import ConvergenceWarning

from sklearn_gatedmem import LSTMRegressor, forecast, make_windows
from sklearn_gatedmem.datasets import load_airline

airline = load_airline()
passengers, dates = airline.data, airline.dates
n_test = 24
train, test = passengers[:-n_test], passengers[-n_test:]

# %%
# The series the network sees: yearly growth of the log, month by month.
log_train = np.log(train)
growth = log_train[12:] - log_train[:-12]

# Each window of 12 months of growth is a sequence; the next month is its target.
X, y = make_windows(growth, n_steps=12)
print(f"training windows: X {X.shape}, y {y.shape}")

# 96 windows are few: a small network, a strong penalty, and L-BFGS capped at
# its default 200 iterations, before it fits the noise. Reaching the cap is
# intended here, so its ConvergenceWarning is silenced.
reg = LSTMRegressor(hidden_layer_sizes=4, alpha=5.0, max_iter=200, random_state=0)
with warnings.catch_warnings():
    warnings.simplefilter("ignore", ConvergenceWarning)
    reg.fit(X, y)

# %%
# Forecast 24 months of growth, feeding each prediction back in, and turn
# growth into passengers: each month is the same month a year earlier, grown.
growth_ahead = forecast(reg, growth, n_ahead=n_test, strategy="recursive")
log_path = list(log_train)
for g in growth_ahead:
    log_path.append(log_path[-12] + g)
lstm_forecast = np.exp(log_path[-n_test:])

# The seasonal naive forecast repeats the last observed year.
seasonal_naive = np.tile(train[-12:], n_test // 12)


def mape(forecast_values):
    """Mean absolute percentage error on the two held-out years."""
    return 100 * np.mean(np.abs(forecast_values - test) / test)


# A stronger simple reference: the seasonal naive forecast grown by the mean
# yearly growth of the training years (a constant where the LSTM has a model).
with_drift = seasonal_naive * np.exp(growth.mean() * np.repeat([1, 2], 12))

print(f"LSTM on yearly growth,     MAPE: {mape(lstm_forecast):5.1f} %")
print(f"seasonal naive,            MAPE: {mape(seasonal_naive):5.1f} %")
print(f"seasonal naive with drift, MAPE: {mape(with_drift):5.1f} %")

# %%
# Forecast against truth.
fig, ax = plt.subplots(figsize=(9, 4.5))
ax.plot(dates[:-n_test], train, color="0.4", label="training data (1949-1958)")
ax.plot(dates[-n_test:], test, color="black", lw=2, label="truth (1959-1960)")
ax.plot(dates[-n_test:], lstm_forecast, color="tab:blue", lw=2, marker="o", ms=3,
        label=f"LSTM forecast (MAPE {mape(lstm_forecast):.1f} %)")
ax.plot(dates[-n_test:], seasonal_naive, color="tab:orange", ls="--",
        label=f"seasonal naive (MAPE {mape(seasonal_naive):.1f} %)")
ax.axvline(dates[-n_test], color="0.7", lw=1)
ax.set_xlabel("month")
ax.set_ylabel("passengers (thousands)")
ax.set_title("International airline passengers: 24-month forecast")
ax.legend(loc="upper left")
fig.tight_layout()

figure_dir = Path(os.environ.get("SKLEARN_GATEDMEM_FIGURE_DIR", "."))
fig.savefig(figure_dir / "airline_forecast.png", dpi=100)
