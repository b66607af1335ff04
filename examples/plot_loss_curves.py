"""
Loss curves of the two cells
============================

Both cells are fitted by full-batch L-BFGS on the same task, from the same
seed: predicting the running total of a noisy sequence, which needs memory of
every step. ``loss_curve_`` holds the objective (half the mean squared error
on standardised targets, plus the L2 penalty) after each L-BFGS iteration. With
the defaults each model averages 3 networks: its ``loss_curve_`` is the mean
of theirs, and each network's own is in ``estimators_[k].loss_curve_``.

``cell="lstm"`` is the standard LSTM: its gates read the previous output
``h``, and it carries both ``h`` and the cell state ``c``. ``cell="gated_memory"``
carries only its memory ``m``, which its three gates read, while its transformed
input sees the input alone; so it has fewer recurrent weights per unit.
"""

# %%
import os
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from sklearn.model_selection import train_test_split

from sklearn_gatedmem import LSTMRegressor

rng = np.random.RandomState(0)
X = rng.normal(size=(400, 20, 1))
y = X[:, :, 0].sum(axis=1)
X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)

# %%
# Fit both cells with the regressor's defaults (3 networks, 200 iterations),
# small networks for speed.
models, seconds = {}, {}
for cell in ["lstm", "gated_memory"]:
    reg = LSTMRegressor(hidden_layer_sizes=8, cell=cell, random_state=0)
    start = time.perf_counter()
    reg.fit(X_train, y_train)
    models[cell], seconds[cell] = reg, time.perf_counter() - start
    n_weights = sum(w.size for w in reg.estimators_[0].coefs_.values())
    print(
        f"{cell:>12}: {len(reg.estimators_)} networks of {n_weights} weights, "
        f"{reg.n_iter_} iterations, mean final loss {reg.loss_:.2e}, "
        f"test R^2 {reg.score(X_test, y_test):.4f}, {seconds[cell]:.1f} s"
    )

# %%
fig, ax = plt.subplots(figsize=(6.5, 4))
for (cell, reg), color in zip(models.items(), ["C0", "C1"]):
    ax.plot(np.arange(1, reg.n_iter_ + 1), reg.loss_curve_, color=color,
            label=f'cell="{cell}", mean of {len(reg.estimators_)} networks')
    for network in reg.estimators_:  # each network's own curve, thin
        ax.plot(np.arange(1, network.n_iter_ + 1), network.loss_curve_, color=color,
                lw=0.5, alpha=0.5)
ax.set_yscale("log")
ax.set_xlabel("L-BFGS iteration")
ax.set_ylabel("objective (log scale)")
ax.set_title("Training loss per L-BFGS iteration")
ax.legend()
fig.tight_layout()

figure_dir = Path(os.environ.get("SKLEARN_GATEDMEM_FIGURE_DIR", "."))
fig.savefig(figure_dir / "loss_curves.png", dpi=100)
