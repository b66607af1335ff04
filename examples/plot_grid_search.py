"""
Tuning an LSTM in a Pipeline with GridSearchCV
==============================================

The estimators are ordinary scikit-learn estimators: they sit at the end of a
:class:`~sklearn.pipeline.Pipeline`, and :class:`~sklearn.model_selection.GridSearchCV`
clones and refits them in parallel worker processes. Here a sequence's class
is decided by the sign of the sum of its first three steps, followed by 17
steps of noise; we search over the cell type and the network size.
"""

# %%
import os
import warnings
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from sklearn_gatedmem import LSTMClassifier

rng = np.random.RandomState(0)
X = rng.normal(size=(300, 20))  # 2-D: 300 univariate sequences of 20 steps
y = (X[:, :3].sum(axis=1) > 0).astype(int)
X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)

# %%
# Every column of X is one step; the scaler standardises each step. L-BFGS is
# capped at 60 iterations to keep the search quick; reaching the cap is
# intended, so its ConvergenceWarning is silenced (in the workers too).
pipe = Pipeline(
    # one network per candidate keeps the search quick (the default averages 5)
    [("scale", StandardScaler()),
     ("lstm", LSTMClassifier(max_iter=60, n_ensemble=1, random_state=0))]
)
param_grid = {
    "lstm__cell": ["lstm", "gated_memory"],
    "lstm__hidden_layer_sizes": [2, 8],
}
search = GridSearchCV(pipe, param_grid, cv=3, n_jobs=2)
with warnings.catch_warnings():
    warnings.simplefilter("ignore", ConvergenceWarning)
    search.fit(X_train, y_train)
print(f"best parameters: {search.best_params_}")
print(f"best cross-validated accuracy: {search.best_score_:.3f}")
print(f"test accuracy of the refitted best pipeline: {search.score(X_test, y_test):.3f}")

results = search.cv_results_
for params, mean, std, seconds in zip(
    results["params"], results["mean_test_score"], results["std_test_score"],
    results["mean_fit_time"],
):
    print(
        f"  cell={params['lstm__cell']!r:15} hidden={params['lstm__hidden_layer_sizes']}:"
        f" accuracy {mean:.3f} +/- {std:.3f}, fit {seconds:.1f} s"
    )

# %%
# Mean cross-validated accuracy of each setting, with its spread over folds.
fig, ax = plt.subplots(figsize=(6, 4))
width = 0.35
for k, cell in enumerate(param_grid["lstm__cell"]):
    rows = np.flatnonzero(results["param_lstm__cell"] == cell)
    positions = np.arange(len(rows)) + (k - 0.5) * width
    ax.bar(positions, results["mean_test_score"][rows], width,
           yerr=results["std_test_score"][rows], capsize=4, label=f'cell="{cell}"')
ax.set_xticks(np.arange(len(param_grid["lstm__hidden_layer_sizes"])))
ax.set_xticklabels([f"{h} hidden units" for h in param_grid["lstm__hidden_layer_sizes"]])
ax.set_ylim(0.5, 1.05)
ax.set_ylabel("cross-validated accuracy")
ax.set_title("GridSearchCV over a Pipeline")
ax.legend(loc="upper center", ncols=2)
fig.tight_layout()

figure_dir = Path(os.environ.get("SKLEARN_GATEDMEM_FIGURE_DIR", "."))
fig.savefig(figure_dir / "grid_search.png", dpi=100)
