"""
Reading handwritten digits row by row
=====================================

Each 8x8 image of scikit-learn's digits becomes a sequence of 8 steps (its
rows, top to bottom) of 8 features (the pixels of a row). The LSTM never sees
the image at once: it must carry what the upper rows looked like down to the
last row. Early stopping holds out part of the training set, scores it after
every L-BFGS iteration, and keeps the best weights.
"""

# %%
import os
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

from sklearn_gatedmem import LSTMClassifier

digits = load_digits()
X = digits.images / 16.0  # (n_samples, 8 rows = steps, 8 pixels = features)
y = digits.target
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.25, stratify=y, random_state=0
)
print(f"sequences: train {X_train.shape}, test {X_test.shape}")

# %%
clf = LSTMClassifier(
    hidden_layer_sizes=32,
    tol=1e-6,  # let the held-out score, not the gradient, decide when to stop
    early_stopping=True,
    validation_fraction=0.1,
    n_iter_no_change=10,
    n_ensemble=1,  # one network, so that it has one validation curve to plot
    random_state=0,
)
clf.fit(X_train, y_train)
print(
    f"{clf.n_iter_} iterations; best held-out accuracy "
    f"{clf.best_validation_score_:.3f} at iteration "
    f"{int(np.argmax(clf.validation_scores_)) + 1}"
)
print(f"LSTM test accuracy (row by row):      {clf.score(X_test, y_test):.3f}")

# For reference, a linear model that sees all 64 pixels at once.
flat = LogisticRegression(max_iter=2000).fit(X_train.reshape(len(X_train), -1), y_train)
print(
    "LogisticRegression on flat pixels:    "
    f"{flat.score(X_test.reshape(len(X_test), -1), y_test):.3f}"
)

# %%
# Left: held-out accuracy per iteration. Right: test digits with their
# predicted class; misclassified ones in red, with the true class.
y_pred = clf.predict(X_test)
fig = plt.figure(figsize=(10, 4))
ax = fig.add_subplot(1, 2, 1)
ax.plot(np.arange(1, clf.n_iter_ + 1), clf.validation_scores_, marker=".")
ax.axvline(np.argmax(clf.validation_scores_) + 1, color="0.6", ls="--",
           label="weights kept")
ax.set_xlabel("L-BFGS iteration")
ax.set_ylabel("held-out accuracy")
ax.set_title("Early stopping")
ax.legend(loc="lower right")

wrong = np.flatnonzero(y_pred != y_test)
shown = np.r_[wrong[:4], np.flatnonzero(y_pred == y_test)[: 12 - min(4, len(wrong))]]
for k, i in enumerate(shown):
    sub = fig.add_subplot(3, 8, 8 * (k // 4) + 5 + k % 4)
    sub.imshow(X_test[i], cmap="gray_r")
    right = y_pred[i] == y_test[i]
    sub.set_title(f"{y_pred[i]}" if right else f"{y_pred[i]} (is {y_test[i]})",
                  fontsize=9, color="black" if right else "tab:red")
    sub.set_axis_off()
fig.tight_layout()

figure_dir = Path(os.environ.get("SKLEARN_GATEDMEM_FIGURE_DIR", "."))
fig.savefig(figure_dir / "digits_sequences.png", dpi=100)
