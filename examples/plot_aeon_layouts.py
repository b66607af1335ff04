"""
Time series as aeon and sktime hold them
========================================

aeon and sktime keep a collection of series channels-first: an array of shape
``(n_cases, n_channels, n_timepoints)``, and, when the series have different
lengths, a list of ``(n_channels, n_timepoints_i)`` arrays. The estimators
read batch-first ``(n_samples, n_steps, n_features)`` by default (Keras's
``"channels_last"``); ``data_format="channels_first"`` reads aeon's layout as
it is, arrays and lists alike.

The data here are built with NumPy, in exactly those layouts, so aeon need not
be installed. Each series has two channels, each with one spike at a random
time; the class says which channel spikes first. The order of events in time
is what matters, so the network must read the axis of time as its steps.
"""

# %%
import os
import warnings
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from sklearn.exceptions import ConvergenceWarning

from sklearn_gatedmem import LSTMClassifier

rng = np.random.RandomState(0)


def spike_series(n_timepoints):
    """One case, shape (n_channels=2, n_timepoints), and its class."""
    first, second = np.sort(rng.choice(n_timepoints, size=2, replace=False))
    label = rng.randint(2)  # 1: channel 1 spikes first
    x = 0.3 * rng.normal(size=(2, n_timepoints))
    x[label, first] += 3.0
    x[1 - label, second] += 3.0
    return x, label


# %%
# Equal length: one channels-first array, as aeon's ``load_classification``
# returns it.
cases = [spike_series(30) for _ in range(300)]
X = np.stack([x for x, _ in cases])  # (300, 2, 30): (n_cases, n_channels, n_timepoints)
y = np.array([label for _, label in cases])
X_train, X_test, y_train, y_test = X[:200], X[200:], y[:200], y[200:]
print(f"equal length: X of shape {X.shape} (n_cases, n_channels, n_timepoints)")

params = dict(hidden_layer_sizes=8, max_iter=80, random_state=0)
scores = {}
with warnings.catch_warnings():
    warnings.simplefilter("ignore", ConvergenceWarning)
    # the default reads the 2 channels as 2 steps of 30 features: no time order
    wrong = LSTMClassifier(**params).fit(X_train, y_train)
    right = LSTMClassifier(data_format="channels_first", **params).fit(X_train, y_train)
scores["channels_last"] = wrong.score(X_test, y_test)
scores["channels_first"] = right.score(X_test, y_test)
print(f"  read channels-last:  {wrong.n_steps_} steps of {wrong.n_step_features_} "
      f"features, accuracy {scores['channels_last']:.2f}")
print(f"  read channels-first: {right.n_steps_} steps of {right.n_step_features_} "
      f"features, accuracy {scores['channels_first']:.2f}")

# %%
# Unequal length: a list of ``(n_channels, n_timepoints_i)`` arrays, aeon's
# unequal-length format. ``variable_length=True`` reads each series up to its
# own end; ``predict`` takes series shorter or longer than any seen in fit.
series, labels = zip(*(spike_series(n) for n in rng.randint(15, 40, size=300)))
labels = np.array(labels)
clf = LSTMClassifier(variable_length=True, data_format="channels_first", **params)
with warnings.catch_warnings():
    warnings.simplefilter("ignore", ConvergenceWarning)
    clf.fit(list(series[:200]), labels[:200])
lengths = [s.shape[1] for s in series[:200]]
print(f"unequal length: {len(series)} arrays of shape (2, n_i), n_i from "
      f"{min(lengths)} to {max(lengths)}")
scores["unequal length"] = clf.score(list(series[200:]), labels[200:])
print(f"  accuracy on held-out series: {scores['unequal length']:.2f}")
longer, longer_labels = zip(*(spike_series(80) for _ in range(100)))
scores["80 steps"] = clf.score(list(longer), longer_labels)
print(f"  accuracy on 100 series of 80 steps (longer than any in fit): "
      f"{scores['80 steps']:.2f}")

# %%
fig, (ax_series, ax_scores) = plt.subplots(1, 2, figsize=(10, 3.6))
for channel in range(2):
    ax_series.plot(series[0][channel], label=f"channel {channel}")
ax_series.set_title(f"one case, shape {series[0].shape}, class {labels[0]}")
ax_series.set_xlabel("time point")
ax_series.legend()
ax_scores.bar(range(len(scores)), list(scores.values()), color=["0.6", "C0", "C0", "C0"])
ticks = ["channels_last\n(2 steps of 30)", "channels_first\n(30 steps of 2)",
         "unequal length\n(15 to 39 steps)", "80 steps\n(unseen in fit)"]
ax_scores.set_xticks(range(len(scores)), ticks, fontsize=8)
ax_scores.axhline(0.5, color="k", lw=0.8, ls="--")
ax_scores.set_ylim(0, 1)
ax_scores.set_ylabel("test accuracy")
ax_scores.set_title("which channel spikes first?")
fig.tight_layout()

figure_dir = Path(os.environ.get("SKLEARN_GATEDMEM_FIGURE_DIR", "."))
fig.savefig(figure_dir / "aeon_layouts.png", dpi=100)
