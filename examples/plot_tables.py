"""
Tables: a quick baseline beside MLP, ridge and logistic regression
==================================================================

The estimators read a table row as one step of all its features
(``n_steps=1``). With one network (``n_ensemble=1``), and for the regressor a
stronger penalty (``alpha=10``; the classifier's default is 1), they are a quick baseline on scikit-learn's bundled tables: each
fit takes a fraction of a second. Scored by 5-fold cross-validation beside
``MLPClassifier(solver="lbfgs")`` / ``MLPRegressor(solver="lbfgs")`` and
``LogisticRegression`` / ``RidgeCV``, each on standardised columns (the LSTMs
standardise their inputs themselves).
"""

# %%
import os
import time
import warnings
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris, load_wine
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression, RidgeCV
from sklearn.model_selection import KFold, StratifiedKFold, cross_val_score
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sklearn_gatedmem import LSTMClassifier, LSTMRegressor

TABLES = {
    "iris": load_iris,
    "wine": load_wine,
    "breast_cancer": load_breast_cancer,
    "diabetes": load_diabetes,  # regression: R^2
}


def models(regression):
    if regression:
        return {
            "LSTMRegressor": LSTMRegressor(n_steps=1, alpha=10.0, n_ensemble=1, random_state=0),
            "MLP (lbfgs)": make_pipeline(
                StandardScaler(), MLPRegressor(solver="lbfgs", random_state=0)
            ),
            "RidgeCV": make_pipeline(StandardScaler(), RidgeCV()),
        }
    return {
        "LSTMClassifier": LSTMClassifier(n_steps=1, n_ensemble=1, random_state=0),
        "MLP (lbfgs)": make_pipeline(
            StandardScaler(), MLPClassifier(solver="lbfgs", random_state=0)
        ),
        "LogisticRegression": make_pipeline(StandardScaler(), LogisticRegression()),
    }


# %%
# 5-fold cross-validation; the time is the mean per fit.
results = {}
for name, load in TABLES.items():
    X, y = load(return_X_y=True)
    regression = name == "diabetes"
    cv = (KFold if regression else StratifiedKFold)(5, shuffle=True, random_state=0)
    for label, model in models(regression).items():
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # MLP's 200 iterations
            score = cross_val_score(model, X, y, cv=cv).mean()
        seconds = (time.perf_counter() - start) / 5
        results[name, "LSTM" if label.startswith("LSTM") else label] = score
        print(f"{name:>13}  {label:<19} {score:6.3f}  ({seconds:.2f} s per fit)")

# %%
fig, ax = plt.subplots(figsize=(7, 3.5))
labels = ["LSTM", "MLP (lbfgs)"]
width = 0.38
for k, label in enumerate(labels):
    ax.bar(np.arange(len(TABLES)) + (k - 0.5) * width,
           [results[name, label] for name in TABLES], width, label=label)
ax.set_xticks(np.arange(len(TABLES)), [f"{n}\n({'R²' if n == 'diabetes' else 'accuracy'})"
                                       for n in TABLES])
ax.set_ylim(0, 1.05)
ax.set_title("5-fold CV on scikit-learn's tables")
ax.legend(loc="lower right")
fig.tight_layout()

figure_dir = Path(os.environ.get("SKLEARN_GATEDMEM_FIGURE_DIR", "."))
fig.savefig(figure_dir / "tables.png", dpi=100)
print(f"saved {figure_dir / 'tables.png'}")
