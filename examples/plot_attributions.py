"""
Which steps made the prediction: integrated gradients
=====================================================

A generated task where the label is carried by a few steps only: each series
is noise, and a short window of five steps (20 to 24 of 60) holds a bump
whose sign is the class. ``attributions`` gives, for every value of every
series, how much it moved the probability of the predicted class
(integrated gradients from the series constant at the training mean). The
heat map over the test series should light up in the window and stay dark
elsewhere.

Per series, the attributions sum to the change of the probability from the
baseline series to the series itself; the script prints the largest miss
(within 1e-6, max pooling's kinks included: see the user guide's
"Completeness and cost").
"""

# %%
import os
import time
import warnings
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from sklearn.exceptions import ConvergenceWarning

from sklearn_gatedmem import LSTMClassifier

WINDOW = slice(20, 25)


def make_task(n, rng):
    X = rng.normal(size=(n, 60, 1))
    y = rng.randint(2, size=n)
    X[:, WINDOW, 0] += (2 * y - 1)[:, None] * 1.5  # the bump that carries the label
    return X, y


rng = np.random.RandomState(0)
X_train, y_train = make_task(300, rng)
X_test, y_test = make_task(40, rng)

clf = LSTMClassifier(hidden_layer_sizes=8, max_iter=60, n_ensemble=1, random_state=0)
with warnings.catch_warnings():
    warnings.simplefilter("ignore", ConvergenceWarning)
    clf.fit(X_train, y_train)
print(f"test accuracy {clf.score(X_test, y_test):.3f}")

# %%
# Attributions of the predicted class's probability, one per step and feature.
start = time.perf_counter()
A = clf.attributions(X_test)  # shape (40, 60, 1), the layout of X_test
seconds = time.perf_counter() - start
share = np.abs(A[:, WINDOW]).sum() / np.abs(A).sum()
print(f"attributions of {len(X_test)} series in {seconds:.2f} s; "
      f"{share:.0%} of their absolute mass lies in the 5 label steps of 60")

# Per series, the attributions sum to the change of the predicted class's
# probability from the baseline series (each feature constant at its
# training mean) to the series itself.
P = clf.predict_proba(X_test)
baseline = np.full_like(X_test, X_train.mean())  # one feature: its training mean
P0 = clf.predict_proba(baseline)
predicted = P.argmax(axis=1)
change = (P - P0)[np.arange(len(P)), predicted]
print(f"largest completeness error {np.abs(A.sum(axis=(1, 2)) - change).max():.1e}")

# %%
fig, (top, bottom) = plt.subplots(2, 1, figsize=(7, 5.5), sharex=True,
                                  gridspec_kw={"height_ratios": [3, 1]})
limit = np.abs(A).max()
image = top.imshow(A[:, :, 0], aspect="auto", cmap="RdBu_r", vmin=-limit, vmax=limit,
                   interpolation="nearest")
top.set_ylabel("test series")
top.set_title("Attributions of the predicted class's probability")
fig.colorbar(image, ax=[top, bottom], label="attribution")
bottom.plot(np.abs(A[:, :, 0]).mean(axis=0), color="black")
bottom.axvspan(WINDOW.start - 0.5, WINDOW.stop - 0.5, color="orange", alpha=0.3,
               label="steps that carry the label")
bottom.set_xlabel("time step")
bottom.set_ylabel("mean |attribution|")
bottom.legend(loc="upper right")

figure_dir = Path(os.environ.get("SKLEARN_GATEDMEM_FIGURE_DIR", "."))
fig.savefig(figure_dir / "attributions.png", dpi=100)
